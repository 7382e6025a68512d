// selfalign pretrain: multi-embodiment pretraining from frame files, each embodiment on its own
// TTT slot (in order of first appearance); the command line, seed, slot map and duration are
// recorded in the checkpoint.

import { resolve } from 'node:path';
import { loadCheckpoint, SlotParam } from '@selfalign/align';
import { Rng, tf } from '@selfalign/core';
import { computeNormStats, type DatasetMeta, type Sample } from '@selfalign/data';
import {
  createPolicy,
  EXTRA_ALIGNMENT_TASKS,
  type ExtraAlignmentTask,
  type Policy,
  type PolicyConfig,
  withExtraAlignmentTasks,
  withSlots,
  withTttInner,
} from '@selfalign/experts';
import { firstFreeSlot } from '@selfalign/harness';
import {
  type AlignAwareOptions,
  defaultWorkers,
  isPrefixParam,
  PrefixStore,
  pretrain as runPretrain,
} from '@selfalign/pretrain';
import { fingerprint } from '@selfalign/ttt';
import type { Command } from '../command.js';
import { type Io, Progress, UsageError, UserError } from '../io.js';
import { checkOutputs, trainingState } from '../paths.js';
import {
  batchOfRows,
  configByName,
  drawBatch,
  drawRows,
  loadPolicy,
  loadSamples,
  type RowSampler,
  slotMap,
  weightedRows,
} from '../shared.js';

/** `--data-weights` as a row sampler (every row equally likely without it). */
function dataSampler(
  arg: string | undefined,
  files: readonly string[],
  fileOf: readonly number[],
): RowSampler {
  if (arg === undefined) return (size, rng) => drawRows(fileOf.length, size, rng);
  const weights = arg.split(',').map((w) => (w.trim() === '' ? Number.NaN : Number(w)));
  if (weights.length !== files.length)
    throw new UsageError(
      `pretrain: --data-weights has ${weights.length} weights for ${files.length} --data files`,
    );
  if (weights.some((w) => !(Number.isFinite(w) && w >= 0)) || !weights.some((w) => w > 0))
    throw new UsageError(
      `pretrain: --data-weights must be numbers >= 0, not all 0, one per --data file; got '${arg}'`,
    );
  return weightedRows(fileOf, weights, files);
}

