// Custom gradients (linear, bmm, embedding) against central finite differences. Each loss is
// linear in the parameter being probed, so the differences are exact up to float rounding.

import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.js';
import { randomNormal } from '../random.js';
import { Rng } from '../rng.js';
import { tf } from '../tf.js';
import { embed } from './embedding.js';
import { bmm, linear } from './linear.js';

beforeAll(() => initBackend('wasm'));

function numericGrad(f: (x: tf.Tensor) => tf.Scalar, x: tf.Tensor, eps = 1e-2): Float32Array {
  const base = x.dataSync().slice();
  const out = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) {
    const plus = base.slice();
    plus[i]! += eps;
    const minus = base.slice();
    minus[i]! -= eps;
    const fp = tf.tidy(() => f(tf.tensor(plus, x.shape)).dataSync()[0]!);
    const fm = tf.tidy(() => f(tf.tensor(minus, x.shape)).dataSync()[0]!);
    out[i] = (fp - fm) / (2 * eps);
  }
  return out;
}

function expectClose(a: Float32Array | number[], b: Float32Array | number[], tol = 2e-3) {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(tol);
}

describe('custom gradients equal numerical gradients', () => {
  const rng = new Rng(1);
  let x: tf.Tensor;
  let w: tf.Tensor;
  let b: tf.Tensor;
  let r: tf.Tensor;
  beforeAll(() => {
    x = randomNormal(rng, [2, 3, 4]);
    w = randomNormal(rng, [4, 5]);
    b = randomNormal(rng, [5]);
    r = randomNormal(rng, [2, 3, 5]);
  });

  it('linear: d/dx, d/dw, d/db', () => {
    const loss = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(tf.mul(linear(xx, ww, bb), r)) as tf.Scalar;
    const [gx, gw, gb] = tf.grads(loss as (...a: tf.Tensor[]) => tf.Tensor)([x, w, b]);
    expectClose(
      gx!.dataSync() as Float32Array,
      numericGrad((t) => loss(t, w, b), x),
    );
    expectClose(
      gw!.dataSync() as Float32Array,
      numericGrad((t) => loss(x, t, b), w),
    );
    expectClose(
      gb!.dataSync() as Float32Array,
      numericGrad((t) => loss(x, w, t), b),
    );
  });

  it('linear equals a plain matMul in value and gradient', () => {
    const plain = (xx: tf.Tensor, ww: tf.Tensor) =>
      tf.sum(tf.mul(tf.reshape(tf.matMul(tf.reshape(xx, [-1, 4]), ww), [2, 3, 5]), r)) as tf.Scalar;
    const ours = (xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(linear(xx, ww), r)) as tf.Scalar;
    const [a1, a2] = tf.grads(plain as (...a: tf.Tensor[]) => tf.Tensor)([x, w]);
    const [b1, b2] = tf.grads(ours as (...a: tf.Tensor[]) => tf.Tensor)([x, w]);
    expectClose(a1!.dataSync() as Float32Array, b1!.dataSync() as Float32Array, 1e-5);
    expectClose(a2!.dataSync() as Float32Array, b2!.dataSync() as Float32Array, 1e-5);
  });

  it('bmm: d/da, d/db with two batch axes', () => {
    const a = randomNormal(rng, [2, 2, 3, 4]);
    const c = randomNormal(rng, [2, 2, 4, 3]);
    const rr = randomNormal(rng, [2, 2, 3, 3]);
    const loss = (aa: tf.Tensor, cc: tf.Tensor) => tf.sum(tf.mul(bmm(aa, cc), rr)) as tf.Scalar;
    const [ga, gc] = tf.grads(loss as (...t: tf.Tensor[]) => tf.Tensor)([a, c]);
    expectClose(
      ga!.dataSync() as Float32Array,
      numericGrad((t) => loss(t, c), a),
    );
    expectClose(
      gc!.dataSync() as Float32Array,
      numericGrad((t) => loss(a, t), c),
    );
  });

  it('embedding: d/dtable, duplicate ids add up', () => {
    const table = randomNormal(rng, [6, 3]);
    const ids = tf.tensor2d(
      [
        [1, 4, 1],
        [0, 1, 5],
      ],
      [2, 3],
      'int32',
    );
    const rr = randomNormal(rng, [2, 3, 3]);
    const loss = (t: tf.Tensor) => tf.sum(tf.mul(embed(t, ids), rr)) as tf.Scalar;
    const g = tf.grad(loss)(table);
    expectClose(g.dataSync() as Float32Array, numericGrad(loss, table));
    // row 1 was looked up three times, rows 2 and 3 never
    expect(Array.from(g.slice([2, 0], [2, 3]).dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('embedding keeps its ids alive for a backward pass outside the call', () => {
    const table = tf.variable(randomNormal(rng, [4, 2]));
    const ids = tf.tensor1d([3, 3, 0], 'int32');
    const { grads } = tf.variableGrads(() => tf.sum(embed(table, ids)) as tf.Scalar, [table]);
    expect(Array.from(grads[table.name]!.dataSync())).toEqual([1, 1, 0, 0, 0, 0, 2, 2]);
  });

  it('embedding rejects float ids', () => {
    expect(() => embed(tf.zeros([2, 2]), tf.tensor1d([0]))).toThrow(/int32/);
  });
});
