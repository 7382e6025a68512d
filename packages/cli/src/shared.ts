// Pieces several commands share: embodiments by name, frame files in memory as samples,
// training batches with each row's slot, and policies from checkpoints with their slot map.
import { resolve } from 'node:path';
import {
  AdapterStore,
  type AlignWeights,
  type LoadedCheckpoint,
  loadCheckpoint,
  trainBatchFromHost,
  type WeightsChoice,
} from '@selfalign/align';
import { Rng } from '@selfalign/core';
import { readCheckpointBytes } from '@selfalign/core/node';
import {
  type DatasetMeta,
  defaultEncoderModel,
  type EpisodeData,
  episodeSamples,
  type FeatureExtractor,
  OnnxFeatureExtractor,
  packBatch,
  readEpisodes,
  type Sample,
} from '@selfalign/data';
import {
  disposeBatch,
  EXTRA_ALIGNMENT_TASKS,
  getConfig,
  type Policy,
  type PolicyConfig,
  type TrainBatch,
} from '@selfalign/experts';
import {
  BodyTracker,
  EffectorJudge,
  episodeData,
  firstFreeSlot,
  framesMeta,
  lastLinkShrink,
  nearestSourceSlot,
  playSplit,
  type TargetRead,
} from '@selfalign/harness';
import {
  type Controller,
  type Embodiment,
  type Episode,
  getPreset,
  PRESETS,
  randomController,
  runEpisodes,
  sampleSources,
  seedRange,
  type TaskName,
} from '@selfalign/sim';
import { type Args, UsageError, UserError } from './io.js';

/** A slot index the policy has (usage error otherwise). */
export function checkSlot(command: string, slot: number, policy: Policy): number {
  const e = policy.config.ttt.slots;
  if (slot >= e)
    throw new UsageError(
      `${command}: --slot ${slot} does not exist: the policy has slots 0..${e - 1}`,
    );
  return slot;
}

/** The arm's joints fit the policy's action dims (a one-line error naming the command otherwise). */
export function checkJoints(command: string, joints: number, policy: Policy): void {
  if (joints > policy.config.actionDim)
    throw new UserError(
      `${command}: the arm has ${joints} joints, the policy at most ${policy.config.actionDim} action dims`,
    );
}

/**
 * Where a command that fits a new slot writes it: the adapter store and name (checked before any
 * work), the slot (--slot, or the first one no trained robot holds) and the trained robots'
 * slots. One-line errors name the command.
 */
export function adapterTarget(
  command: string,
  args: Args,
  policy: Policy,
  slots: Record<string, number>,
  adaptersDir: string,
): { store: AdapterStore; name: string; slot: number; used: Set<number> } {
  const name = args.str('adapter');
  const store = new AdapterStore(adaptersDir);
  store.pathOf(name);
  const used = new Set(Object.values(slots));
  const E = policy.config.ttt.slots;
  const slot = args.has('slot')
    ? checkSlot(command, args.int('slot', undefined, 0), policy)
    : firstFreeSlot(policy, used);
  if (slot === undefined || slot >= E)
    throw new UserError(`${command}: no free slot among ${E}; pass --slot`);
  return { store, name, slot, used };
}

/**
 * A preset name (`perm`, `source`, ...; 3 links) or a family member `src-K` (with its family
 * seed and number of links).
 */
export function embodimentByName(
  name: string,
  familySeed: number,
  familySize = 4096,
  links = 3,
): Embodiment {
  if (name in PRESETS) {
    if (links !== 3)
      throw new UserError(
        `'${name}' is a 3-link preset; --links ${links} takes family members src-K only`,
      );
    return getPreset(name);
  }
  const m = /^src-(\d+)$/.exec(name);
  if (m && Number(m[1]) < familySize)
    return sampleSources(Number(m[1]) + 1, familySeed, links)[Number(m[1])]!;
  throw new UserError(
    `unknown embodiment '${name}': use a preset (${Object.keys(PRESETS).join(', ')}) or src-K from the source family`,
  );
}

