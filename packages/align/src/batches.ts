// From @selfalign/data's host batches to @selfalign/experts' TrainBatch tensors (prompts are
// tokenised with the policy's tokenizer), with every row on one embodiment slot if asked.
import { type HostBatch, labelTensors } from '@selfalign/data/browser';
import { makeObservation, type Policy, type TrainBatch } from '@selfalign/experts';

export function trainBatchFromHost(
  policy: Policy,
  host: HostBatch,
  slots?: number | readonly number[],
): TrainBatch {
  if (host.nextFeatures === undefined)
    throw new Error('this batch has no next-observation features: add them with addFeatures first');
  // the observation once (makeObservation keeps the state dims the policy takes), the labels once
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
  const labels = labelTensors(host);
  if (!('nextFeatures' in labels)) throw new Error('unreachable: features checked above');
  return { ...obs, ...labels };
}
