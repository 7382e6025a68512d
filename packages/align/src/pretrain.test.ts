import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, Rng, tf } from '@selfalign/core';
import { defaultFeatureExtractor } from '@selfalign/data';
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
import { AdapterStore } from './adapters.js';
import { align } from './align.js';
import { loadCheckpoint } from './checkpoint.js';
import { OnlineAligner } from './online.js';
import { contrastSlots, disposePretrain, drawStep, pretrain } from './pretrain.js';

let dir: string;
beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'selfalign-align-'));
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

describe('baselines', () => {
  it('the oracle adapter fits only the slot to labelled target demos through the Action Expert', async () => {
    const p = createPolicy(tiny, 5);
    const demos = [randomBatch(p, 4, new Rng(1), { isDemo: [1, 1, 1, 1] })];
    const before = values(p);
    const calls = p.calls.action;
    const r = await align(p, demos, { objective: 'action', slot: 1, lr: 1e-2, maxSteps: 15 });
    expect(p.calls.action).toBeGreaterThan(calls);
    expect(r.after.action).toBeLessThan(r.before.action);
    for (const [k, v] of values(p))
      if (!k.endsWith('/W1') && !k.endsWith('/b1')) expect(v, k).toEqual(before.get(k));
    r.state.dispose();
    p.dispose();
  });
});

describe('adapters', () => {
  it('save, list, switch; an adapter of another model is refused', async () => {
    const store = new AdapterStore(join(dir, 'adapters'));
    const p = createPolicy(tiny, 6);
    await store.save('arm-perm', p, 2, { playEpisodes: 10 });
    await store.save('arm-sign', p, 3);
    const list = await store.list();
    expect(list.map((a) => [a.name, a.slotName, a.fingerprint === p.fingerprint])).toEqual([
      ['arm-perm', 'arm-perm', true],
      ['arm-sign', 'arm-sign', true],
    ]);
    expect(list[0]!.stats).toEqual({ playEpisodes: 10 });
    const q = createPolicy(tiny, 7);
    await store.load('arm-perm', q, 0);
    expect(Array.from(tf.slice(q.params.get('ttt/1/W1'), [0], [1]).dataSync())).toEqual(
      Array.from(tf.slice(p.params.get('ttt/1/W1'), [2], [1]).dataSync()),
    );
    const other = createPolicy({ ...tiny, ttt: { ...tiny.ttt, heads: 4 } }, 1);
    await expect(store.load('arm-perm', other, 0)).rejects.toThrow(/made for another model/);
    await expect(store.load('missing', q, 0)).rejects.toThrow(
      /missing.safetensors: file not found/,
    );
    expect(() => store.pathOf('../etc')).toThrow(/must be letters/);
    for (const x of [p, q, other]) x.dispose();
  });
});

describe('online alignment', () => {
  it('buffers consecutive pairs of one episode only, FIFO, and aligns every N calls once full enough', async () => {
    const p = createPolicy(
      { ...tiny, featureDim: 64, vision: { ...tiny.vision, imageSize: 16 } },
      8,
    );
    const features = await defaultFeatureExtractor();
    const online = new OnlineAligner(p, {
      capacity: 4,
      minSize: 3,
      every: 2,
      batchSize: 4,
      imageShape: [16, 16, 3],
      actionDim: 3,
      features,
      align: { slot: 1, maxSteps: 2, lr: 1e-3 },
      resetPerEpisode: true,
    });
    const rng = new Rng(1);
    const step = (episode: number) => ({
      episode,
      image: Uint8Array.from({ length: 16 * 16 * 3 }, () => rng.int(256)),
      state: Float32Array.from({ length: 5 }, () => rng.normal()),
      task: 'reach the red target',
      executed: Float32Array.from({ length: 2 * 3 }, () => rng.uniform()),
    });
    const results = [];
    results.push(await online.observe(step(0))); // no pair yet
    results.push(await online.observe(step(0))); // 1 pair, call 2: below minSize
    results.push(await online.observe(step(1))); // new episode: no pair across episodes
    expect(online.buffer.length).toBe(1);
    results.push(await online.observe(step(1))); // 2 pairs, call 4: below minSize
    results.push(await online.observe(step(1))); // 3 pairs, call 5: not a multiple of 2
    const r6 = await online.observe(step(1)); // 4 pairs, call 6: aligns
    expect(results.every((r) => r === undefined)).toBe(true);
    expect(r6?.steps).toBe(2);
    await online.observe(step(1)); // 5th pair: FIFO keeps 4
    expect(online.buffer.length).toBe(4);
    const r8 = await online.observe(step(1));
    expect(r8?.state.step).toBe(4); // the optimiser persisted across calls
    await online.observe(step(2)); // new episode resets the state
    expect(online.state).toBeUndefined();
    online.dispose();
    await features.dispose();
    p.dispose();
  });
});
