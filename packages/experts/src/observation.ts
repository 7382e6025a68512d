// What the policy observes, in one place: the Observation tensors, their shape checks, how
// host arrays (the simulator's, the data package's) become them, and how the state is
// normalised and padded for the experts. Everything that reads an observation imports it here.
import { assertShape, ShapeError, tf } from '@selfalign/core';
import { dimMask, normalize, padLast } from './normalize.js';
import type { Policy } from './policy.js';
import { tokenizeBatch } from './tokenizer.js';

export interface Observation {
  /** [B, C, I, I, 3], values 0..255 */
  images: tf.Tensor;
  /** bool [B, C]: cameras present (default all) */
  imageMask?: tf.Tensor;
  /** int32 [B, Lt] prompt token ids */
  promptIds: tf.Tensor;
  /** bool [B, Lt] */
  promptMask: tf.Tensor;
  /** [B, ds] proprioceptive state in robot units (ds <= Ds) */
  state: tf.Tensor;
  /** int32 [B] embodiment slot (default 0) */
  slot?: tf.Tensor;
}

/** The batch size B, after checking every field's shape against the policy's config. */
export function checkObservation(policy: Policy, obs: Observation): number {
  const c = policy.config;
  const dims = assertShape(
    obs.images,
    ['B', c.vision.cameras, c.vision.imageSize, c.vision.imageSize, 3],
    'observation.images',
  );
  assertShape(obs.promptIds, ['B', 'Lt'], 'observation.promptIds', dims);
  assertShape(obs.promptMask, ['B', 'Lt'], 'observation.promptMask', dims);
  assertShape(obs.state, ['B', null], 'observation.state', dims);
  if (obs.state.shape[1]! > c.stateDim) {
    throw new ShapeError(
      `observation.state has ${obs.state.shape[1]} dims, the model takes at most ${c.stateDim}`,
    );
  }
  if (obs.imageMask)
    assertShape(obs.imageMask, ['B', c.vision.cameras], 'observation.imageMask', dims);
  if (obs.slot) assertShape(obs.slot, ['B'], 'observation.slot', dims);
  return dims['B']!;
}

export interface HostObservation {
  /** B */
  batch: number;
  /** uint8 [B * C * I * I * 3] */
  images: Uint8Array;
  prompts: readonly string[];
  /** float32 [B * ds] */
  state: Float32Array;
  /** ds: state dims per row */
  stateDims: number;
  /** Embodiment slot per row. */
  slots?: readonly number[];
}

/**
 * Tensors for `sampleActions` / `computeLoss` from host arrays (the caller disposes them). A
 * policy that takes N < stateDims state values (`policy.stateDims`, e.g. joint angles without
 * velocities) gets the first N of each row.
 */
export function makeObservation(policy: Policy, h: HostObservation): Observation {
  const c = policy.config;
  const { batch: b } = h;
  const side = c.vision.imageSize;
  const want = b * c.vision.cameras * side * side * 3;
  if (h.images.length !== want) {
    throw new Error(
      `images hold ${h.images.length} bytes, expected ${want} (B=${b}, C=${c.vision.cameras}, I=${side})`,
    );
  }
  if (h.prompts.length !== b) throw new Error(`${h.prompts.length} prompts for a batch of ${b}`);
  if (h.state.length !== b * h.stateDims)
    throw new Error(`state holds ${h.state.length} values, expected ${b * h.stateDims}`);
  const ds = Math.min(h.stateDims, policy.stateDims ?? h.stateDims);
  const state =
    ds === h.stateDims
      ? h.state
      : Float32Array.from(
          { length: b * ds },
          (_, i) => h.state[Math.floor(i / ds) * h.stateDims + (i % ds)]!,
        );
  const { ids, mask } = tokenizeBatch(policy.tokenizer, h.prompts, c.maxTokens);
  const obs: Observation = {
    images: tf.tensor(Int32Array.from(h.images), [b, c.vision.cameras, side, side, 3], 'int32'),
    promptIds: tf.tensor2d(ids, [b, c.maxTokens], 'int32'),
    promptMask: tf.tensor2d(mask, [b, c.maxTokens], 'bool'),
    state: tf.tensor2d(state, [b, ds]),
  };
  if (h.slots) obs.slot = tf.tensor1d(Int32Array.from(h.slots), 'int32');
  return obs;
}

/** Normalised, padded state [B, Ds] and its dim mask [Ds]. */
export function prepareState(policy: Policy, state: tf.Tensor) {
  const c = policy.config;
  return tf.tidy(() => ({
    state: padLast(normalize(state, policy.normStats?.state, policy.normMode), c.stateDim, 'state'),
    dims: dimMask(state.shape[1]!, c.stateDim),
  }));
}
