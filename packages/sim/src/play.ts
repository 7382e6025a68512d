// Controllers: the interface the rollout harness drives (batched, possibly async, so a neural
// policy can act on many environments at once), the scripted expert, and two play policies
// for unlabelled exploration data: uniform random and Ornstein-Uhlenbeck (smooth) actions.
import { Rng } from '@selfalign/core/rng';
import type { ArmEnv } from './arm-env.js';
import type { Embodiment } from './embodiment.js';
import { expertAction, type PushStrategy, type ReachSolution } from './expert.js';

export interface StepObservation {
  /** Position of this environment in the batch. */
  index: number;
  env: ArmEnv;
  /** uint8 [I, I, 3] */
  image: Uint8Array;
  /** float32 [3n] proprioception */
  state: Float32Array;
  instruction: string;
  /** Control steps taken in this episode. */
  step: number;
}

export interface Controller {
  /** Actions in [-1, 1]^n for each observation, in order. */
  act(
    observations: readonly StepObservation[],
  ): readonly ArrayLike<number>[] | Promise<readonly ArrayLike<number>[]>;
  /** Called when environment `index` starts an episode. */
  reset?(index: number, seed: number): void;
}

/** The scripted expert under a belief (default: each env's own embodiment). */
export function expertController(
  belief?: Embodiment,
  reach?: ReachSolution,
  push?: PushStrategy,
): Controller {
  return { act: (obs) => obs.map((o) => expertAction(o.env, belief, undefined, reach, push)) };
}

/**
 * A controller's state per environment: started by `make(episode seed)` at each reset, or at
 * first use (seeded by the environment's index) when no reset came.
 */
function perEnvironment<S>(make: (seed: number) => S) {
  const states = new Map<number, S>();
  const start = (i: number, s: number) => {
    const st = make(s);
    states.set(i, st);
    return st;
  };
  return {
    reset: (i: number, s: number) => void start(i, s),
    of: (i: number) => states.get(i) ?? start(i, i),
  };
}

/** Uniform random actions in [-1, 1], one stream per environment seeded by its episode seed. */
export function randomController(seed = 0): Controller {
  const streams = new Map<number, Rng>();
  return {
    reset: (i, s) => void streams.set(i, new Rng(s ^ seed ^ 0x5eed)),
    act: (obs) =>
      obs.map((o) => {
        const rng = streams.get(o.index) ?? new Rng(o.index);
        return Float64Array.from({ length: o.env.n }, () => rng.uniform() * 2 - 1);
      }),
  };
}

/**
 * Uniform random actions in [-1, 1], each held for `hold` steps: play whose motion is consistent
 * over a stretch (an action chunk), so where the end effector went says which actions took it
 * there (hindsight relabelling, `hindsightEpisodes`); per-step random actions mostly cancel.
 */
export function heldRandomController(seed = 0, hold = 8): Controller {
  if (!(Number.isInteger(hold) && hold >= 1))
    throw new RangeError(`heldRandomController: hold must be an integer >= 1, got ${hold}`);
  const streams = perEnvironment((s) => ({
    rng: new Rng(s ^ seed ^ 0x401d),
    a: new Float64Array(0),
    t: 0,
  }));
  return {
    reset: streams.reset,
    act: (obs) =>
      obs.map((o) => {
        const st = streams.of(o.index);
        if (st.t++ % hold === 0 || st.a.length !== o.env.n)
          st.a = Float64Array.from({ length: o.env.n }, () => st.rng.uniform() * 2 - 1);
        return Float64Array.from(st.a);
      }),
  };
}

/** Ornstein-Uhlenbeck actions: a <- a - theta a + sigma N(0, 1), clipped to [-1, 1]. */
export function ouController(seed = 0, theta = 0.15, sigma = 0.35): Controller {
  const streams = perEnvironment((s) => ({
    rng: new Rng(s ^ seed ^ 0x0a11),
    a: new Float64Array(0),
  }));
  return {
    reset: streams.reset,
    act: (obs) =>
      obs.map((o) => {
        const st = streams.of(o.index);
        if (st.a.length !== o.env.n) st.a = new Float64Array(o.env.n);
        for (let j = 0; j < o.env.n; j++) {
          st.a[j] = Math.max(
            -1,
            Math.min(1, st.a[j]! - theta * st.a[j]! + sigma * st.rng.normal()),
          );
        }
        return Float64Array.from(st.a);
      }),
  };
}
