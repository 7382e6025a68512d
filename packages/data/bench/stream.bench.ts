// Benchmark: a frame file of 64 px frames (default 100,000 frames, about 1.2 GB) written,
// validated (checksum pass + full decode) and streamed into shuffled batches of 32 tensors,
// with the peak resident memory of each phase. Run: pnpm --filter @selfalign/data bench
// [--frames N] [--keep]   (the file goes to the OS temp folder and is removed afterwards)
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@selfalign/core';
import { Rng } from '@selfalign/core/rng';
import {
  batched,
  type DatasetMeta,
  FrameWriter,
  sampleStream,
  toTensors,
  validateFile,
} from '../src/index.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const frames = arg('--frames', 100_000);
const epLen = 100;
const meta: DatasetMeta = {
  format: 'selfalign-frames/1',
  kind: 'play',
  fps: 10,
  imageShape: [64, 64, 3],
  stateDim: 9,
  actionDim: 3,
  featureDim: 64,
};

let peak = 0;
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss);
}, 20);
const phase = async <T>(
  fn: () => Promise<T>,
): Promise<{ value: T; seconds: number; peakMiB: number }> => {
  peak = process.memoryUsage().rss;
  const t0 = performance.now();
  const value = await fn();
  peak = Math.max(peak, process.memoryUsage().rss);
  return { value, seconds: (performance.now() - t0) / 1000, peakMiB: peak / 2 ** 20 };
};

await initBackend('wasm');
const dir = await mkdtemp(join(tmpdir(), 'selfalign-bench-'));
const path = join(dir, 'frames.arrow');
const rng = new Rng(1);
const img = new Uint8Array(epLen * 64 * 64 * 3);
for (let i = 0; i < img.length; i++) img[i] = rng.int(256);

const write = await phase(async () => {
  const w = await FrameWriter.open(path, meta);
  for (let e = 0; e * epLen < frames; e++) {
    const n = Math.min(epLen, frames - e * epLen);
    w.writeEpisode({
      episodeIndex: e,
      task: 'reach the red target',
      embodiment: 'perm',
      length: n,
      images: img.subarray(0, n * 64 * 64 * 3),
      states: new Float32Array(n * 9).fill(e),
      actions: new Float32Array(n * 3).fill(0.5),
      features: new Float32Array(n * 64).fill(0.1),
    });
    if (e % 20 === 19) await w.flush();
  }
  return w.close();
});
const size = (await stat(path)).size;
const validate = await phase(() => validateFile(path));
const stream = await phase(async () => {
  let samples = 0;
  for await (const b of batched(
    sampleStream([path], { horizon: 8, shuffle: 2048, seed: 0 }),
    32,
    meta.imageShape,
  )) {
    const t = toTensors(b);
    samples += b.size;
    tf.dispose(Object.values(t));
  }
  return samples;
});
clearInterval(sampler);
if (!process.argv.includes('--keep')) await rm(dir, { recursive: true, force: true });

console.log(
  `${cpus()[0]?.model ?? '?'} x${cpus().length}; node ${process.version}; ${frames} frames of 64x64x3, file ${(size / 2 ** 30).toFixed(2)} GiB`,
);
console.log('| phase | time (s) | rate | peak RSS (MiB) |');
console.log('|---|---|---|---|');
console.log(
  `| write (FrameWriter, atomic) | ${write.seconds.toFixed(1)} | ${(frames / write.seconds).toFixed(0)} frames/s | ${write.peakMiB.toFixed(0)} |`,
);
console.log(
  `| validate (checksum pass + decode + checks) | ${validate.seconds.toFixed(1)} | ${(validate.value.rows / validate.seconds).toFixed(0)} frames/s | ${validate.peakMiB.toFixed(0)} |`,
);
console.log(
  `| stream -> shuffle(2048) -> batches of 32 -> tensors | ${stream.seconds.toFixed(1)} | ${(stream.value / stream.seconds).toFixed(0)} samples/s | ${stream.peakMiB.toFixed(0)} |`,
);
