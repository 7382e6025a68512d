import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { currentBackend, initBackend, setKernels } from '../backend.js';
import { makeAttnMask } from '../ops/attn-mask.js';
import { geluTanh } from '../ops/mlp.js';
import { createOptimizer, optimizerStep } from '../optim.js';
import { Rng } from '../rng.js';
import { tf } from '../tf.js';
import { fastKernelsActive, fusedAdamW, kernelChoiceFromEnv, sumSquares } from './fast-kernels.js';

beforeAll(async () => {
  const info = await initBackend('wasm');
  expect(info.kernels).toBe('fast');
});

function rand(rng: Rng, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => rng.normal()),
    shape,
  );
}

/** Max |a - b| / max(1e-3, max |a|). */
function relErr(a: tf.Tensor, b: tf.Tensor): number {
  const da = a.dataSync();
  const db = b.dataSync();
  expect(db.length).toBe(da.length);
  let scale = 1e-3;
  for (const x of da) scale = Math.max(scale, Math.abs(x));
  let worst = 0;
  for (let i = 0; i < da.length; i++) worst = Math.max(worst, Math.abs(da[i]! - db[i]!) / scale);
  return worst;
}

/** Runs fn with the stock kernels, then the fast ones. */
async function both<T>(fn: () => T): Promise<[T, T]> {
  await setKernels('stock');
  expect(fastKernelsActive()).toBe(false);
  const stock = fn();
  await setKernels('fast');
  expect(fastKernelsActive()).toBe(true);
  return [stock, fn()];
}

