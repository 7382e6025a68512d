// Where one pretraining step's time goes, kernel by kernel (tf.profile on the wasm backend):
// total wall time per kernel name and call count, for the fast and the stock kernels.
//   pnpm --filter @selfalign/experiments probe profile-step.ts [B] [fast|stock] [KERNEL]
// (KERNEL: also that kernel's time by input shapes)
import {
  createOptimizer,
  disposeOptimizer,
  initBackend,
  optimizerStep,
  Rng,
  setKernels,
  tf,
} from '@selfalign/core';
import { computeLoss, createPolicy, randomBatch, small } from '@selfalign/experts';

const b = Number(process.argv[2] ?? 16);
const kernels = (process.argv[3] ?? 'fast') as 'fast' | 'stock';
await initBackend('wasm');
setKernels(kernels);
const policy = createPolicy(small, 0);
const batch = randomBatch(policy, b, new Rng(1), {
  slots: Array.from({ length: b }, (_, i) => i % 8),
  stateDims: 6,
  actionDims: 3,
});
const opt = createOptimizer({ lr: 1e-4, weightDecay: 0.01, clipNorm: 1 });
const params = policy.params.select();
const step = () => optimizerStep(opt, params, () => computeLoss(policy, batch).total);
step();
const t0 = performance.now();
const info = await tf.profile(() => {
  step();
});
const wall = performance.now() - t0;
const by = new Map<string, { ms: number; n: number }>();
for (const k of info.kernels) {
  const e = by.get(k.name) ?? { ms: 0, n: 0 };
  e.ms += Number(k.kernelTimeMs);
  e.n += 1;
  by.set(k.name, e);
}
const total = [...by.values()].reduce((a, e) => a + e.ms, 0);
console.log(
  `${kernels} kernels, B=${b}: ${wall.toFixed(0)} ms wall (profiled), ${total.toFixed(0)} ms in kernels`,
);
for (const [name, e] of [...by].sort((x, y) => y[1].ms - x[1].ms).slice(0, 25))
  console.log(
    `${name.padEnd(24)} ${e.ms.toFixed(1).padStart(8)} ms ${String(e.n).padStart(6)} calls ${((100 * e.ms) / total).toFixed(1).padStart(5)}%`,
  );
disposeOptimizer(opt);
const detail = process.argv[4];
if (detail) {
  const shapes = new Map<string, { ms: number; n: number }>();
  for (const k of info.kernels) {
    if (k.name !== detail) continue;
    const key = JSON.stringify(k.inputShapes);
    const e = shapes.get(key) ?? { ms: 0, n: 0 };
    e.ms += Number(k.kernelTimeMs);
    e.n += 1;
    shapes.set(key, e);
  }
  console.log(`\n${detail} by input shapes:`);
  for (const [s, e] of [...shapes].sort((x, y) => y[1].ms - x[1].ms).slice(0, 25))
    console.log(`${e.ms.toFixed(1).padStart(8)} ms ${String(e.n).padStart(5)}x ${s}`);
}
