// The rollout and evaluation harness. Environments run in lockstep so a batched controller
// sees every active episode at once. Episodes come out as typed arrays (frames, states,
// actions) ready for @selfalign/data, without per-row objects. Metrics: success rate over a
// fixed seed set, final task distance, steps to success, and the action MSE against the
// target's own expert on the states the controller visited.
import { ArmEnv, type EnvConfig, OBJECT_SLOTS, type TaskName } from './arm-env.js';
import type { Embodiment } from './embodiment.js';
import { expertAction } from './expert.js';
import type { Controller, StepObservation } from './play.js';

export interface Episode {
  task: TaskName;
  instruction: string;
  embodiment: string;
  seed: number;
  /** T: control steps. */
  length: number;
  imageSize: number;
  /** uint8 [T, I, I, 3]: the observation before each action. */
  frames: Uint8Array;
  /** float32 [T, 3n] */
  states: Float32Array;
  /** float32 [T, n]: the actions sent (clipped to [-1, 1]). */
  actions: Float32Array;
  /** float32 [T, 2 * OBJECT_SLOTS]: the task objects' image positions (`ArmEnv.observeObjects`). */
  objects: Float32Array;
  /**
   * float32 [T, 2]: the end effector's world position before each action (what a tracker or a
   * marker reads on hardware; `identify.ts` fits a body to it). Absent in older recordings.
   */
  effector?: Float32Array;
  success: boolean;
  finalDistance: number;
  /** Steps until success, or -1. */
  stepsToSuccess: number;
}

export interface EpisodeSummary {
  seed: number;
  success: boolean;
  finalDistance: number;
  /**
   * The smallest task distance over the episode (reach: end effector to target; push: block to
   * goal), at the start and after each step: a read of the episode without the success threshold.
   */
  closestDistance: number;
  stepsToSuccess: number;
  /** Mean squared difference to the target's own expert over visited states. */
  actionMse: number;
}

export interface RunOptions {
  env?: Partial<EnvConfig>;
  /** Keep frames/states/actions (default false). */
  record?: boolean;
  /** Environments stepped together (default: all seeds). */
  parallel?: number;
  /**
   * End an episode at its first success (default true); false runs every episode for the
   * task's full length (play whose target is not the point, e.g. for hindsight relabelling).
   */
  untilSuccess?: boolean;
  /** Called after each finished episode. */
  onEpisode?: (done: number, total: number) => void;
}

export interface RunResult {
  summaries: EpisodeSummary[];
  episodes: Episode[];
  successRate: number;
  meanFinalDistance: number;
  /** Over successful episodes (NaN when none). */
  meanStepsToSuccess: number;
  actionMse: number;
}

