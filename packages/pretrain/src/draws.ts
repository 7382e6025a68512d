// The random draws of one training step (flow time and per-task noise), in one fixed order so
// that a resumed run, a data-parallel run and a test reproduce the same step.
import { flowTime, type Rng, randomNormal, type tf } from '@selfalign/core';
import { alignmentTasksOf, type Policy } from '@selfalign/experts';

/**
 * The flow time and noise of one pretraining step, in the order pretrain draws them: t, the
 * actions' noise, then each alignment task's in table order (the design's three: `state`,
 * `features`, `inverse`; then a config's extra tasks by their noise keys).
 */
export function drawStep(rng: Rng, policy: Policy, b: number) {
  const c = policy.config;
  const time = flowTime(rng, b);
  const noise: Record<string, tf.Tensor> = {
    actions: randomNormal(rng, [b, c.actionHorizon, c.actionDim]),
  };
  for (const task of alignmentTasksOf(c))
    noise[task.noiseKey] = randomNormal(rng, task.noiseShape(c, b));
  return { time, noise };
}

/** The loss terms a pretraining step logs: the action loss, each alignment task's, the keypoints'. */
export function loggedTerms(policy: Policy): string[] {
  return ['action', ...alignmentTasksOf(policy.config).map((t) => t.name), 'keypoints'];
}