export const pretrainCommand: Command = {
  name: 'pretrain',
  summary: 'pretrain a policy on demo (+ play) frame files from many embodiments, a TTT slot each',
  usage: `selfalign pretrain --data FILES --out CKPT [options]
  --data FILES           comma-separated frame files (demo and play; need features)
  --config C             tiny | small                          (default small)
  --steps N              total steps                           (default 2000)
  --batch-size B         (default 16)
  --lr LR                peak learning rate                    (default 3e-4)
  --warmup N             warm-up steps                         (default 100)
  --seed S               (default 0)
  --checkpoint-every K   atomic checkpoint every K steps       (default 500)
  --resume               continue from --out
  --contrast W:MARGIN    slot-contrast loss weight and margin
  --alignment-defined-slots   W1/b1 learn from the alignment losses only
  --align-aware W:ALPHA[:K]   align-aware pretraining: each step a source robot plays the new
                         robot (slot = mean of the others, K SGD align steps of rate ALPHA on
                         its play rows) and W x its action loss through the adapted slot joins
                         the gradient (one thread; needs play rows)
  --align-aware-param P  what the inner align steps move: free (the slot's every number) or
                         span (coefficients over the other sources' slots)  (default free)
  --align-aware-rows N   play rows and demo rows of each such meta batch    (default 8)
  --align-aware-data FILES   frame files (demo + play) of other robots that play the new
                         robot instead of the pretraining robots: they get no slot of their
                         own (their rows ride on the first free slot), so the term learns on
                         robots that pretraining never fitted a slot to
  --align-aware-every N  take the meta term every N steps                   (default 1)
  --align-aware-start S  mean: the inner steps start at the sources' mean; learned[:SCALE]: at a
                         start the term trains (first-order MAML; kept in the checkpoint), so a
                         move that helps every robot alike goes to the start and the steps must
                         carry the robot; SCALE x the rate of the network (default 1; the
                         inner steps move far more per step) (needs --align-aware-data)
                                                                         (default mean)
  --slot-rank D          a low-rank embodiment code: every source robot's slot is generated
                         from D numbers (slot = M + z H, shared by the TTT layers; the code
                         trains, not the slots; it starts from the slots' top D principal
                         directions, e.g. of an --init checkpoint); align's span
                         parametrisation then searches the D-dimensional space of codes
  --init CKPT            start from this checkpoint's weights, slots and norm stats (new
                         optimiser and schedule: fine-tune a pretrained policy)
  --slots N              TTT slots of the policy (default: the config's, or --init's): with
                         --init, room for more source robots than it has; the slots its robots
                         do not use start at the mean of the ones they do
  --extra-tasks T,...    alignment tasks beyond the design's three, both blind (without the
                         image, so the embodiment they need can only come from the TTT slot):
                         stateDynamics (the state after the action chunk from the state and
                         the actions), kinematics (the image features of a frame from its
                         joint state: the body's link lengths and encoder offsets);
                         with --init the new task's weights start fresh, the rest as the
                         checkpoint has them (default: --init's or the resumed run's tasks)
  --keypoint-weight W    weight of the auxiliary loss that puts the vision tower's keypoints
                         on the task objects (default 1 when the data has object positions
                         and the config has keypoints, else 0)
  --state-dims N         keep the first N state values (e.g. 6 = joint angles without
                         velocities; default all)
  --no-play              drop play rows
  --ttt-inner M          the TTT layers' inner step: dual (the design's one batch-parallel
                         step on the tokens' own reconstruction loss) or none (the slot as a
                         plain linear modulation, XQ W1 + b1); with --init the weights carry
                         over (default: the config's, or --init's: dual)
  --data-weights W,...   each --data file's share of every batch, in proportion (e.g. 1,3,0.5
                         for reach demos, push demos, play); rows uniform within a file
                         (default: every row equally likely, so files weigh by their size)
  --workers N            data-parallel replicas on worker threads, this one included
                         (default: the cores available; 1 with --contrast)
  --force                overwrite a resumable checkpoint at --out (without --resume)
  --log-every N          also print a plain line with the loss terms every N steps (stderr;
                         for logs of long runs)
  --frozen-prefix        the vision tower and the VLM stay as --init (or the resumed run) has
                         them; every frame's prefix is computed once (float16 on the host,
                         ~48 KB per frame for small) and each step runs the two experts only
                         (with --align-aware the meta rows' prefix runs once per step)
  --ema DECAY            keep an exponential moving average of the weights (e.g. 0.999) in
                         the checkpoint; eval, align, export and --init then use it (eval
                         and export --weights raw for the raw weights)`,
  options: {
    data: { type: 'string' },
    out: { type: 'string' },
    config: { type: 'string' },
    steps: { type: 'string' },
    'batch-size': { type: 'string' },
    lr: { type: 'string' },
    warmup: { type: 'string' },
    seed: { type: 'string' },
    'checkpoint-every': { type: 'string' },
    resume: { type: 'boolean' },
    contrast: { type: 'string' },
    'alignment-defined-slots': { type: 'boolean' },
    'align-aware': { type: 'string' },
    'align-aware-rows': { type: 'string' },
    'align-aware-param': { type: 'string' },
    'align-aware-every': { type: 'string' },
    'align-aware-data': { type: 'string' },
    'align-aware-start': { type: 'string' },
    'slot-rank': { type: 'string' },
    slots: { type: 'string' },
    init: { type: 'string' },
    'extra-tasks': { type: 'string' },
    'no-play': { type: 'boolean' },
    'ttt-inner': { type: 'string' },
    'data-weights': { type: 'string' },
    'keypoint-weight': { type: 'string' },
    'state-dims': { type: 'string' },
    'log-every': { type: 'string' },
    workers: { type: 'string' },
    force: { type: 'boolean' },
    ema: { type: 'string' },
    'frozen-prefix': { type: 'boolean' },
  },
  async run(args, io) {
    const files = args.list('data').map((f) => resolve(io.cwd, f));
    const out = resolve(io.cwd, args.str('out'));
    checkOutputs('pretrain', files, [out]);
    const lr = args.lr('lr', 3e-4);
    let resumedFrom = 0;
    let resumedTasks: string[] = [];
    if (args.has('resume')) {
      const state = await trainingState(out);
      if (state === undefined)
        throw new UserError(
          `pretrain --resume: ${out} does not exist (leave out --resume to start)`,
        );
      if (!state.resumable)
        throw new UserError(
          `pretrain --resume: ${out} holds weights only (no optimiser state, no RNG state): it cannot be resumed exactly; start a new run from it with another --out`,
        );
      resumedFrom = state.step;
      resumedTasks = state.extraTasks;
    } else if ((await trainingState(out))?.resumable && !args.has('force')) {
      throw new UserError(
        `pretrain: ${out} is a resumable checkpoint (step ${(await trainingState(out))!.step}); give --resume to continue it, --force to overwrite it, or another --out`,
      );
    }
    const initFrom = args.optStr('init');
    if (initFrom && args.has('resume'))
      throw new UserError(
        'pretrain: --init starts a new run from a checkpoint; --resume continues --out',
      );
    const init = initFrom ? await loadPolicy(resolve(io.cwd, initFrom)) : undefined;
    const base = init?.policy.config ?? configByName(args.str('config', 'small'), 'pretrain');
    if (init && args.has('config') && args.str('config') !== base.name) {
      init.policy.dispose();
      throw new UserError(
        `pretrain --init: ${initFrom} is a '${base.name}' policy, not --config ${args.str('config')}`,
      );
    }
    const extraTasks = args.list(
      'extra-tasks',
      args.has('resume') ? resumedTasks : [...(base.extraAlignmentTasks ?? [])],
    );
    for (const t of extraTasks)
      if (!(EXTRA_ALIGNMENT_TASKS as readonly string[]).includes(t)) {
        init?.policy.dispose();
        throw new UsageError(
          `pretrain: --extra-tasks: unknown task '${t}'; tasks: ${EXTRA_ALIGNMENT_TASKS.join(', ')}`,
        );
      }
    const withTasks = withExtraAlignmentTasks(base, extraTasks as ExtraAlignmentTask[]);
    const slotCount = args.int('slots', withTasks.ttt.slots, 1);
    if (args.has('slots') && args.has('resume')) {
      init?.policy.dispose();
      throw new UserError(
        'pretrain --slots: a resumed run keeps its slots; give --slots to a new run (--init or --config)',
      );
    }
    if (init && slotCount < base.ttt.slots) {
      init.policy.dispose();
      throw new UserError(
        `pretrain --slots ${slotCount}: ${initFrom} has ${base.ttt.slots} slots; --slots can add slots, not remove them`,
      );
    }
    const innerArg = args.optStr('ttt-inner');
    if (innerArg !== undefined && innerArg !== 'dual' && innerArg !== 'none') {
      init?.policy.dispose();
      throw new UsageError(`pretrain: --ttt-inner must be dual or none, got '${innerArg}'`);
    }
    if (innerArg !== undefined && args.has('resume')) {
      init?.policy.dispose();
      throw new UserError(
        'pretrain --ttt-inner: a resumed run keeps its inner step; give --ttt-inner to a new run (--init or --config)',
      );
    }
    const config = withTttInner(withSlots(withTasks, slotCount), innerArg ?? withTasks.ttt.inner);
    const steps = args.int('steps', 2000, 1);
    const batchSize = args.int('batch-size', 16, 1);
    const seed = args.int('seed', 0);
    const contrastArg = args.optStr('contrast');
    const alignAwareArg = args.optStr('align-aware');
    const oneThread = contrastArg ? '--contrast' : alignAwareArg ? '--align-aware' : undefined;
    const workers = args.int('workers', oneThread ? 1 : defaultWorkers(), 1);
    if (workers > 1 && oneThread)
      throw new UserError(
        `pretrain: ${oneThread} runs in one thread; leave out --workers or give 1`,
      );
    let { samples, meta, fileOf } = await loadSamples(files, config.actionHorizon);
    if (args.has('no-play')) {
      fileOf = fileOf.filter((_, i) => samples[i]!.isDemo);
      samples = samples.filter((s) => s.isDemo);
    }
    const draw = dataSampler(args.optStr('data-weights'), files, fileOf);
    const initDims = init?.policy.stateDims;
    const stateDims = args.int('state-dims', initDims ?? meta.stateDim, 1);
    if (initDims !== undefined && stateDims !== initDims)
      throw new UserError(
        `pretrain --init: ${initFrom} takes ${initDims} state values, not --state-dims ${stateDims}`,
      );
    if (stateDims > meta.stateDim)
      throw new UserError(
        `pretrain: --state-dims ${stateDims} but the data has ${meta.stateDim} state values`,
      );
    const keypoints = config.vision.keypoints ?? 0;
    const canKeypoint = meta.objectDim !== undefined && meta.objectDim / 2 <= keypoints;
    const keypointWeight = args.num('keypoint-weight', canKeypoint ? 1 : 0);
    if (keypointWeight > 0 && !canKeypoint)
      throw new UserError(
        meta.objectDim === undefined
          ? 'pretrain: --keypoint-weight needs object positions in the data (selfalign collect writes them)'
          : `pretrain: the data has ${meta.objectDim / 2} objects, config '${config.name}' has ${keypoints} keypoints`,
      );
    if (keypointWeight === 0) samples = samples.map(({ objects: _, ...s }) => s);
    if (meta.featureDim !== config.featureDim) {
      throw new UserError(
        `pretrain: the data has ${meta.featureDim ?? 'no'} features per frame, config '${config.name}' needs ${config.featureDim} (add them with selfalign features)`,
      );
    }
    if (meta.imageShape[0] !== config.vision.imageSize) {
      throw new UserError(
        `pretrain: frames are ${meta.imageShape[0]} px, config '${config.name}' takes ${config.vision.imageSize} px`,
      );
    }
    const slots = slotMap(samples, init?.slots ?? {});
    const used = Object.keys(slots).length;
    if (used > config.ttt.slots)
      throw new UserError(
        `pretrain: ${used} embodiments but config '${config.name}' has ${config.ttt.slots} TTT slots`,
      );
    // --init keeps the checkpoint's norm stats (its weights were trained on them); a new
    // policy's state stats cover the dims it sees, and makeObservation keeps that many of every
    // later observation (eval, align, sample), so nothing else needs to know
    const policy = init
      ? withConfig(init.policy, config, seed, Object.values(init.slots))
      : createPolicy(config, { seed, normStats: await normStatsFor(files, stateDims), stateDims });
    const contrast = contrastArg
      ? (() => {
          const [w, m] = contrastArg.split(':').map(Number);
          if (!Number.isFinite(w) || !Number.isFinite(m))
            throw new UserError(`pretrain: --contrast must be WEIGHT:MARGIN, got '${contrastArg}'`);
          return { weight: w!, margin: m!, slots: Object.values(slots) };
        })()
      : undefined;
    const metaFiles = args.list('align-aware-data', []).map((f) => resolve(io.cwd, f));
    if (metaFiles.length && !alignAwareArg)
      throw new UserError('pretrain: --align-aware-data needs --align-aware');
    const metaRobots = metaFiles.length
      ? await loadSamples(metaFiles, config.actionHorizon)
      : undefined;
    if (metaRobots && metaRobots.meta.imageShape.join() !== meta.imageShape.join())
      throw new UserError(
        `pretrain: the --align-aware-data frames are ${metaRobots.meta.imageShape.join('x')}, the pretraining frames ${meta.imageShape.join('x')}`,
      );
    const scratch = firstFreeSlot(policy, Object.values(slots));
    if (metaRobots && scratch === undefined)
      throw new UserError(
        `pretrain --align-aware-data: every one of the ${config.ttt.slots} slots is a pretraining robot's; none is free for the other robots`,
      );
    const [startKind, scaleArg] = args.str('align-aware-start', 'mean').split(':');
    const startScale = scaleArg === undefined ? 1 : Number(scaleArg);
    if ((startKind !== 'mean' && startKind !== 'learned') || !(startScale > 0))
      throw new UsageError(
        `pretrain: --align-aware-start must be mean or learned[:SCALE] (SCALE > 0), got '${args.str('align-aware-start')}'`,
      );
    if (startKind === 'learned' && (!alignAwareArg || scratch === undefined || !metaRobots))
      throw new UserError(
        'pretrain: --align-aware-start learned needs --align-aware and --align-aware-data (robots without a slot, so every inner step moves the same variables)',
      );
    const alignAware = alignAwareArg
      ? alignAwareOptions(
          alignAwareArg,
          metaRobots?.samples ?? samples,
          meta,
          slots,
          policy,
          {
            rows: args.int('align-aware-rows', 8, 1),
            param: innerParam(args.str('align-aware-param', 'free')),
            every: args.int('align-aware-every', 1, 1),
            seed,
          },
          metaRobots ? scratch : undefined,
        )
      : undefined;
    if (alignAware && startKind === 'learned') {
      alignAware.start = learnedStart(policy, alignAware, scratch!, startScale);
      alignAware.startScale = startScale;
    }
    const slotRank = args.has('slot-rank') ? args.int('slot-rank', 0, 1) : undefined;
    if (slotRank !== undefined && slotRank >= used)
      throw new UserError(
        `pretrain: --slot-rank ${slotRank} does not constrain ${used} source robots (give fewer than ${used})`,
      );
    const frozenPrefix = args.has('frozen-prefix');
    if (frozenPrefix && !initFrom && !args.has('resume'))
      throw new UserError(
        'pretrain --frozen-prefix: the prefix must be trained already; give --init CKPT (or --resume)',
      );
    if (frozenPrefix && args.has('resume')) await copyPrefix(out, policy);
    const store = frozenPrefix ? prefixStore(policy, samples, meta, io) : undefined;
    const emaDecay = args.has('ema')
      ? args.num('ema', undefined, (n) => n > 0 && n < 1, 'a decay in (0, 1)')
      : undefined;
    const started = Date.now();
    if (resumedFrom > 0) io.err(`pretrain: resuming ${out} at step ${resumedFrom} of ${steps}`);
    const logEvery = args.int('log-every', 0, 0);
    const progress = new Progress(io, 'pretrain', steps, io.tty && !args.has('json'));
    let last = Number.NaN;
    try {
      const r = await runPretrain(
        policy,
        (step) => {
          const rng = new Rng(seed * 1_000_003 + step);
          const index = draw(batchSize, rng);
          const batch = batchOfRows(policy, samples, meta, index, slots);
          return store ? { ...batch, prefixCache: store.gather(index) } : batch;
        },
        {
          steps,
          lr,
          warmup: args.int('warmup', Math.min(100, Math.floor(steps / 10))),
          seed,
          workers,
          lossWeights: { keypoints: keypointWeight },
          ...(contrast ? { contrast } : {}),
          ...(alignAware ? { alignAware } : {}),
          ...(args.has('alignment-defined-slots') ? { alignmentDefinedSlots: true } : {}),
          ...(emaDecay !== undefined ? { ema: emaDecay } : {}),
          ...(frozenPrefix ? { frozenPrefix } : {}),
          ...(slotRank !== undefined
            ? { slotCode: { rank: slotRank, sources: Object.values(slots) } }
            : {}),
          checkpoint: {
            path: out,
            every: args.int('checkpoint-every', 500, 1),
            info: {
              command: `selfalign ${args.argv.join(' ')}`,
              seed,
              slots,
              stateDims,
              keypointWeight,
              ...(initFrom ? { init: resolve(io.cwd, initFrom) } : {}),
              data: files,
              startedAt: new Date(started).toISOString(),
            },
          },
          ...(args.has('resume') ? { resume: out } : {}),
          onStep: (step, loss, terms) => {
            last = loss;
            progress.tick(1, `loss ${loss.toFixed(3)}`);
            if (logEvery > 0 && step % logEvery === 0) {
              const parts = Object.entries(terms).map(([k, v]) => `${k} ${v.toFixed(4)}`);
              const secs = (Date.now() - started) / 1000;
              io.err(
                `${new Date().toISOString()} step ${step}/${steps} loss ${loss.toFixed(4)} ${parts.join(' ')} (${secs.toFixed(0)} s)`,
              );
            }
          },
        },
      );
      progress.end();
      const seconds = (Date.now() - started) / 1000;
      return {
        lines: [
          `pretrained '${config.name}' for ${r.step} steps in ${seconds.toFixed(0)} s on ${used} embodiments (last loss ${last.toFixed(3)}); checkpoint ${out}`,
        ],
        json: { out, steps: r.step, seconds, lastLoss: last, slots },
      };
    } finally {
      policy.dispose();
    }
  },
};

