// Seeded random tensors, reproducible across runs, machines and backends: they are built from
// the JS stream of `Rng`, never from tfjs's own generators. Includes pi0's flow-matching time
// t = 0.999 * Beta(1.5, 1) + 0.001 (openpi pi0.py compute_loss).
import { beta15, type Rng } from './rng.js';
import { tf } from './tf.js';

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** `n` normals (mean, std). */
export function normalArray(rng: Rng, n: number, std = 1, mean = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * rng.normal();
  return out;
}

/** A float32 tensor of normals. */
export function randomNormal(rng: Rng, shape: readonly number[], std = 1, mean = 0): tf.Tensor {
  return tf.tensor(normalArray(rng, size(shape), std, mean), shape as number[], 'float32');
}

/** A float32 tensor uniform in [lo, hi). */
export function randomUniform(rng: Rng, shape: readonly number[], lo = 0, hi = 1): tf.Tensor {
  const out = new Float32Array(size(shape));
  for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * rng.uniform();
  return tf.tensor(out, shape as number[], 'float32');
}

/** Flow-matching times t = 0.999 * Beta(1.5, 1) + 0.001, shape [B]. t = 1 is pure noise. */
export function flowTime(rng: Rng, batch: number): tf.Tensor1D {
  const out = new Float32Array(batch);
  for (let i = 0; i < batch; i++) out[i] = 0.999 * beta15(rng) + 0.001;
  return tf.tensor1d(out, 'float32');
}
