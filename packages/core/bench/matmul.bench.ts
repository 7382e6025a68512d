// Benchmark: single batched matmuls, tfjs's stock wasm kernel against selfalign's fast kernel,
// on the policy's shapes and a 1024^3 product in every transpose variant, interleaved in one
// process (GFLOP/s and the largest relative difference).
// Run: pnpm --filter @selfalign/core exec tsx --conditions=@selfalign/source bench/matmul.bench.ts
import { cpus } from 'node:os';
import { initBackend, setKernels, tf } from '../src/index.js';

await initBackend('wasm');
const cases: [number, number, number, number, boolean, boolean, string][] = [
  [16, 496, 124, 32, false, true, 'attention logits q k^T'],
  [16, 496, 32, 124, false, false, 'attention values p v'],
  [64, 128, 128, 64, true, false, 'a batched transposeA gradient'],
  [1, 1024, 1024, 1024, false, false, '2-D plain'],
  [1, 1024, 1024, 1024, true, false, '2-D transposeA'],
  [1, 1024, 1024, 1024, false, true, '2-D transposeB'],
];
const time = (run: () => tf.Tensor) => {
  run().dispose();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 500) {
    const r = run();
    r.dataSync();
    r.dispose();
    n++;
  }
  return (performance.now() - t0) / n;
};
console.log(
  `${cpus()[0]?.model} x${cpus().length}, node ${process.version}, tfjs wasm, one thread`,
);
console.log('| product | B x M x N x K | stock ms (GFLOP/s) | fast ms (GFLOP/s) | max rel. diff |');
console.log('|---|---|---|---|---|');
for (const [b, m, n, k, ta, tb, what] of cases) {
  const a = tf.randomNormal(ta ? [b, k, m] : [b, m, k]);
  const w = tf.randomNormal(tb ? [b, n, k] : [b, k, n]);
  const run = () => tf.matMul(a as tf.Tensor3D, w as tf.Tensor3D, ta, tb);
  await setKernels('stock');
  const ref = run();
  const ts = time(run);
  await setKernels('fast');
  const got = run();
  const tfast = time(run);
  const rv = ref.dataSync();
  const gv = got.dataSync();
  let err = 0;
  let scale = 0;
  for (let i = 0; i < rv.length; i++) {
    err = Math.max(err, Math.abs(rv[i]! - gv[i]!));
    scale = Math.max(scale, Math.abs(rv[i]!));
  }
  const gf = (2 * b * m * n * k) / 1e9;
  console.log(
    `| ${what} | ${b}x${m}x${n}x${k} | ${ts.toFixed(2)} (${((gf / ts) * 1e3).toFixed(1)}) | ${tfast.toFixed(2)} (${((gf / tfast) * 1e3).toFixed(1)}) | ${(err / scale).toExponential(1)} |`,
  );
  tf.dispose([a, w, ref, got]);
}
