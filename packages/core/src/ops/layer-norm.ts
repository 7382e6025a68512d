// LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * gamma + beta.
import { tf } from '../tf.js';

/**
 * @param x [..., D]
 * @param gamma broadcastable to [..., D]
 * @param beta broadcastable to [..., D]
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-6): tf.Tensor {
  return tf.tidy(() => {
    const mu = tf.mean(x, -1, true);
    const xc = tf.sub(x, mu);
    const variance = tf.mean(tf.square(xc), -1, true);
    return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), gamma), beta);
  });
}
