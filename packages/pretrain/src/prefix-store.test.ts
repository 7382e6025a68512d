// The frozen-prefix phase: float16 storage, the store against the prefix it replaces, and
// pretraining on stored prefixes (same loss as running the prefix, the prefix untouched, one
// thread or two replicas alike).
import { initBackend, Rng, tf } from '@selfalign/core';
import {
  computeLoss,
  createPolicy,
  disposeBatch,
  disposePrefixCache,
  encodePrefix,
  type Policy,
  randomBatch,
  type TrainBatch,
  tiny,
} from '@selfalign/experts';
import { beforeAll, describe, expect, it } from 'vitest';
import { PrefixStore, toHalf } from './prefix-store.js';
import { disposePretrain, drawStep, type PretrainBatch, pretrain } from './pretrain.js';

beforeAll(() => initBackend('wasm'));

/** 12 fixed frames of a tiny policy, rows on slots 0..3, half demo. */
const frames = (p: Policy): TrainBatch =>
  randomBatch(p, 12, new Rng(5), {
    slots: Array.from({ length: 12 }, (_, i) => i % 4),
    isDemo: Array.from({ length: 12 }, (_, i) => (i % 3 ? 1 : 0)),
  });

/** Rows `index` of every tensor of `batch` (a batch of those frames). */
const rows = (batch: TrainBatch, index: readonly number[]): TrainBatch => {
  const at = tf.tensor1d(Int32Array.from(index), 'int32');
  const out = Object.fromEntries(
    Object.entries(batch).map(([k, v]) => [k, tf.gather(v as tf.Tensor, at)]),
  ) as unknown as TrainBatch;
  at.dispose();
  return out;
};

/** float16 bits -> number, written out independently of the store's table. */
const half = (h: number) => {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
};

describe('float16', () => {
  it('rounds to nearest even, keeps subnormals, overflows to infinity', () => {
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(-2)).toBe(0xc000);
    expect(toHalf(0.1)).toBe(0x2e66);
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(70000)).toBe(0x7c00);
    expect(toHalf(2 ** -24)).toBe(0x0001);
    expect(toHalf(1e-9)).toBe(0);
    expect(toHalf(1 + 2 ** -11)).toBe(0x3c00); // a tie rounds to the even mantissa
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(Number.isNaN(half(toHalf(Number.NaN)))).toBe(true);
    const rng = new Rng(1);
    for (let i = 0; i < 2000; i++) {
      const x = (rng.uniform() - 0.5) * 2 ** (rng.int(20) - 8);
      if (Math.abs(x) < 2 ** -14) continue;
      expect(Math.abs(half(toHalf(x)) - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -11);
    }
  });
});

describe('the prefix store', () => {
  it('gathers any frames as the prefix would compute them (float16), masks and keypoints exact', () => {
    const p = createPolicy(tiny, 2);
    const all = frames(p);
    const seen: number[] = [];
    const store = PrefixStore.build(p, 12, (i0, i1) => rows(all, range(i0, i1)), {
      batch: 5,
      chunkFrames: 4, // forwards of 5 frames write across chunks of 4
      onProgress: (done) => seen.push(done),
    });
    expect(seen).toEqual([5, 10, 12]);
    const pick = [11, 0, 7, 7];
    const sub = rows(all, pick);
    const want = encodePrefix(p, sub);
    const got = store.gather(pick);
    want.kv.forEach(({ k, v }, l) => {
      for (const [a, b] of [
        [k, got.kv[l]!.k],
        [v, got.kv[l]!.v],
      ] as const) {
        expect(b.shape).toEqual(a.shape);
        const x = a.dataSync();
        const y = b.dataSync();
        x.forEach((xi, i) =>
          expect(Math.abs(y[i]! - xi)).toBeLessThanOrEqual(Math.abs(xi) * 2 ** -11 + 1e-7),
        );
      }
    });
    expect(got.mask.dataSync()).toEqual(want.mask.dataSync());
    expect(got.keypoints!.dataSync()).toEqual(want.keypoints!.dataSync());
    expect(() => store.gather([12])).toThrow(/frame 12 is not in the prefix store/);
    expect(store.bytes).toBeGreaterThan(12 * tiny.depth * 2 * 2);
    disposePrefixCache(want);
    disposePrefixCache(got);
    disposeBatch(sub);
    disposeBatch(all);
    p.dispose();
  });

  it('pretraining on stored prefixes: the loss of running the prefix, the prefix untouched, two replicas alike', async () => {
    const run = async (workers: number) => {
      const p = createPolicy(tiny, 3);
      const all = frames(p);
      const store = PrefixStore.build(p, 12, (i0, i1) => rows(all, range(i0, i1)));
      const pick = (step: number) => [(step * 5) % 12, (step * 7 + 1) % 12, (step + 3) % 12, 4];
      const before = new Map(p.params.select().map(([k, v]) => [k, v.dataSync().slice()]));
      // the loss with the prefix run, at the first step's draws: what step 1 must report
      const first = rows(all, pick(0));
      const { time, noise } = drawStep(new Rng(4), p, 4);
      const ran = computeLoss(p, first, { time, noise, weights: { keypoints: 0 } });
      const expected = ran.total.dataSync()[0]!;
      tf.dispose(Object.values(ran).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
      tf.dispose([time, ...Object.values(noise)]);
      disposeBatch(first);
      const batchAt = (step: number): PretrainBatch => ({
        ...rows(all, pick(step)),
        prefixCache: store.gather(pick(step)),
      });
      const live = tf.memory().numTensors;
      const r = await pretrain(p, batchAt, {
        steps: 3,
        seed: 4,
        lr: 0.01,
        frozenPrefix: true,
        workers,
        lossWeights: { keypoints: 0 },
      });
      expect(r.losses[0]!).toBeCloseTo(expected, 3);
      disposePretrain(r);
      expect(tf.memory().numTensors).toBe(live);
      let moved = 0;
      for (const [k, v] of p.params.select()) {
        const same = v.dataSync().every((x, i) => x === before.get(k)![i]);
        if (k.startsWith('vision/') || k.startsWith('vlm/')) expect(same, k).toBe(true);
        else if (!same) moved++;
      }
      expect(moved).toBeGreaterThan(10);
      // a stored prefix while the prefix trains is refused
      await expect(pretrain(p, batchAt, { steps: 1 })).rejects.toThrow(/frozenPrefix/);
      disposeBatch(all);
      const out = new Map(p.params.select().map(([k, v]) => [k, v.dataSync().slice()]));
      p.dispose();
      return { losses: r.losses, out };
    };
    const one = await run(1);
    const two = await run(2);
    two.losses.forEach((l, i) => expect(l).toBeCloseTo(one.losses[i]!, 4));
    let worst = 0;
    for (const [k, v] of one.out)
      v.forEach((x, i) => {
        worst = Math.max(worst, Math.abs(x - two.out.get(k)![i]!));
      });
    expect(worst).toBeLessThan(1e-4);
  });
});

function range(i0: number, i1: number): number[] {
  return Array.from({ length: i1 - i0 }, (_, i) => i0 + i);
}
