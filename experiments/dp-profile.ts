// Where a data-parallel pretraining step's time goes (SELFALIGN_PROFILE=1 lines from pretrain):
//   SELFALIGN_PROFILE=1 pnpm --filter @selfalign/experiments probe dp-profile.ts [B] [workers] [steps]
import { initBackend, Rng, tf } from '@selfalign/core';
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
  (s) => {
    // as `selfalign bench --train` makes them: object positions, so the keypoint loss runs
    const batch = randomBatch(policy, b, new Rng(100 + s), {
      slots: Array.from({ length: b }, (_, i) => i % 8),
      stateDims: 6,
      actionDims: 3,
    });
    const rng = new Rng(101 + s);
    batch.objects = tf.tensor3d(
      Float32Array.from({ length: b * 2 * 2 }, () => rng.uniform()),
      [b, 2, 2],
    );
    return batch;
  },
  {
    steps,
    workers,
    lr: 1e-4,
    lossWeights: { keypoints: 1 },
    onStep: (s) => {
      const now = performance.now();
      console.log(`step ${s}: ${(now - last).toFixed(0)} ms`);
      last = now;
    },
  },
);
disposePretrain(r);
policy.dispose();