/** Every sample of the files, in memory (simulator-scale data). */
export async function loadSamples(
  files: readonly string[],
  horizon: number,
): Promise<{ samples: Sample[]; meta: DatasetMeta; fileOf: number[] }> {
  const samples: Sample[] = [];
  const fileOf: number[] = [];
  let meta: DatasetMeta | undefined;
  for (const [fi, f] of files.entries()) {
    for await (const ep of readEpisodes(f)) {
      if (
        meta &&
        (meta.imageShape.join() !== ep.meta.imageShape.join() ||
          meta.featureDim !== ep.meta.featureDim ||
          meta.objectDim !== ep.meta.objectDim)
      ) {
        throw new UserError(
          `${f}: image shape, feature dim or object positions differ from ${files[0]}`,
        );
      }
      meta ??= ep.meta;
      for (const s of episodeSamples(ep, ep.meta, horizon)) {
        samples.push(s);
        fileOf.push(fi);
      }
    }
  }
  if (!meta || samples.length === 0) throw new UserError(`no frames in ${files.join(', ')}`);
  return { samples, meta, fileOf };
}

/** Slot of each embodiment name, in order of first appearance. */
export function slotMap(
  samples: readonly Sample[],
  start: Record<string, number> = {},
): Record<string, number> {
  const map = { ...start };
  let next = Math.max(-1, ...Object.values(map)) + 1;
  for (const s of samples) if (!(s.embodiment in map)) map[s.embodiment] = next++;
  return map;
}

/** A batch of `size` samples drawn with `rng`, rows on their embodiment's slot. */
export function drawBatch(
  policy: Policy,
  samples: readonly Sample[],
  meta: DatasetMeta,
  size: number,
  rng: Rng,
  slots: Record<string, number> | number,
): TrainBatch {
  return batchOfRows(policy, samples, meta, drawRows(samples.length, size, rng), slots);
}

/** `size` row indices drawn with replacement from `n` rows (at most `n`). */
export function drawRows(n: number, size: number, rng: Rng): number[] {
  return Array.from({ length: Math.min(size, n) }, () => rng.int(n));
}

/** Draws `size` row indices. */
export type RowSampler = (size: number, rng: Rng) => number[];

/**
 * A sampler that gives each group (a data file) a share of every batch in proportion to its
 * weight, rows uniform within the group: `groupOf[i]` is row i's group (`drawRows` is the
 * unweighted draw: every row equally likely).
 */
export function weightedRows(
  groupOf: readonly number[],
  weights: readonly number[],
  names: readonly string[] = weights.map((_, i) => `group ${i}`),
): RowSampler {
  const rows: number[][] = weights.map(() => []);
  for (const [i, g] of groupOf.entries()) {
    if (g < 0 || g >= weights.length)
      throw new RangeError(`weightedRows: row ${i} is in group ${g}, ${weights.length} weights`);
    rows[g]!.push(i);
  }
  for (const [g, w] of weights.entries()) {
    if (!(Number.isFinite(w) && w >= 0))
      throw new RangeError(`weightedRows: the weight of ${names[g]} is ${w}, not a number >= 0`);
    if (w > 0 && rows[g]!.length === 0)
      throw new UserError(`data weight ${w} for ${names[g]}, which has no rows`);
  }
  const total = weights.reduce((a, w) => a + w, 0);
  if (!(total > 0)) throw new RangeError('weightedRows: every weight is 0');
  const cum: number[] = [];
  let acc = 0;
  for (const w of weights) cum.push((acc += w / total));
  return (size, rng) =>
    Array.from({ length: size }, () => {
      const u = rng.uniform();
      let g = cum.findIndex((c) => u < c);
      if (g < 0) g = cum.findLastIndex((_, k) => weights[k]! > 0);
      const pool = rows[g]!;
      return pool[rng.int(pool.length)]!;
    });
}

/** The batch of samples `index`, each row on its embodiment's slot (or all on one slot). */
export function batchOfRows(
  policy: Policy,
  samples: readonly Sample[],
  meta: DatasetMeta,
  index: readonly number[],
  slots: Record<string, number> | number,
): TrainBatch {
  const pick = index.map((i) => samples[i]!);
  const slot = typeof slots === 'number' ? slots : pick.map((s) => slots[s.embodiment]!);
  return trainBatchFromHost(policy, packBatch(pick, meta.imageShape), slot);
}

/** `n` recorded episodes of `controller` on `e` from seed `seed0` (frames at the policy's size). */
export async function recordedEpisodes(
  e: Embodiment,
  controller: Controller,
  n: number,
  seed0: number,
  c: Policy['config'],
  task: TaskName = 'reach',
): Promise<Episode[]> {
  const r = await runEpisodes(e, task, seedRange(n, seed0), controller, {
    record: true,
    env: { imageSize: c.vision.imageSize },
  });
  return r.episodes;
}