/** The resumed run's prefix (vision tower and VLM), which a frozen-prefix run never changes. */
async function copyPrefix(out: string, policy: Policy): Promise<void> {
  const saved = await loadCheckpoint(out, { weights: 'raw' });
  try {
    for (const [p, v] of saved.policy.params.select(isPrefixParam)) policy.params.get(p).assign(v);
  } finally {
    saved.policy.dispose();
  }
}

/** Every sample's prefix, computed once (the frozen-prefix phase), with progress on stderr. */
function prefixStore(policy: Policy, samples: readonly Sample[], meta: DatasetMeta, io: Io) {
  const started = Date.now();
  let shown = 0;
  const store = PrefixStore.build(
    policy,
    samples.length,
    (i0, i1) => batchOfRows(policy, samples, meta, range(i0, i1), 0),
    {
      onProgress: (done, total) => {
        if (done === total || done - shown >= total / 10) {
          shown = done;
          io.err(
            `pretrain --frozen-prefix: prefix of ${done}/${total} frames (${((Date.now() - started) / 1000).toFixed(0)} s)`,
          );
        }
      },
    },
  );
  io.err(
    `pretrain --frozen-prefix: ${(store.bytes / 2 ** 30).toFixed(2)} GiB of prefixes on the host`,
  );
  return store;
}

