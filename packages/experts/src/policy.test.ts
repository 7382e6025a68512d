// DESIGN section 7, items 1-3, 6, 7 and 9's helpers, on the tiny config.
import {
  createOptimizer,
  disposeOptimizer,
  initBackend,
  optimizerStep,
  Rng,
  ShapeError,
  tf,
} from '@selfalign/core';
import { TTT_FAST_WEIGHTS, writeSlot } from '@selfalign/ttt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disposeBatch, randomBatch } from './batch.js';
import { computeLoss, disposeLoss, type LossOptions, type TrainBatch } from './compute-loss.js';
import { tiny } from './config.js';
import { createPolicy, type Policy } from './policy.js';
import { disposePrefixCache, encodePrefix } from './prefix.js';

beforeAll(() => initBackend('wasm'));

const values = (p: Policy) => new Map(p.params.select().map(([k, v]) => [k, v.dataSync().slice()]));
const scalar = (t: tf.Tensor) => t.dataSync()[0]!;

/** Fixed t and noise so two forwards see the same draws. */
function fixedDraws(policy: Policy, b: number, seed: number): LossOptions {
  const c = policy.config;
  const rng = new Rng(seed);
  const n = (shape: number[]) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((a, x) => a * x, 1) }, () => rng.normal()),
      shape,
    );
  return {
    time: tf.tensor1d(Float32Array.from({ length: b }, () => 0.1 + 0.8 * rng.uniform())),
    noise: {
      actions: n([b, c.actionHorizon, c.actionDim]),
      state: n([b, c.stateDim]),
      features: n([b, c.featureDim]),
      inverse: n([b, c.actionHorizon, c.actionDim]),
    },
  };
}

describe('policy structure', () => {
  let a: Policy;
  let b: Policy;
  beforeAll(() => {
    a = createPolicy(tiny, 0);
    b = createPolicy(tiny, 0);
  });
  afterAll(() => {
    a.dispose();
    b.dispose();
  });

  it('1: each Action/Alignment layer with TTT holds the identical module; the VLM has none; policies never share', () => {
    for (let l = 0; l < tiny.depth; l++) {
      const m = a.experts.action.layers[l]!.ttt;
      expect(m).toBeDefined();
      expect(a.experts.alignment.layers[l]!.ttt).toBe(m);
      expect(a.experts.vlm.layers[l]!.ttt).toBeUndefined();
      expect(b.experts.action.layers[l]!.ttt).not.toBe(m);
    }
    expect(a.params.paths().some((p) => p.startsWith('vlm/') && p.includes('ttt'))).toBe(false);
  });

  it('2: W1/b1 appear once in the parameter tree', () => {
    const fast = a.params.select(TTT_FAST_WEIGHTS).map(([p]) => p);
    expect(fast).toEqual(['ttt/0/W1', 'ttt/0/b1', 'ttt/1/W1', 'ttt/1/b1']);
    expect(new Set(a.params.paths()).size).toBe(a.params.paths().length);
    expect(a.params.get('ttt/0/W1').shape).toEqual([tiny.ttt.slots, tiny.ttt.heads, 16, 16]);
    expect(a.params.get('ttt/0/b1').shape).toEqual([tiny.ttt.slots, tiny.ttt.heads, 1, 16]);
  });

  it('same seed gives the same weights; another seed does not', () => {
    expect(values(a).get('action/layers/1/mlp/up')).toEqual(
      values(b).get('action/layers/1/mlp/up'),
    );
    const c = createPolicy(tiny, 1);
    expect(values(a).get('action/layers/1/mlp/up')).not.toEqual(
      values(c).get('action/layers/1/mlp/up'),
    );
    c.dispose();
  });
});

