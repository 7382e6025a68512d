import { initBackend, ParamTree, Rng, randomNormal, tf } from '@selfalign/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { lnL2Grad, lnL2Loss, type TttConfig, TttLinear } from './ttt-linear.js';

beforeAll(() => initBackend('wasm'));

const cfg: TttConfig = { width: 16, heads: 2, slots: 3, inner: 'dual', baseLr: 1, alpha: 0.1 };

function make(config: Partial<TttConfig> = {}, seed = 1) {
  const tree = new ParamTree();
  const m = new TttLinear(tree, 'ttt/0', { ...cfg, ...config }, new Rng(seed));
  return { tree, m };
}
const maxDiff = (a: tf.Tensor, b: tf.Tensor) =>
  tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

describe('TttLinear', () => {
  it('closed-form inner gradient equals autodiff of the LayerNorm-L2 loss', () => {
    const rng = new Rng(2);
    const z = randomNormal(rng, [2, 2, 5, 8]);
    const target = randomNormal(rng, [2, 2, 5, 8]);
    const gamma = randomNormal(rng, [1, 2, 1, 8], 0.3, 1);
    const beta = randomNormal(rng, [1, 2, 1, 8], 0.3);
    const auto = tf.grad((zz: tf.Tensor) => tf.sum(lnL2Loss(zz, target, gamma, beta)))(z);
    expect(maxDiff(auto, lnL2Grad(z, target, gamma, beta))).toBeLessThan(1e-4);
  });

  it("dual output equals the primal form XQ W1' + b1' (W1' = W1 - XK^T (eta G), b1' = b1 - sum eta G)", () => {
    const { tree, m } = make();
    const x = randomNormal(new Rng(3), [2, 6, 16]);
    const slot = tf.tensor1d([2, 0], 'int32');
    const r = m.innerRead(x, { slot });
    const G = lnL2Grad(r.Z1!, r.target!, r.gamma, r.beta);
    const etaG = tf.mul(r.eta!, G); // [B,Ht,T,d]
    const W1p = tf.sub(r.W1, tf.matMul(tf.transpose(r.XK, [0, 1, 3, 2]), etaG));
    const b1p = tf.sub(r.b1, tf.sum(etaG, 2, true));
    const primal = tf.add(tf.matMul(r.XQ, W1p), b1p);
    expect(maxDiff(primal, r.Zbar)).toBeLessThan(1e-4);
    // and the step did something
    expect(maxDiff(r.Zbar, tf.add(tf.matMul(r.XQ, r.W1), r.b1))).toBeGreaterThan(1e-3);
    tree.dispose();
  });

  it('with alpha = 0 the branch contributes exactly nothing', () => {
    const { tree, m } = make({ alpha: 0 });
    const { out } = m.forward(randomNormal(new Rng(4), [2, 5, 16]));
    expect(Array.from(out.dataSync()).every((v) => v === 0)).toBe(true);
    tree.dispose();
  });

  it('"none" reads XQ W1 + b1 directly', () => {
    const { tree, m } = make({ inner: 'none' });
    const x = randomNormal(new Rng(5), [1, 4, 16]);
    const r = m.innerRead(x);
    expect(maxDiff(r.Zbar, tf.add(tf.matMul(r.XQ, r.W1), r.b1))).toBe(0);
    expect(r.eta).toBeUndefined();
    tree.dispose();
  });

  it('each sample reads its own slot; a forward leaves every parameter bit-identical', () => {
    const { tree, m } = make();
    const x = randomNormal(new Rng(6), [2, 4, 16]);
    const before = new Map(tree.select().map(([p, v]) => [p, Array.from(v.dataSync())]));
    const both = m.forward(x, { slot: tf.tensor1d([1, 2], 'int32') }).out;
    for (const [p, v] of tree.select()) expect(Array.from(v.dataSync()), p).toEqual(before.get(p));
    const row = (i: number, s: number) =>
      m.forward(tf.slice(x, [i], [1]), { slot: tf.tensor1d([s], 'int32') }).out;
    expect(maxDiff(tf.slice(both, [0], [1]), row(0, 1))).toBeLessThan(1e-5);
    expect(maxDiff(tf.slice(both, [1], [1]), row(1, 2))).toBeLessThan(1e-5);
    expect(maxDiff(row(0, 1), row(0, 0))).toBeGreaterThan(1e-4);
    tree.dispose();
  });

  it('the inner step mixes only tokens the inner mask allows, and ignores padding', () => {
    const { tree, m } = make();
    const x = randomNormal(new Rng(7), [1, 6, 16]);
    // tokens 0-2 form one block, 3-5 another
    const blocks = [0, 0, 0, 1, 1, 1];
    const innerMask = tf.tensor3d(
      [blocks.map((a) => blocks.map((b) => a === b))],
      [1, 6, 6],
      'bool',
    );
    const bump = tf.concat([tf.zeros([1, 3, 16]), tf.fill([1, 3, 16], 0.5)], 1);
    const a = m.forward(x, { innerMask }).out;
    const b = m.forward(tf.add(x, bump), { innerMask }).out;
    expect(maxDiff(tf.slice(a, [0, 0], [1, 3]), tf.slice(b, [0, 0], [1, 3]))).toBeLessThan(1e-6);
    const c = m.forward(tf.add(x, bump)).out; // without the mask the blocks talk
    expect(maxDiff(tf.slice(a, [0, 0], [1, 3]), tf.slice(c, [0, 0], [1, 3]))).toBeGreaterThan(1e-5);
    const tokenMask = tf.tensor2d([[1, 1, 1, 0, 0, 0]], [1, 6], 'bool');
    const p1 = m.forward(x, { tokenMask }).out;
    const p2 = m.forward(tf.add(x, bump), { tokenMask }).out;
    expect(maxDiff(tf.slice(p1, [0, 0], [1, 3]), tf.slice(p2, [0, 0], [1, 3]))).toBeLessThan(1e-6);
    tree.dispose();
  });

  it('L_ttt is the mean inner loss over real tokens; gradients reach W1/b1 of the used slot only', () => {
    const { tree, m } = make();
    const x = randomNormal(new Rng(8), [2, 4, 16]);
    const slot = tf.tensor1d([1, 1], 'int32');
    const { loss } = m.forward(x, { withLoss: true, slot });
    const r = m.innerRead(x, { slot });
    const want = tf.mean(lnL2Loss(r.Z1!, r.target!, r.gamma, r.beta)).dataSync()[0]!;
    expect(loss!.dataSync()[0]).toBeCloseTo(want, 5);
    const W1 = tree.get('ttt/0/W1');
    const { grads } = tf.variableGrads(() => tf.sum(m.forward(x, { slot }).out) as tf.Scalar, [W1]);
    const g = grads[W1.name]!;
    const perSlot = tf.sum(tf.abs(g), [1, 2, 3]).dataSync();
    expect(perSlot[0]).toBe(0);
    expect(perSlot[1]).toBeGreaterThan(0);
    expect(perSlot[2]).toBe(0);
    const stopped = tf.variableGrads(
      () => tf.sum(m.forward(x, { slot, stopSlotGradient: true }).out) as tf.Scalar,
      [W1, tree.get('ttt/0/q')],
    ).grads;
    expect(tf.sum(tf.abs(stopped[W1.name]!)).dataSync()[0]).toBe(0);
    expect(tf.sum(tf.abs(stopped[tree.get('ttt/0/q').name]!)).dataSync()[0]).toBeGreaterThan(0);
    tree.dispose();
  });

  it('a repeated forward leaves the live tensor count unchanged', () => {
    const { tree, m } = make();
    const x = randomNormal(new Rng(9), [2, 4, 16]);
    m.forward(x, { withLoss: true }).out.dispose();
    const live = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      const r = m.forward(x, { withLoss: true });
      r.out.dispose();
      r.loss!.dispose();
    }
    expect(tf.memory().numTensors).toBe(live);
    tree.dispose();
  });
});
