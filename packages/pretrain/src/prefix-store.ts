// The frozen-prefix phase (issue 13's lever list): once the vision tower and the VLM stop
// training, a frame's prefix (its per-layer keys and values, mask and keypoints) never changes,
// so it is computed once per frame of the data and a training step runs the Action and
// Alignment Experts only (experiments/frozen-prefix-speed.ts: 3.2x per step on the small
// policy). Keys and values are kept as float16 on the host (half the memory: ~48 KB per frame for
// `small`), in chunks that stay well under the typed-array limits.
import { tf } from '@selfalign/core';
import {
  disposeBatch,
  disposePrefixCache,
  encodePrefix,
  type Observation,
  type Policy,
  type PrefixCache,
} from '@selfalign/experts';

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** float32 -> float16 bits (round to nearest even; overflow to infinity, subnormals kept). */
export function toHalf(x: number): number {
  F32[0] = x;
  const u = U32[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // underflow to zero
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half += 1; // may carry into the exponent
  e = half >>> 10;
  return sign | (e >= 0x1f ? 0x7c00 : half);
}

/** float16 bits -> float32, by table (65,536 entries, built once). */
let HALF: Float32Array | undefined;
function halfTable(): Float32Array {
  if (HALF) return HALF;
  HALF = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    HALF[h] =
      e === 0
        ? s * m * 2 ** -24
        : e === 0x1f
          ? m
            ? Number.NaN
            : s * Number.POSITIVE_INFINITY
          : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return HALF;
}

export interface PrefixStoreOptions {
  /** Frames per prefix forward (default 64). */
  batch?: number;
  /** Called after each forward with the frames done so far. */
  onProgress?: (done: number, total: number) => void;
  /** Frames per storage chunk (default: 256 MB of float16 per chunk). */
  chunkFrames?: number;
}

/** Every frame's frozen prefix, gathered into `PrefixCache` batches by frame index. */
export class PrefixStore {
  private readonly chunks: Uint16Array[] = [];
  private readonly masks: Uint8Array;
  private readonly keypoints: Float32Array | undefined;
  /** Keypoint values per frame (0 without keypoints). */
  private readonly keypointsPerFrame: number;
  /** float16 values per frame: for each layer, keys then values. */
  private readonly perFrame: number;
  private readonly chunkFrames: number;

  private constructor(
    readonly frames: number,
    /** Prefix tokens P, KV heads and head dim, layers. */
    readonly shape: { tokens: number; kvHeads: number; headDim: number; layers: number },
    /** Keypoint positions per frame: cameras x keypoints x 2 (0 without keypoints). */
    readonly keypointValues: readonly number[],
    chunkFrames?: number,
  ) {
    const { tokens, kvHeads, headDim, layers } = shape;
    this.perFrame = 2 * layers * tokens * kvHeads * headDim;
    this.chunkFrames = chunkFrames ?? Math.max(1, Math.floor(2 ** 27 / this.perFrame));
    for (let f = 0; f < frames; f += this.chunkFrames)
      this.chunks.push(new Uint16Array(Math.min(this.chunkFrames, frames - f) * this.perFrame));
    this.masks = new Uint8Array(frames * tokens);
    this.keypointsPerFrame = keypointValues.length ? keypointValues.reduce((a, b) => a * b, 1) : 0;
    this.keypoints = this.keypointsPerFrame
      ? new Float32Array(frames * this.keypointsPerFrame)
      : undefined;
  }

  /** Host bytes held. */
  get bytes(): number {
    return (
      this.chunks.reduce((a, c) => a + c.byteLength, 0) +
      this.masks.byteLength +
      (this.keypoints?.byteLength ?? 0)
    );
  }

  /**
   * Runs the policy's prefix over `frames` frames once. `observe(i0, i1)` gives the observation
   * of frames [i0, i1) (disposed here after use).
   */
  static build(
    policy: Policy,
    frames: number,
    observe: (i0: number, i1: number) => Observation,
    opts: PrefixStoreOptions = {},
  ): PrefixStore {
    if (frames < 1) throw new Error('a prefix store needs at least one frame');
    const step = opts.batch ?? 64;
    let store: PrefixStore | undefined;
    for (let i0 = 0; i0 < frames; i0 += step) {
      const i1 = Math.min(frames, i0 + step);
      const obs = observe(i0, i1);
      let cache: PrefixCache;
      try {
        cache = encodePrefix(policy, obs);
      } finally {
        disposeBatch(obs);
      }
      try {
        const k0 = cache.kv[0]!.k;
        if (k0.shape[0] !== i1 - i0)
          throw new Error(`observe(${i0}, ${i1}) gave ${k0.shape[0]} frames`);
        store ??= new PrefixStore(
          frames,
          {
            tokens: k0.shape[1]!,
            kvHeads: k0.shape[2]!,
            headDim: k0.shape[3]!,
            layers: cache.kv.length,
          },
          cache.keypoints ? cache.keypoints.shape.slice(1) : [],
          opts.chunkFrames,
        );
        store.write(i0, cache);
      } finally {
        disposePrefixCache(cache);
      }
      opts.onProgress?.(i1, frames);
    }
    return store!;
  }

  private where(frame: number): [Uint16Array, number] {
    const c = Math.floor(frame / this.chunkFrames);
    return [this.chunks[c]!, (frame - c * this.chunkFrames) * this.perFrame];
  }

  private write(i0: number, cache: PrefixCache): void {
    const n = cache.mask.shape[0]!;
    const per = this.perFrame / (2 * this.shape.layers); // one layer's keys (or values) per frame
    const layers = cache.kv.map(({ k, v }) => [k.dataSync(), v.dataSync()] as const);
    for (let r = 0; r < n; r++) {
      const [chunk, at] = this.where(i0 + r);
      let o = at;
      for (const [k, v] of layers)
        for (const src of [k, v]) {
          for (let i = 0; i < per; i++) chunk[o + i] = toHalf(src[r * per + i]!);
          o += per;
        }
    }
    const mask = cache.mask.dataSync();
    for (let i = 0; i < mask.length; i++) this.masks[i0 * this.shape.tokens + i] = mask[i] ? 1 : 0;
    if (this.keypoints && cache.keypoints)
      this.keypoints.set(cache.keypoints.dataSync() as Float32Array, i0 * this.keypointsPerFrame);
  }

  /** The prefix of frames `index` as a batch (the caller disposes it: `disposePrefixCache`). */
  gather(index: readonly number[]): PrefixCache {
    const { tokens, kvHeads, headDim, layers } = this.shape;
    const b = index.length;
    const per = this.perFrame / (2 * layers);
    const table = halfTable();
    const kv = Array.from({ length: layers }, () => ({
      k: new Float32Array(b * per),
      v: new Float32Array(b * per),
    }));
    const mask = new Uint8Array(b * tokens);
    index.forEach((frame, r) => {
      if (!(Number.isInteger(frame) && frame >= 0 && frame < this.frames))
        throw new RangeError(`frame ${frame} is not in the prefix store (0..${this.frames - 1})`);
      const [chunk, at] = this.where(frame);
      let o = at;
      for (const l of kv)
        for (const dst of [l.k, l.v]) {
          for (let i = 0; i < per; i++) dst[r * per + i] = table[chunk[o + i]!]!;
          o += per;
        }
      mask.set(this.masks.subarray(frame * tokens, (frame + 1) * tokens), r * tokens);
    });
    const shape = [b, tokens, kvHeads, headDim];
    const out: PrefixCache = {
      kv: kv.map(({ k, v }) => ({ k: tf.tensor(k, shape), v: tf.tensor(v, shape) })),
      mask: tf.tensor(mask, [b, tokens], 'bool'),
    };
    if (this.keypoints) {
      const kp = this.keypointsPerFrame;
      const data = new Float32Array(b * kp);
      index.forEach((frame, r) =>
        data.set(this.keypoints!.subarray(frame * kp, (frame + 1) * kp), r * kp),
      );
      out.keypoints = tf.tensor(data, [b, ...this.keypointValues]);
    }
    return out;
  }
}
