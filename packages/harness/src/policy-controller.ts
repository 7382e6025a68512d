// The policy acting in the simulator: a sim Controller that batches every active episode's
// observation into one sampleActions call, executes the first `execute` actions of each chunk
// (receding horizon) and asks for a new chunk when those run out or an episode starts.
import { type Rng, tf } from '@selfalign/core';
import { makeObservation, type Policy } from '@selfalign/experts';
import type { Controller, StepObservation } from '@selfalign/sim';

export interface PolicyControllerOptions {
  /** Embodiment slot the policy acts with. */
  slot: number;
  /** Actions of each chunk executed before sampling again (default Ha / 2). */
  execute?: number;
  numSteps?: number;
  /**
   * Only the first `stateDims` proprioceptive values reach the policy (e.g. 6: angles without
   * velocities). Default: all; `makeObservation` keeps as many as the policy's state norm stats
   * cover (what it was trained on).
   */
  stateDims?: number;
  /**
   * The flow's starting noise (default: the policy's own stream, so a row's numbers depend on
   * every sample drawn before it). Give evaluations their own seeded stream so that a
   * (robot, seed) cell is the same whatever ran before, and rows compared on one seed set share
   * their noise.
   */
  rng?: Rng;
}

export function policyController(policy: Policy, opts: PolicyControllerOptions): Controller {
  const ha = policy.config.actionHorizon;
  const execute = Math.max(1, Math.min(ha, opts.execute ?? Math.ceil(ha / 2)));
  const queues = new Map<number, Float32Array[]>();
  return {
    reset: (i) => void queues.set(i, []),
    async act(obs: readonly StepObservation[]) {
      const need = obs.filter((o) => (queues.get(o.index)?.length ?? 0) === 0);
      if (need.length > 0) {
        const n = need[0]!.env.n;
        const side = need[0]!.env.config.imageSize;
        const images = new Uint8Array(need.length * side * side * 3);
        const ds = opts.stateDims ?? need[0]!.state.length;
        const states = new Float32Array(need.length * ds);
        need.forEach((o, i) => {
          images.set(o.image, i * side * side * 3);
          states.set(o.state.subarray(0, ds), i * ds);
        });
        const o = makeObservation(policy, {
          batch: need.length,
          images,
          prompts: need.map((x) => x.instruction),
          state: states,
          stateDims: ds,
          slots: need.map(() => opts.slot),
        });
        const chunk = policy.sampleActions(o, {
          actionDims: n,
          ...(opts.rng ? { rng: opts.rng } : {}),
          ...(opts.numSteps ? { numSteps: opts.numSteps } : {}),
        });
        const data = (await chunk.data()) as Float32Array;
        tf.dispose([chunk, ...Object.values(o)]);
        need.forEach((x, i) => {
          const q: Float32Array[] = [];
          for (let k = 0; k < execute; k++)
            q.push(data.slice((i * ha + k) * n, (i * ha + k + 1) * n));
          queues.set(x.index, q);
        });
      }
      return obs.map((o) => queues.get(o.index)!.shift()!);
    },
  };
}
