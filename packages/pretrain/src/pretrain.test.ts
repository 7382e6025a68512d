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

  it('the moving average of the weights: its formula, saved and read as the weights, resumed exactly', async () => {
    const full = join(dir, 'ema-full.safetensors');
    const part = join(dir, 'ema-part.safetensors');
    const a = createPolicy(tiny, 4);
    disposePretrain(await pretrain(a, batchAt(a), { steps: 1 })); // the policy's caches are built
    const start = values(a);
    const seen: ReturnType<typeof values>[] = [];
    const before = tf.memory().numTensors;
    const ra = await pretrain(a, batchAt(a), {
      steps: 6,
      seed: 9,
      lr: 0.01,
      ema: 0.9,
      checkpoint: { path: full, every: 6 },
      onStep: () => seen.push(values(a)),
    });
    disposePretrain(ra);
    expect(tf.memory().numTensors).toBe(before); // the average lives on the host
    // the average by hand: decay min(0.9, (1 + t) / (10 + t)) from the initial weights
    const want = new Map([...start].map(([k, v]) => [k, Float64Array.from(v)]));
    seen.forEach((w, t) => {
      const d = Math.min(0.9, (1 + t) / (10 + t));
      for (const [k, e] of want) e.forEach((x, i) => (e[i] = d * x + (1 - d) * w.get(k)![i]!));
    });
    const averaged = await loadCheckpoint(full);
    expect(averaged.weights).toBe('ema');
    let moved = 0;
    for (const [k, v] of values(averaged.policy)) {
      const e = want.get(k)!;
      v.forEach((x, i) => expect(Math.abs(x - e[i]!), k).toBeLessThan(1e-6));
      moved = Math.max(moved, ...v.map((x, i) => Math.abs(x - seen[5]!.get(k)![i]!)));
    }
    expect(moved).toBeGreaterThan(1e-4); // the average is not the last weights
    const raw = await loadCheckpoint(full, { weights: 'raw' });
    expect(raw.weights).toBe('raw');
    for (const [k, v] of values(raw.policy)) expect(v, k).toEqual(seen[5]!.get(k));
    // interrupted at 3 and resumed: the same average as the uninterrupted run
    const b = createPolicy(tiny, 4);
    disposePretrain(await pretrain(b, batchAt(b), { steps: 1 }));
    disposePretrain(
      await pretrain(b, batchAt(b), {
        steps: 6,
        until: 3,
        seed: 9,
        lr: 0.01,
        ema: 0.9,
        checkpoint: { path: part, every: 3 },
      }),
    );
    const c = createPolicy(tiny, 99);
    await expect(
      pretrain(c, batchAt(c), { steps: 6, seed: 9, lr: 0.01, resume: part }),
    ).rejects.toThrow(/keeps a moving average/);
    await expect(
      pretrain(c, batchAt(c), { steps: 6, seed: 9, lr: 0.01, ema: 0.99, resume: part }),
    ).rejects.toThrow(/decay 0.9, not 0.99/);
    disposePretrain(
      await pretrain(c, batchAt(c), {
        steps: 6,
        seed: 9,
        lr: 0.01,
        ema: 0.9,
        resume: part,
        checkpoint: { path: part, every: 3 },
      }),
    );
    const resumed = await loadCheckpoint(part);
    for (const [k, v] of values(resumed.policy))
      expect(v, k).toEqual(values(averaged.policy).get(k));
    // a run without the average cannot be resumed with one
    const plain = join(dir, 'ema-plain.safetensors');
    disposePretrain(
      await pretrain(b, batchAt(b), {
        steps: 2,
        seed: 9,
        lr: 0.01,
        checkpoint: { path: plain, every: 2 },
      }),
    );
    await expect(
      pretrain(c, batchAt(c), { steps: 4, seed: 9, lr: 0.01, ema: 0.9, resume: plain }),
    ).rejects.toThrow(/no moving average/);
    for (const l of [averaged, raw, resumed]) l.policy.dispose();
    for (const p of [a, b, c]) p.dispose();
  });
});