const range = (i0: number, i1: number) => Array.from({ length: i1 - i0 }, (_, i) => i0 + i);

/** The frame files' norm stats, the state's cut to the first `stateDims` values. */
async function normStatsFor(files: readonly string[], stateDims: number) {
  const stats = await computeNormStats(files);
  const cut = (s: typeof stats.state) => ({
    mean: s.mean.slice(0, stateDims),
    std: s.std.slice(0, stateDims),
    q01: s.q01.slice(0, stateDims),
    q99: s.q99.slice(0, stateDims),
  });
  return { ...stats, state: cut(stats.state) };
}

function innerParam(v: string): 'free' | 'span' {
  if (v !== 'free' && v !== 'span')
    throw new UserError(`pretrain: --align-aware-param must be free or span, got '${v}'`);
  return v;
}

/** Variables shaped as the inner steps' parametrisation, at its start (the sources' mean). */
function learnedStart(
  policy: Policy,
  o: AlignAwareOptions,
  slot: number,
  scale: number,
): tf.Variable[] {
  const param = new SlotParam(policy, {
    kind: o.innerParam ?? 'free',
    slot,
    init: 'mean',
    basis: o.sources.filter((k) => k !== slot),
  });
  try {
    return param.tree.select().map(([, v]) => tf.tidy(() => tf.variable(tf.div(v, scale), true)));
  } finally {
    param.dispose();
  }
}