describe('computeLoss', () => {
  let p: Policy;
  let batch: TrainBatch;
  beforeAll(() => {
    p = createPolicy(tiny, 3);
    batch = randomBatch(p, 3, new Rng(4), { stateDims: 5, actionDims: 3, slots: [0, 2, 1] });
  });
  afterAll(() => {
    disposeBatch(batch);
    p.dispose();
  });

  it('3: returns finite per-task losses and leaves every parameter bit-identical', () => {
    const before = values(p);
    const terms = computeLoss(p, batch);
    for (const [k, v] of Object.entries(terms)) expect(Number.isFinite(scalar(v!)), k).toBe(true);
    expect(scalar(terms.action)).toBeGreaterThan(0);
    expect(scalar(terms.ttt)).toBe(0); // weight 0: not computed
    const sum =
      scalar(terms.action) +
      scalar(terms.perception) +
      scalar(terms.dynamics) +
      scalar(terms.inverseDynamics);
    expect(scalar(terms.total)).toBeCloseTo(sum, 4);
    disposeLoss(terms);
    const after = values(p);
    for (const [k, v] of before) expect(after.get(k), k).toEqual(v);
  });

  it('7: a joint forward equals split forwards [prefix, action] and [prefix, alignment], also with a prefix cache', () => {
    const draws = fixedDraws(p, 3, 5);
    const joint = computeLoss(p, batch, draws);
    const act = computeLoss(p, batch, { ...draws, streams: ['action'] });
    const align = computeLoss(p, batch, { ...draws, streams: ['alignment'] });
    const cache = encodePrefix(p, batch);
    const cached = computeLoss(p, batch, { ...draws, streams: ['alignment'], prefixCache: cache });
    expect(scalar(act.action)).toBeCloseTo(scalar(joint.action), 5);
    for (const k of ['perception', 'dynamics', 'inverseDynamics'] as const) {
      expect(scalar(align[k]), k).toBeCloseTo(scalar(joint[k]), 5);
      expect(scalar(cached[k]), k).toBeCloseTo(scalar(joint[k]), 5);
    }
    expect(scalar(align.action)).toBe(0);
    for (const t of [joint, act, align, cached]) disposeLoss(t);
    disposePrefixCache(cache);
  });

  it('2: gradients into W1 from both experts add up', () => {
    const draws = fixedDraws(p, 3, 6);
    const W1 = p.params.get('ttt/1/W1');
    const grad = (opts: LossOptions) => {
      const { value, grads } = tf.variableGrads(() => {
        const terms = computeLoss(p, batch, { ...draws, ...opts });
        const total = terms.total;
        tf.dispose([
          terms.action,
          terms.perception,
          terms.dynamics,
          terms.inverseDynamics,
          terms.ttt,
        ]);
        return total;
      }, [W1]);
      value.dispose();
      return grads[W1.name]!;
    };
    const gJoint = grad({});
    const gAction = grad({ streams: ['action'] });
    const gAlign = grad({ streams: ['alignment'] });
    expect(scalar(tf.sum(tf.abs(gAction)))).toBeGreaterThan(0);
    expect(scalar(tf.sum(tf.abs(gAlign)))).toBeGreaterThan(0);
    const diff = scalar(tf.max(tf.abs(tf.sub(gJoint, tf.add(gAction, gAlign)))));
    expect(diff).toBeLessThan(1e-4 * Math.max(1, scalar(tf.max(tf.abs(gJoint)))));
  });

  it('play rows add no action loss; chunk steps past the episode end count nothing', () => {
    const draws = fixedDraws(p, 3, 7);
    const play = { ...batch, isDemo: tf.tensor1d([0, 0, 0]) };
    const t = computeLoss(p, play, draws);
    expect(scalar(t.action)).toBe(0);
    expect(scalar(t.inverseDynamics)).toBeGreaterThan(0);
    disposeLoss(t);
    const mask = tf.tensor2d([
      [1, 1, 0, 0],
      [1, 1, 1, 1],
      [1, 0, 0, 0],
    ]);
    const base = computeLoss(p, { ...batch, actionMask: mask }, draws);
    // change the actions only where the mask is 0
    const bump = tf.mul(tf.expandDims(tf.sub(1, mask), 2), 100);
    const moved = computeLoss(
      p,
      { ...batch, actionMask: mask, actions: tf.add(batch.actions, bump) },
      draws,
    );
    for (const k of ['action', 'perception', 'dynamics', 'inverseDynamics'] as const) {
      expect(scalar(moved[k]), k).toBeCloseTo(scalar(base[k]), 5);
    }
    disposeLoss(base);
    disposeLoss(moved);
  });

  it('rejects wrong shapes with the field name', () => {
    const bad = { ...batch, nextFeatures: tf.zeros([3, 5]) };
    expect(() => computeLoss(p, bad)).toThrow(ShapeError);
    expect(() => computeLoss(p, bad)).toThrow(/batch.nextFeatures/);
    expect(() => computeLoss(p, { ...batch, images: tf.zeros([3, 1, 8, 8, 3]) })).toThrow(
      /observation.images/,
    );
    expect(() => computeLoss(p, { ...batch, actions: tf.zeros([3, 4, 9]) })).toThrow(/at most 4/);
  });

  it('11: a repeated training step leaves the live tensor count unchanged, and the loss falls', () => {
    const opt = createOptimizer({ lr: 3e-3 });
    const draws = fixedDraws(p, 3, 8);
    const step = () =>
      optimizerStep(opt, p.params.select(), () => {
        const terms = computeLoss(p, batch, draws);
        const { total, ...rest } = terms;
        tf.dispose(Object.values(rest));
        return total;
      });
    const first = step().loss;
    const live = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 15; i++) last = step().loss;
    expect(tf.memory().numTensors).toBe(live);
    expect(last).toBeLessThan(first);
    disposeOptimizer(opt);
  });

  it('the slot of a row is the one its TTT reads', () => {
    const draws = fixedDraws(p, 3, 9);
    const before = computeLoss(p, batch, { ...draws, streams: ['alignment'] });
    const W1 = p.params.get('ttt/0/W1');
    const saved = tf.clone(W1);
    writeSlot(W1, 3, tf.fill(W1.shape.slice(1), 0.5)); // slot 3 is used by no row
    const unused = computeLoss(p, batch, { ...draws, streams: ['alignment'] });
    writeSlot(W1, 2, tf.fill(W1.shape.slice(1), 0.5)); // row 1 uses slot 2
    const used = computeLoss(p, batch, { ...draws, streams: ['alignment'] });
    expect(scalar(unused.total)).toBe(scalar(before.total));
    expect(scalar(used.total)).not.toBe(scalar(before.total));
    W1.assign(saved);
    for (const t of [before, unused, used]) disposeLoss(t);
    saved.dispose();
  });
});
