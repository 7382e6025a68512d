// Rotary position embedding with max wavelength 10,000, the half-split layout of openpi's
// gemma.py `_apply_rope`: x = [x1, x2] -> [x1 cos - x2 sin, x2 cos + x1 sin].
import { tf } from '../tf.js';

/**
 * @param x [B, T, H, Dh]
 * @param positions [B, T] (int or float)
 */
export function applyRope(x: tf.Tensor, positions: tf.Tensor, maxWavelength = 10_000): tf.Tensor {
  return tf.tidy(() => {
    const dh = x.shape[3]!;
    if (dh % 2 !== 0) throw new Error(`applyRope: head dim ${dh} must be even`);
    const half = dh / 2;
    const inv = new Float32Array(half);
    for (let i = 0; i < half; i++) inv[i] = 1 / maxWavelength ** ((2 * i) / dh);
    // [B,T,1] * [half] -> [B,T,half] -> [B,T,1,half]
    const radians = tf.expandDims(
      tf.mul(tf.expandDims(tf.cast(positions, 'float32'), -1), tf.tensor1d(inv)),
      2,
    );
    const sin = tf.sin(radians);
    const cos = tf.cos(radians);
    const [x1, x2] = tf.split(x, 2, 3) as [tf.Tensor, tf.Tensor];
    return tf.concat(
      [tf.sub(tf.mul(x1, cos), tf.mul(x2, sin)), tf.add(tf.mul(x2, cos), tf.mul(x1, sin))],
      3,
    );
  });
}
