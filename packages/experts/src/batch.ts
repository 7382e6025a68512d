// Building observations and batches from host arrays (what the simulator and the data
// package hand over), and random ones for tests and benchmarks.
import { type Rng, randomNormal, tf } from '@selfalign/core';
import type { TrainBatch } from './compute-loss.js';
import { makeObservation, type Observation } from './observation.js';
import type { Policy } from './policy.js';

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
  // drawn last and only for a config whose tasks read it (other configs' draws stay as they were)
  if ((c.extraAlignmentTasks ?? []).length > 0) batch.nextState = randomNormal(rng, [b, ds]);
  return batch;
}

/** Disposes every tensor of an observation or batch. */
export function disposeBatch(batch: Observation | TrainBatch): void {
  tf.dispose(Object.values(batch).filter((v): v is tf.Tensor => v instanceof tf.Tensor));
}
