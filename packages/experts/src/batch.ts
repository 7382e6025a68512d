// Building observations and batches from host arrays (what the simulator and the data
// package hand over), and random ones for tests and benchmarks.
import { type Rng, randomNormal, tf } from '@selfalign/core';
import type { TrainBatch } from './compute-loss.js';
import type { Policy } from './policy.js';
import type { Observation } from './sample-actions.js';
import { tokenizeBatch } from './tokenizer.js';

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
 * policy whose state norm stats cover N < stateDims values was trained on the first N of each
 * row (e.g. joint angles without velocities): only those are kept.
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
  const ds = Math.min(h.stateDims, policy.normStats?.state.mean.length ?? h.stateDims);
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

/** A random batch of the config's shapes: for tests and benchmarks, not a stand-in for data. */
export function randomBatch(
  policy: Policy,
  b: number,
  rng: Rng,
  opts: {
    stateDims?: number;
    actionDims?: number;
    slots?: readonly number[];
    isDemo?: readonly number[];
  } = {},
): TrainBatch {
  const c = policy.config;
  const side = c.vision.imageSize;
  const images = new Uint8Array(b * c.vision.cameras * side * side * 3);
  for (let i = 0; i < images.length; i++) images[i] = rng.int(256);
  const ds = opts.stateDims ?? c.stateDim;
  const da = opts.actionDims ?? c.actionDim;
  const prompts = Array.from(
    { length: b },
    (_, i) => ['reach the red target', 'push the block'][i % 2]!,
  );
  const stateT = randomNormal(rng, [b * ds]);
  const state = stateT.dataSync() as Float32Array;
  stateT.dispose();
  const obs = makeObservation(policy, {
    batch: b,
    images,
    prompts,
    state,
    stateDims: ds,
    ...(opts.slots ? { slots: opts.slots } : {}),
  });
  const batch: TrainBatch = {
    ...obs,
    actions: randomNormal(rng, [b, c.actionHorizon, da]),
    nextFeatures: randomNormal(rng, [b, c.featureDim]),
  };
  if (opts.isDemo) batch.isDemo = tf.tensor1d(Float32Array.from(opts.isDemo));
  return batch;
}

/** Disposes every tensor of an observation or batch. */
export function disposeBatch(batch: Observation | TrainBatch): void {
  tf.dispose(Object.values(batch).filter((v): v is tf.Tensor => v instanceof tf.Tensor));
}
