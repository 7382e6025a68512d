// Rotary position embedding with max wavelength 10,000, the half-split layout of openpi's
// gemma.py `_apply_rope`: x = [x1, x2] -> [x1 cos - x2 sin, x2 cos + x1 sin].
import { tf } from '../tf.js';

/** sin and cos of the rotation angles, [B, T, 1, Dh/2] each (see `ropeTables`). */
export interface RopeTables {
  sin: tf.Tensor;
  cos: tf.Tensor;
  headDim: number;
}

/**
 * The angles' sin and cos for `positions`, computed once and shared by every layer's queries
 * and keys (they depend on the positions only).
 * @param positions [B, T] (int or float)
 */
export function ropeTables(
  positions: tf.Tensor,
  headDim: number,
  maxWavelength = 10_000,
): RopeTables {
  if (headDim % 2 !== 0) throw new Error(`applyRope: head dim ${headDim} must be even`);
  return tf.tidy(() => {
    const half = headDim / 2;
    const inv = new Float32Array(half);
    for (let i = 0; i < half; i++) inv[i] = 1 / maxWavelength ** ((2 * i) / headDim);
    // [B,T,1] * [half] -> [B,T,half] -> [B,T,1,half]
    const radians = tf.expandDims(
      tf.mul(tf.expandDims(tf.cast(positions, 'float32'), -1), tf.tensor1d(inv)),
      2,
    );
    return { sin: tf.sin(radians), cos: tf.cos(radians), headDim } as unknown as tf.TensorContainer;
  }) as unknown as RopeTables;
}

/**
 * @param x [B, T, H, Dh]
 * @param positions [B, T] (int or float), or their `ropeTables`
 */
export function applyRope(
  x: tf.Tensor,
  positions: tf.Tensor | RopeTables,
  maxWavelength = 10_000,
): tf.Tensor {
  return tf.tidy(() => {
    const dh = x.shape[3]!;
    const t = positions instanceof tf.Tensor ? ropeTables(positions, dh, maxWavelength) : positions;
    if (t.headDim !== dh)
      throw new Error(`applyRope: tables for head dim ${t.headDim}, x has ${dh}`);
    const [x1, x2] = tf.split(x, 2, 3) as [tf.Tensor, tf.Tensor];
    return tf.concat(
      [tf.sub(tf.mul(x1, t.cos), tf.mul(x2, t.sin)), tf.add(tf.mul(x2, t.cos), tf.mul(x1, t.sin))],
      3,
    );
  });
}
