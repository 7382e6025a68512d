// sampleActions (mirrors openpi pi0.py sample_actions): the prefix runs once into a K/V
// cache, then Euler integration from t = 1 (noise) with dt = -1/numSteps through the action
// stream only (velocities at t = 1, 1 + dt, ..., -dt); the cache is only read. Actions come
// back un-normalised and cut to the robot's action dims.
import { type Rng, randomNormal, tf } from '@selfalign/core';
import { actionStateInput, actionVelocity, embedActionSuffix } from './action-suffix.js';
import { buildMask, prefixPositions, suffixPositions } from './masks.js';
import { unnormalize } from './normalize.js';
import { checkObservation, type Observation, prepareState } from './observation.js';
import type { Policy } from './policy.js';
import {
  disposePrefixCache,
  embedPrefix,
  encodePrefix,
  type PrefixCache,
  type PrefixTokens,
} from './prefix.js';
import { runTransformer } from './transformer.js';

export interface SampleOptions {
  numSteps?: number;
  /** [B, Ha, A] starting noise (default: drawn from `rng`). */
  noise?: tf.Tensor;
  rng?: Rng;
  /** Run the prefix once into a K/V cache (default) or with every step. */
  useCache?: boolean;
  /** Called with t before each velocity evaluation. */
  onVelocity?: (t: number) => void;
  /** Action dims to return (default: the norm stats', else A). */
  actionDims?: number;
}

/** The action step's mask and positions: the same for every Euler step, so built once. */
interface StepLayout {
  mask: tf.Tensor;
  positions: tf.Tensor;
}

function stepLayout(policy: Policy, prefixMask: tf.Tensor, cached: boolean): StepLayout {
  return tf.tidy(() => {
    const b = prefixMask.shape[0]!;
    const ha = policy.config.actionHorizon;
    const suffixMask = tf.ones([b, 1 + ha], 'bool');
    const ar = [1, 1, ...new Array(ha - 1).fill(0)];
    const positions = suffixPositions(prefixMask, suffixMask);
    return {
      mask: buildMask(prefixMask, [{ name: 'action', inputMask: suffixMask, ar }], !cached),
      positions: cached ? positions : tf.concat([prefixPositions(prefixMask), positions], 1),
    };
  });
}

/** v_t for noisy actions `x` [B,Ha,A] at time t, from a cache or a fresh prefix. */
function velocity(
  policy: Policy,
  prefix: { cache: PrefixCache } | { tokens: PrefixTokens },
  layout: StepLayout,
  state: tf.Tensor,
  x: tf.Tensor,
  t: number,
  slot: tf.Tensor | undefined,
): tf.Tensor {
  return tf.tidy(() => {
    const b = x.shape[0]!;
    const suffix = embedActionSuffix(policy, state, x, tf.fill([b], t));
    const action = { expert: 'action' as const, x: suffix.x, tokenMask: suffix.mask };
    const common = { mask: layout.mask, positions: layout.positions, ...(slot ? { slot } : {}) };
    if ('cache' in prefix) {
      const out = runTransformer(policy, [action], { ...common, cache: prefix.cache.kv });
      return actionVelocity(policy, out.outputs[0]!);
    }
    const { tokens } = prefix;
    const out = runTransformer(
      policy,
      [{ expert: 'vlm', x: tokens.x, tokenMask: tokens.mask }, action],
      common,
    );
    return actionVelocity(policy, out.outputs[1]!);
  });
}

/** @returns [B, Ha, a] actions in robot units */
export function sampleActions(
  policy: Policy,
  obs: Observation,
  opts: SampleOptions = {},
): tf.Tensor {
  const c = policy.config;
  const b = checkObservation(policy, obs);
  const steps = opts.numSteps ?? c.flowSteps;
  if (!Number.isInteger(steps) || steps < 1)
    throw new Error(`numSteps must be a positive integer, got ${steps}`);
  const shape = [b, c.actionHorizon, c.actionDim];
  if (opts.noise && !tf.util.arraysEqual(opts.noise.shape, shape)) {
    throw new Error(`noise [${opts.noise.shape}] should be [${shape}]`);
  }
  const dims = opts.actionDims ?? policy.normStats?.actions.mean.length ?? c.actionDim;
  const useCache = opts.useCache ?? true;
  const cache = useCache ? encodePrefix(policy, obs) : undefined;
  try {
    return tf.tidy(() => {
      const prefix = cache ? { cache } : { tokens: embedPrefix(policy, obs) };
      const state = actionStateInput(
        policy,
        prepareState(policy, obs.state).state,
        cache ? cache.keypoints : prefix.tokens!.keypoints,
      );
      const layout = stepLayout(
        policy,
        cache ? cache.mask : prefix.tokens!.mask,
        cache !== undefined,
      );
      let x = opts.noise ? tf.clone(opts.noise) : randomNormal(opts.rng ?? policy.rng, shape);
      const dt = -1 / steps;
      for (let i = 0; i < steps; i++) {
        const t = 1 + i * dt;
        opts.onVelocity?.(t);
        const v = velocity(policy, prefix, layout, state, x, t, obs.slot);
        const next = tf.add(x, tf.mul(v, dt));
        tf.dispose([x, v]);
        x = next;
      }
      const cut = tf.slice(x, [0, 0, 0], [b, c.actionHorizon, dims]);
      return unnormalize(cut, policy.normStats?.actions, policy.normMode);
    });
  } finally {
    if (cache) disposePrefixCache(cache);
  }
}