describe('fast wasm kernels', () => {
  // batch, M, N, K: edge sizes (1, odd, not multiples of the 4x8 tile) and the policy's shapes
  const shapes: [number, number, number, number][] = [
    [1, 1, 1, 1],
    [1, 1, 9, 3],
    [3, 5, 7, 9],
    [2, 4, 8, 1],
    [1, 13, 17, 33],
    [4, 31, 6, 12],
    [2, 64, 33, 40],
    [16, 49, 24, 8],
  ];
  for (const [b, m, n, k] of shapes) {
    it(`BatchMatMul [${b}] ${m}x${k} @ ${k}x${n}, every transpose, forward and gradients`, async () => {
      const rng = new Rng(b * 1000 + m * 10 + n);
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const a = rand(rng, ta ? [b, k, m] : [b, m, k]);
          const w = rand(rng, tb ? [b, n, k] : [b, k, n]);
          const dy = rand(rng, [b, m, n]);
          const run = () =>
            tf.tidy(() => {
              const f = (x: tf.Tensor, y: tf.Tensor) =>
                tf.sum(tf.mul(tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D, ta, tb), dy));
              const [ga, gb] = tf.grads(f)([a, w]);
              return [tf.matMul(a as tf.Tensor3D, w as tf.Tensor3D, ta, tb), ga!, gb!];
            });
          const [stock, fast] = await both(run);
          for (let i = 0; i < 3; i++) expect(relErr(stock[i]!, fast[i]!)).toBeLessThan(1e-4);
          tf.dispose([a, w, dy, ...stock, ...fast]);
        }
      }
    });
  }

  it('BatchMatMul broadcasts a batch of 1 on either side, and 2-D products', async () => {
    const rng = new Rng(5);
    const cases: [number[], number[]][] = [
      [
        [1, 6, 5],
        [4, 5, 7],
      ],
      [
        [4, 6, 5],
        [1, 5, 7],
      ],
      [
        [2, 3, 6, 5],
        [2, 3, 5, 7],
      ],
      [
        [9, 5],
        [5, 11],
      ],
    ];
    for (const [sa, sb] of cases) {
      const a = rand(rng, sa);
      const b = rand(rng, sb);
      const [s, f] = await both(() => tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D));
      expect(f.shape).toEqual(s.shape);
      expect(relErr(s, f)).toBeLessThan(1e-5);
      tf.dispose([a, b, s, f]);
    }
  });

  it('GatherV2 on axis 0 copies rows (and refuses an index out of range); Identity shares data', async () => {
    const rng = new Rng(6);
    const x = rand(rng, [7, 3, 5]);
    const idx = tf.tensor2d([6, 0, 3, 3, 1, 6], [2, 3], 'int32');
    const [s, f] = await both(() => tf.gather(x, idx));
    expect(f.shape).toEqual([2, 3, 3, 5]);
    expect(relErr(s, f)).toBe(0);
    const xi = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], 'int32');
    const [si, fi] = await both(() => tf.gather(xi, [2, 0]));
    expect(Array.from(fi.dataSync())).toEqual(Array.from(si.dataSync()));
    const [sa, fa] = await both(() => tf.gather(x, [1, 2], 1)); // another axis: stock path
    expect(relErr(sa, fa)).toBe(0);
    expect(() => tf.gather(x, [7])).toThrow(/index 7 is not in \[0, 7\)/);
    const buffers = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
    const before = buffers();
    const y = tf.clone(x);
    expect(buffers()).toBe(before); // same wasm buffer, one more reference
    expect(y.dataId).not.toBe(undefined);
    expect(Array.from(y.dataSync())).toEqual(Array.from(x.dataSync()));
    tf.dispose([x, idx, s, f, xi, si, fi, sa, fa, y]);
  });

  /** The same values bit for bit (the copy kernels move words; Sum adds in the stock order). */
  const same = (a: tf.Tensor, b: tf.Tensor) => {
    expect(b.shape).toEqual(a.shape);
    expect(b.dtype).toBe(a.dtype);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
  };

  // edge sizes (1, odd, not multiples of the 4- and 16-word vectors) and the policy's RoPE shape
  const copyShapes: number[][] = [
    [1],
    [7],
    [3, 1],
    [2, 5, 3],
    [1, 9, 1, 17],
    [4, 6, 2, 33],
    [16, 124, 4, 32],
  ];
  for (const shape of copyShapes) {
    it(`Slice, SplitV, Concat on every axis of [${shape}] equal stock, forward and gradients`, async () => {
      const rng = new Rng(shape.reduce((a, b) => a * 31 + b, 1));
      const x = rand(rng, shape);
      const xi = tf.cast(tf.mul(x, 100), 'int32');
      for (let axis = 0; axis < shape.length; axis++) {
        const d = shape[axis]!;
        const first = Math.max(1, Math.floor(d / 3));
        // (tfjs's own SplitV gradient fails for a single piece: axes of 1 split in none)
        const sizes = d === 1 ? [] : [first, d - first];
        const begin = shape.map((_, i) => (i === axis ? Math.min(1, d - 1) : 0));
        const size = shape.map((s, i) => (i === axis ? Math.max(1, s - 1 - Math.floor(s / 4)) : s));
        const dy = rand(rng, shape);
        const run = () =>
          tf.tidy(() => {
            const sl = tf.slice(x, begin, size);
            const out = [sl, tf.slice(xi, begin, size), tf.concat([xi, xi], axis)];
            if (sizes.length === 0) return out;
            const parts = tf.split(x, sizes, axis);
            const joined = tf.concat([...parts].reverse(), axis);
            const [g] = tf.grads((t: tf.Tensor) =>
              tf.sum(tf.mul(tf.concat([...tf.split(t, sizes, axis)].reverse(), axis), dy)),
            )([x]);
            return [...out, ...parts, joined, g!];
          });
        const [stock, fast] = await both(run);
        stock.forEach((t, i) => same(t, fast[i]!));
        tf.dispose([dy, ...stock, ...fast]);
      }
      // a slice on two axes at once, empty pieces and a bool concat take the stock path
      const [s2, f2] = await both(() =>
        tf.slice(
          x,
          shape.map(() => 0),
          shape.map((s) => Math.max(1, s - 1)),
        ),
      );
      same(s2, f2);
      const [se, fe] = await both(() => tf.concat([x, tf.slice(x, 0, 0)], 0));
      same(se, fe);
      const xb = tf.greater(x, 0);
      const [sb, fb] = await both(() => tf.concat([xb, xb], 0));
      same(sb, fb);
      tf.dispose([x, xi, s2, f2, se, fe, xb, sb, fb]);
    });
  }

  it('Sum over leading axes equals stock bit for bit (keepDims too); other reductions take stock', async () => {
    const rng = new Rng(11);
    for (const shape of [
      [1, 1],
      [3, 5],
      [16, 64, 128],
      [2, 3, 7, 5],
      [5, 1, 9],
    ]) {
      const x = rand(rng, shape);
      for (let lead = 1; lead < shape.length; lead++) {
        const axes = Array.from({ length: lead }, (_, i) => i);
        for (const keep of [false, true]) {
          const [s, f] = await both(() => tf.sum(x, axes, keep));
          same(s, f);
          tf.dispose([s, f]);
        }
      }
      const [sa, fa] = await both(() => tf.sum(x)); // every axis
      const [sl, fl] = await both(() => tf.sum(x, -1)); // trailing
      expect(relErr(sa, fa)).toBe(0);
      same(sl, fl);
      tf.dispose([x, sa, fa, sl, fl]);
    }
  });

  it('the fused AdamW step equals the element-wise one; sumSquares is the squared norm', async () => {
    const rng = new Rng(12);
    const shapes = [[1], [7], [33, 5], [128, 256]];
    for (const weightDecay of [0, 0.01]) {
      const make = () => shapes.map((sh) => tf.variable(rand(new Rng(sh[0]!), sh)));
      const target = shapes.map((sh) => rand(rng, sh));
      const train = (vars: tf.Variable[]) => {
        const opt = createOptimizer({ lr: 3e-3, weightDecay, clipNorm: 0.5 });
        const named = vars.map((v, i) => [`p${i}`, v] as [string, tf.Variable]);
        const norms: number[] = [];
        for (let step = 0; step < 5; step++) {
          const r = optimizerStep(
            opt,
            named,
            () =>
              tf.addN(vars.map((v, i) => tf.sum(tf.square(tf.sub(v, target[i]!))))) as tf.Scalar,
          );
          norms.push(r.gradNorm);
        }
        const m = [...opt.m.values()];
        const v = [...opt.v.values()];
        return { vars, m, v, norms };
      };
      const [stock, fast] = await both(() => train(make()));
      for (const k of ['vars', 'm', 'v'] as const)
        stock[k].forEach((t, i) => expect(relErr(t, fast[k][i]!)).toBeLessThan(1e-6));
      // the norm adds in eight lanes, stock in one: float32 rounding apart, nothing more
      fast.norms.forEach((n, i) =>
        expect(Math.abs(n - stock.norms[i]!) / stock.norms[i]!).toBeLessThan(1e-5),
      );
      tf.dispose([
        ...target,
        ...stock.vars,
        ...stock.m,
        ...stock.v,
        ...fast.vars,
        ...fast.m,
        ...fast.v,
      ]);
    }
    // the fused path leaves the live tensor count unchanged step after step
    const w = tf.variable(rand(rng, [9, 4]));
    const opt = createOptimizer({ lr: 1e-2, weightDecay: 0.1, clipNorm: 1 });
    const loss = () => tf.sum(tf.square(w)) as tf.Scalar;
    optimizerStep(opt, [['w', w]], loss);
    const live = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) optimizerStep(opt, [['w', w]], loss);
    expect(tf.memory().numTensors).toBe(live);
    tf.dispose([w, ...opt.m.values(), ...opt.v.values()]);
    const x = rand(rng, [1001]);
    const ref = Array.from(x.dataSync()).reduce((a, v) => a + v * v, 0);
    expect(Math.abs(sumSquares(x)! - ref) / ref).toBeLessThan(1e-6);
    const p = tf.zeros([3]);
    const attrs = {
      clip: 1,
      beta1: 0.9,
      beta2: 0.99,
      c1: 0.1,
      c2: 0.01,
      eps: 1e-8,
      weightDecay: 0,
      rate: 1,
    };
    expect(() => fusedAdamW(p, tf.zeros([4]), p, p, attrs)).toThrow(/one size/);
    await setKernels('stock');
    expect(sumSquares(x)).toBeUndefined();
    expect(fusedAdamW(p, p, p, p, attrs)).toBeUndefined();
    await setKernels('fast');
    tf.dispose([x, p]);
  });

  it('the code changes of the fast path compute what the stock path does (mask, GELU)', async () => {
    const rng = new Rng(8);
    const input = tf.tensor2d(
      Array.from({ length: 3 * 9 }, () => (rng.uniform() < 0.8 ? 1 : 0)),
      [3, 9],
      'bool',
    );
    const ar = [0, 0, 0, 1, 1, 0, 0, 1, 0];
    const [ms, mf] = await both(() => makeAttnMask(input, ar));
    expect(Array.from(mf.dataSync())).toEqual(Array.from(ms.dataSync()));
    const x = rand(rng, [50]);
    const [gs, gf] = await both(() => geluTanh(tf.mul(x, 3)));
    expect(relErr(gs, gf)).toBeLessThan(1e-6);
    tf.dispose([input, ms, mf, x, gs, gf]);
  });

  it('a matmul step repeated leaves the live tensor count unchanged', () => {
    const rng = new Rng(7);
    const a = rand(rng, [4, 9, 6]);
    const b = rand(rng, [4, 7, 6]);
    const step = () =>
      tf.tidy(() =>
        tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.matMul(x, y, false, true)))([a, b]),
      );
    tf.dispose(step());
    const live = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) tf.dispose(step());
    expect(tf.memory().numTensors).toBe(live);
    tf.dispose([a, b]);
  });

  it('SELFALIGN_KERNELS picks the set; the backend reports what runs', () => {
    expect(kernelChoiceFromEnv({})).toBe('fast');
    expect(kernelChoiceFromEnv({ SELFALIGN_KERNELS: 'stock' })).toBe('stock');
    expect(() => kernelChoiceFromEnv({ SELFALIGN_KERNELS: 'turbo' })).toThrow(/fast or stock/);
    expect(currentBackend()?.kernels).toBe('fast');
  });

  const clang = spawnSync('clang', ['--version']).status === 0 && existsSync('/usr/bin/wasm-ld');
  it.skipIf(!clang)('the committed kernel wasm is what kernels/*.c build to, byte for byte', () => {
    const script = fileURLToPath(new URL('../../scripts/build-kernels.mjs', import.meta.url));
    const r = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