/** Episodes of `controller` on `e`, as in-memory samples with features. */
export async function recordEpisodes(
  e: Embodiment,
  controller: Controller,
  kind: 'demo' | 'play',
  n: number,
  seed0: number,
  extractor: FeatureExtractor,
  c: Policy['config'],
  task: TaskName = 'reach',
): Promise<{ samples: Sample[]; meta: DatasetMeta }> {
  const episodes = await recordedEpisodes(e, controller, n, seed0, c, task);
  return episodesAsSamples(e, episodes, kind, extractor, c);
}

/**
 * A checkpoint's named source slots as retarget's teachers, each with its body from the simulator
 * family; a user error names a slot whose robot is not a simulator robot (its body is unknown).
 */
export function retargetSources(
  command: string,
  named: Iterable<readonly [string, number]>,
  familySeed = 1,
): { name: string; slot: number; embodiment: Embodiment }[] {
  return [...named].map(([name, slot]) => {
    try {
      return { name, slot, embodiment: embodimentByName(name, familySeed) };
    } catch {
      throw new UserError(
        `${command}: the checkpoint's source robot '${name}' is not a simulator robot (a preset or src-K): its body is unknown`,
      );
    }
  });
}

/** Recorded episodes of `e` as in-memory samples with features. */
export async function episodesAsSamples(
  e: Pick<Embodiment, 'links'>,
  episodes: readonly Episode[],
  kind: 'demo' | 'play',
  extractor: FeatureExtractor,
  c: Policy['config'],
): Promise<{ samples: Sample[]; meta: DatasetMeta }> {
  const meta = framesMeta(e, kind, c.vision.imageSize, c.featureDim);
  const samples: Sample[] = [];
  for (const [i, ep] of episodes.entries())
    for (const s of episodeSamples(await simEpisodeData(ep, i, extractor), meta, c.actionHorizon))
      samples.push(s);
  return { samples, meta };
}

export interface LoadedPolicy extends LoadedCheckpoint {
  slots: Record<string, number>;
}

/** A checkpoint's policy (its weights' moving average where it has one, unless `weights` is raw). */
export async function loadPolicy(path: string, weights?: WeightsChoice): Promise<LoadedPolicy> {
  const loaded = await loadCheckpoint(path, weights ? { weights } : {});
  const slots = (loaded.info['slots'] ?? {}) as Record<string, number>;
  return { ...loaded, slots };
}

/** `--weights ema|raw`: which of a checkpoint's weights to use (ema where it has them, by default). */
export const weightsArg = (args: Args): WeightsChoice =>
  args.choice('weights', ['ema', 'raw'], 'ema');

/** A named policy config, or a user error naming the command. */
export function configByName(name: string, command: string): PolicyConfig {
  // pi0 records the published sizes (a layout to load real weights into), not a config to run here
  if (name !== 'tiny' && name !== 'small')
    throw new UsageError(`${command}: --config must be tiny or small, got '${name}'`);
  try {
    return getConfig(name);
  } catch (err) {
    throw new UserError(`${command}: ${(err as Error).message}`);
  }
}

/** `default` (the embedded encoder, `dim` features) or an ONNX model file. */
export async function featureExtractor(
  model: string,
  cwd: string,
  dim = 64,
  opts: { batchSize?: number; outputName?: string } = {},
): Promise<FeatureExtractor> {
  if (model === 'default') {
    return OnnxFeatureExtractor.create(defaultEncoderModel({ dim }), {
      ...opts,
      name: `selfalign-default-encoder(dim=${dim})`,
    });
  }
  return OnnxFeatureExtractor.create(resolve(cwd, model), opts);
}

/** A recorded simulator episode as frame-file data, with features from `extractor` when given. */
export async function simEpisodeData(
  ep: Episode,
  episodeIndex: number,
  extractor?: FeatureExtractor,
): Promise<EpisodeData> {
  const features = extractor
    ? await extractor.extract(ep.frames, ep.length, ep.imageSize, ep.imageSize)
    : undefined;
  return episodeData(ep, episodeIndex, features);
}

/**
 * The alignment-task loss weights of a flag (`results --align-weights`, `align --task-weights`):
 * perception,dynamics,inverse[,stateDynamics[,kinematics]], each a number >= 0; undefined when
 * the flag is absent. The fourth and fifth are for a policy pretrained with those extra tasks
 * (`pretrain --extra-tasks`); `checkTaskWeights` checks that once the policy is loaded.
 */
