// Sine-cosine embedding of a scalar (the flow time), mirroring openpi pi0.py posemb_sincos:
// fraction = linspace(0, 1, D/2), period = min * (max/min)^fraction,
// out = [sin(2 pi t / period), cos(2 pi t / period)].
import { tf } from '../tf.js';

/**
 * @param t [B]
 * @returns [B, dim]
 */
export function posembSincos(t: tf.Tensor, dim: number, minPeriod = 4e-3, maxPeriod = 4.0) {
  if (dim % 2 !== 0) throw new Error(`posembSincos: dim ${dim} must be even`);
  return tf.tidy(() => {
    const half = dim / 2;
    const freq = new Float32Array(half);
    for (let i = 0; i < half; i++) {
      const fraction = half === 1 ? 0 : i / (half - 1);
      freq[i] = (2 * Math.PI) / (minPeriod * (maxPeriod / minPeriod) ** fraction);
    }
    const x = tf.mul(tf.reshape(t, [-1, 1]), tf.reshape(tf.tensor1d(freq), [1, half]));
    return tf.concat([tf.sin(x), tf.cos(x)], 1) as tf.Tensor2D;
  });
}
