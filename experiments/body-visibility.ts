// Does the image see the body? For a blind alignment task to tell a body shift (link lengths,
// joint offsets) from the source arm, the image features after a chunk must depend on the
// robot given the joint state. This probe fits, on one reference robot's random play, a
// k-nearest-neighbour regression from the measured joint angles (cos q, sin q) to the image
// features of the same frame, and reports its error on held-out play of the reference robot and
// on other robots' play. Error well above the reference's held-out error = the (state -> image)
// map identifies the robot; equal error = the image cannot tell the two apart given the state.
//   npx tsx experiments/body-visibility.ts [--reference source] [--targets links,offset,sign,...]
//     [--train 60] [--test 10] [--k 8]
import { embodimentByName, featureExtractor, recordEpisodes } from '@selfalign/cli/shared';
import { initBackend } from '@selfalign/core';
import { getConfig } from '@selfalign/experts';
import { randomController } from '@selfalign/sim';
import { arg } from './args.js';

await initBackend();
const c = getConfig('small');
const reference = arg('--reference', 'source');
const targets = arg('--targets', 'source,links,offset,sign,perm,combo,src-0,src-1,src-2').split(
  ',',
);
const TRAIN = Number(arg('--train', '60'));
const TEST = Number(arg('--test', '10'));
const K = Number(arg('--k', '8'));
const extractor = await featureExtractor('default', process.cwd(), c.featureDim);

interface Pair {
  x: Float32Array; // cos q, sin q of the frame after the chunk
  f: Float32Array; // its image features
}
const n = 3;
const pairs = async (name: string, episodes: number, seed0: number): Promise<Pair[]> => {
  const { samples } = await recordEpisodes(
    embodimentByName(name, 1),
    randomController(seed0),
    'play',
    episodes,
    seed0,
    extractor,
    c,
  );
  return samples.map((s) => ({ x: s.nextState.slice(0, 2 * n), f: s.nextFeatures! }));
};

const ref = await pairs(reference, TRAIN, 3_000_000);
// feature scale: the variance of each feature over the reference play (errors are relative)
const F = ref[0]!.f.length;
const mean = new Float64Array(F);
for (const p of ref) for (let i = 0; i < F; i++) mean[i]! += p.f[i]! / ref.length;
let variance = 0;
for (const p of ref) for (let i = 0; i < F; i++) variance += (p.f[i]! - mean[i]!) ** 2;
variance /= ref.length * F;

const predict = (x: Float32Array): Float64Array => {
  const d = ref.map((p, j) => {
    let s = 0;
    for (let i = 0; i < x.length; i++) s += (p.x[i]! - x[i]!) ** 2;
    return [s, j] as const;
  });
  d.sort((a, b) => a[0] - b[0]);
  const out = new Float64Array(F);
  for (const [, j] of d.slice(0, K)) for (let i = 0; i < F; i++) out[i]! += ref[j]!.f[i]! / K;
  return out;
};

console.log(
  `reference ${reference}: ${ref.length} frames from ${TRAIN} play episodes; feature variance ${variance.toFixed(4)}; k = ${K}`,
);
console.log('| robot | frames | kNN error / feature variance | mean-predictor error / variance |');
console.log('|---|---|---|---|');
for (const name of targets) {
  const test = await pairs(name, TEST, 4_000_000);
  let err = 0;
  let base = 0;
  for (const p of test) {
    const y = predict(p.x);
    for (let i = 0; i < F; i++) {
      err += (y[i]! - p.f[i]!) ** 2;
      base += (mean[i]! - p.f[i]!) ** 2;
    }
  }
  const m = test.length * F;
  console.log(
    `| ${name} | ${test.length} | ${(err / m / variance).toFixed(3)} | ${(base / m / variance).toFixed(3)} |`,
  );
}
