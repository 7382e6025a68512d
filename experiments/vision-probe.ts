// Perception probe for issue 7: can the `small` vision tower learn where the reach target is?
// Trains the vision tower + an attention-pooling head (one learned query, as the Action Expert
// reads the prefix) to regress the target's (x, y) from 64 px frames of random arm poses and
// targets; prints the held-out MSE against predicting the mean (about 0.135 per coordinate).
// Usage: pnpm --filter @selfalign/experiments probe vision-probe.ts
//   [--steps 300] [--pos learned|sincos] [--lr 1e-3]
import {
  createOptimizer,
  initBackend,
  linear,
  optimizerStep,
  ParamTree,
  Rng,
  randomNormal,
  tf,
} from '@selfalign/core';
import { addVisionParams, embedImages, encodeImages, small } from '@selfalign/experts';
import { ArmEnv, sampleSources } from '@selfalign/sim';
import { arg } from './args.js';

const steps = Number(arg('--steps', '300'));
const lr = Number(arg('--lr', '1e-3'));
await initBackend('wasm');
const c = {
  ...small.vision,
  keypoints: Number(arg('--keypoints', String(small.vision.keypoints ?? 0))),
};
const side = c.imageSize;
const sources = sampleSources(8, 1);
const draw = (n: number, seed0: number) => {
  const imgs = new Uint8Array(n * side * side * 3);
  const xy = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    const env = new ArmEnv(sources[i % 8]!, { imageSize: side }).reset(seed0 + i, 'reach');
    imgs.set(env.render(), i * side * side * 3);
    xy[2 * i] = env.target[0];
    xy[2 * i + 1] = env.target[1];
  }
  return { images: tf.tensor5d(imgs, [n, 1, side, side, 3], 'int32'), xy: tf.tensor2d(xy, [n, 2]) };
};
const tree = new ParamTree();
const rng = new Rng(0);
addVisionParams(tree, c, 128, rng);
tree.add('head/q', randomNormal(rng, [1, 128], 0.02));
tree.add('head/k', randomNormal(rng, [128, 128], 1 / Math.sqrt(128)));
tree.add('head/w', randomNormal(rng, [128, 2], 1 / Math.sqrt(128)));
tree.add('head/b', tf.zeros([2]));
const pos = arg('--pos', 'learned');
if (pos === 'sincos') {
  // fixed 2-D sin-cos positions at unit scale (MAE): half the width for rows, half for columns
  const g = side / c.patch;
  const w = c.width;
  const table = new Float32Array(g * g * w);
  for (let r = 0; r < g; r++)
    for (let col = 0; col < g; col++)
      for (let k = 0; k < w / 4; k++) {
        const f = 1 / 10000 ** (k / (w / 4));
        const o = (r * g + col) * w;
        table[o + k] = Math.sin(r * f);
        table[o + w / 4 + k] = Math.cos(r * f);
        table[o + w / 2 + k] = Math.sin(col * f);
        table[o + (3 * w) / 4 + k] = Math.cos(col * f);
      }
  tree.get('vision/pos').assign(tf.tensor2d(table, [g * g, w]));
}
const head = arg('--head', 'attn');
const aux = Number(arg('--aux', '0'));
const predict = (images: tf.Tensor) => {
  let tokens = embedImages(tree, c, images); // [B, 64 (+K), 128]
  if (head === 'kp-flat') {
    // the keypoint tokens only, concatenated, then a linear map
    const k = c.keypoints;
    const kp = tf.reshape(tf.slice(tokens, [0, tokens.shape[1]! - k, 0], [-1, k, -1]), [
      -1,
      k * 128,
    ]);
    return linear(kp, tree.get('flat/w'));
  }
  if (head === 'kp-attn')
    tokens = tf.slice(tokens, [0, tokens.shape[1]! - c.keypoints, 0], [-1, c.keypoints, -1]);
  const keys = linear(tokens, tree.get('head/k'));
  const logits = tf.sum(tf.mul(keys, tree.get('head/q')), -1); // [B, 64]
  const att = tf.softmax(tf.div(logits, Math.sqrt(128)));
  const pooled = tf.sum(tf.mul(tokens, tf.expandDims(att, 2)), 1);
  return linear(pooled, tree.get('head/w'), tree.get('head/b'));
};
const grid = side / c.patch;
// patch centres in world units (the default camera: span 2.1, centred, y up)
const centres = tf.tensor2d(
  Array.from({ length: grid * grid }, (_, i) => [
    ((i % grid) + 0.5) * (2.1 / grid) - 1.05,
    1.05 - (Math.floor(i / grid) + 0.5) * (2.1 / grid),
  ]),
);
tree.add('flat/w', randomNormal(rng, [128 * c.keypoints, 2], 0.01));
tree.add('heat/w', randomNormal(rng, [128, 1], 1 / Math.sqrt(128)));
tree.add('heat/off', randomNormal(rng, [128, 2], 0.02));
const predictHeat = (images: tf.Tensor) => {
  const tokens = embedImages(tree, c, images);
  const att = tf.softmax(tf.squeeze(linear(tokens, tree.get('heat/w')), [2])); // [B, 64]
  if (head !== 'heat-offset') return tf.matMul(att, centres);
  // plus a learned offset inside each patch (half a patch at most)
  const off = tf.mul(tf.tanh(linear(tokens, tree.get('heat/off'))), 1.05 / grid); // [B, 64, 2]
  return tf.add(tf.matMul(att, centres), tf.sum(tf.mul(off, tf.expandDims(att, 2)), 1));
};
const test = draw(256, 5_000_000);
const evalMse = () =>
  tf.tidy(
    () =>
      tf
        .mean(
          tf.square(
            tf.sub((head.startsWith('heat') ? predictHeat : predict)(test.images), test.xy),
          ),
        )
        .dataSync()[0]!,
  );
const opt = createOptimizer({ lr, clipNorm: 1 });
const params = tree.select().filter(([p]) => pos !== 'sincos' || p !== 'vision/pos');
const t0 = performance.now();
console.log(`step 0: held-out mse ${evalMse().toFixed(4)}`);
for (let s = 1; s <= steps; s++) {
  const b = draw(16, s * 16);
  const r = optimizerStep(opt, params, () => {
    const main = tf.mean(
      tf.square(tf.sub((head.startsWith('heat') ? predictHeat : predict)(b.images), b.xy)),
    );
    if (aux === 0) return main as tf.Scalar;
    // keypoint 0 supervised to the target's image position (u, v) = (x, -y) / 1.05
    const uv = tf.squeeze(
      tf.slice(encodeImages(tree, c, b.images).keypoints!, [0, 0, 0, 0], [-1, 1, 1, 2]),
      [1, 2],
    );
    return tf.add(
      main,
      tf.mul(tf.mean(tf.square(tf.sub(uv, tf.div(tf.mul(b.xy, [1, -1]), 1.05)))), aux),
    ) as tf.Scalar;
  });
  tf.dispose([b.images, b.xy]);
  if (s % 50 === 0)
    console.log(
      `step ${s}: train ${r.loss.toFixed(4)} held-out mse ${evalMse().toFixed(4)} (${((performance.now() - t0) / s).toFixed(0)} ms/step)`,
    );
}
