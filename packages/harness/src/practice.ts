// Practice: the policy teaches itself a new robot from its own reach tries, moving only the TTT
// slot. Goal-conditioned supervised learning (Ghosh et al. 2019, GCSL) with hindsight
// relabelling (Andrychowicz et al. 2017): each round the policy, through the slot as it stands,
// tries reach episodes on the robot; every try is redrawn with frame t's target where the end
// effector went `horizon` steps later, so the actions the policy took are labels of a goal it did
// reach; the slot is fitted with the action loss on every try so far. Random play (docs/results.md
// 2m) relabels a random policy's actions; the policy's own tries are goal-directed, so their
// relabelled actions carry this robot's goal-to-action map. No expert and no labels; it needs the
// end effector's position (the simulator has it; on hardware, a tracker: `judge`, a camera judge
// that reads it from the tries' frames) and the robot running the policy.
import { type AlignState, align } from '@selfalign/align/browser';
import { Rng } from '@selfalign/core';
import type { DatasetMeta, Sample } from '@selfalign/data/browser';
import { disposeBatch, type Policy, type TrainBatch } from '@selfalign/experts';
import {
  type Controller,
  type Embodiment,
  type EnvConfig,
  type Episode,
  GEOMETRY,
  hindsightEpisodes,
  pathDirectness,
  type RunResult,
  seedRange,
} from '@selfalign/sim';
import type { EffectorTracker } from './judge.js';
import { keepBestFit } from './keep-best.js';
import { playSplit } from './play-split.js';
import { policyController } from './policy-controller.js';
import { slotVector } from './slots.js';

export interface PracticeOptions {
  /** The slot that learns the robot; it starts as it stands (fill it first: mean or nearest). */
  slot: number;
  /**
   * Recorded tries as samples with features (the caller owns the feature extractor); each
   * sample's `episode` is its episode's index in the list (what `directShare` reads).
   */
  toSamples: (episodes: Episode[]) => Promise<{ samples: Sample[]; meta: DatasetMeta }>;
  /** Rounds of try-relabel-fit (default 3). */
  rounds?: number;
  /** Reach tries per round (default 10). */
  tries?: number;
  /** Fitting steps per round, over every try so far (default 100). */
  steps?: number;
  /**
   * Hindsight horizon: the target of frame t is the end effector at t + horizon (default 8).
   * Several horizons relabel each try once per horizon (more frames, the same robot time).
   */
  horizon?: number | readonly number[];
  /**
   * Exploration: standard deviation of Gaussian noise added to every action the tries execute
   * (clipped to [-1, 1]; the relabelled labels are the executed actions). Default 0.
   */
  explore?: number;
  /**
   * Share of each round's relabelled frames fitted: the most direct ones (`pathDirectness`: how
   * straight the end effector went to the frame's hindsight target; an expert's reach is
   * direct, a wandering try is not). Default 1: every frame.
   */
  directShare?: number;
  /**
   * Steer the tries: each executed action is (1 - weight) x the policy's + weight x the guide's
   * (a controller that knows where the target is, fitted on play, say), clipped to [-1, 1]; the
   * relabelled labels are the executed actions. Default: the policy alone.
   */
  guide?: { controller: Controller; weight: number };
  /** Adam learning rate of the slot (default 1e-3, the oracle adapter's). */
  lr?: number;
  batchSize?: number;
  /** Seeds the tries' episodes (round r: firstSeed + 1000 r, ...), their flow noise and the fit. */
  seed?: number;
  /** First episode seed of the tries (default 30,000). */
  firstSeed?: number;
  env?: Partial<EnvConfig>;
  /**
   * Which slot to leave: 'last' (after the last round's fit, default) or 'best': the one whose
   * tries reached their real target most often, among the start and the slot after each round
   * (round r's tries measure the slot round r - 1 left; one more set of tries, not fitted,
   * measures the last); ties go to the later slot. Practice can lose what an earlier round
   * found (its own worse tries become its labels); the tries' success is the check that needs
   * nothing the relabelling does not already need (where the end effector is).
   */
  keep?: 'last' | 'best';
  /**
   * Practise only while the slot is weak: a round whose tries reach their target at least this
   * share of the time stops practice before its fit, and the slot those tries measured stays
   * (`kept` r - 1; with keep 'best' too). Retarget's teacher is often already right where
   * practice's hindsight labels would cost it (docs/results.md 2q). Default: off (every round).
   */
  stopAt?: number;
  /**
   * Read the tries with a tracker instead of the simulator (the camera judge, `EffectorJudge`,
   * or a body fitted to its readings, `BodyTracker`): the relabelled targets are where it puts
   * the end effector in the tries' recorded frames (the frame after the last action is not
   * recorded: its position is the last frame's), and its `reached` says whether a try reached
   * (the gate's and keep 'best''s score). Nothing then reads the simulator's end effector.
   * Default: the simulator's positions and success.
   */
  judge?: EffectorTracker & { refit?(tries: readonly Episode[]): EffectorTracker };
  /**
   * With a `judge` that learns from recorded episodes (`BodyTracker.refit`): before each round's
   * tries are read, the judge is fitted again with every try so far added (the tries visit the
   * poses near the targets that the read depends on, which the play it was fitted on rarely
   * does: a play-fitted body reads 77% of a strong slot's tries as reached where 89% did, the
   * refitted one 84%; docs/results.md 2z). Default false.
   */
  refitOnTries?: boolean;
  /** After each round's fit (awaited: evaluate the slot here, say). */
  onRound?: (r: PracticeRound) => void | Promise<void>;
}

