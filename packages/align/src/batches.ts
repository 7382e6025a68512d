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
  const obs = makeObservation(policy, {
    batch: host.size,
    images: host.images,
    prompts: host.tasks,
    state: host.states,
    stateDims: host.stateDim,
    ...(slots === undefined
      ? {}
      : { slots: typeof slots === 'number' ? new Array(host.size).fill(slots) : slots }),
  });
  const t = toTensors(host);
  // the images come from toTensors; the state from makeObservation (it keeps the dims the policy takes)
  obs.images.dispose();
  t.state.dispose();
  if (!('nextFeatures' in t)) {
    tf.dispose(Object.values(t));
    throw new Error('this batch has no next-observation features: add them with addFeatures first');
  }
  return {
    ...obs,
    images: t.images,
    state: obs.state,
    actions: t.actions,
    actionMask: t.actionMask,
    isDemo: t.isDemo,
    nextFeatures: t.nextFeatures,
    ...('objects' in t && t.objects ? { objects: t.objects } : {}),
  };
}
