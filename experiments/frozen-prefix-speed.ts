// How much of a pretraining step is the prefix? One thread, B=32, the small policy: a full step
// (every parameter), a step with the prefix frozen (vision + VLM take no gradient, the prefix still
// runs forward), and a step on a cached prefix (the K/V of a frozen prefix computed once per
// frame, so a step runs the two experts only). Median of N steps after 2 warm-up steps.
//   pnpm --filter @selfalign/experiments probe frozen-prefix-speed.ts CKPT [STEPS]
import { loadCheckpoint } from '@selfalign/align';
import {
  createOptimizer,
  disposeOptimizer,
  initBackend,
  optimizerStep,
  Rng,
  tf,
} from '@selfalign/core';
import {
  computeLoss,
  disposeBatch,
  disposePrefixCache,
  encodePrefix,
  randomBatch,
} from '@selfalign/experts';

await initBackend('wasm');
const path = process.argv[2];
if (!path) throw new Error('usage: frozen-prefix-speed.ts CHECKPOINT [STEPS]');
const n = Number(process.argv[3] ?? 6);
const { policy } = await loadCheckpoint(path);
const b = 32;
const batch = randomBatch(policy, b, new Rng(3), {
  slots: Array.from({ length: b }, (_, i) => i % 8),
  stateDims: 9,
  actionDims: 3,
});
const experts = (p: string) => !p.startsWith('vision/') && !p.startsWith('vlm/');
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
function time(label: string, train: (p: string) => boolean, cached: boolean) {
  const params = policy.params.select().filter(([p]) => train(p));
  const opt = createOptimizer({ lr: 1e-6 });
  const rng = new Rng(1);
  const ms: number[] = [];
  for (let i = 0; i < n + 2; i++) {
    const t0 = performance.now();
    const cache = cached ? encodePrefix(policy, batch) : undefined;
    const t1 = performance.now();
    optimizerStep(opt, params, () => {
      const { total, ...rest } = computeLoss(policy, batch, {
        rng,
        ...(cache ? { prefixCache: cache } : {}),
      });
      tf.dispose(Object.values(rest).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
      return total;
    });
    if (i >= 2) ms.push(performance.now() - t1);
    if (cache) {
      if (i === 2)
        console.log(`  (the prefix forward that a cache replaces: ${(t1 - t0).toFixed(0)} ms)`);
      disposePrefixCache(cache);
    }
  }
  disposeOptimizer(opt);
  console.log(`${label}: ${median(ms).toFixed(0)} ms per step (${params.length} tensors train)`);
  return median(ms);
}
const full = time('full step', () => true, false);
const frozen = time('prefix frozen', experts, false);
const cached = time('prefix cached', experts, true);
console.log(`ratios: frozen ${(full / frozen).toFixed(2)}x, cached ${(full / cached).toFixed(2)}x`);
disposeBatch(batch);
policy.dispose();