/**
 * The align-aware term's options from `W:ALPHA[:K]`: each meta step a robot of `samples` (in
 * turn) with `rows` of its play frames and `rows` of its demo frames, on its own slot, or on
 * `scratch` for robots that have none.
 */
function alignAwareOptions(
  arg: string,
  samples: readonly Sample[],
  meta: DatasetMeta,
  slots: Record<string, number>,
  policy: Policy,
  o: { rows: number; every: number; seed: number; param: 'free' | 'span' },
  scratch?: number,
): AlignAwareOptions {
  const [w, alpha, k = 1] = arg.split(':').map(Number);
  if (!(w! > 0) || !(alpha! > 0) || !Number.isInteger(k) || k < 1)
    throw new UserError(
      `pretrain: --align-aware must be W:ALPHA[:K] (positive, K whole), got '${arg}'`,
    );
  const by = new Map<string, { play: Sample[]; demo: Sample[] }>();
  for (const s of samples) {
    let e = by.get(s.embodiment);
    if (e === undefined) by.set(s.embodiment, (e = { play: [], demo: [] }));
    (s.isDemo ? e.demo : e.play).push(s);
  }
  const robots = [...by].filter(([, e]) => e.play.length > 0 && e.demo.length > 0);
  if (robots.length < 2)
    throw new UserError(
      `pretrain --align-aware: needs at least two robots with both play and demo frames, found ${robots.length}`,
    );
  return {
    weight: w!,
    innerLr: alpha!,
    innerSteps: k,
    innerParam: o.param,
    sources: Object.values(slots),
    batch: (step) => {
      if (step % o.every !== 0) return undefined;
      const [name, e] = robots[Math.floor(step / o.every) % robots.length]!;
      const rng = new Rng(o.seed * 1_000_003 + step + 0x5eed);
      const slot = scratch ?? slots[name]!;
      const pick = (from: Sample[]) => drawBatch(policy, from, meta, o.rows, rng, slot);
      return { slot, play: pick(e.play), demo: pick(e.demo) };
    },
  };
}