export function parseTaskWeights(args: Args, flag: string): Partial<AlignWeights> | undefined {
  if (!args.has(flag)) return undefined;
  const w = args.list(flag).map(Number);
  const most = 3 + EXTRA_ALIGNMENT_TASKS.length;
  if (w.length < 3 || w.length > most || w.some((x) => !(Number.isFinite(x) && x >= 0)))
    throw new UsageError(
      `${args.command}: --${flag} takes 3 to ${most} weights >= 0 (perception,dynamics,inverse[,${EXTRA_ALIGNMENT_TASKS.join('[,')}${']'.repeat(EXTRA_ALIGNMENT_TASKS.length)}), got '${args.str(flag)}'`,
    );
  const out: Partial<AlignWeights> = { perception: w[0]!, dynamics: w[1]!, inverseDynamics: w[2]! };
  for (const [i, task] of EXTRA_ALIGNMENT_TASKS.entries())
    if (w[3 + i] !== undefined) out[task] = w[3 + i]!;
  return out;
}

const ORDINAL = ['fourth', 'fifth', 'sixth'];

/**
 * A positive weight of an extra task needs a policy that has the task (a clear error, before
 * any work); a 0 for a task the policy lacks is dropped (it only holds a later task's place).
 */
export function checkTaskWeights(
  command: string,
  flag: string,
  weights: Partial<AlignWeights> | undefined,
  config: PolicyConfig,
  ckpt: string,
): void {
  if (weights === undefined) return;
  for (const [i, task] of EXTRA_ALIGNMENT_TASKS.entries()) {
    const w = weights[task];
    if (w === undefined || config.extraAlignmentTasks?.includes(task)) continue;
    if (w > 0)
      throw new UserError(
        `${command}: --${flag} has a ${ORDINAL[i]} (${task}) weight, but ${ckpt} was not pretrained with that task (pretrain --extra-tasks ${task})`,
      );
    delete weights[task];
  }
}

/**
 * A camera judge file (selfalign judge) for `policy`: a missing or corrupt file is a
 * CheckpointError naming it, a judge trained for another checkpoint a user error.
 */
export async function loadJudge(
  command: string,
  path: string,
  policy: Policy,
): Promise<EffectorJudge> {
  const judge = EffectorJudge.decode(policy, await readCheckpointBytes(path), path);
  if (judge.metadata['fingerprint'] !== policy.fingerprint) {
    judge.dispose();
    throw new UserError(
      `${command}: ${path} is the judge of checkpoint ${judge.metadata['fingerprint'] ?? '(unknown)'}, this checkpoint is ${policy.fingerprint}; train one with selfalign judge --checkpoint`,
    );
  }
  return judge;
}

/**
 * The slot among `candidates` whose alignment losses (align's default weights) on a robot's
 * recorded `play` are lowest, as `results` picks its nearest source slot: every frame in batches
 * of 16 shuffled by `Rng(seed + 11)`, the share `heldOut` of the episodes left out, at most 8
 * batches scored.
 */
export async function nearestSlotOnPlay(
  policy: Policy,
  e: Pick<Embodiment, 'links'>,
  play: readonly Episode[],
  extractor: FeatureExtractor,
  slot: number,
  candidates: readonly number[],
  opts: { seed: number; heldOut: number },
): Promise<number> {
  const rec = await episodesAsSamples(e, play, 'play', extractor, policy.config);
  const split = playSplit(
    policy,
    rec.samples,
    rec.meta,
    16,
    new Rng(opts.seed + 11),
    slot,
    opts.heldOut,
  );
  try {
    return nearestSourceSlot(policy, split.train, candidates, slot, { seed: opts.seed }).nearest;
  } finally {
    for (const b of [...split.train, ...split.heldOut]) disposeBatch(b);
  }
}

/**
 * How much shorter than the true last link the body fitted to `judge`'s positions comes out, as the
 * factor that corrects it (true over fitted), measured on 10 random-play episodes of each of the
 * first `n` source robots, whose bodies are known (docs/results.md 2u: x 1.395 on the shipped
 * judge); `robots` says how many it was measured on.
 */
