import { initBackend, Rng, tf } from '@selfalign/core';
import {
  computeLoss,
  createPolicy,
  lossDenominators,
  randomBatch,
  tiny,
  withExtraAlignmentTasks,
} from '@selfalign/experts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardRanges, sliceRows, toHost, WorkerPool } from './data-parallel.js';
import { disposePretrain, drawStep, pretrain } from './pretrain.js';

beforeAll(() => initBackend('wasm'));

const pools: WorkerPool[] = [];
afterAll(async () => {
  for (const p of pools) await p.close();
});

/** A batch with uneven masks (play rows, chunk ends) so the shard denominators matter. */
function unevenBatch(p: ReturnType<typeof createPolicy>, rng: Rng) {
  const b = randomBatch(p, 5, rng, { slots: [0, 1, 2, 3, 0], isDemo: [1, 0, 1, 1, 0] });
  const ha = tiny.actionHorizon;
  const mask = new Float32Array(5 * ha).fill(1);
  mask.fill(0, 2 * ha + 1, 3 * ha); // row 2: the episode ends after one step
  b.actionMask?.dispose();
  b.actionMask = tf.tensor2d(mask, [5, ha]);
  return b;
}

describe('data-parallel pretraining', () => {
  it('shards cover the rows in order, empty when there are more shards than rows', () => {
    expect(shardRanges(5, 2)).toEqual([
      [0, 2],
      [2, 5],
    ]);
    expect(shardRanges(1, 3).filter(([a, b]) => b > a)).toEqual([[0, 1]]);
    const h = toHost({ x: tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]) });
    expect(Array.from(sliceRows(h, 1, 3)['x']!.data)).toEqual([3, 4, 5, 6]);
  });

  it.each([
    ["the design's three tasks", tiny],
    ['a config with the stateDynamics task', withExtraAlignmentTasks(tiny, ['stateDynamics'])],
  ])(
    'a two-replica step gives the single-process loss and gradients on the same batch (%s)',
    async (_, config) => {
      const policy = createPolicy(config, 3);
      const params = policy.params.select('**');
      const batch = unevenBatch(policy, new Rng(7));
      const { time, noise } = drawStep(new Rng(8), policy, 5);
      const weights = { keypoints: 0 };
      const single = tf.variableGrads(
        () => computeLoss(policy, batch, { time, noise, weights }).total,
        params.map(([, v]) => v),
      );
      const pool = await WorkerPool.start(
        policy,
        2,
        params.map(([p]) => p),
      );
      pools.push(pool);
      const fields = { ...toHost(batch as never), ...toHost({ time, ...noise }, 'draw/') };
      const before = tf.memory().numTensors;
      const multi = await pool.gradients(policy, fields, lossDenominators(policy, batch), {
        weights,
      });
      const loss = single.value.dataSync()[0]!;
      if (config !== tiny) {
        expect(Object.keys(noise)).toContain('nextState');
        expect(multi.terms['stateDynamics']).toBeGreaterThan(0);
      }
      expect(multi.value.dataSync()[0]!).toBeCloseTo(loss, 4);
      let worst = 0;
      let checked = 0;
      const off: string[] = [];
      for (const [path, v] of params) {
        const a = single.grads[v.name];
        const b = multi.grads[v.name];
        expect(b === undefined).toBe(a === undefined);
        if (!a || !b) continue;
        const da = a.dataSync();
        const db = b.dataSync();
        let scale = 1e-4; // floor: some gradients are exactly 0 in theory (a key bias under softmax)
        for (const x of da) scale = Math.max(scale, Math.abs(x));
        let w = 0;
        for (let i = 0; i < da.length; i++) w = Math.max(w, Math.abs(da[i]! - db[i]!) / scale);
        if (w >= 1e-4) off.push(`${path} ${w.toExponential(1)} (scale ${scale.toExponential(1)})`);
        worst = Math.max(worst, w);
        checked++;
      }
      expect(checked).toBeGreaterThan(50);
      expect(off).toEqual([]);
      expect(worst).toBeLessThan(1e-4);
      tf.dispose([multi.value, ...Object.values(multi.grads)]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([single.value, ...Object.values(single.grads)]);
      tf.dispose([
        time,
        ...Object.values(noise),
        ...Object.values(batch).filter((v) => v instanceof tf.Tensor),
      ]);
      policy.dispose();
    },
  );

  it('pretrain with 2 replicas tracks 1 replica, keeps replicas identical and memory flat', async () => {
    const run = async (workers: number) => {
      const p = createPolicy(tiny, 5);
      const counts: number[] = [];
      const r = await pretrain(p, (s) => unevenBatch(p, new Rng(100 + s)), {
        steps: 4,
        workers,
        checkReplicasEvery: 1,
        onStep: () => counts.push(tf.memory().numTensors),
      });
      const vals = p.params.select('**').map(([, v]) => v.dataSync().slice());
      disposePretrain(r);
      p.dispose();
      return { vals, counts, losses: r.losses };
    };
    const one = await run(1);
    const two = await run(2);
    for (let i = 0; i < 4; i++) expect(two.losses[i]!).toBeCloseTo(one.losses[i]!, 3);
    let worst = 0;
    one.vals.forEach((a, i) => {
      const b = two.vals[i]!;
      for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j]! - b[j]!));
    });
    expect(worst).toBeLessThan(1e-4);
    // every step leaves the live tensor count where the first left it
    expect(new Set(one.counts).size).toBe(1);
    expect(new Set(two.counts).size).toBe(1);
  });

  it('a worker that dies stops the step with a clear error', async () => {
    const policy = createPolicy(tiny, 9);
    const params = policy.params.select('**');
    const pool = await WorkerPool.start(
      policy,
      2,
      params.map(([p]) => p),
    );
    pools.push(pool);
    const workerMemory = [];
    const batch = unevenBatch(policy, new Rng(1));
    const { time, noise } = drawStep(new Rng(2), policy, 5);
    const fields = { ...toHost(batch as never), ...toHost({ time, ...noise }, 'draw/') };
    for (let i = 0; i < 3; i++) {
      const g = await pool.gradients(policy, fields, lossDenominators(policy, batch), {
        weights: {},
      });
      tf.dispose([g.value, ...Object.values(g.grads)]);
      workerMemory.push(await pool.workerTensors());
    }
    expect(new Set(workerMemory.map((m) => m[0])).size).toBe(1);
    await (
      pool as unknown as { workers: { terminate(): Promise<number> }[] }
    ).workers[0]!.terminate();
    await expect(
      pool.gradients(policy, fields, lossDenominators(policy, batch), { weights: {} }),
    ).rejects.toThrow(/worker 1 exited/);
    tf.dispose([
      time,
      ...Object.values(noise),
      ...Object.values(batch).filter((v) => v instanceof tf.Tensor),
    ]);
    policy.dispose();
  });
});
