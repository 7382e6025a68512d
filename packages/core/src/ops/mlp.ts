// Gemma's gated GELU feed-forward: gelu(x Wg) * (x Wu) Wd, with the tanh approximation of
// GELU (mirrors openpi gemma.py FeedForward).
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
 * GELU, tanh approximation, in the exact form `0.5 x (1 + tanh(u)) = x * sigmoid(2u)`,
 * `u = sqrt(2/pi) (x + 0.044715 x^3)`: wasm's Tanh kernel is ~10x slower than its Sigmoid.
 */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const twoU = tf.mul(
      tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)),
      2 * Math.sqrt(2 / Math.PI),
    );
    return tf.mul(x, tf.sigmoid(twoU));
  });
}

/**
 * @param x [..., D]
 * @returns [..., D]
 */
export function gegluMlp(x: tf.Tensor, w: MlpWeights): tf.Tensor {
  return tf.tidy(() => linear(tf.mul(geluTanh(linear(x, w.gate)), linear(x, w.up)), w.down));
}
