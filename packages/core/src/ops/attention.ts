// Scaled dot-product attention with grouped / multi-query K/V heads (H query heads share
// Hkv key/value heads), a boolean mask, float32 softmax and an optional K/V cache that is
// read, never written. Masked logits take pi0's large negative constant. Query heads are
// grouped per K/V head so a whole group is one batched matmul (batched small matmuls are
// slow on wasm, CONVENTIONS.md).
import { tf } from '../tf.js';
import { bmm } from './linear.js';

/** openpi's masked-logit value. */
export const MASKED_LOGIT = -2.3819763e38;

export interface KVCache {
  /** [B, S0, Hkv, Dh] */
  k: tf.Tensor;
  /** [B, S0, Hkv, Dh] */
  v: tf.Tensor;
}

/**
 * @param q [B, T, H, Dh] (RoPE already applied)
 * @param k [B, S, Hkv, Dh]
 * @param v [B, S, Hkv, Dh]
 * @param mask bool or 0/1 float [B, T, S0 + S] (query row sees key column); keys are [cache, new]
 * @param cache keys/values of earlier tokens, placed before `k`/`v`
 * @returns [B, T, H, Dh]
 */
export function attention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  mask: tf.Tensor,
  cache?: KVCache,
): tf.Tensor {
  return tf.tidy(() => {
    const [b, t, h, dh] = q.shape as [number, number, number, number];
    const keys = cache ? tf.concat([cache.k, k], 1) : k;
    const values = cache ? tf.concat([cache.v, v], 1) : v;
    const [, s, hkv] = keys.shape as [number, number, number, number];
    if (h % hkv !== 0) throw new Error(`attention: ${h} query heads over ${hkv} K/V heads`);
    if (!tf.util.arraysEqual(mask.shape, [b, t, s])) {
      throw new Error(`attention: mask [${mask.shape}] should be [${[b, t, s]}]`);
    }
    const g = h / hkv;
    // [B,T,Hkv,G,Dh] -> [B,Hkv,G,T,Dh] -> [B,Hkv,G*T,Dh]
    const qg = tf.reshape(
      tf.transpose(tf.reshape(tf.mul(q, 1 / Math.sqrt(dh)), [b, t, hkv, g, dh]), [0, 2, 3, 1, 4]),
      [b, hkv, g * t, dh],
    );
    const kT = tf.transpose(keys, [0, 2, 3, 1]); // [B,Hkv,Dh,S]
    const vh = tf.transpose(values, [0, 2, 1, 3]); // [B,Hkv,S,Dh]
    const logits = tf.reshape(bmm(qg, kT), [b, hkv, g, t, s]);
    // Additive bias, broadcast inside the add: 0 where allowed, MASKED_LOGIT elsewhere.
    const bias = tf.mul(
      tf.sub(1, tf.cast(tf.reshape(mask, [b, 1, 1, t, s]), 'float32')),
      MASKED_LOGIT,
    );
    const masked = tf.add(logits, bias);
    const probs = tf.reshape(tf.softmax(masked, -1), [b, hkv, g * t, s]);
    const out = tf.reshape(bmm(probs, vh), [b, hkv, g, t, dh]); // [B,Hkv,G,T,Dh]
    return tf.reshape(tf.transpose(out, [0, 3, 1, 2, 4]), [b, t, h, dh]);
  });
}
