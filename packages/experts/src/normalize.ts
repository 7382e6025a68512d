// Normalisation statistics in openpi's norm_stats.json layout and the transforms around the
// model: z-score `(x - mean) / (std + 1e-6)` (pi0) or quantile
// `(x - q01) / (q99 - q01 + 1e-6) * 2 - 1` (pi0.5), then zero-padding to the model's Ds / A.
import { type NormMode, type NormStats, ShapeError, type Stats, tf } from '@selfalign/core';

export type { NormMode, NormStats, Stats };

function coefficients(stats: Stats, mode: NormMode): { shift: number[]; scale: number[] } {
  return mode === 'zscore'
    ? { shift: stats.mean, scale: stats.std.map((s) => 1 / (s + 1e-6)) }
    : {
        shift: stats.q01.map((q, i) => q + (stats.q99[i]! - q) / 2),
        scale: stats.q01.map((q, i) => 2 / (stats.q99[i]! - q + 1e-6)),
      };
}

function checkedCoefficients(x: tf.Tensor, stats: Stats, mode: NormMode) {
  const n = x.shape.at(-1)!;
  if (stats.mean.length !== n) {
    throw new ShapeError(`norm stats have ${stats.mean.length} dims, data has ${n}`);
  }
  return coefficients(stats, mode);
}

/** Normalises the last axis of `x` (raw dims = stats length). */
export function normalize(x: tf.Tensor, stats: Stats | undefined, mode: NormMode): tf.Tensor {
  if (stats === undefined) return tf.clone(x);
  const { shift, scale } = checkedCoefficients(x, stats, mode);
  return tf.tidy(() => tf.mul(tf.sub(x, tf.tensor1d(shift)), tf.tensor1d(scale)));
}

/** Inverse of `normalize`. */
export function unnormalize(x: tf.Tensor, stats: Stats | undefined, mode: NormMode): tf.Tensor {
  if (stats === undefined) return tf.clone(x);
  const { shift, scale } = checkedCoefficients(x, stats, mode);
  return tf.tidy(() => tf.add(tf.div(x, tf.tensor1d(scale)), tf.tensor1d(shift)));
}

/** Zero-pads the last axis to `size`. @throws Error when it is already longer. */
export function padLast(x: tf.Tensor, size: number, what = 'tensor'): tf.Tensor {
  const n = x.shape.at(-1)!;
  if (n > size) throw new ShapeError(`${what} has ${n} dims, the model takes at most ${size}`);
  if (n === size) return tf.clone(x);
  return tf.pad(x, [...x.shape.slice(0, -1).map(() => [0, 0] as [number, number]), [0, size - n]]);
}

/** [size] with 1 for the first `n` entries. */
export function dimMask(n: number, size: number): tf.Tensor1D {
  const m = new Float32Array(size);
  m.fill(1, 0, n);
  return tf.tensor1d(m);
}
