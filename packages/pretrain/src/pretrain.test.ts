import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint } from '@selfalign/align';
import { initBackend, Rng, tf } from '@selfalign/core';
import {
  computeLoss,
  createPolicy,
  type Policy,
  randomBatch,
  type TrainBatch,
  tiny,
} from '@selfalign/experts';
import { TTT_FAST_WEIGHTS } from '@selfalign/ttt';
import { beforeAll, describe, expect, it } from 'vitest';
import { contrastSlots, disposePretrain, drawStep, pretrain } from './pretrain.js';

let dir: string;
beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'selfalign-pretrain-'));
});

const values = (p: Policy, f: Parameters<Policy['params']['select']>[0] = '**') =>
  new Map(p.params.select(f).map(([k, v]) => [k, v.dataSync().slice()]));
/** A deterministic batch per step: rows on slots 0..3, half demo half play. */
const batchAt =
  (policy: Policy) =>
  (step: number): TrainBatch =>
    randomBatch(policy, 4, new Rng(1000 + step), { slots: [0, 1, 2, 3], isDemo: [1, 1, 0, 0] });

describe('pretrain', () => {
  it('play rows add no action loss', async () => {
    const p = createPolicy(tiny, 1);
    const seen: number[] = [];
    const r = await pretrain(p, (s) => randomBatch(p, 3, new Rng(s), { isDemo: [0, 0, 0] }), {
      steps: 2,
      onStep: (_, __, t) => seen.push(t['action']!, t['inverseDynamics']!),
    });
    expect(seen[0]).toBe(0);
    expect(seen[1]).toBeGreaterThan(0);
    expect(r.losses.length).toBe(2);
    disposePretrain(r);
    p.dispose();
  });

  it('slot contrast: the term is the per-row hinge, and a step with it widens the own-vs-other gap', async () => {
    const slots = [0, 1, 2, 3];
    const fixed = (p: Policy) => () => batchAt(p)(0);
    /** The hinge for a policy at step 0's draws, recomputed outside pretrain. */
    const hinge = (p: Policy) => {
      const batch = batchAt(p)(0);
      const { time, noise } = drawStep(new Rng(0), p, 4);
      const other = tf.tensor1d(
        contrastSlots(batch.slot!.dataSync() as Int32Array, slots, 0),
        'int32',
      );
      const own = computeLoss(p, batch, { time, noise, streams: ['alignment'], rowLosses: true });
      const oth = computeLoss(
        p,
        { ...batch, slot: other },
        { time, noise, streams: ['alignment'], rowLosses: true },
      );
      return tf
        .mean(tf.relu(tf.add(tf.sub(own.alignmentRows!, oth.alignmentRows!), 1)))
        .dataSync()[0]!;
    };
    expect(Array.from(contrastSlots(Int32Array.from([0, 3, 7]), slots, 1))).toEqual([2, 1, 1]);
    const a = createPolicy(tiny, 2);
    const expected = hinge(a);
    const seen: number[] = [];
    const ra = await pretrain(a, fixed(a), {
      steps: 1,
      lr: 1e-2,
      warmup: 0,
      contrast: { weight: 5, margin: 1, slots },
      onStep: (_, __, t) => seen.push(t['contrast']!),
    });
    expect(seen[0]).toBeCloseTo(expected, 4);
    const b = createPolicy(tiny, 2);
    const rb = await pretrain(b, fixed(b), { steps: 1, lr: 1e-2, warmup: 0 });
    expect(hinge(a)).toBeLessThan(hinge(b));
    disposePretrain(ra);
    disposePretrain(rb);
    a.dispose();
    b.dispose();
  });

  it('alignment-defined slots: the action loss leaves W1/b1 untouched while it trains the rest', async () => {
    const p = createPolicy(tiny, 3);
    const fast = values(p, TTT_FAST_WEIGHTS);
    const rest = values(p, 'action/layers/0/**');
    const r = await pretrain(p, batchAt(p), {
      steps: 3,
      weightDecay: 0,
      lossWeights: { action: 1, perception: 0, dynamics: 0, inverseDynamics: 0 },
      alignmentDefinedSlots: true,
    });
    for (const [k, v] of values(p, TTT_FAST_WEIGHTS)) expect(v, k).toEqual(fast.get(k));
    let moved = 0;
    for (const [k, v] of values(p, 'action/layers/0/**'))
      if (v.some((x, i) => x !== rest.get(k)![i])) moved++;
    expect(moved).toBeGreaterThan(0);
    disposePretrain(r);
    // without the option the action loss does reach W1
    const q = createPolicy(tiny, 3);
    const r2 = await pretrain(q, batchAt(q), {
      steps: 1,
      weightDecay: 0,
      lossWeights: { action: 1, perception: 0, dynamics: 0, inverseDynamics: 0 },
    });
    expect(
      [...values(q, TTT_FAST_WEIGHTS)].some(([k, v]) => v.some((x, i) => x !== fast.get(k)![i])),
    ).toBe(true);
    disposePretrain(r2);
    p.dispose();
    q.dispose();
  });

  it('resuming from a checkpoint gives the same result as an uninterrupted run', async () => {
    const a = createPolicy(tiny, 4);
    const ra = await pretrain(a, batchAt(a), { steps: 6, seed: 9 });
    const path = join(dir, 'ckpt.safetensors');
    const b = createPolicy(tiny, 4);
    const rb = await pretrain(b, batchAt(b), {
      steps: 6,
      until: 3, // interrupted after 3 of 6 steps
      seed: 9,
      checkpoint: { path, every: 3, info: { command: 'test' } },
    });
    const c = createPolicy(tiny, 99); // different weights: the resume overwrites them
    const rc = await pretrain(c, batchAt(c), { steps: 6, seed: 9, resume: path });
    expect([...rb.losses, ...rc.losses]).toEqual(ra.losses);
    for (const [k, v] of values(a)) expect(values(c).get(k), k).toEqual(v);
    const loaded = await loadCheckpoint(path);
    expect(loaded.step).toBe(3);
    expect(loaded.info).toEqual({ command: 'test' });
    loaded.policy.dispose();
    await writeFile(join(dir, 'junk.safetensors'), 'junk');
    await expect(loadCheckpoint(join(dir, 'junk.safetensors'))).rejects.toThrow(/junk.safetensors/);
    for (const r of [ra, rb, rc]) disposePretrain(r);
    for (const p of [a, b, c]) p.dispose();
  });
});
