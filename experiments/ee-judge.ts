// Probe for docs/results.md 2t: can a judge that reads only the camera locate the end effector
// on a new robot? Retarget's pick by tries (2q, 2s) reads success, i.e. where the end effector
// went, which a play file does not hold. The shipped policy's vision tower has 16 soft-argmax
// keypoints: the first locates the reach target (the keypoint loss), the other 15 are free. This
// reports how far each keypoint, and a ridge readout of all 16, is from the effector on the
// source robots' random play, then the error of a judge (`selfalign judge`) on the held-out
// robots' play (frames only), with the judged effector-to-target distance against the true one.
//   pnpm --filter @selfalign/experiments probe ee-judge.ts CKPT --judge JUDGE [--sources 32]
//     [--episodes 5] [--targets sign,links,...]
import { readFileSync } from 'node:fs';
import { loadCheckpoint } from '@selfalign/align';
import { embodimentByName } from '@selfalign/cli/shared';
import { initBackend, tf } from '@selfalign/core';
import { encodeImages } from '@selfalign/experts';
import { EffectorJudge } from '@selfalign/harness';
import { DEFAULT_CAMERA, type Episode, seedRange, worldToImage } from '@selfalign/sim';
import { arg } from './args.js';

import { playRecorder, playSeeds } from './play.js';
import { spearman } from './rank.js';

const nSources = Number(arg('--sources', '32'));
const episodes = Number(arg('--episodes', '5'));
const targets = arg(
  '--targets',
  'sign,offset,links,perm,rotate,combo,src-32,src-33,src-34,src-35,src-36',
).split(',');

await initBackend('wasm');
const { policy, info } = await loadCheckpoint(process.argv[2]!);
const sources = Object.keys((info['slots'] ?? {}) as Record<string, number>).slice(0, nSources);
const side = policy.config.vision.imageSize;
const record = playRecorder(side, 0);
const METRES = DEFAULT_CAMERA.span / 2;
const effectorUv = (ep: Episode) =>
  Array.from({ length: ep.length }, (_, t) =>
    worldToImage(DEFAULT_CAMERA, ep.effector![2 * t]!, ep.effector![2 * t + 1]!),
  );

/** Every frame's 16 keypoints (u, v), flattened. */
function keypoints(eps: readonly Episode[]): number[][] {
  const px = side * side * 3;
  const rows: number[][] = [];
  for (const ep of eps)
    for (let from = 0; from < ep.length; from += 64) {
      const n = Math.min(64, ep.length - from);
      const kp = tf.tidy(() => {
        const img = tf.tensor(
          ep.frames.subarray(from * px, (from + n) * px),
          [n, 1, side, side, 3],
          'int32',
        );
        return tf.reshape(encodeImages(policy.params, policy.config.vision, img).keypoints!, [
          n,
          -1,
        ]);
      });
      rows.push(...(kp.arraySync() as number[][]));
      kp.dispose();
    }
  return rows;
}

/** Ridge regression y ~ [x, 1] W by the normal equations (Gauss-Jordan). */
function fitRidge(x: number[][], y: number[][], lambda: number): number[][] {
  const d = x[0]!.length + 1;
  const o = y[0]!.length;
  const a = Array.from({ length: d }, () => new Float64Array(d));
  const b = Array.from({ length: d }, () => new Float64Array(o));
  x.forEach((row, i) => {
    const xi = [...row, 1];
    for (let p = 0; p < d; p++) {
      for (let q = 0; q < d; q++) a[p]![q]! += xi[p]! * xi[q]!;
      for (let k = 0; k < o; k++) b[p]![k]! += xi[p]! * y[i]![k]!;
    }
  });
  for (let p = 0; p < d - 1; p++) a[p]![p]! += lambda * x.length;
  for (let c = 0; c < d; c++) {
    let piv = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[piv]![c]!)) piv = r;
    [a[c], a[piv]] = [a[piv]!, a[c]!];
    [b[c], b[piv]] = [b[piv]!, b[c]!];
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = a[r]![c]! / a[c]![c]!;
      for (let q = c; q < d; q++) a[r]![q]! -= f * a[c]![q]!;
      for (let k = 0; k < o; k++) b[r]![k]! -= f * b[c]![k]!;
    }
  }
  return b.map((row, p) => [...row].map((v) => v / a[p]![p]!));
}
const predict = (w: number[][], x: number[]) =>
  w[0]!.map((_, o) => x.reduce((s, v, p) => s + v * w[p]![o]!, 0) + w[x.length]![o]!);
