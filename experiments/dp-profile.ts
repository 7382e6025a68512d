// Where a data-parallel pretraining step's time goes (SELFALIGN_PROFILE=1 lines from pretrain):
//   SELFALIGN_PROFILE=1 pnpm --filter @selfalign/experiments probe dp-profile.ts [B] [workers] [steps]
import { initBackend, Rng } from '@selfalign/core';
import { createPolicy, randomBatch, small } from '@selfalign/experts';
import { disposePretrain, pretrain } from '@selfalign/pretrain';

const b = Number(process.argv[2] ?? 32);
const workers = Number(process.argv[3] ?? 2);
const steps = Number(process.argv[4] ?? 6);
await initBackend('wasm');
const policy = createPolicy(small, 0);
let last = performance.now();
const r = await pretrain(
  policy,
  (s) =>
    randomBatch(policy, b, new Rng(100 + s), {
      slots: Array.from({ length: b }, (_, i) => i % 8),
      stateDims: 6,
      actionDims: 3,
    }),
  {
    steps,
    workers,
    lr: 1e-4,
    onStep: (s) => {
      const now = performance.now();
      console.log(`step ${s}: ${(now - last).toFixed(0)} ms`);
      last = now;
    },
  },
);
disposePretrain(r);
policy.dispose();
