// DESIGN section 7, items 6 (policy level), 9 (helpers), 10 and 11 for sampling.
import {
  initBackend,
  type NormStats,
  parseNormStatsJson,
  Rng,
  randomNormal,
  tf,
  toNormStatsJson,
} from '@selfalign/core';
import { TTT_FAST_WEIGHTS } from '@selfalign/ttt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disposeBatch, randomBatch } from './batch.js';
import { type PolicyConfig, tiny } from './config.js';
import type { Observation } from './observation.js';
import { createPolicy, type Policy } from './policy.js';
import { disposePrefixCache, encodePrefix } from './prefix.js';

beforeAll(() => initBackend('wasm'));

const maxDiff = (a: tf.Tensor, b: tf.Tensor) =>
  tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

describe('sampleActions', () => {
  let p: Policy;
  let obs: Observation;
  let noise: tf.Tensor;
  beforeAll(() => {
    p = createPolicy(tiny, 11);
    obs = randomBatch(p, 2, new Rng(12), { slots: [0, 1] });
    noise = randomNormal(new Rng(13), [2, tiny.actionHorizon, tiny.actionDim]);
  });
  afterAll(() => {
    disposeBatch(obs);
    p.dispose();
  });

  it('10: takes numSteps velocity evaluations at t = 1, 1 + dt, ...; the prefix runs once', () => {
    const ts: number[] = [];
    const before = { ...p.calls };
    const a = p.sampleActions(obs, { numSteps: 10, noise, onVelocity: (t) => ts.push(t) });
    expect(a.shape).toEqual([2, tiny.actionHorizon, tiny.actionDim]);
    expect(ts.length).toBe(10);
    ts.forEach((t, i) => expect(t).toBeCloseTo(1 - i * 0.1, 10));
    expect(p.calls.vlm - before.vlm).toBe(1);
    expect(p.calls.action - before.action).toBe(10);
    expect(p.calls.alignment - before.alignment).toBe(0);
  });

  it('10: cached sampling equals uncached sampling (max abs diff < 1e-4)', () => {
    const cached = p.sampleActions(obs, { numSteps: 5, noise });
    const uncached = p.sampleActions(obs, { numSteps: 5, noise, useCache: false });
    expect(maxDiff(cached, uncached)).toBeLessThan(1e-4);
  });

  it('the prefix cache is never mutated by sampling', () => {
    const cache = encodePrefix(p, obs);
    const k0 = cache.kv[0]!.k.dataSync().slice();
    p.sampleActions(obs, { numSteps: 3, noise });
    expect(cache.kv[0]!.k.dataSync()).toEqual(k0);
    disposePrefixCache(cache);
  });

  it("9 (helper): changing a slot changes that row's actions; restoring W1/b1 restores them exactly", () => {
    const before = p.sampleActions(obs, { noise });
    const snap = p.params.snapshot(TTT_FAST_WEIGHTS);
    for (const [, v] of p.params.select(TTT_FAST_WEIGHTS))
      v.assign(tf.add(v, tf.mul(tf.randomNormal(v.shape, 0, 1, 'float32', 1), 0.3)));
    const moved = p.sampleActions(obs, { noise });
    expect(maxDiff(before, moved)).toBeGreaterThan(1e-4);
    p.params.restore(snap);
    const restored = p.sampleActions(obs, { noise });
    expect(Array.from(restored.dataSync())).toEqual(Array.from(before.dataSync()));
    for (const t of snap.values()) t.dispose();
  });

  it('11: repeated sampling leaves the live tensor count unchanged', () => {
    p.sampleActions(obs, { numSteps: 2, noise }).dispose();
    const live = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) p.sampleActions(obs, { numSteps: 2, noise }).dispose();
    expect(tf.memory().numTensors).toBe(live);
  });

  it('rejects bad noise shapes and step counts', () => {
    expect(() => p.sampleActions(obs, { noise: tf.zeros([2, 3, 4]) })).toThrow(/noise/);
    expect(() => p.sampleActions(obs, { numSteps: 0 })).toThrow(/numSteps/);
  });
});

describe('6: with alpha = 0 the policy equals the same policy without TTT', () => {
  it('same actions and same losses', () => {
    const withZero: PolicyConfig = { ...tiny, ttt: { ...tiny.ttt, alpha: 0 } };
    const without: PolicyConfig = { ...tiny, ttt: { ...tiny.ttt, layers: [] } };
    const a = createPolicy(withZero, 21);
    const b = createPolicy(without, 21);
    expect(b.tttModules().length).toBe(0);
    const batch = randomBatch(a, 2, new Rng(22));
    const noise = randomNormal(new Rng(23), [2, tiny.actionHorizon, tiny.actionDim]);
    expect(maxDiff(a.sampleActions(batch, { noise }), b.sampleActions(batch, { noise }))).toBe(0);
    const la = a.computeLoss(batch, { rng: new Rng(24) });
    const lb = b.computeLoss(batch, { rng: new Rng(24) });
    expect(la.total.dataSync()[0]).toBe(lb.total.dataSync()[0]);
    a.dispose();
    b.dispose();
  });
});

describe('normalisation around the model', () => {
  const stats: NormStats = {
    state: { mean: [1, 2], std: [2, 4], q01: [-1, -2], q99: [3, 6] },
    actions: { mean: [0.5, -0.5, 0], std: [0.1, 0.2, 0.3], q01: [0, -1, -1], q99: [1, 0, 1] },
  };

  it('openpi norm_stats.json round trip and errors', () => {
    expect(parseNormStatsJson(toNormStatsJson(stats))).toEqual(stats);
    expect(() => parseNormStatsJson('{}')).toThrow(/no "norm_stats"/);
    expect(() =>
      parseNormStatsJson('{"norm_stats":{"state":{"mean":[1],"std":[1],"q01":[1],"q99":[1]}}}'),
    ).toThrow(/actions is missing/);
    expect(() =>
      parseNormStatsJson(
        '{"norm_stats":{"state":{"mean":[1],"std":[1,2],"q01":[1],"q99":[1]},"actions":{}}}',
      ),
    ).toThrow(/2 values, expected 1/);
  });

  for (const mode of ['zscore', 'quantile'] as const) {
    it(`${mode}: actions come back in robot units (a model that outputs 0 gives the centre)`, () => {
      const p = createPolicy(
        { ...tiny, stateDim: 6 },
        { seed: 1, normStats: stats, normMode: mode },
      );
      for (const [, v] of p.params.select('action/action_out/**')) v.assign(tf.zerosLike(v));
      const batch = randomBatch(p, 1, new Rng(2), { stateDims: 2 });
      const noise = tf.zeros([1, tiny.actionHorizon, tiny.actionDim]);
      const a = p.sampleActions(batch, { noise });
      expect(a.shape).toEqual([1, tiny.actionHorizon, 3]);
      const centre = mode === 'zscore' ? stats.actions.mean : [0.5, -0.5, 0];
      const row = Array.from(a.dataSync().slice(0, 3));
      row.forEach((v, i) => expect(v).toBeCloseTo(centre[i]!, 5));
      p.dispose();
    });
  }
});