/** Runs one episode per seed of `task` on `embodiment` with `controller`. */
export async function runEpisodes(
  embodiment: Embodiment,
  task: TaskName,
  seeds: readonly number[],
  controller: Controller,
  opts: RunOptions = {},
): Promise<RunResult> {
  const parallel = Math.max(1, opts.parallel ?? seeds.length);
  const summaries: EpisodeSummary[] = new Array(seeds.length);
  const episodes: Episode[] = [];
  for (let start = 0; start < seeds.length; start += parallel) {
    const group = seeds.slice(start, start + parallel);
    const envs = group.map((seed, k) => {
      controller.reset?.(k, seed);
      return new ArmEnv(embodiment, opts.env).reset(seed, task);
    });
    const n = envs[0]!.n;
    const size = envs[0]!.config.imageSize;
    const frame = size * size * 3;
    const maxT = envs[0]!.config.maxSteps[task];
    const rec = envs.map(() =>
      opts.record
        ? {
            frames: new Uint8Array(maxT * frame),
            states: new Float32Array(maxT * 3 * n),
            actions: new Float32Array(maxT * n),
            objects: new Float32Array(maxT * 2 * OBJECT_SLOTS),
            effector: new Float32Array(maxT * 2),
          }
        : undefined,
    );
    const sqErr = new Float64Array(envs.length);
    const firstSuccess = new Int32Array(envs.length).fill(-1);
    const closest = Float64Array.from(envs, (env) => env.distance());
    const clipped = new Float64Array(n);
    let active = envs.map((_, k) => k);
    while (active.length > 0) {
      const obs: StepObservation[] = active.map((k) => {
        const env = envs[k]!;
        const t = env.steps;
        const r = rec[k];
        const image = r ? r.frames.subarray(t * frame, (t + 1) * frame) : new Uint8Array(frame);
        env.render(image);
        const state = r ? r.states.subarray(t * 3 * n, (t + 1) * 3 * n) : new Float32Array(3 * n);
        env.observeState(state);
        if (r) {
          env.observeObjects(r.objects.subarray(t * 2 * OBJECT_SLOTS, (t + 1) * 2 * OBJECT_SLOTS));
          r.effector.set(env.endEffector(), 2 * t);
        }
        return { index: k, env, image, state, instruction: env.instruction, step: t };
      });
      const actions = await controller.act(obs);
      if (actions.length !== obs.length)
        throw new Error(
          `controller returned ${actions.length} actions for ${obs.length} observations`,
        );
      obs.forEach((o, i) => {
        const a = actions[i]!;
        if (a.length !== n)
          throw new Error(`controller action has ${a.length} dims, the arm has ${n}`);
        const target = expertAction(o.env);
        for (let j = 0; j < n; j++) {
          const v = Number.isFinite(a[j]!) ? Math.max(-1, Math.min(1, a[j]!)) : 0;
          clipped[j] = v;
          sqErr[o.index]! += (v - target[j]!) ** 2 / n;
        }
        const r = rec[o.index];
        if (r) r.actions.set(clipped, o.step * n);
        o.env.step(clipped);
        closest[o.index] = Math.min(closest[o.index]!, o.env.distance());
        if (firstSuccess[o.index] === -1 && o.env.success()) firstSuccess[o.index] = o.env.steps;
      });
      active = active.filter((k) =>
        opts.untilSuccess === false ? envs[k]!.steps < maxT : !envs[k]!.done(),
      );
      for (const k of obs.map((o) => o.index)) {
        if (active.includes(k)) continue;
        const env = envs[k]!;
        const idx = start + k;
        summaries[idx] = {
          seed: group[k]!,
          success: env.success(),
          finalDistance: env.distance(),
          closestDistance: closest[k]!,
          stepsToSuccess: firstSuccess[k]!,
          actionMse: sqErr[k]! / env.steps,
        };
        const r = rec[k];
        if (r) {
          const t = env.steps;
          episodes.push({
            task,
            instruction: env.instruction,
            embodiment: embodiment.name,
            seed: group[k]!,
            length: t,
            imageSize: size,
            frames: r.frames.slice(0, t * frame),
            states: r.states.slice(0, t * 3 * n),
            actions: r.actions.slice(0, t * n),
            objects: r.objects.slice(0, t * 2 * OBJECT_SLOTS),
            effector: r.effector.slice(0, 2 * t),
            success: env.success(),
            finalDistance: env.distance(),
            stepsToSuccess: firstSuccess[k]!,
          });
        }
        opts.onEpisode?.(summaries.filter(Boolean).length, seeds.length);
      }
    }
  }
  const ok = summaries.filter((s) => s.success);
  const mean = (xs: number[]) =>
    xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    summaries,
    episodes,
    successRate: ok.length / summaries.length,
    meanFinalDistance: mean(summaries.map((s) => s.finalDistance)),
    meanStepsToSuccess: mean(ok.map((s) => s.stepsToSuccess)),
    actionMse: mean(summaries.map((s) => s.actionMse)),
  };
}

/** Seeds 0..count-1 offset by `base`: the fixed evaluation set. */
export function seedRange(count: number, base = 10_000): number[] {
  return Array.from({ length: count }, (_, i) => base + i);
}
