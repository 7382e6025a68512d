import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { createOptimizer, disposeOptimizer, optimizerStep, warmupCosine } from './optim.js';
import { ParamTree } from './params.js';
import { tf } from './tf.js';

beforeAll(() => initBackend('wasm'));

function setup() {
  const t = new ParamTree();
  t.add('a', tf.tensor1d([1, -2, 3]));
  t.add('b', tf.tensor1d([0.5]));
  const loss = () =>
    tf.add(tf.sum(tf.square(t.get('a'))), tf.sum(tf.square(t.get('b')))) as tf.Scalar;
  return { t, loss };
}

describe('optimizerStep', () => {
  it('first Adam step moves each selected parameter by lr * sign(grad); others stay', () => {
    const { t, loss } = setup();
    const opt = createOptimizer({ lr: 0.1 });
    const r = optimizerStep(opt, t.select('a'), loss);
    expect(r.applied).toBe(true);
    expect(r.loss).toBeCloseTo(1 + 4 + 9 + 0.25, 5);
    expect(r.gradNorm).toBeCloseTo(Math.sqrt(4 + 16 + 36), 4);
    const a = t.get('a').dataSync();
    [0.9, -1.9, 2.9].forEach((w, i) => expect(a[i]).toBeCloseTo(w, 5));
    expect(t.get('b').dataSync()[0]).toBe(0.5);
    expect(opt.m.has('b')).toBe(false);
    disposeOptimizer(opt);
    t.dispose();
  });

  it("'sgd' steps by lr * grad (clipped) and keeps no moments", () => {
    const { t, loss } = setup();
    const opt = createOptimizer({ lr: 0.1, method: 'sgd', clipNorm: 100 });
    optimizerStep(opt, t.select(), loss);
    const a = t.get('a').dataSync();
    // grad = 2a: a - 0.1 * 2a = 0.8a
    [0.8, -1.6, 2.4].forEach((w, i) => expect(a[i]).toBeCloseTo(w, 5));
    expect(t.get('b').dataSync()[0]).toBeCloseTo(0.4, 5);
    expect(opt.m.size).toBe(0);
    const clipped = createOptimizer({ lr: 0.1, method: 'sgd', clipNorm: 1 });
    const r = optimizerStep(clipped, t.select('b'), loss);
    expect(r.gradNorm).toBeCloseTo(0.8, 5); // under the clip: a plain step
    expect(t.get('b').dataSync()[0]).toBeCloseTo(0.4 - 0.1 * 0.8, 5);
    disposeOptimizer(opt);
    t.dispose();
  });

  it('AdamW decays weights; clipping caps the gradient norm', () => {
    const { t, loss } = setup();
    const opt = createOptimizer({ lr: 0.1, weightDecay: 0.5, clipNorm: 1 });
    const r = optimizerStep(opt, t.select('b'), loss);
    // Adam's first step is scale-free (clipping does not change it); decay adds lr*wd*p.
    expect(r.gradNorm).toBeCloseTo(1, 5);
    expect(t.get('b').dataSync()[0]).toBeCloseTo(0.5 - 0.1 * (1 + 0.5 * 0.5), 5);
    const m = opt.m.get('b')!.dataSync()[0]!;
    expect(m).toBeCloseTo(0.1 * 1, 5); // (1 - beta1) * clipped grad (norm 1)
    disposeOptimizer(opt);
    t.dispose();
  });

  it('lrScale gives a parameter its own rate', () => {
    const { t, loss } = setup();
    const opt = createOptimizer({ lr: 0.1, lrScale: (p) => (p === 'b' ? 3 : 1) });
    optimizerStep(opt, t.select('**'), loss);
    expect(t.get('a').dataSync()[0]).toBeCloseTo(0.9, 5);
    expect(t.get('b').dataSync()[0]).toBeCloseTo(0.2, 5);
    disposeOptimizer(opt);
    t.dispose();
  });

  it('a non-finite loss changes nothing', () => {
    const { t } = setup();
    const opt = createOptimizer({ lr: 0.1 });
    const r = optimizerStep(
      opt,
      t.select('**'),
      () => tf.mul(tf.sum(t.get('a')), Number.NaN) as tf.Scalar,
    );
    expect(r.applied).toBe(false);
    expect(opt.step).toBe(0);
    expect(Array.from(t.get('a').dataSync())).toEqual([1, -2, 3]);
    disposeOptimizer(opt);
    t.dispose();
  });

  it('converges on a quadratic and a repeated step leaves the live tensor count unchanged', () => {
    const { t, loss } = setup();
    const before = tf.memory().numTensors;
    const opt = createOptimizer({ lr: warmupCosine(0.3, 5, 200, 0.01) });
    optimizerStep(opt, t.select('**'), loss);
    const live = tf.memory().numTensors;
    for (let i = 0; i < 199; i++) optimizerStep(opt, t.select('**'), loss);
    expect(tf.memory().numTensors).toBe(live);
    expect(tf.tidy(() => loss().dataSync()[0]!)).toBeLessThan(1e-3);
    disposeOptimizer(opt);
    expect(tf.memory().numTensors).toBe(before); // the moments' memory is freed with them
    t.dispose();
  });

  it('warmupCosine ramps, peaks and decays to the end value', () => {
    const lr = warmupCosine(1, 10, 110, 0.1);
    expect(lr(5)).toBeCloseTo(0.5);
    expect(lr(10)).toBeCloseTo(1);
    expect(lr(60)).toBeCloseTo(0.55);
    expect(lr(110)).toBeCloseTo(0.1);
    expect(lr(500)).toBeCloseTo(0.1);
  });
});
