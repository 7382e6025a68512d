// Gemma's gated GELU feed-forward: gelu(x Wg) * (x Wu) Wd, with the tanh approximation of
// GELU (mirrors openpi gemma.py FeedForward).
import { fastKernelsActive } from '../kernels/fast-kernels.js';
import { tf } from '../tf.js';
import { linear } from './linear.js';

export interface MlpWeights {
  /** [D, M] */
  gate: tf.Tensor;
  /** [D, M] */
  up: tf.Tensor;
  /** [M, D] */
  down: tf.Tensor;
}

/**
 * GELU, tanh approximation `0.5 x (1 + tanh(u))`, `u = sqrt(2/pi) (x + 0.044715 x^3)`. With the
 * fast kernels it is computed in the exact form `x * sigmoid(2u)` (wasm's Tanh kernel is ~10x
 * slower than its Sigmoid); the stock path keeps tfjs's Tanh, as it always did.
 */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const u = tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), Math.sqrt(2 / Math.PI));
    if (fastKernelsActive()) return tf.mul(x, tf.sigmoid(tf.mul(u, 2)));
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(u), 1));
  });
}

/**
 * @param x [..., D]
 * @returns [..., D]
 */
export function gegluMlp(x: tf.Tensor, w: MlpWeights): tf.Tensor {
  return tf.tidy(() => linear(tf.mul(geluTanh(linear(x, w.gate)), linear(x, w.up)), w.down));
}