export interface PracticeRound {
  round: number;
  /**
   * Share of this round's tries that reached their real target at some step (the eval's
   * success, or the judge's verdict with `judge`; the tries run the full length, so they may
   * leave it again).
   */
  trySuccess: number;
  /** Relabelled frames fitted so far. */
  frames: number;
  /** Mean action loss over this round's fitting steps. */
  loss: number;
  wallS: number;
}

export interface PracticeResult {
  rounds: PracticeRound[];
  /**
   * Share of tries that reached their target with the start slot (index 0) and the slot after
   * each round (index r; the last only with keep 'best').
   */
  tried: number[];
  /** The slot left in place: 0 the start, r the slot after round r. */
  kept: number;
  /** With `stopAt`: the round whose tries reached it (no fit in that round); absent otherwise. */
  stoppedAt?: number;
}

/** Practise reach on `embodiment` through `opts.slot`; only that slot's W1/b1 move. */
export async function practice(
  policy: Policy,
  embodiment: Embodiment,
  opts: PracticeOptions,
): Promise<PracticeResult> {
  const rounds = opts.rounds ?? 3;
  const tries = opts.tries ?? 10;
  const steps = opts.steps ?? 100;
  const seed = opts.seed ?? 0;
  const firstSeed = opts.firstSeed ?? 30_000;
  for (const [name, v] of [
    ['rounds', rounds],
    ['tries', tries],
    ['steps', steps],
  ] as const)
    if (!(Number.isInteger(v) && v >= 1))
      throw new RangeError(`practice: ${name} must be an integer >= 1, got ${v}`);
  const explore = opts.explore ?? 0;
  if (!(Number.isFinite(explore) && explore >= 0))
    throw new RangeError(`practice: explore must be a number >= 0, got ${explore}`);
  const horizons = typeof opts.horizon === 'object' ? [...opts.horizon] : [opts.horizon ?? 8];
  const directShare = opts.directShare ?? 1;
  if (!(directShare > 0 && directShare <= 1))
    throw new RangeError(`practice: directShare must be in (0, 1], got ${directShare}`);
  const guide = opts.guide;
  if (guide && !(guide.weight >= 0 && guide.weight <= 1))
    throw new RangeError(`practice: the guide's weight must be in [0, 1], got ${guide.weight}`);
  const keep = opts.keep ?? 'last';
  const stopAt = opts.stopAt;
  if (stopAt !== undefined && !(stopAt >= 0 && stopAt <= 1))
    throw new RangeError(`practice: stopAt must be a share in [0, 1], got ${stopAt}`);
  const batchSize = opts.batchSize ?? 16;
  const buffer: TrainBatch[] = [];
  const out: PracticeRound[] = [];
  // the slot before each round (index r - 1) and after the last, for keep 'best'
  const slots: Float32Array[] = [slotVector(policy, opts.slot)];
  const tried: number[] = [];
  const base = opts.judge;
  if (opts.refitOnTries && !base?.refit)
    throw new Error('practice: refitOnTries needs a judge that refits (BodyTracker)');
  // the reader of the tries: the judge, or with refitOnTries the judge fitted again on them
  let judge: EffectorTracker | undefined = base;
  const triedEpisodes: Episode[] = [];
  const reached = base
    ? (p: RunResult) =>
        p.episodes.filter((ep) => judge!.reached(ep, GEOMETRY.reachTolerance)).length /
        p.episodes.length
    : (p: RunResult) =>
        p.summaries.filter((x) => x.stepsToSuccess >= 0).length / p.summaries.length;
  let frames = 0;
  let state: AlignState | undefined;
  try {
    for (let r = 1; r <= rounds; r++) {
      const t0 = performance.now();
      let trySuccess = Number.NaN;
      let paths: Float64Array[] = [];
      const episodes = await hindsightEpisodes(
        embodiment,
        seedRange(tries, firstSeed + 1_000 * r),
        noisy(
          guided(
            policyController(policy, { slot: opts.slot, rng: new Rng(seed * 1_000 + r) }),
            guide,
          ),
          explore,
          new Rng(seed * 1_000 + 700 + r),
        ),
        {
          horizon: horizons,
          ...(opts.env ? { env: opts.env } : {}),
          onPlayed: (p) => {
            if (opts.refitOnTries) {
              triedEpisodes.push(...p.episodes);
              judge = base!.refit!(triedEpisodes);
            }
            trySuccess = reached(p);
          },
          onPaths: (p) => {
            paths = p;
          },
          ...(base ? { track: (p: RunResult) => p.episodes.map((ep) => tracked(judge!, ep)) } : {}),
        },
      );
      if (stopAt !== undefined && trySuccess >= stopAt) {
        // the slot in place reached the rate: leave it, fit nothing more
        tried.push(trySuccess);
        return { rounds: out, tried, kept: r - 1, stoppedAt: r };
      }
      const rec = await opts.toSamples(episodes);
      if (directShare < 1) rec.samples = mostDirect(rec.samples, paths, horizons, directShare);
      frames += rec.samples.length;
      buffer.push(
        ...playSplit(
          policy,
          rec.samples,
          rec.meta,
          batchSize,
          new Rng(seed * 1_000 + 500 + r),
          opts.slot,
          0,
        ).train,
      );
      const fit = await align(policy, buffer, {
        slot: opts.slot,
        parametrisation: 'free',
        init: 'current',
        maxSteps: steps,
        seed: seed * 1_000 + r,
        objective: 'action',
        lr: opts.lr ?? 1e-3,
        ...(state ? { state } : {}),
      });
      state = fit.state;
      if (fit.stopReason === 'nonFinite')
        throw new Error(`practice: the action loss became non-finite in round ${r}`);
      const loss = fit.losses.reduce((a, b) => a + b, 0) / Math.max(1, fit.losses.length);
      const round = { round: r, trySuccess, frames, loss, wallS: (performance.now() - t0) / 1000 };
      out.push(round);
      tried.push(trySuccess);
      if (keep === 'best') slots.push(slotVector(policy, opts.slot));
      await opts.onRound?.(round);
    }
    if (keep === 'best') {
      const kept = await keepBestFit(policy, embodiment, {
        slot: opts.slot,
        fits: slots,
        tried,
        tries,
        firstSeed,
        seed,
        ...(opts.env ? { env: opts.env } : {}),
        score: reached,
        ...(judge ? { record: true } : {}),
      });
      return { rounds: out, tried, kept };
    }
  } finally {
    state?.dispose();
    for (const b of buffer) disposeBatch(b);
  }
  return { rounds: out, tried, kept: rounds };
}

