// From @selfalign/data's host batches to @selfalign/experts' TrainBatch tensors (prompts are
// tokenised with the policy's tokenizer), with every row on one embodiment slot if asked.
import { tf } from '@selfalign/core';
import { type HostBatch, toTensors } from '@selfalign/data/browser';
import { makeObservation, type Policy, type TrainBatch } from '@selfalign/experts';

export function trainBatchFromHost(
  policy: Policy,
  host: HostBatch,
  slots?: number | readonly number[],
): TrainBatch {
  // a policy trained on the first N state values (its state norm stats have N) sees those
  const ds = Math.min(host.stateDim, policy.normStats?.state.mean.length ?? host.stateDim);
  const states =
    ds === host.stateDim
      ? host.states
      : Float32Array.from(
          { length: host.size * ds },
          (_, i) => host.states[Math.floor(i / ds) * host.stateDim + (i % ds)]!,
        );
  const obs = makeObservation(policy, {
    batch: host.size,
    images: host.images,
    prompts: host.tasks,
    state: states,
    stateDims: ds,
    ...(slots === undefined
      ? {}
      : { slots: typeof slots === 'number' ? new Array(host.size).fill(slots) : slots }),
  });
  const t = toTensors(host);
  obs.images.dispose();
  // the host's state when it is what the policy sees, else the observation's first N dims
  const state = ds === host.stateDim ? t.state : obs.state;
  (ds === host.stateDim ? obs.state : t.state).dispose();
  if (!('nextFeatures' in t)) {
    tf.dispose(Object.values(t));
    throw new Error('this batch has no next-observation features: add them with addFeatures first');
  }
  return {
    ...obs,
    images: t.images,
    state,
    actions: t.actions,
    actionMask: t.actionMask,
    isDemo: t.isDemo,
    nextFeatures: t.nextFeatures,
    ...('objects' in t && t.objects ? { objects: t.objects } : {}),
  };
}