/** Root mean squared distance between (u, v) rows, in metres. */
const rms = (p: number[][], y: number[][]) =>
  Math.sqrt(
    p.reduce((s, v, i) => s + (v[0]! - y[i]![0]!) ** 2 + (v[1]! - y[i]![1]!) ** 2, 0) / p.length,
  ) * METRES;

const started = Date.now();
const train: Episode[] = [];
for (const name of sources)
  train.push(...(await record(embodimentByName(name, 1), seedRange(episodes, 900_000))));
const kps = keypoints(train);
const ee = train.flatMap(effectorUv);
console.log(`${ee.length} source frames (${((Date.now() - started) / 1000).toFixed(0)} s)`);
const k = kps[0]!.length / 2;
const each = [...Array(k).keys()].map((j) =>
  rms(
    kps.map((r) => [r[2 * j]!, r[2 * j + 1]!]),
    ee,
  ),
);
console.log(`each keypoint to the effector: ${each.map((v) => v.toFixed(2)).join(' ')} m`);
const w = fitRidge(kps, ee, 1e-3);
const meanEe = [0, 1].map((o) => ee.reduce((s, v) => s + v[o]!, 0) / ee.length);
console.log(
  `ridge readout of the ${k} keypoints on the sources: ${rms(
    kps.map((x) => predict(w, x)),
    ee,
  ).toFixed(3)} m (the mean position: ${rms(
    ee.map(() => meanEe),
    ee,
  ).toFixed(3)} m)`,
);
const judge = EffectorJudge.decode(policy, readFileSync(arg('--judge', '')), arg('--judge', ''));
console.log(`judge on these source frames: ${judge.rms(train).toFixed(3)} m`);

for (const t of targets) {
  const eps = await record(embodimentByName(t, 1), playSeeds(10, 0));
  const frames = eps.flatMap((ep) => [...ep.frames.subarray(0, ep.length * side * side * 3)]);
  const n = frames.length / (side * side * 3);
  const all = Uint8Array.from(frames);
  const eff = eps.flatMap(effectorUv);
  const tg = eps.flatMap((ep) => {
    const o = ep.objects.length / ep.length;
    return Array.from({ length: ep.length }, (_, i) => [
      ep.objects[i * o]!,
      ep.objects[i * o + 1]!,
    ]);
  });
  const lin = keypoints(eps).map((x) => predict(w, x));
  const judged = judge.distances(all, n);
  const truth = eff.map((v, i) => Math.hypot(v[0]! - tg[i]![0]!, v[1]! - tg[i]![1]!) * METRES);
  const located = judge.effector(all, n);
  const errs = located
    .map((v, i) => Math.hypot(v[0]! - eff[i]![0]!, v[1]! - eff[i]![1]!) * METRES)
    .sort((a, b) => a - b);
  const q = (p: number) => errs[Math.floor(p * (errs.length - 1))]!;
  console.log(
    `${t}: effector: judge ${rms(located, eff).toFixed(3)} m (median ${q(0.5).toFixed(3)}, 90th percentile ${q(0.9).toFixed(3)}, within 6 cm ${(errs.filter((e) => e < 0.06).length / errs.length).toFixed(2)}), ridge ${rms(lin, eff).toFixed(3)} m; target (keypoint 0) ${rms(judge.target(all, n), tg).toFixed(3)} m; judged distance ${rms(
      judged.map((d) => [d, 0]),
      truth.map((d) => [d, 0]),
    ).toFixed(3)} m off, Spearman with the true one ${spearman(judged, truth).toFixed(2)}`,
  );
}
