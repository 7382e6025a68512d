import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.js';
import { randomNormal } from '../random.js';
import { Rng } from '../rng.js';
import { tf } from '../tf.js';
import { layerNorm } from './layer-norm.js';
import { gegluMlp, geluTanh } from './mlp.js';
import { rmsNorm } from './rms-norm.js';
import { applyRope } from './rope.js';

beforeAll(() => initBackend('wasm'));

describe('normalisation', () => {
  it('rmsNorm = x * rsqrt(mean(x^2) + 1e-6) * (1 + scale); zero scale is the identity scale', () => {
    const x = [3, -4, 0, 1];
    const ms = x.reduce((a, v) => a + v * v, 0) / 4;
    const got = rmsNorm(tf.tensor2d([x]), tf.tensor1d([0, 1, 0, -0.5])).dataSync();
    const want = x.map((v, i) => (v / Math.sqrt(ms + 1e-6)) * (1 + [0, 1, 0, -0.5][i]!));
    want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, 5));
  });

  it('layerNorm gives zero mean, unit variance, then gamma/beta', () => {
    const rng = new Rng(3);
    const x = randomNormal(rng, [4, 16], 3, 2);
    const y = layerNorm(x, tf.scalar(2), tf.scalar(1));
    const { mean, variance } = tf.moments(y, -1);
    for (const m of mean.dataSync()) expect(m).toBeCloseTo(1, 4);
    for (const v of variance.dataSync()) expect(v).toBeCloseTo(4, 2);
  });
});

describe('rope', () => {
  it('keeps norms and makes q.k depend only on the position difference', () => {
    const rng = new Rng(4);
    const q = randomNormal(rng, [1, 1, 1, 8]);
    const k = randomNormal(rng, [1, 1, 1, 8]);
    const dotAt = (pq: number, pk: number) =>
      tf
        .sum(tf.mul(applyRope(q, tf.tensor2d([[pq]])), applyRope(k, tf.tensor2d([[pk]]))))
        .dataSync()[0]!;
    expect(dotAt(5, 2)).toBeCloseTo(dotAt(13, 10), 4);
    expect(dotAt(0, 0)).toBeCloseTo(tf.sum(tf.mul(q, k)).dataSync()[0]!, 5);
    const n0 = tf.norm(q).dataSync()[0]!;
    expect(tf.norm(applyRope(q, tf.tensor2d([[37]]))).dataSync()[0]).toBeCloseTo(n0, 5);
  });
});

describe('GeGLU MLP', () => {
  it('geluTanh matches the closed form', () => {
    const xs = [-3, -1, 0, 0.5, 2];
    const got = geluTanh(tf.tensor1d(xs)).dataSync();
    xs.forEach((x, i) => {
      const want = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
      expect(got[i]).toBeCloseTo(want, 5);
    });
  });

  it('computes gelu(x Wg) * (x Wu) Wd', () => {
    const x = tf.tensor2d([[1, 2]]);
    const gate = tf.tensor2d([
      [1, 0, 0],
      [0, 1, 0],
    ]);
    const up = tf.tensor2d([
      [2, 0, 1],
      [0, 1, 1],
    ]);
    const down = tf.tensor2d([
      [1, 0],
      [0, 1],
      [1, 1],
    ]);
    const g = geluTanh(tf.tensor1d([1, 2, 0])).dataSync();
    const h = [g[0]! * 2, g[1]! * 2, g[2]! * 3];
    const got = gegluMlp(x, { gate, up, down }).dataSync();
    expect(got[0]).toBeCloseTo(h[0]! + h[2]!, 5);
    expect(got[1]).toBeCloseTo(h[1]! + h[2]!, 5);
  });
});
