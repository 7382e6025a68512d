import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.js';
import { randomNormal } from '../random.js';
import { Rng } from '../rng.js';
import { tf } from '../tf.js';
import { attention } from './attention.js';

beforeAll(() => initBackend('wasm'));

/** Naive reference: loops, float64 softmax, GQA by head index. */
function naive(q: number[][][][], k: number[][][][], v: number[][][][], mask: boolean[][][]) {
  const [B, T, H, Dh] = [q.length, q[0]!.length, q[0]![0]!.length, q[0]![0]![0]!.length];
  const S = k[0]!.length;
  const Hkv = k[0]![0]!.length;
  const out = q.map((qb) => qb.map((qt) => qt.map((qh) => qh.map(() => 0))));
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const kh = Math.floor(h / (H / Hkv));
        const logits: number[] = [];
        for (let s = 0; s < S; s++) {
          let dot = 0;
          for (let i = 0; i < Dh; i++) dot += q[b]![t]![h]![i]! * k[b]![s]![kh]![i]!;
          logits.push(mask[b]![t]![s] ? dot / Math.sqrt(Dh) : Number.NEGATIVE_INFINITY);
        }
        const mx = Math.max(...logits);
        const e = logits.map((l) => (l === Number.NEGATIVE_INFINITY ? 0 : Math.exp(l - mx)));
        const z = e.reduce((a, c) => a + c, 0);
        for (let i = 0; i < Dh; i++) {
          let acc = 0;
          for (let s = 0; s < S; s++) acc += (e[s]! / z) * v[b]![s]![kh]![i]!;
          out[b]![t]![h]![i] = acc;
        }
      }
  return out;
}

function randomMask(rng: Rng, b: number, t: number, s: number) {
  return Array.from({ length: b }, () =>
    Array.from({ length: t }, (_, ti) =>
      Array.from({ length: s }, (_, si) => si === ti % s || rng.uniform() < 0.6),
    ),
  );
}

describe('attention', () => {
  for (const [h, hkv] of [
    [4, 4],
    [4, 2],
    [4, 1],
  ] as const) {
    it(`equals a naive softmax reference (H=${h}, Hkv=${hkv})`, () => {
      const rng = new Rng(h * 10 + hkv);
      const [B, T, S, Dh] = [2, 5, 7, 8];
      const q = randomNormal(rng, [B, T, h, Dh]);
      const k = randomNormal(rng, [B, S, hkv, Dh]);
      const v = randomNormal(rng, [B, S, hkv, Dh]);
      const mask = randomMask(rng, B, T, S);
      const got = attention(
        q,
        k,
        v,
        tf.tensor3d(mask, [B, T, S], 'bool'),
      ).arraySync() as number[][][][];
      const want = naive(
        q.arraySync() as number[][][][],
        k.arraySync() as number[][][][],
        v.arraySync() as number[][][][],
        mask,
      );
      const flatGot = got.flat(3);
      const flatWant = want.flat(3);
      flatWant.forEach((w, i) => expect(flatGot[i]).toBeCloseTo(w, 4));
    });
  }

  it('a K/V cache gives the same output as the full key sequence', () => {
    const rng = new Rng(7);
    const [B, T, S0, S, H, Hkv, Dh] = [1, 3, 4, 3, 2, 1, 4];
    const q = randomNormal(rng, [B, T, H, Dh]);
    const k = randomNormal(rng, [B, S0 + S, Hkv, Dh]);
    const v = randomNormal(rng, [B, S0 + S, Hkv, Dh]);
    const mask = tf.tensor3d(randomMask(rng, B, T, S0 + S), [B, T, S0 + S], 'bool');
    const full = attention(q, k, v, mask);
    const cache = { k: tf.slice(k, [0, 0], [B, S0]), v: tf.slice(v, [0, 0], [B, S0]) };
    const cached = attention(q, tf.slice(k, [0, S0]), tf.slice(v, [0, S0]), mask, cache);
    expect(tf.max(tf.abs(tf.sub(full, cached))).dataSync()[0]).toBeLessThan(1e-6);
  });

  it('rejects a mask of the wrong shape', () => {
    const x = tf.zeros([1, 2, 1, 4]);
    expect(() => attention(x, x, x, tf.ones([1, 2, 3], 'bool'))).toThrow(/mask/);
  });
});
