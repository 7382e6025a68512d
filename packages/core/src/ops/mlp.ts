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

/** GELU, tanh approximation. */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(
      tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)),
      Math.sqrt(2 / Math.PI),
    );
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  });
}

/**
 * @param x [..., D]
 * @returns [..., D]
 */
export function gegluMlp(x: tf.Tensor, w: MlpWeights): tf.Tensor {
  return tf.tidy(() => linear(tf.mul(geluTanh(linear(x, w.gate)), linear(x, w.up)), w.down));
}
