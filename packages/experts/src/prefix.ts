// The VLM prefix (no TTT, ever): image tokens from the vision tower, then the prompt tokens
// (embedding * sqrt(D), as Gemma does); ar all 0, so the prefix is bidirectional.
// `encodePrefix` runs it once into a per-layer K/V cache that later forwards only read.
import { embed, tf } from '@selfalign/core';
import { prefixPositions } from './masks.js';
import type { Observation } from './observation.js';
import type { Policy } from './policy.js';
import { type LayerKV, runTransformer } from './transformer.js';
import { encodeImages } from './vision.js';

export interface PrefixTokens {
  /** [B, P, Dvlm] */
  x: tf.Tensor;
  /** bool [B, P] */
  mask: tf.Tensor;
  /** [B, C, K, 2] the vision tower's keypoint positions (configs with keypoints) */
  keypoints?: tf.Tensor;
}

/** Checks the observation's shapes against the config. */
export function embedPrefix(policy: Policy, obs: Observation): PrefixTokens {
  return tf.tidy(() => {
    const c = policy.config;
    const b = obs.images.shape[0]!;
    const enc = encodeImages(policy.params, c.vision, obs.images);
    const img = enc.tokens; // [B, C*(Np+K), D]
    const np = img.shape[1]! / c.vision.cameras;
    const lang = tf.mul(
      embed(policy.params.get('vlm/embed'), tf.cast(obs.promptIds, 'int32')),
      Math.sqrt(c.vlm.width),
    );
    const imgMask = obs.imageMask
      ? tf.reshape(tf.tile(tf.expandDims(tf.cast(obs.imageMask, 'bool'), 2), [1, 1, np]), [
          b,
          c.vision.cameras * np,
        ])
      : tf.ones([b, c.vision.cameras * np], 'bool');
    const out: PrefixTokens = {
      x: tf.concat([img, lang], 1),
      mask: tf.concat([imgMask, tf.cast(obs.promptMask, 'bool')], 1),
    };
    if (enc.keypoints) out.keypoints = enc.keypoints;
    return out as unknown as tf.TensorContainer;
  }) as unknown as PrefixTokens;
}

export interface PrefixCache {
  /** Per layer: prefix keys (RoPE applied) and values [B, P, Hkv, Dh]. */
  kv: LayerKV[];
  /** bool [B, P] */
  mask: tf.Tensor;
  /** [B, C, K, 2] keypoint positions (configs with keypoints) */
  keypoints?: tf.Tensor;
}

/** Runs the prefix once and keeps its K/V. Gradients do not flow into a cache's later use. */
export function encodePrefix(policy: Policy, obs: Observation): PrefixCache {
  return tf.tidy(() => {
    const { x, mask, keypoints } = embedPrefix(policy, obs);
    const m = tf.logicalAnd(tf.expandDims(mask, 1), tf.expandDims(mask, 2)); // ar all 0
    const out = runTransformer(policy, [{ expert: 'vlm', x, tokenMask: mask }], {
      mask: m,
      positions: prefixPositions(mask),
      captureKV: true,
    });
    return {
      kv: out.kv!,
      mask,
      ...(keypoints ? { keypoints } : {}),
    } as unknown as tf.TensorContainer;
  }) as unknown as PrefixCache;
}

export function disposePrefixCache(cache: PrefixCache): void {
  for (const { k, v } of cache.kv) tf.dispose([k, v]);
  cache.mask.dispose();
  cache.keypoints?.dispose();
}