export async function judgeShrink(
  judge: EffectorJudge,
  sources: readonly Embodiment[],
  imageSize: number,
  n = 8,
): Promise<{ factor: number; robots: number }> {
  const robots = [];
  for (const body of sources.slice(0, n)) {
    const { episodes } = await runEpisodes(
      body,
      'reach',
      seedRange(10, 40_000),
      randomController(7),
      {
        record: true,
        untilSuccess: false,
        env: { imageSize },
      },
    );
    robots.push({ body, play: episodes });
  }
  const factor = lastLinkShrink(robots, (ep) => judge.positions(ep.frames, ep.length), sources);
  return { factor, robots: robots.length };
}

/**
 * `--track judge|body`, `--shrink X` and `--judge-target frame|start` (practice, retarget): how the
 * judge's tries are read, the factor on the fitted body's last link when given (measured on the
 * source robots otherwise), and where the body's read takes each try's target from. `tracks` adds
 * what a command reads beside those (retarget's `body+tries`: the body fitted again on the play
 * and the candidates' tries); with `--judge` and no `--track`, `preferred` reads, and with no
 * `--judge-target`, `target` (the command's best-measured reads; docs/results.md 2u, 2y, 2z).
 */
export function trackArgs<T extends string = never>(
  command: string,
  args: Args,
  opts: { tracks?: readonly T[]; preferred?: 'judge' | 'body' | T; target?: TargetRead } = {},
): { track: 'judge' | 'body' | T; shrink: number | undefined; target: TargetRead } {
  const track = args.choice(
    'track',
    ['judge', 'body', ...(opts.tracks ?? [])] as const,
    args.has('judge') ? (opts.preferred ?? 'judge') : 'judge',
  );
  if (track !== 'judge' && !args.has('judge'))
    throw new UserError(
      `${command}: --track ${track} fits a body to the positions of --judge FILE`,
    );
  if (args.has('shrink') && track === 'judge')
    throw new UserError(`${command}: --shrink scales the body of --track body`);
  if (args.has('judge-target') && track === 'judge')
    throw new UserError(
      `${command}: --judge-target says where the body of --track body reads the target`,
    );
  const shrink = args.has('shrink')
    ? args.num('shrink', undefined, (n) => Number.isFinite(n) && n > 0, 'a positive number')
    : undefined;
  const target = args.choice('judge-target', ['frame', 'start'] as const, opts.target ?? 'frame');
  return { track, shrink, target };
}

/**
 * The judged body of `--track body`: fitted to `judge`'s positions on `play`, from the source
 * robots' bodies, its last link scaled by `given` or by the shrink measured on those robots, the
 * tries' targets read as `target` says; the progress line says which.
 */
export async function judgedBodyOnPlay(
  command: string,
  judge: EffectorJudge,
  play: readonly Episode[],
  sources: readonly Embodiment[],
  imageSize: number,
  given: number | undefined,
  target: TargetRead = 'frame',
): Promise<{ tracker: BodyTracker; shrink: number; line: string }> {
  const shrink = given ?? (await judgeShrink(judge, sources, imageSize)).factor;
  return {
    tracker: judgedBody(judge, play, sources, shrink, target),
    shrink,
    line: `${command}: tries read through a body fitted to the judge on ${play.length} play trajectories, last link x ${shrink.toFixed(3)}${given === undefined ? ' (measured on the source robots)' : ''}; ${TARGET_READS[target]}`,
  };
}

/** What reads the tries under each `--track`, as the saved stats name it (practice, retarget). */
export const TRACK_READERS = {
  judge: 'judge',
  body: 'judged body',
  'body+tries': 'judged body, refitted on the tries',
} as const;

/** How each `TargetRead` reads a try's target, for progress lines. */
const TARGET_READS: Record<TargetRead, string> = {
  frame: "each try's target as the judge reads it in every frame",
  start: "each try's target read once, from its first 5 frames",
};

/**
 * A tracker that reads tries through a body fitted to `judge`'s positions on the robot's `play`
 * (its last link scaled by `shrink`, from `judgeShrink`), the tries' targets read by the judge in
 * every frame, or once from each try's first frames (`target` 'start', docs/results.md 2z).
 */
export function judgedBody(
  judge: EffectorJudge,
  play: readonly Episode[],
  starts: readonly Embodiment[],
  shrink: number,
  target: TargetRead = 'frame',
): BodyTracker {
  return BodyTracker.fit(
    play,
    (ep) => judge.positions(ep.frames, ep.length),
    starts,
    target === 'start'
      ? (ep) => judge.startTargetPositions(ep.frames, ep.length)
      : (ep) => judge.targetPositions(ep.frames, ep.length),
    { lastLinkScale: shrink },
  );
}
