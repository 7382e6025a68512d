// Gemma's RMSNorm: x * rsqrt(mean(x^2) + 1e-6) * (1 + scale), scale initialised to 0
// (mirrors openpi gemma.py RMSNorm).
import { tf } from '../tf.js';

/**
 * @param x [..., D]
 * @param scale [D]
 */
export function rmsNorm(x: tf.Tensor, scale: tf.Tensor, eps = 1e-6): tf.Tensor {
  return tf.tidy(() => {
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), tf.add(scale, 1));
  });
}