/**
 * `policy` under `config` (the same but for its extra alignment tasks): the same weights, slots
 * and norm stats, and the new tasks' weights fresh from `seed`. Disposes `policy` when it makes
 * a new one.
 */
function withConfig(
  policy: Policy,
  config: PolicyConfig,
  seed: number,
  used: readonly number[],
): Policy {
  if (fingerprint(config) === policy.fingerprint) return policy;
  const next = createPolicy(config, {
    seed,
    ...(policy.normStats ? { normStats: policy.normStats } : {}),
    ...(policy.stateDims !== undefined ? { stateDims: policy.stateDims } : {}),
    normMode: policy.normMode,
    tokenizer: policy.tokenizer,
  });
  const grown = config.ttt.slots > policy.config.ttt.slots;
  const slotPaths = new Set(
    policy.ttt.flatMap((m) => (m === undefined ? [] : [m.paths.W1, m.paths.b1])),
  );
  for (const path of next.params.paths()) {
    if (!policy.params.has(path)) continue;
    const from = policy.params.get(path);
    next.params
      .get(path)
      .assign(grown && slotPaths.has(path) ? grownSlots(from, config.ttt.slots, used) : from);
  }
  policy.dispose();
  return next;
}

/**
 * A slot table [E, ...] grown to `slots` rows: the `used` rows as they are, every other row the
 * mean of the `used` ones (of all rows when none is given).
 */
function grownSlots(table: tf.Tensor, slots: number, used: readonly number[]): tf.Tensor {
  const E = table.shape[0]!;
  const keep = new Set(used.length ? used : Array.from({ length: E }, (_, e) => e));
  // row e of the result is row pick[e] of [table; mean]: its own where used, else the mean (E)
  const pick = Int32Array.from({ length: slots }, (_, e) => (keep.has(e) ? e : E));
  return tf.tidy(() => {
    const mean = tf.mean(tf.gather(table, Int32Array.from(keep)), 0, true);
    return tf.gather(tf.concat([table, mean], 0), pick);
  });
}