/** The judged end-effector path of a recorded try, [T + 1, 2]: its last frame's position held. */
function tracked(judge: EffectorTracker, ep: Episode): Float64Array {
  const at = judge.track(ep);
  const last = at[at.length - 1];
  if (!last) throw new Error(`practice: try ${ep.seed} recorded no frames for the judge`);
  return Float64Array.from([...at, last].flat());
}

/** `inner`'s actions plus N(0, sigma^2) per value, clipped to [-1, 1] (sigma 0: `inner` itself). */
function noisy(inner: Controller, sigma: number, rng: Rng): Controller {
  if (sigma === 0) return inner;
  return {
    ...(inner.reset ? { reset: inner.reset.bind(inner) } : {}),
    async act(obs) {
      const actions = await inner.act(obs);
      return actions.map((a) =>
        Float32Array.from(a, (x) => Math.max(-1, Math.min(1, x + sigma * rng.normal()))),
      );
    },
  };
}

/**
 * The `share` of `samples` whose frames went most directly to their hindsight target. Sample
 * episode i is played try floor(i / horizons) relabelled with horizon i % horizons (the order
 * `hindsightEpisodes` writes).
 */
function mostDirect(
  samples: Sample[],
  paths: readonly Float64Array[],
  horizons: readonly number[],
  share: number,
): Sample[] {
  const scores = new Map<number, Float32Array>();
  const score = (s: Sample) => {
    let d = scores.get(s.episode);
    if (!d) {
      const path = paths[Math.floor(s.episode / horizons.length)];
      if (!path)
        throw new Error(`practice: no end-effector path for relabelled episode ${s.episode}`);
      d = pathDirectness(path, horizons[s.episode % horizons.length]!);
      scores.set(s.episode, d);
    }
    return d[s.frame]!;
  };
  const ranked = samples
    .map((s, i) => ({ s, i, d: score(s) }))
    .sort((a, b) => b.d - a.d || a.i - b.i);
  const n = Math.max(1, Math.round(share * samples.length));
  return ranked
    .slice(0, n)
    .sort((a, b) => a.i - b.i)
    .map((x) => x.s);
}

/** (1 - w) x `inner`'s actions + w x the guide's, clipped to [-1, 1] (no guide: `inner`). */
function guided(inner: Controller, guide?: { controller: Controller; weight: number }): Controller {
  if (!guide || guide.weight === 0) return inner;
  const { controller, weight: w } = guide;
  return {
    reset: (i, s) => {
      inner.reset?.(i, s);
      controller.reset?.(i, s);
    },
    async act(obs) {
      const [a, b] = await Promise.all([inner.act(obs), controller.act(obs)]);
      return a.map((x, i) =>
        Float32Array.from(x, (v, j) => Math.max(-1, Math.min(1, (1 - w) * v + w * b[i]![j]!))),
      );
    },
  };
}
