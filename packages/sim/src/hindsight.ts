// Hindsight relabelling of reach play (Andrychowicz et al. 2017, HER; Lynch et al. 2019,
// "Learning Latent Plans from Play"): a play episode of random actions becomes reach
// demonstrations whose target is where the end effector went. Frame t is drawn with the red
// target at the end effector's position `horizon` steps later (or at the episode's end), so the
// actions the robot took from t are a way to reach that target. The labels are the robot's own
// actions, not an expert's; the relabelling needs where the end effector is in the image, which
// the simulator knows (on hardware: an end-effector tracker).
import { ArmEnv, type EnvConfig, OBJECT_SLOTS } from './arm-env.js';
import type { Embodiment } from './embodiment.js';
import type { Controller } from './play.js';
import { type Episode, type RunResult, runEpisodes } from './rollout.js';

export interface HindsightOptions {
  /**
   * Steps ahead whose end-effector position becomes frame t's target (default 8). Several
   * horizons relabel each episode once per horizon (in this order): near and far goals from the
   * same actions, at no extra robot time.
   */
  horizon?: number | readonly number[];
  env?: Partial<EnvConfig>;
  /**
   * Draw the target on the other side instead, mirrored through the end effector's position at
   * frame t (2 ee_t - ee_{t+H}): the same frames and actions with a goal they move away from,
   * the contrast that isolates what the goal explains about the actions (default false).
   */
  mirror?: boolean;
  /** The played episodes as they were, with their real targets (how the tries did). */
  onPlayed?: (played: RunResult) => void;
  /** The end effector's path of each played episode: [T + 1, 2] (x, y) per step, in order. */
  onPaths?: (paths: Float64Array[]) => void;
  /**
   * Where the end effector went in each played episode, [T + 1, 2] world (x, y) per step, from
   * what the tries recorded (their frames: a camera tracker). Default: the simulator's own
   * positions. The relabelled targets and `onPaths` then follow the tracker.
   */
  track?: (played: RunResult) => Float64Array[] | Promise<Float64Array[]>;
}

/**
 * How directly the end effector went from frame t to its hindsight target: the straight-line
 * distance from ee_t to ee_{min(t + horizon, T)} over the length of the path between them, in
 * [0, 1] per frame (0 where it did not move). An expert's reach is direct (near 1); a random
 * walk's is not. `path` is [T + 1, 2] as `onPaths` gives it.
 */
export function pathDirectness(path: Float64Array, horizon: number): Float32Array {
  const T = path.length / 2 - 1;
  const out = new Float32Array(T);
  const step = (s: number) =>
    Math.hypot(path[2 * s + 2]! - path[2 * s]!, path[2 * s + 3]! - path[2 * s + 1]!);
  for (let t = 0; t < T; t++) {
    const end = Math.min(t + horizon, T);
    let length = 0;
    for (let s = t; s < end; s++) length += step(s);
    const straight = Math.hypot(
      path[2 * end]! - path[2 * t]!,
      path[2 * end + 1]! - path[2 * t + 1]!,
    );
    out[t] = length > 1e-9 ? Math.min(1, straight / length) : 0;
  }
  return out;
}

/**
 * One relabelled reach episode per seed and horizon (seed-major): `controller` plays the full
 * reach length (no early end, the target is never the point), then the same actions are replayed
 * with each frame's target moved to the end effector `horizon` steps later. Dynamics do not depend on the target, so the
 * replay visits the same states.
 */
export async function hindsightEpisodes(
  embodiment: Embodiment,
  seeds: readonly number[],
  controller: Controller,
  opts: HindsightOptions = {},
): Promise<Episode[]> {
  const horizons = typeof opts.horizon === 'object' ? [...opts.horizon] : [opts.horizon ?? 8];
  if (horizons.length === 0) throw new RangeError('hindsight: no horizon given');
  for (const h of horizons)
    if (!(Number.isInteger(h) && h >= 1))
      throw new RangeError(`hindsight horizon must be an integer >= 1, got ${h}`);
  // pass 1: play the full length, keeping the actions
  const played = await runEpisodes(embodiment, 'reach', seeds, controller, {
    record: true,
    untilSuccess: false,
    ...(opts.env ? { env: opts.env } : {}),
  });
  opts.onPlayed?.(played);
  const tracked = opts.track ? await opts.track(played) : undefined;
  if (tracked && tracked.length !== played.episodes.length)
    throw new Error(
      `hindsight: the tracker gave ${tracked.length} paths for ${played.episodes.length} episodes`,
    );
  const episodes: Episode[] = [];
  const paths: Float64Array[] = [];
  for (const [i, { seed, actions }] of played.episodes.entries()) {
    const env = new ArmEnv(embodiment, opts.env).reset(seed, 'reach');
    const n = env.n;
    const T = env.config.maxSteps.reach;
    const size = env.config.imageSize;
    const frame = size * size * 3;
    // where the end effector is after each step: tracked, or the simulator's (no rendering)
    const ee: [number, number][] = [];
    const track = tracked?.[i];
    if (track) {
      if (track.length !== 2 * (T + 1) || !track.every(Number.isFinite))
        throw new Error(
          `hindsight: the tracked path of episode ${seed} must be ${T + 1} finite (x, y) points, got ${track.length / 2}`,
        );
      for (let t = 0; t <= T; t++) ee.push([track[2 * t]!, track[2 * t + 1]!]);
    } else {
      ee.push(env.endEffector());
      for (let t = 0; t < T; t++) {
        env.step(actions.subarray(t * n, (t + 1) * n));
        ee.push(env.endEffector());
      }
    }
    paths.push(Float64Array.from(ee.flat()));
    // pass 2: the same episode, each frame drawn with its hindsight target, once per horizon
    for (const horizon of horizons) {
      env.reset(seed, 'reach');
      const frames = new Uint8Array(T * frame);
      const states = new Float32Array(T * 3 * n);
      const objects = new Float32Array(T * 2 * OBJECT_SLOTS);
      for (let t = 0; t < T; t++) {
        const goal = ee[Math.min(t + horizon, T)]!;
        const [x, y] = ee[t]!;
        env.target = opts.mirror ? [2 * x - goal[0], 2 * y - goal[1]] : [goal[0], goal[1]];
        env.render(frames.subarray(t * frame, (t + 1) * frame));
        env.observeState(states.subarray(t * 3 * n, (t + 1) * 3 * n));
        env.observeObjects(objects.subarray(t * 2 * OBJECT_SLOTS, (t + 1) * 2 * OBJECT_SLOTS));
        env.step(actions.subarray(t * n, (t + 1) * n));
      }
      episodes.push({
        task: 'reach',
        instruction: env.instruction,
        embodiment: embodiment.name,
        seed,
        length: T,
        imageSize: size,
        frames,
        states,
        actions,
        objects,
        success: true,
        finalDistance: 0,
        stepsToSuccess: T,
      });
    }
  }
  opts.onPaths?.(paths);
  return episodes;
}
