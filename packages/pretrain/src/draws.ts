// The random draws of one training step (flow time and per-task noise), in one fixed order so
// that a resumed run, a data-parallel run and a test reproduce the same step.
import { flowTime, type Rng, randomNormal } from '@selfalign/core';
import type { Policy } from '@selfalign/experts';

/** The flow time and noise of one pretraining step, in the order pretrain draws them. */
export function drawStep(rng: Rng, policy: Policy, b: number) {
  const c = policy.config;
  const time = flowTime(rng, b);
  const noise = {
    actions: randomNormal(rng, [b, c.actionHorizon, c.actionDim]),
    state: randomNormal(rng, [b, c.stateDim]),
    features: randomNormal(rng, [b, c.featureDim]),
    inverse: randomNormal(rng, [b, c.actionHorizon, c.actionDim]),
  };
  return { time, noise };
}
