import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, Rng, tf } from '@selfalign/core';
import { defaultFeatureExtractor } from '@selfalign/data';
import { createPolicy, type Policy, randomBatch, tiny } from '@selfalign/experts';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdapterStore } from './adapters.js';
import { align } from './align.js';
import { OnlineAligner } from './online.js';

let dir: string;
beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'selfalign-align-'));
});

const values = (p: Policy, f: Parameters<Policy['params']['select']>[0] = '**') =>
  new Map(p.params.select(f).map(([k, v]) => [k, v.dataSync().slice()]));

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
