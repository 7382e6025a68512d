// How continuous a scripted controller is in the scene: the measure behind the push expert's
// design (docs/results.md section 3c). A learner that sees the scene a few millimetres off gets
// the action of a nearby scene; where the expert's action jumps between nearby scenes, no
// learner can follow it.
import { Rng } from '@selfalign/core/rng';
import type { ArmEnv, TaskName } from './arm-env.js';
import type { Embodiment } from './embodiment.js';
import { runEpisodes } from './rollout.js';

export interface JumpOptions {
  /** How far the task object moves (world units; default 0.005). */
  shift?: number;
  /** An action component changing by more than this is a jump (default 0.3). */
  threshold?: number;
  /** Seed of the random shift directions (default 3). */
  seed?: number;
}

export interface JumpResult {
  /** Share of visited states where moving the object by `shift` makes the action jump. */
  share: number;
  visited: number;
  successRate: number;
}

/**
 * Runs `act` (a scripted controller) on `embodiment` for `seeds` and, on every state it visits,
 * moves the task's object (the block for push, the target for reach) by `shift` in a random
 * direction and compares the two actions.
 */
export async function actionJumpShare(
  embodiment: Embodiment,
  task: TaskName,
  seeds: readonly number[],
  act: (env: ArmEnv) => ArrayLike<number>,
  opts: JumpOptions = {},
): Promise<JumpResult> {
  const { shift = 0.005, threshold = 0.3 } = opts;
  const rng = new Rng(opts.seed ?? 3);
  let visited = 0;
  let jumps = 0;
  const key = task === 'push' ? 'block' : 'target';
  const r = await runEpisodes(embodiment, task, seeds, {
    act: (obs) =>
      obs.map(({ env }) => {
        const a = Array.from(act(env));
        const at = env[key];
        const angle = rng.uniform() * 2 * Math.PI;
        env[key] = [at[0] + shift * Math.cos(angle), at[1] + shift * Math.sin(angle)];
        const b = act(env);
        env[key] = at;
        visited += 1;
        if (a.some((v, j) => Math.abs(v - b[j]!) > threshold)) jumps += 1;
        return a;
      }),
  });
  return { share: jumps / visited, visited, successRate: r.successRate };
}
