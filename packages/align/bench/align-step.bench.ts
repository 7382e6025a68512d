// Benchmark: one align step on the `small` config at batch 32, wasm backend, three ways in one
// run: selfalign's step (prefix K/V computed once and reused, Alignment Expert only, gradients
// into the slot's W1/b1 only), the same without the prefix cache, and a naive step as the
// original PyTorch code did it (the full joint forward over [prefix, action, alignment] with the
// Action Expert, no cache, gradients still into W1/b1 only).
// Run: pnpm --filter @selfalign/align bench
import { cpus } from 'node:os';
import { createOptimizer, initBackend, optimizerStep, Rng, tf } from '@selfalign/core';
import {
  computeLoss,
  createPolicy,
  disposePrefixCache,
  encodePrefix,
  randomBatch,
  small,
} from '@selfalign/experts';
import { SlotParam } from '../src/index.js';

await initBackend('wasm');
const policy = createPolicy(small, 0);
const batch = {
  ...randomBatch(policy, 32, new Rng(1), { isDemo: new Array(32).fill(0) }),
  slot: tf.fill([32], 3, 'int32'),
};
const param = new SlotParam(policy, { kind: 'free', slot: 3 });
const opt = createOptimizer({ lr: 1e-4 });
const rng = new Rng(2);
const cache = encodePrefix(policy, batch);

type Variant = 'cached' | 'uncached' | 'naive';
const step = (v: Variant) =>
  optimizerStep(opt, param.tree.select(), () => {
    const t = computeLoss(policy, batch, {
      rng,
      fastWeights: param.fastWeights(),
      ...(v === 'naive' ? { weights: { action: 0 } } : { streams: ['alignment'] }),
      ...(v === 'cached' ? { prefixCache: cache } : {}),
    });
    const { total, ...rest } = t;
    tf.dispose(Object.values(rest) as tf.Tensor[]);
    return total;
  });

const times: Record<Variant, number[]> = { cached: [], uncached: [], naive: [] };
const variants: Variant[] = ['cached', 'uncached', 'naive'];
for (const v of variants) step(v); // warm-up
const actionCalls: Record<Variant, number> = { cached: 0, uncached: 0, naive: 0 };
for (let r = 0; r < 3; r++) {
  for (const v of variants) {
    const calls = policy.calls.action;
    const t0 = performance.now();
    step(v);
    times[v].push(performance.now() - t0);
    actionCalls[v] += policy.calls.action - calls;
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const ms = Object.fromEntries(variants.map((v) => [v, median(times[v])])) as Record<
  Variant,
  number
>;
const t0 = performance.now();
disposePrefixCache(encodePrefix(policy, batch));
const prefixMs = performance.now() - t0;
console.log(
  `${cpus()[0]?.model ?? '?'} x${cpus().length}; node ${process.version}; wasm; small config, batch 32; median of 3`,
);
console.log(
  `Action Expert forwards over the 3 timed steps: selfalign ${actionCalls.cached}, uncached ${actionCalls.uncached}, naive ${actionCalls.naive}`,
);
console.log('| step | ms / step | relative to selfalign |');
console.log('|---|---|---|');
console.log(
  `| selfalign align step (prefix K/V cached, Alignment Expert only) | ${ms.cached.toFixed(0)} | 1.00 |`,
);
console.log(
  `| without the prefix cache (prefix + Alignment Expert) | ${ms.uncached.toFixed(0)} | ${(ms.uncached / ms.cached).toFixed(2)} |`,
);
console.log(
  `| naive: full joint forward with the Action Expert, no cache | ${ms.naive.toFixed(0)} | ${(ms.naive / ms.cached).toFixed(2)} |`,
);
console.log(`(computing the prefix cache once per batch: ${prefixMs.toFixed(0)} ms)`);
