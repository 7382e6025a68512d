// Retarget: teach the TTT slot a new robot from its random play, with the policy as its own
// teacher. From the play alone it identifies the robot's action -> joint-velocity map (B_t) and,
// from where the end effector was, the source robot whose body explains the play best (the
// source robots are ours: their bodies are known and their maps are identified from their own
// random play). Through that source's slot the policy acts as if on the source arm; sending
// R a = B_t^-1 B_s a moves the target's joints as the policy meant to move the source's
// (`retargetedController`). The policy, through the source slot, labels every play frame with a
// chunk, R maps the chunk to the target's actions, and the free slot is fitted to those labels
// with the action loss: only W1/b1 move, nothing runs on the robot beyond the play, and no expert
// or action label is read. What it needs beyond the brief's unlabelled play: the end effector's
// position during play (a tracker; the simulator has it) and a robot whose actuators are linear
// in the action away from clamps (velocity commands), which the identification checks. With
// `rounds`, DAgger follows: the slot tries reach episodes on the robot, the teacher labels the
// frames the tries visited, and the slot is fitted on all labels so far (the play's frames are
// not where the slot's own tries go; its tries' frames are). With `candidates` > 1 the teacher
// is picked by tries instead of by the ranking alone: each of the first `candidates` sources of
// the ranking, retargeted, tries `pickTries` reach episodes on the robot, and the one that reaches
// most often (then nearest on average) teaches. The body is a weak guide to which source slot
// acts right through the map (docs/results.md 2q: on `src-34` the nearest body's teacher reaches
// 20%, the fifth nearest's 85%). With `rank: 'perception'` the sources are ranked without the
// end effector: by the Alignment Expert's perception loss (the state from the image) on the
// play's frames through each source slot, an image-based body check (docs/results.md 2r: it ranks
// the teachers as well as the end effector's positions do), so the play needs images,
// proprioception and actions only.
import { type AlignState, align, evaluateLosses } from '@selfalign/align/browser';
import { Rng, tf } from '@selfalign/core';
import type { DatasetMeta, Sample } from '@selfalign/data/browser';
import { disposeBatch, type Policy, type TrainBatch } from '@selfalign/experts';
import {
  type Embodiment,
  type EnvConfig,
  type Episode,
  GEOMETRY,
  identifyActionMap,
  kinematicError,
  type Matrix,
  type RunResult,
  randomController,
  retargetedController,
  retargetMap,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { type CameraJudge, type JudgedEpisode, judgeEpisode, type TryReader } from './judge.js';
import { keepBestFit } from './keep-best.js';
import { playSplit } from './play-split.js';
import { policyController } from './policy-controller.js';
import { copySlot, fillWithSourceMean, slotVector } from './slots.js';

export interface RetargetSource {
  name: string;
  /** Its trained TTT slot. */
  slot: number;
  /** Its body (links, offsets) and actuators: identified from its own random play. */
  embodiment: Embodiment;
}

export interface RetargetOptions {
  /** The slot that learns the robot (filled here: the mean of the sources, or the picked one). */
  slot: number;
  sources: readonly RetargetSource[];
  /**
   * The target's random play, recorded with proprioception, actions and end-effector positions
   * (`runEpisodes(..., { record: true })` of a reach scene: the frames show a target).
   */
  play: readonly Episode[];
  /** Recorded episodes as demo samples with features (the caller owns the feature extractor). */
  toSamples: (episodes: Episode[]) => Promise<{ samples: Sample[]; meta: DatasetMeta }>;
  /** Random-play episodes per source to identify its map (default 10; cached in `maps`). */
  sourcePlay?: number;
  /** Identified source maps by name, reused across targets (filled as they are identified). */
  maps?: Map<string, Matrix>;
  /** Fitting steps (default 200) and Adam rate (default 1e-3): the oracle adapter's. */
  steps?: number;
  lr?: number;
  batchSize?: number;
  /**
   * Teacher candidates (default 1: the first source of the ranking teaches). With k > 1 the
   * first k sources of the ranking (`rank`) each try `pickTries` reach episodes on `robot`
   * through the map, and the one that reaches most often teaches (ties: the nearer mean final
   * distance).
   */
  candidates?: number;
  /**
   * Sources tried as candidates too, after the ranking's first `candidates`, when not among them
   * (the nearest source slot by align's objective, say; docs/results.md 2v). Each candidate's
   * tries have seeds and a generator of their own, so the first k read as they would without.
   */
  alsoTry?: readonly string[];
  /** Reach tries per candidate (default 6; seeds firstSeed + 500, ...). */
  pickTries?: number;
  /**
   * How the candidates' tries pick the teacher: 'reached' (default) the most tries read as
   * reaching the target (ties: the closer mean last distance); 'approach' the closest mean
   * approach over the tries (each try's smallest distance to its target), a read without the
   * reach tolerance, which sorts candidates that reach equally often (docs/results.md 2y).
   */
  pickBy?: 'reached' | 'approach';
  /**
   * Score the candidates' tries by a camera judge instead of the simulator (default: the
   * simulator's success and final distance): each try runs its full length (no stop at success,
   * which would tell), a try reached when some frame is judged within the reach tolerance, and
   * the distance is the judged one in its last frame. Nothing then reads the end effector.
   * A `TryReader` reads them its own way instead (a `BodyTracker`: the end effector through a
   * body fitted to the judge's readings of the play, docs/results.md 2w).
   */
  judge?: CameraJudge | TryReader;
  /**
   * Read the candidates' tries through `judge.refit(all the candidates' tries)` (a `BodyTracker`
   * fitted again on the play and every try of every candidate, so on the poses near the targets
   * that the read depends on; docs/results.md 2y). Needs a `judge` that can refit.
   */
  refitOnTries?: boolean;
  /**
   * How the sources are ordered (the first teaches, or the first `candidates` try): 'body'
   * (default: the kinematic error of each source's body on the play's end-effector positions)
   * or 'perception' (the perception loss through each source slot on the play's frames, the
   * lowest first: no end-effector positions needed).
   */
  rank?: 'body' | 'perception';
  /** Play batches of 16 frames that the perception rank scores (default 8). */
  rankBatches?: number;
  /** Where the fit starts: the mean of the source slots (default) or the picked source's slot. */
  start?: 'mean' | 'source';
  /**
   * Rounds after the play fit (DAgger, default 0): the slot tries `tries` reach episodes on
   * `robot`, the teacher labels every frame the tries visited, and the slot is fitted
   * `roundSteps` more steps on all labels so far. It runs the policy on the robot (practice's
   * assumption) and needs nothing more: the labels are the teacher's, not where the tries went.
   */
  rounds?: number;
  robot?: Embodiment;
  /** Reach tries per round (default 10) and fitting steps per round (default 100). */
  tries?: number;
  roundSteps?: number;
  /**
   * With rounds, which slot to leave (default 'last'): 'best' keeps the fit whose tries reached
   * most often: round r's tries measure round r - 1's slot, and `tries` more episodes after the
   * last round measure it (ties: the later). DAgger can lose what the play fit found when its
   * teacher is wrong (docs/results.md 2q, `offset` seed 1: 70% -> 0%). With a `judge` the
   * rounds' tries then run their full length and the judge reads them as it reads the
   * candidates' (with `refitOnTries`, fitted again on every try so far), so nothing reads the
   * simulator's success; without one, the simulator's success scores them.
   */
  keep?: 'last' | 'best';
  /** First episode seed of the tries (round r: firstSeed + 1000 r, ...; default 30,000). */
  firstSeed?: number;
  /** After the play fit (round 0) and after each round's fit (awaited: evaluate here, say). */
  onRound?: (r: RetargetRound) => void | Promise<void>;
  seed?: number;
  env?: Partial<EnvConfig>;
}

export interface RetargetRound {
  round: number;
  /**
   * Share of this round's tries that reached their target (NaN for round 0, the play fit): the
   * judge's read with `judge` and keep 'best', otherwise the simulator's.
   */
  trySuccess: number;
  /** Labelled frames fitted so far. */
  frames: number;
  /** Mean action loss over this round's fitting steps. */
  loss: number;
}

export interface RetargetResult {
  /** The source whose body explains the play best, and its slot. */
  source: string;
  sourceSlot: number;
  /** R = B_t^-1 B_s (n x n). */
  map: Matrix;
  /**
   * Every source's kinematic error on the play (mean squared end-effector distance), best first;
   * empty when the play carries no end-effector positions (rank 'perception').
   */
  bodies: { name: string; error: number }[];
  /** The sources in the order the pick used, with the score that ordered them (lowest first). */
  ranking: { name: string; score: number }[];
  /**
   * The candidates' tries when more than one source tries (`candidates` > 1 or `alsoTry`), in
   * the order tried (the ranking's first, then `alsoTry`'s): success rate, mean final distance
   * and mean closest approach (with `judge`, the judge's).
   */
  candidates: { name: string; success: number; distance: number; approach: number }[];
  /** The action loss per fitting step, every round's in order. */
  losses: number[];
  /** Share of tries that reached their target with round r's fit (index r; the last only with keep 'best'). */
  tried: number[];
  /** The fit left in place: round r's (rounds when keep is 'last'). */
  kept: number;
}

/** A candidate's tries as the judge reads them: judged reach rate, mean last and closest distance. */
function judged(judge: CameraJudge | TryReader, name: string, episodes: readonly Episode[]) {
  const tol = GEOMETRY.reachTolerance;
  const verdicts = episodes.map((ep) =>
    'verdict' in judge ? judge.verdict(ep, tol) : judgeEpisode(judge, ep, tol),
  );
  const mean = (f: (v: JudgedEpisode) => number) =>
    verdicts.reduce((s, v) => s + f(v), 0) / verdicts.length;
  return {
    name,
    success: verdicts.filter((v) => v.reached).length / verdicts.length,
    distance: mean((v) => v.distance),
    approach: mean((v) => v.closest),
  };
}

type Candidate = RetargetResult['candidates'][number];

/** Whether candidate `a` reads better than `b` under `pickBy` (ties keep the earlier, `b`). */
function better(a: Candidate, b: Candidate, pickBy: 'reached' | 'approach'): boolean {
  if (pickBy === 'approach')
    return a.approach < b.approach || (a.approach === b.approach && a.success > b.success);
  return a.success > b.success || (a.success === b.success && a.distance < b.distance);
}

/** Fit `opts.slot` to the retargeted source policy's chunks on the target's play frames. */
export async function retarget(policy: Policy, opts: RetargetOptions): Promise<RetargetResult> {
  if (opts.sources.length === 0) throw new Error('retarget: no source robots');
  if (opts.play.length === 0) throw new Error('retarget: no play episodes');
  const seed = opts.seed ?? 0;
  const rounds = opts.rounds ?? 0;
  for (const [name, v, min] of [
    ['steps', opts.steps ?? 200, 1],
    ['rounds', rounds, 0],
    ['tries', opts.tries ?? 10, 1],
    ['roundSteps', opts.roundSteps ?? 100, 1],
    ['candidates', opts.candidates ?? 1, 1],
    ['pickTries', opts.pickTries ?? 6, 1],
    ['rankBatches', opts.rankBatches ?? 8, 1],
  ] as const)
    if (!(Number.isInteger(v) && v >= min))
      throw new RangeError(`retarget: ${name} must be an integer >= ${min}, got ${v}`);
  if (opts.refitOnTries && !(opts.judge && 'refit' in opts.judge && opts.judge.refit))
    throw new Error(
      'retarget: refitOnTries needs a judge that refits on recorded tries (a BodyTracker)',
    );
  if (opts.pickBy !== undefined && opts.pickBy !== 'reached' && opts.pickBy !== 'approach')
    throw new RangeError(`retarget: pickBy must be 'reached' or 'approach', got ${opts.pickBy}`);
  const k = Math.min(opts.candidates ?? 1, opts.sources.length);
  const alsoTry = opts.alsoTry ?? [];
  const unknown = alsoTry.filter((n) => !opts.sources.some((x) => x.name === n));
  if (unknown.length > 0)
    throw new Error(`retarget: alsoTry names no source: ${unknown.join(', ')}`);
  if ((rounds > 0 || k > 1 || alsoTry.length > 0) && !opts.robot)
    throw new Error(
      `retarget: ${rounds > 0 ? 'rounds of tries' : 'picking among candidates by tries'} need the robot (opts.robot)`,
    );
  const env = opts.env ? { env: opts.env } : {};
  const rank = opts.rank ?? 'body';
  // the play's samples (features computed once: the perception rank and the play fit share them)
  let playRec: Awaited<ReturnType<RetargetOptions['toSamples']>> | undefined;
  const tracked = opts.play.every((ep) => ep.effector !== undefined && ep.effector.length > 0);
  if (rank === 'body' && !tracked)
    throw new Error(
      "retarget: ranking the sources by body needs the play's end-effector positions (rank 'perception' does not)",
    );
  const bodies = tracked
    ? opts.sources
        .map((s) => ({ name: s.name, error: kinematicError(s.embodiment, opts.play) }))
        .sort((a, b) => a.error - b.error)
    : [];
  const ranking =
    rank === 'body'
      ? bodies.map((b) => ({ name: b.name, score: b.error }))
      : await perceptionRanking(
          policy,
          opts,
          (playRec = await opts.toSamples([...opts.play])),
          seed,
        );
  const byName = new Map(opts.sources.map((s) => [s.name, s]));
  const maps = opts.maps ?? new Map<string, Matrix>();
  const targetMap = identifyActionMap(opts.play);
  const mapOf = async (src: RetargetSource) => {
    let B = maps.get(src.name);
    if (!B) {
      const played = await runEpisodes(
        src.embodiment,
        'reach',
        seedRange(opts.sourcePlay ?? 10, 900_000),
        randomController(seed),
        { record: true, untilSuccess: false, ...env },
      );
      B = identifyActionMap(played.episodes);
      maps.set(src.name, B);
    }
    return retargetMap(targetMap, B);
  };
  const candidates: RetargetResult['candidates'] = [];
  // the reader of recorded tries: the judge, or with refitOnTries the judge fitted again on every
  // try so far (the candidates', then the rounds' under a judged keep 'best'), kept only then
  const triesSoFar: Episode[] = [];
  const readerOf = (more: readonly Episode[]) => {
    if (!(opts.judge && opts.refitOnTries)) return opts.judge;
    triesSoFar.push(...more);
    return (opts.judge as TryReader).refit!(triesSoFar);
  };
  let source = byName.get(ranking[0]!.name)!;
  // the ranking's first k, then alsoTry's sources not among them (a Set keeps the first place)
  const tryList = [...new Set([...ranking.slice(0, k).map((r) => r.name), ...alsoTry])];
  // with candidates, the first one tried sets both
  let map = tryList.length > 1 ? [] : await mapOf(source);
  if (tryList.length > 1) {
    // every candidate tries first; then the tries are read (with refitOnTries, by a reader
    // fitted again on all of them)
    const tried: { src: RetargetSource; m: Matrix; episodes: Episode[]; c?: Candidate }[] = [];
    for (const name of tryList) {
      const src = byName.get(name)!;
      const m = await mapOf(src);
      const r = await runEpisodes(
        opts.robot!,
        'reach',
        seedRange(opts.pickTries ?? 6, (opts.firstSeed ?? 30_000) + 500),
        retargetedController(
          policyController(policy, { slot: src.slot, rng: new Rng(seed * 1_000 + 500) }),
          m,
        ),
        opts.judge ? { ...env, record: true, untilSuccess: false } : env,
      );
      tried.push({
        src,
        m,
        episodes: r.episodes,
        ...(opts.judge
          ? {}
          : {
              c: {
                name,
                success: r.successRate,
                distance: r.meanFinalDistance,
                approach:
                  r.summaries.reduce((a, x) => a + x.closestDistance, 0) / r.summaries.length,
              },
            }),
      });
    }
    const reader = opts.judge ? readerOf(tried.flatMap((x) => x.episodes)) : undefined;
    let best: Candidate | undefined;
    for (const x of tried) {
      const c = x.c ?? judged(reader!, x.src.name, x.episodes);
      candidates.push(c);
      if (!best || better(c, best, opts.pickBy ?? 'reached')) {
        best = c;
        source = x.src;
        map = x.m;
      }
    }
  }
  const teacher = new Rng(seed * 1_000 + 99);
  // recorded episodes' frames with the teacher's mapped chunks as labels
  const labelled = async (episodes: readonly Episode[], salt: number, known?: typeof playRec) => {
    const rec = known ?? (await opts.toSamples([...episodes]));
    const batches = playSplit(
      policy,
      rec.samples,
      rec.meta,
      opts.batchSize ?? 16,
      new Rng(seed + salt),
      opts.slot,
      0,
    ).train;
    try {
      return {
        batches: label(policy, batches, source.slot, map, teacher),
        frames: rec.samples.length,
      };
    } finally {
      for (const b of batches) disposeBatch(b);
    }
  };
  const buffer: TrainBatch[] = [];
  let state: AlignState | undefined;
  const losses: number[] = [];
  try {
    const fromPlay = await labelled(opts.play, 13, playRec);
    buffer.push(...fromPlay.batches);
    let frames = fromPlay.frames;
    if ((opts.start ?? 'mean') === 'mean')
      fillWithSourceMean(
        policy,
        opts.slot,
        opts.sources.map((s) => s.slot),
      );
    else copySlot(policy, source.slot, opts.slot);
    const fit = async (steps: number) => {
      const o = await align(policy, buffer, {
        slot: opts.slot,
        parametrisation: 'free',
        init: 'current',
        maxSteps: steps,
        lr: opts.lr ?? 1e-3,
        objective: 'action',
        seed,
        ...(state ? { state } : {}),
      });
      state = o.state;
      if (o.stopReason === 'nonFinite')
        throw new Error('retarget: the action loss became non-finite');
      losses.push(...o.losses);
      return o.losses.reduce((a, b) => a + b, 0) / Math.max(1, o.losses.length);
    };
    let loss = await fit(opts.steps ?? 200);
    const best = (opts.keep ?? 'last') === 'best' && rounds > 0;
    const slots = best ? [slotVector(policy, opts.slot)] : [];
    const scores: number[] = [];
    // keep 'best' under a judge: the tries run full length and the judge's read scores them
    const judgedRounds = best && opts.judge !== undefined;
    const score = (r: RunResult) =>
      judgedRounds ? judged(readerOf(r.episodes)!, source.name, r.episodes).success : r.successRate;
    await opts.onRound?.({ round: 0, trySuccess: Number.NaN, frames, loss });
    const tries = opts.tries ?? 10;
    for (let r = 1; r <= rounds; r++) {
      // the slot tries; the teacher labels the frames the tries visited (DAgger)
      const tried = await runEpisodes(
        opts.robot!,
        'reach',
        seedRange(tries, (opts.firstSeed ?? 30_000) + 1_000 * r),
        policyController(policy, { slot: opts.slot, rng: new Rng(seed * 1_000 + r) }),
        { record: true, ...(judgedRounds ? { untilSuccess: false } : {}), ...env },
      );
      const trySuccess = score(tried);
      const more = await labelled(tried.episodes, 1_000 * r);
      buffer.push(...more.batches);
      frames += more.frames;
      loss = await fit(opts.roundSteps ?? 100);
      scores.push(trySuccess);
      if (best) slots.push(slotVector(policy, opts.slot));
      await opts.onRound?.({ round: r, trySuccess, frames, loss });
    }
    let kept = rounds;
    if (best)
      kept = await keepBestFit(policy, opts.robot!, {
        slot: opts.slot,
        fits: slots,
        tried: scores,
        tries,
        firstSeed: opts.firstSeed ?? 30_000,
        seed,
        ...(opts.env ? { env: opts.env } : {}),
        score,
        ...(judgedRounds ? { record: true } : {}),
      });
    return {
      source: source.name,
      sourceSlot: source.slot,
      map,
      bodies,
      ranking,
      candidates,
      losses,
      tried: scores,
      kept,
    };
  } finally {
    state?.dispose();
    for (const b of buffer) disposeBatch(b);
  }
}

/**
 * The sources ordered by the perception loss (the state from the image) through each source's
 * slot on the play's frames (the first `rankBatches` batches of 16, one noise draw shared by all
 * sources), lowest first. `opts.slot` holds each source's slot in turn and is refilled after.
 */
async function perceptionRanking(
  policy: Policy,
  opts: RetargetOptions,
  rec: Awaited<ReturnType<RetargetOptions['toSamples']>>,
  seed: number,
): Promise<{ name: string; score: number }[]> {
  const all = playSplit(policy, rec.samples, rec.meta, 16, new Rng(seed + 17), opts.slot, 0).train;
  const batches = all.slice(0, opts.rankBatches ?? 8);
  try {
    return opts.sources
      .map((s) => {
        copySlot(policy, s.slot, opts.slot);
        const l = evaluateLosses(policy, batches, { seed: seed + 777 });
        if (!Number.isFinite(l.perception))
          throw new Error(`retarget: the perception loss through ${s.name}'s slot is not finite`);
        return { name: s.name, score: l.perception };
      })
      .sort((a, b) => a.score - b.score);
  } finally {
    for (const b of all) disposeBatch(b);
  }
}

/**
 * The policy's chunks [B, H, n] for `batch` through `sourceSlot`, each action mapped by R and
 * scaled down as a whole to stay in [-1, 1] (what `retargetedController` sends, per chunk).
 */
export function retargetedChunks(
  policy: Policy,
  batch: TrainBatch,
  sourceSlot: number,
  map: Matrix,
  rng: Rng,
): tf.Tensor3D {
  return tf.tidy(() => {
    const n = batch.state.shape[0]!;
    const chunk = policy.sampleActions(
      { ...batch, slot: tf.fill([n], sourceSlot, 'int32') },
      { rng, actionDims: map.length },
    );
    const [, h, d] = chunk.shape as [number, number, number];
    const moved = tf.matMul(chunk.reshape([n * h, d]), tf.tensor2d(map), false, true);
    return tf.div(moved, tf.maximum(tf.max(tf.abs(moved), 1, true), 1)).reshape([n, h, d]);
  });
}

/**
 * Copies of `batches` whose action chunks are the policy's through `sourceSlot`, mapped by R
 * (each action scaled down as a whole to stay in [-1, 1]), whole chunks, as demo rows.
 */
function label(
  policy: Policy,
  batches: readonly TrainBatch[],
  sourceSlot: number,
  map: Matrix,
  rng: Rng,
): TrainBatch[] {
  return batches.map(
    (b) =>
      tf.tidy(() => {
        const out: TrainBatch = {
          images: b.images.clone(),
          promptIds: b.promptIds.clone(),
          promptMask: b.promptMask.clone(),
          state: b.state.clone(),
          nextFeatures: b.nextFeatures.clone(),
          actions: retargetedChunks(policy, b, sourceSlot, map, rng),
          isDemo: tf.ones([b.state.shape[0]!]),
        };
        for (const k of ['imageMask', 'slot', 'nextState', 'objects'] as const) {
          const t = b[k];
          if (t) out[k] = t.clone();
        }
        return out as unknown as tf.TensorContainer;
      }) as unknown as TrainBatch,
  );
}
