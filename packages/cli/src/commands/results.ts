// selfalign results: the self-alignment results table for a pretrained checkpoint, in one
// command. Per held-out target, play budget and seed: random play (features from the embedded
// encoder) -> a new slot; rows: no adaptation (the slot = the mean of the source slots), align
// TTT-only with each slot parametrisation, the oracle adapter (TTT-only fitted to labelled
// target demos of the same budget) and full fine-tuning on those demos; each evaluated on a
// fixed seed set (success, action MSE against the target's own expert). The headline: the share
// of the no-adaptation -> oracle gap that align closes, in success and in action MSE.

import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  type AlignWeights,
  align,
  defaultAlignWeights,
  evaluateLosses,
  loadCheckpoint,
  SLOT_PARAMETRISATIONS,
  type TaskLosses,
} from '@selfalign/align';
import { Rng } from '@selfalign/core';
import { writeFileAtomic } from '@selfalign/core/node';
import type { Sample } from '@selfalign/data';
import { disposeBatch, type Policy, type TrainBatch } from '@selfalign/experts';
import {
  type BodyTracker,
  copySlot,
  type EffectorJudge,
  fillWithSourceMean,
  firstFreeSlot,
  lowestScored,
  nearestSourceSlot,
  playSplit,
  policyController,
  practice,
  retarget,
  slotVector,
  writeSlotVector,
} from '@selfalign/harness';
import { disposePretrain, finetune } from '@selfalign/pretrain';
import {
  type Embodiment,
  expertController,
  hindsightEpisodes,
  type Matrix,
  randomController,
  retargetedController,
  runEpisodes,
  seedRange,
  type TaskName,
} from '@selfalign/sim';
import type { Command } from '../command.js';
import { Progress, UserError } from '../io.js';
import { checkOutputs } from '../paths.js';
import {
  checkTaskWeights,
  drawBatch,
  embodimentByName,
  episodesAsSamples,
  featureExtractor,
  judgedBody,
  judgeShrink,
  loadJudge,
  parseTaskWeights,
  recordEpisodes,
  recordedEpisodes,
  retargetSources,
} from '../shared.js';

const PARAMS = SLOT_PARAMETRISATIONS;

/** What --raw writes and --merge reads. */
interface RawResults {
  checkpoint: string;
  step: number;
  episodes: number;
  /** The evaluated task (absent in files written before `--eval-task`: reach). */
  task?: TaskName;
  command: string;
  /** The align rows' alignment-task weights (absent in files written before they were recorded). */
  alignWeights?: Partial<AlignWeights>;
  rows: Row[];
}

interface Row {
  target: string;
  budget: number;
  seed: number;
  method: string;
  success: number;
  actionMse: number;
  /**
   * The action (flow-matching) loss on held-out labelled demos of the target, same noise draws
   * for every row: moves before success does (absent in raw files written before it).
   */
  demoLoss?: number;
  /**
   * Align rows: align's per-task losses (and their weighted total, its objective) before and after
   * align, on the held-out play episodes (`on: 'held-out'`; the training batches when nothing is
   * held out), the same draws for both and for every row of a cell. Absent in older files.
   */
  alignLosses?: { before: TaskLosses; after: TaskLosses; on: 'held-out' | 'train' };
  /** Nearest source slot rows: the source robot whose slot was picked (absent in older files). */
  pick?: string;
  /**
   * Practice rows: the share of its tries that reached their target with the slot the row
   * evaluates (measured during practice), and for 'practice (keep best)' the round whose slot it
   * kept (0: the start).
   */
  tried?: number;
  kept?: number;
  /**
   * The 'practice (stop at S)' row: the tries' success with the start (index 0) and with the
   * slot after each round that tries measured (absent in older files).
   */
  practiceTried?: number[];
  /**
   * Retarget rows with --retarget-candidates K > 1, on its 'retargeted source slot (no fit)' row:
   * each candidate teacher's tries on the target (body order; success share, mean final
   * distance), from which the pick was made. Absent in older files.
   */
  candidates?: { name: string; success: number; distance: number }[];
  wallS: number;
}

/** Held-out labelled demos per cell for the demo-loss column. */
const LOSS_EPISODES = 10;

export const results: Command = {
  name: 'results',
  summary:
    'the results table: no adaptation vs align (each slot parametrisation) vs oracle vs fine-tuning',
  usage: `selfalign results --checkpoint CKPT [options]
selfalign results --merge RAW1.json,RAW2.json [--out FILE]   (the table from raw results of chunks)
  --targets NAMES      held-out robots                      (default perm,sign,links,offset,combo)
  --play LIST          play (and oracle demo) trajectories   (default 10,100)
  --seeds N            seeds per cell                        (default 1)
  --first-seed S       the first seed: seeds S..S+N-1, so a chunk can add seeds to an
                       earlier run's (--merge joins them)    (default 0)
  --episodes N         evaluation episodes per row           (default 100)
  --eval-task T        reach | push: the task every row is evaluated on, and of the oracle's
                       and fine-tuning's labelled demos; play stays random actions in the reach
                       scene, so push asks whether align transfers to a task it never saw
                       (default reach)
  --steps N            align steps                           (default 200)
  --oracle-steps N     oracle adapter steps                  (default 200)
  --oracle-params LIST the oracle's slot parametrisations: free is the gap's reference;
                       span asks whether a combination of the source slots can act right
                       (rows 'oracle adapter (span)')       (default free)
  --finetune-steps N   full fine-tuning steps (0: skip)      (default 200)
  --params LIST        slot parametrisations (free, span, span+residual, hull: a mixture of
                       the --hull-k nearest source slots, bias: b1 only), or none (no
                       align rows)                           (default free,span,span+residual)
  --nearest-batches N  score the source slots on the first N batches of the play's training
                       split (all: every one)                (default 8)
  --nearest-flow-time T  score them at flow time T for every row, in (0, 1] (1: the
                       regression error without the noise floor)  (default: drawn)
  --hull-k K           hull rows: mix the K source slots with the lowest align objective on
                       the target's play (the nearest source slot's ranking)   (default 4)
  --batch-size B       (default 16)
  --align-data D       all: every play frame in epochs, 20% of the episodes held out;
                       fixed: the old 4 random batches reused every step; both: a row each
                                                             (default all)
  --free-lr LR         align learning rate of the free slot     (default align's, 1e-4)
  --span-lr LR         of the span coefficients                 (default align's, 3e-2)
  --span-prior L       span rows: add L * d^2 to align's loss, d the slot's distance from
                       the source mean in the source slots' spread (a Gaussian prior on
                       the code)                              (default 0: none)
  --average-from K     align rows commit the mean of their iterates from step K on
                       (iterate averaging)                    (default: off)
  --align-optimizer O  adam | sgd (plain steps of the learning rate: what align-aware
                       pretraining trains for)                (default adam)
  --align-weights W    perception,dynamics,inverse[,stateDynamics[,kinematics]] loss weights
                       (the fourth and fifth for a policy pretrained with those --extra-tasks;
                       0 holds a missing task's place; default: the state-dynamics task alone
                       (0,0,0,1, kinematics 0) for a policy with it, else 1,1,1)
  --ttt-weight W       align rows also minimise W x L_ttt, the TTT layers' own inner
                       reconstruction loss on the play frames (DESIGN 4's optional term;
                       the nearest-slot score keeps --align-weights)   (default 0)
  --init I             mean | nearest (the source slot with the lowest align objective, the
                       alignment losses under --align-weights, on the target's play) as
                       align's starting slot  (default mean)
  --patience N         early stop on the held-out play loss after N checks without gain
  --control ROBOT      also align each parametrisation on ROBOT's play (same budget and seeds)
                       and evaluate on the target: rows 'align P on ROBOT's play'. A move that
                       helps every robot alike scores the same there; only what align learns
                       about the target itself is the gap between the two rows
  --hindsight H        also use the target's play relabelled in hindsight: the same random-play
                       episodes, frame t drawn with the red target where the end effector is H
                       steps later, the robot's own actions as labels (no expert; the simulator
                       gives the end effector's position). Rows 'hindsight nearest source slot'
                       (the lowest action loss on it), '... (contrast)' (that loss less the loss
                       with the goal mirrored) and 'hindsight P' (align P with the action loss
                       on it)  (default: off)
  --practice R         also practise: R rounds in which the policy, through the slot (from the
                       nearest source slot), tries --practice-tries reach episodes on the
                       target, every try is relabelled in hindsight (horizon --hindsight, 8
                       unless given) and the free slot is fitted with the action loss on all
                       tries so far (--practice-steps per round). Its own tries, no expert; the
                       simulator gives the end effector's position. Rows 'practice, round r'
                       (default: off)
  --practice-tries N   reach tries per round                 (default 10)
  --practice-steps N   fitting steps per round               (default 100)
  --practice-keep K    last | best: a row 'practice (keep best)' too, the slot whose tries
                       reached their target most often           (default last)
  --practice-stop-at S practise only while the slot is weak: a round whose tries reach their
                       target at least this share of the time stops practice before its fit;
                       a row 'practice (stop at S)' too, the slot left   (default: off)
  --practice-start S   nearest | retarget: practice's start, the nearest source slot or the
                       slot --retarget leaves (its last DAgger round's fit, the kept one
                       with --retarget-keep best; rows 'practice, round r from retarget')
                                                                 (default nearest)
  --practice-judge FILE  read practice's tries with this camera judge (selfalign judge): the
                       relabelled targets are where it sees the end effector, the gate and
                       keep best count its verdicts; no end effector, no reward (rows '...
                       judged')                                 (default: the simulator)
  --practice-track T   judge | body | body+tries: with body, practice reads the end effector
                       from a body fitted to the judge's positions on the target's play, its
                       last link scaled by the judge's shrink on 8 source robots, through the
                       tries' joint angles; a try reached when that end effector came within
                       the tolerance of the judged target (rows '... judged body', 2u); with
                       body+tries, through that body fitted again on the play and every try so
                       far before each round's read (rows '... judged body refitted on the
                       tries', 2z)                            (default judge)
  --retarget N         also retarget: identify the target's action -> joint-velocity map from
                       its play, pick the source robot whose body explains where the play's
                       end effector was, and fit the free slot for N steps (action loss) to
                       the policy's chunks through that source's slot mapped onto the target's
                       actions, on the play frames. No expert, no tries; the simulator gives the
                       end effector's position. Rows 'retargeted source slot (no fit)' (the
                       mapped actions sent as they are) and 'retarget'  (default: off)
  --retarget-rounds R  then R DAgger rounds: the slot tries 10 reach episodes on the target,
                       the same teacher labels every frame they visited, and the slot is
                       fitted 100 more steps on all labels so far (it runs the policy on the
                       robot, as practice). Rows 'retarget, round r'       (default 0)
  --retarget-candidates K  pick the teacher among the first K sources of --retarget-rank by
                       tries: each, retargeted, tries --retarget-pick-tries reach episodes on
                       the target and the one that reaches most often teaches (runs the
                       policy on the robot)                   (default 1: the first)
  --retarget-pick-tries M  reach tries per candidate                  (default 6)
  --retarget-pick-by B  reached | approach: the teacher is the candidate whose tries reach
                       most often (ties: the closer last distance), or the one whose tries
                       come closest on average (each try's smallest distance to its target,
                       no tolerance; 2y)                      (default reached)
  --retarget-also-nearest  the nearest source slot (by align's objective on the play) tries
                       too when not among the first K (2v: on sign the perception rank's
                       five leave out the source that acts)
  --retarget-pick-track T  judge | body | body+tries: with body, the candidates' tries are
                       read through a body fitted to --retarget-judge's positions on the
                       target's play (as --practice-track body reads practice's; 2w: the
                       judge's own read of the picks correlates 0.29 with their success);
                       with body+tries, through that body fitted again on the play and every
                       candidate's tries (2y)                 (default judge)
  --judge-target W     frame | start: the judged body's target (--retarget-pick-track body or
                       body+tries, --practice-track body), as the judge reads the policy's
                       target keypoint in every frame, or once per try, the median over its
                       first 5 frames, before the arm can cover the target (2z)
                                                                 (default frame)
  --retarget-judge FILE  score those tries with this camera judge (selfalign judge) instead
                       of the simulator's success: no reward, no end effector (2t)
  --retarget-rank R    body | perception: how the sources are ordered for the pick, by the
                       body's error on the play's end-effector positions, or by the
                       perception loss through each source slot on the play's frames (the
                       play then reaches retarget without its end-effector positions)
                                                                 (default body)
  --retarget-keep K    last | best: with rounds, a row 'retarget (keep best)' too, the fit
                       whose own tries reached most often (10 more tries measure the last;
                       with --retarget-judge read as the candidates' tries are)
                                                                 (default last)
  --label TEXT         appended to the align rows' names (lever runs merge into one table)
  --baselines no       only the align rows (lever runs that reuse another run's baselines)
  --out FILE           also write the markdown table here
  --raw FILE           also write every row (raw per-cell results, JSON) here
  --merge FILES        build the table from raw files instead of running (chunks merge)`,
  options: {
    checkpoint: { type: 'string' },
    targets: { type: 'string' },
    play: { type: 'string' },
    seeds: { type: 'string' },
    'first-seed': { type: 'string' },
    'span-prior': { type: 'string' },
    'hull-k': { type: 'string' },
    'nearest-batches': { type: 'string' },
    'nearest-flow-time': { type: 'string' },
    'average-from': { type: 'string' },
    episodes: { type: 'string' },
    'eval-task': { type: 'string' },
    steps: { type: 'string' },
    'finetune-steps': { type: 'string' },
    'oracle-steps': { type: 'string' },
    'oracle-params': { type: 'string' },
    params: { type: 'string' },
    'batch-size': { type: 'string' },
    'align-data': { type: 'string' },
    'free-lr': { type: 'string' },
    'span-lr': { type: 'string' },
    'align-optimizer': { type: 'string' },
    'align-weights': { type: 'string' },
    'ttt-weight': { type: 'string' },
    init: { type: 'string' },
    patience: { type: 'string' },
    label: { type: 'string' },
    hindsight: { type: 'string' },
    practice: { type: 'string' },
    retarget: { type: 'string' },
    'retarget-rounds': { type: 'string' },
    'retarget-candidates': { type: 'string' },
    'retarget-pick-tries': { type: 'string' },
    'retarget-pick-by': { type: 'string' },
    'retarget-keep': { type: 'string' },
    'retarget-rank': { type: 'string' },
    'retarget-judge': { type: 'string' },
    'retarget-pick-track': { type: 'string' },
    'judge-target': { type: 'string' },
    'retarget-also-nearest': { type: 'boolean' },
    'practice-judge': { type: 'string' },
    'practice-track': { type: 'string' },
    'practice-tries': { type: 'string' },
    'practice-steps': { type: 'string' },
    'practice-keep': { type: 'string' },
    'practice-start': { type: 'string' },
    'practice-stop-at': { type: 'string' },
    control: { type: 'string' },
    baselines: { type: 'string' },
    out: { type: 'string' },
    raw: { type: 'string' },
    merge: { type: 'string' },
  },
  async run(args, io) {
    const outFile = args.optStr('out');
    const rawFile = args.optStr('raw');
    if (args.has('merge')) {
      const files = args.list('merge').map((f) => resolve(io.cwd, f));
      if (outFile) checkOutputs('results', files, [resolve(io.cwd, outFile)]);
      const parts = await Promise.all(
        files.map(async (f) => {
          try {
            return JSON.parse(await readFile(f, 'utf8')) as RawResults;
          } catch (err) {
            throw new UserError(
              `results: ${f} is not a raw results file (${(err as Error).message})`,
            );
          }
        }),
      );
      const steps = [...new Set(parts.map((p) => p.step))];
      const eps = [...new Set(parts.map((p) => p.episodes))];
      const tasks = [...new Set(parts.map((p) => p.task ?? 'reach'))];
      if (steps.length !== 1 || eps.length !== 1 || tasks.length !== 1)
        throw new UserError(
          `results --merge: the files come from different checkpoints, episode counts or tasks (steps ${steps.join(', ')}; episodes ${eps.join(', ')}; tasks ${tasks.join(', ')})`,
        );
      const rows = uniqueCells(parts, files);
      const table = formatTable(rows, steps[0]!, eps[0]!, tasks[0]!);
      if (outFile) await writeFileAtomic(resolve(io.cwd, outFile), `${table.join('\n')}\n`);
      return { lines: table, json: { merged: files, rows } };
    }
    const ckpt = resolve(io.cwd, args.str('checkpoint'));
    checkOutputs(
      'results',
      [ckpt],
      [outFile, rawFile].filter((f): f is string => f !== undefined).map((f) => resolve(io.cwd, f)),
    );
    const targets = args.list('targets', ['perm', 'sign', 'links', 'offset', 'combo']);
    const budgets = args.list('play', ['10', '100']).map((b) => {
      const n = Number(b);
      if (!(Number.isInteger(n) && n > 0))
        throw new UserError(`results: --play takes positive integers, got '${b}'`);
      return n;
    });
    const paramList = args.list('params', ['free', 'span', 'span+residual']);
    // none: no align rows (the baselines and the oracles only)
    const params = parametrisations(
      paramList.length === 1 && paramList[0] === 'none' ? [] : paramList,
      '',
    );
    const oracleParams = parametrisations(args.list('oracle-params', ['free']), 'oracle ');
    const seeds = args.int('seeds', 1, 1);
    const firstSeed = args.int('first-seed', 0, 0);
    const episodes = args.int('episodes', 100, 1);
    const evalTask = args.choice('eval-task', ['reach', 'push'] as const, 'reach');
    // 0: the rows keep their starting slot (hull: the equal mixture of the nearest slots)
    const steps = args.int('steps', 200, 0);
    const hullK = args.int('hull-k', 4, 1);
    const nearestBatches =
      args.optStr('nearest-batches') === 'all'
        ? Number.POSITIVE_INFINITY
        : args.int('nearest-batches', 8, 1);
    const nearestFlowTime = args.has('nearest-flow-time')
      ? args.num('nearest-flow-time', 1, (n) => n > 0 && n <= 1, 'a number in (0, 1]')
      : undefined;
    const ftSteps = args.int('finetune-steps', 200, 0);
    const oracleSteps = args.int('oracle-steps', 200, 1);
    const batchSize = args.int('batch-size', 16, 1);
    const alignData = args.choice('align-data', ['all', 'fixed', 'both'] as const, 'all');
    const lrOf: Partial<Record<string, number>> = {
      ...(args.has('free-lr') ? { free: args.lr('free-lr') } : {}),
      ...(args.has('span-lr')
        ? { span: args.lr('span-lr'), 'span+residual': args.lr('span-lr') }
        : {}),
    };
    const alignOptimizer = args.choice('align-optimizer', ['adam', 'sgd'] as const, 'adam');
    const hindsight = args.has('hindsight') ? args.int('hindsight', 8, 1) : undefined;
    const practiceRounds = args.has('practice') ? args.int('practice', 3, 1) : undefined;
    const practiceTries = args.int('practice-tries', 10, 1);
    const practiceSteps = args.int('practice-steps', 100, 1);
    const practiceKeep = args.choice('practice-keep', ['last', 'best'] as const, 'last');
    const practiceStopAt = args.has('practice-stop-at')
      ? args.share('practice-stop-at')
      : undefined;
    if (practiceStopAt !== undefined && practiceRounds === undefined)
      throw new UserError('results: --practice-stop-at needs --practice R');
    const retargetSteps = args.has('retarget') ? args.int('retarget', 200, 1) : undefined;
    const retargetRounds = args.int('retarget-rounds', 0, 0);
    const retargetCandidates = args.int('retarget-candidates', 1, 1);
    const retargetPickTries = args.int('retarget-pick-tries', 6, 1);
    const retargetPickBy = args.choice(
      'retarget-pick-by',
      ['reached', 'approach'] as const,
      'reached',
    );
    const retargetAlsoNearest = args.has('retarget-also-nearest');
    const retargetKeep = args.choice('retarget-keep', ['last', 'best'] as const, 'last');
    const retargetRank = args.choice('retarget-rank', ['body', 'perception'] as const, 'body');
    if (retargetKeep === 'best' && retargetRounds === 0)
      throw new UserError('results: --retarget-keep best needs --retarget-rounds R');
    for (const flag of [
      'retarget-rounds',
      'retarget-candidates',
      'retarget-pick-tries',
      'retarget-pick-by',
      'retarget-keep',
      'retarget-rank',
      'retarget-judge',
      'retarget-also-nearest',
      'retarget-pick-track',
    ])
      if (args.has(flag) && retargetSteps === undefined)
        throw new UserError(`results: --${flag} needs --retarget N`);
    if (args.has('retarget-judge') && retargetCandidates < 2)
      throw new UserError(
        "results: --retarget-judge scores the candidates' tries; pass --retarget-candidates K > 1",
      );
    // --retarget-pick-track, --practice-track: how a stage reads its tries; a body is fitted to
    // the positions of that stage's judge file
    const trackOf = (flag: string, judgeFlag: string) => {
      const track = args.choice(flag, ['judge', 'body', 'body+tries'] as const, 'judge');
      if (track !== 'judge' && !args.has(judgeFlag))
        throw new UserError(`results: --${flag} ${track} fits a body to --${judgeFlag} FILE`);
      return track;
    };
    const pickTrack = trackOf('retarget-pick-track', 'retarget-judge');
    const practiceStart = args.choice(
      'practice-start',
      ['nearest', 'retarget'] as const,
      'nearest',
    );
    if (practiceStart === 'retarget' && retargetSteps === undefined)
      throw new UserError('results: --practice-start retarget needs --retarget N');
    if (args.has('practice-judge') && practiceRounds === undefined)
      throw new UserError('results: --practice-judge needs --practice R');
    const practiceTrack = trackOf('practice-track', 'practice-judge');
    const judgeTarget = args.choice('judge-target', ['frame', 'start'] as const, 'frame');
    if (args.has('judge-target') && pickTrack === 'judge' && practiceTrack === 'judge')
      throw new UserError(
        'results: --judge-target says where the judged body (--retarget-pick-track body, --practice-track body) reads the target',
      );
    const practiceFrom = `${practiceStart === 'retarget' ? ' from retarget' : ''}${args.has('practice-judge') ? (practiceTrack === 'body+tries' ? ', judged body refitted on the tries' : practiceTrack === 'body' ? ', judged body' : ', judged') : ''}`;
    if (hindsight !== undefined && params.length === 0)
      throw new UserError('results: --hindsight aligns the --params rows; --params none has none');
    const averageFrom = args.has('average-from') ? args.int('average-from', 0, 0) : undefined;
    if (averageFrom !== undefined && averageFrom >= steps)
      throw new UserError(
        `results: --average-from ${averageFrom} is not before the last of --steps ${steps}`,
      );
    const spanPrior = args.num(
      'span-prior',
      0,
      (n) => Number.isFinite(n) && n >= 0,
      'a number >= 0',
    );
    const givenWeights = parseTaskWeights(args, 'align-weights');
    const tttWeight = args.num(
      'ttt-weight',
      0,
      (n) => Number.isFinite(n) && n >= 0,
      'a number >= 0',
    );
    const initChoice = args.choice('init', ['mean', 'nearest'] as const, 'mean');
    const patience = args.has('patience') ? args.int('patience', undefined, 1) : undefined;
    const label = args.has('label') ? ` [${args.str('label')}]` : '';
    const baselines = args.choice('baselines', ['yes', 'no'] as const, 'yes') === 'yes';
    const embodiments = targets.map((t) => [t, embodimentByName(t, 1)] as const);
    const controlName = args.optStr('control');
    if (controlName !== undefined && targets.includes(controlName))
      throw new UserError(
        `results: --control ${controlName} is one of the targets; give a robot whose play is not the target's`,
      );
    const control = controlName ? embodimentByName(controlName, 1) : undefined;
    const loaded = await loadCheckpoint(ckpt);
    const policy = loaded.policy;
    const slotOf = (loaded.info['slots'] ?? {}) as Record<string, number>;
    const sourceSlots = Object.values(slotOf);
    const robotOfSlot = new Map(Object.entries(slotOf).map(([robot, k]) => [k, robot]));
    // retarget's sources: each trained robot's body and slot (its map is identified once)
    const sources = retargetSources('results', Object.entries(slotOf));
    const retargetMaps = new Map<string, Matrix>();
    if (sourceSlots.length === 0)
      throw new UserError(`results: ${ckpt} records no source slots (not a pretrain checkpoint)`);
    const c = policy.config;
    let judge: EffectorJudge | undefined;
    let practiceJudge: EffectorJudge | undefined;
    // --practice-track body: the judge's last-link shrink on the first source robots (known
    // bodies); pickShrink: the retarget judge's, for --retarget-pick-track body
    let shrink = 1;
    let pickShrink = 1;
    const measureShrink = async (j: EffectorJudge, what: string, flag: string) => {
      const measured = await judgeShrink(
        j,
        sources.map((x) => x.embodiment),
        c.vision.imageSize,
      );
      io.err(
        `results: the ${what} judge's last link over ${measured.robots} source robots: x ${measured.factor.toFixed(3)} (${flag})`,
      );
      return measured.factor;
    };
    try {
      checkTaskWeights('results', 'align-weights', givenWeights, c, ckpt);
      if (args.has('retarget-judge'))
        judge = await loadJudge('results', resolve(io.cwd, args.str('retarget-judge')), policy);
      if (args.has('practice-judge')) {
        const file = resolve(io.cwd, args.str('practice-judge'));
        practiceJudge =
          judge && file === resolve(io.cwd, args.str('retarget-judge'))
            ? judge
            : await loadJudge('results', file, policy);
        if (practiceTrack !== 'judge')
          shrink = await measureShrink(
            practiceJudge,
            'practice',
            `--practice-track ${practiceTrack}`,
          );
      }
      if (judge && pickTrack !== 'judge')
        pickShrink =
          practiceJudge === judge && practiceTrack !== 'judge'
            ? shrink
            : await measureShrink(judge, 'retarget', `--retarget-pick-track ${pickTrack}`);
    } catch (e) {
      judge?.dispose();
      if (practiceJudge !== judge) practiceJudge?.dispose();
      policy.dispose();
      throw e;
    }
    const lossWeights = givenWeights ?? defaultAlignWeights(c);
    // align's objective: the task losses, plus L_ttt when weighted
    const alignWeights: Partial<AlignWeights> =
      tttWeight > 0 ? { ...lossWeights, ttt: tttWeight } : lossWeights;
    const E = c.ttt.slots;
    const slot = firstFreeSlot(policy, sourceSlots);
    if (slot === undefined) throw new UserError(`results: no free slot among ${E}`);
    const side = c.vision.imageSize;
    const extractor = await featureExtractor('default', io.cwd, c.featureDim);
    const rows: Row[] = [];
    const cells = targets.length * budgets.length * seeds;
    const progress = new Progress(io, 'results', cells, io.tty && !args.has('json'));
    try {
      // align and the oracle change only the new slot: resetting it is all a row needs
      const resetSlot = () => fillWithSourceMean(policy, slot, sourceSlots);
      let lossBatches: TrainBatch[] = [];
      const evaluate = async (p: Policy, e: Embodiment, s: number, map?: Matrix) => {
        const demoLoss = evaluateLosses(p, lossBatches, { objective: 'action', seed: s }).action;
        // its own noise stream per seed: a cell does not depend on the rows run before it
        const ctrl = policyController(p, { slot, rng: new Rng(710_000 + 10_000 * s) });
        const r = await runEpisodes(
          e,
          evalTask,
          seedRange(episodes, 700_000 + 10_000 * s),
          map ? retargetedController(ctrl, map) : ctrl,
          { env: { imageSize: side }, parallel: 25 },
        );
        return { success: r.successRate, actionMse: r.actionMse, demoLoss };
      };
      for (const [name, e] of embodiments) {
        for (const budget of budgets) {
          for (let s = firstSeed; s < firstSeed + seeds; s++) {
            const row = (
              method: string,
              r: {
                success: number;
                actionMse: number;
                demoLoss: number;
                alignLosses?: Row['alignLosses'];
                pick?: string;
                tried?: number;
                kept?: number;
                practiceTried?: number[];
              },
              t0: number,
            ) => {
              const wallS = (performance.now() - t0) / 1000;
              rows.push({ target: name, budget, seed: s, method, ...r, wallS });
              // a line per row on stderr for logs of long runs (the bar is for terminals)
              if (!io.tty)
                io.err(
                  `${new Date().toISOString()} ${name} play ${budget} seed ${s}: ${method} success ${(100 * r.success).toFixed(1)}% action MSE ${r.actionMse.toFixed(4)} demo loss ${r.demoLoss.toFixed(4)}${r.pick ? ` (slot of ${r.pick})` : ''}${r.kept !== undefined ? ` (kept round ${r.kept}'s slot${r.tried !== undefined ? `, its tries ${(100 * r.tried).toFixed(0)}%` : ''})` : ''}${r.practiceTried ? ` (tries ${r.practiceTried.map((x) => `${(100 * x).toFixed(0)}%`).join(', ')})` : ''}${r.alignLosses ? ` align objective (${r.alignLosses.on}) ${r.alignLosses.before.total.toFixed(4)} -> ${r.alignLosses.after.total.toFixed(4)}` : ''} (${wallS.toFixed(0)} s)`,
                );
            };
            const base = 1_000_000 * (s + 1) + 10_000 * budget;
            // the play's episodes stay for --practice-track body's fit (recordEpisodes' run)
            const playEpisodes = await recordedEpisodes(e, randomController(s), budget, base, c);
            const play = await episodesAsSamples(e, playEpisodes, 'play', extractor, c);
            // the body fitted to a judge's positions on this play, fitted once per cell for the
            // pick (--retarget-pick-track body) and practice (--practice-track body) alike
            let fitted: { judge: EffectorJudge; shrink: number; body: BodyTracker } | undefined;
            const bodyOf = (j: EffectorJudge, k: number): BodyTracker => {
              if (fitted?.judge !== j || fitted.shrink !== k)
                fitted = {
                  judge: j,
                  shrink: k,
                  body: judgedBody(
                    j,
                    playEpisodes,
                    sources.map((x) => x.embodiment),
                    k,
                    judgeTarget,
                  ),
                };
              return fitted.body;
            };
            const demos = await recordEpisodes(
              e,
              expertController(),
              'demo',
              budget,
              base + 5_000,
              extractor,
              c,
              evalTask,
            );
            // held-out labelled demos (seeds of their own): the demo-loss column
            const lossDemos = await recordEpisodes(
              e,
              expertController(),
              'demo',
              LOSS_EPISODES,
              base + 8_000,
              extractor,
              c,
              evalTask,
            );
            lossBatches = playSplit(
              policy,
              lossDemos.samples,
              lossDemos.meta,
              batchSize,
              new Rng(s + 19),
              slot,
              0,
            ).train;
            const batches = (samples: Sample[], n: number, rng: Rng): TrainBatch[] =>
              Array.from({ length: n }, () =>
                drawBatch(policy, samples, play.meta, batchSize, rng, slot),
              );
            let t0 = performance.now();
            resetSlot();
            if (baselines) row('no adaptation', await evaluate(policy, e, s), t0);
            // align's split of a robot's play: every frame, 20% of the episodes held out
            const alignSplit = (rec: typeof play) =>
              playSplit(policy, rec.samples, rec.meta, batchSize, new Rng(s + 11), slot, 0.2);
            const allSplit = alignSplit(play);
            // the source slot with the lowest align objective (the alignment losses under align's
            // weights) on the target's play: the label-free choice among the slots pretraining made
            t0 = performance.now();
            // the source slots ranked by align's objective on a robot's play: the nearest one,
            // and the hullK best that hull rows mix (the slot is left holding the nearest)
            const rank = (split: { train: TrainBatch[] }) => {
              const r = nearestSourceSlot(policy, split.train, sourceSlots, slot, {
                weights: lossWeights,
                seed: s,
                maxBatches: nearestBatches,
                ...(nearestFlowTime !== undefined ? { flowTime: nearestFlowTime } : {}),
              });
              return { nearest: r.nearest, hull: lowestScored(r.scores, hullK) };
            };
            const { nearest, hull: hullBasis } = rank(allSplit);
            if (baselines)
              row(
                'nearest source slot',
                {
                  ...(await evaluate(policy, e, s)),
                  pick: robotOfSlot.get(nearest)!, // nearest is one of the source slots
                },
                t0,
              );
            // align the new slot from its start on a split of play frames
            const alignOn = async (
              split: { train: TrainBatch[]; heldOut: TrainBatch[] },
              param: (typeof params)[number],
              init: number | 'mean',
              hull: readonly number[],
            ) => {
              resetSlot();
              const r = await align(policy, split.train, {
                slot,
                parametrisation: param,
                init,
                basis: param === 'hull' ? hull : sourceSlots,
                maxSteps: steps,
                seed: s,
                lossWeights: alignWeights,
                optimizer: alignOptimizer,
                ...(averageFrom !== undefined ? { averageFrom } : {}),
                ...(spanPrior > 0 && (param === 'span' || param === 'span+residual')
                  ? { prior: spanPrior }
                  : {}),
                ...(lrOf[param] !== undefined ? { lr: lrOf[param] } : {}),
                ...(patience !== undefined && split.heldOut.length ? { patience } : {}),
                ...(split.heldOut.length ? { heldOut: split.heldOut } : {}),
              });
              r.state.dispose();
              return {
                before: r.before,
                after: r.after,
                on: split.heldOut.length ? ('held-out' as const) : ('train' as const),
              };
            };
            const modes = alignData === 'both' ? (['all', 'fixed'] as const) : [alignData];
            for (const mode of modes) {
              const split =
                mode === 'all'
                  ? allSplit
                  : { train: batches(play.samples, 4, new Rng(s + 11)), heldOut: [] };
              for (const param of params) {
                t0 = performance.now();
                const alignLosses = await alignOn(
                  split,
                  param,
                  initChoice === 'nearest' ? nearest : 'mean',
                  hullBasis,
                );
                const fixed = mode === 'fixed' && alignData === 'both' ? ' (fixed batches)' : '';
                row(
                  `align ${param}${fixed}${label}`,
                  { ...(await evaluate(policy, e, s)), alignLosses },
                  t0,
                );
              }
              if (mode === 'fixed') for (const b of split.train) disposeBatch(b);
            }
            for (const b of [...allSplit.train, ...allSplit.heldOut]) disposeBatch(b);
            if (hindsight !== undefined) {
              // the same play episodes (seeds and actions), each frame's target moved to where
              // the end effector went: labelled by the robot's own actions, fitted like the oracle
              const relabel = async (mirror: boolean) => {
                const r = await episodesAsSamples(
                  e,
                  await hindsightEpisodes(e, seedRange(budget, base), randomController(s), {
                    horizon: hindsight,
                    env: { imageSize: side },
                    mirror,
                  }),
                  'demo',
                  extractor,
                  c,
                );
                // the same shuffle for both: row for row the same frames and actions
                return playSplit(policy, r.samples, r.meta, batchSize, new Rng(s + 11), slot, 0)
                  .train;
              };
              const hsBatches = await relabel(false);
              const mirrored = await relabel(true);
              // the source slot under which the played actions best explain the relabelled
              // targets: the action loss there (the same noise draws) less the action loss with
              // the target mirrored, which cancels what a slot does to every goal alike
              t0 = performance.now();
              const score = (b: TrainBatch[]) =>
                nearestSourceSlot(policy, b, sourceSlots, slot, {
                  objective: 'action',
                  seed: s,
                  maxBatches: nearestBatches,
                  ...(nearestFlowTime !== undefined ? { flowTime: nearestFlowTime } : {}),
                });
              const plain = score(hsBatches);
              const away = score(mirrored).scores;
              const picks: [string, number][] = [
                ['', plain.nearest],
                [
                  ' (contrast)',
                  plain.scores.reduce(
                    (a, x, i) => {
                      const d = x.loss - away[i]!.loss;
                      return d < a.d ? { k: x.slot, d } : a;
                    },
                    { k: -1, d: Number.POSITIVE_INFINITY },
                  ).k,
                ],
              ];
              for (const [kind, pick] of picks) {
                copySlot(policy, pick, slot);
                row(
                  `hindsight nearest source slot${kind}${label}`,
                  { ...(await evaluate(policy, e, s)), pick: robotOfSlot.get(pick)! },
                  t0,
                );
                t0 = performance.now();
              }
              for (const b of mirrored) disposeBatch(b);
              for (const param of params) {
                t0 = performance.now();
                resetSlot();
                const r = await align(policy, hsBatches, {
                  slot,
                  parametrisation: param,
                  init: initChoice === 'nearest' ? nearest : 'mean',
                  basis: param === 'hull' ? hullBasis : sourceSlots,
                  maxSteps: steps,
                  seed: s,
                  objective: 'action',
                  optimizer: alignOptimizer,
                  ...(lrOf[param] !== undefined ? { lr: lrOf[param] } : {}),
                });
                r.state.dispose();
                row(`hindsight ${param}${label}`, await evaluate(policy, e, s), t0);
              }
              for (const b of hsBatches) disposeBatch(b);
            }
            let retargeted: Float32Array | undefined;
            if (retargetSteps !== undefined) {
              // the same play episodes (seeds, actions), recorded with the end effector's path
              t0 = performance.now();
              const played = await runEpisodes(
                e,
                'reach',
                seedRange(budget, base),
                randomController(s),
                { record: true, env: { imageSize: side } },
              );
              // each fit's evaluation and wall time: the play fit (round 0), then each round
              const fits: { r: Awaited<ReturnType<typeof evaluate>>; wallS: number }[] = [];
              const r = await retarget(policy, {
                slot,
                sources,
                // ranked by perception, the play goes without its end-effector positions
                play:
                  retargetRank === 'perception'
                    ? played.episodes.map(({ effector: _, ...ep }) => ep)
                    : played.episodes,
                rank: retargetRank,
                maps: retargetMaps,
                toSamples: (eps) => episodesAsSamples(e, eps, 'demo', extractor, c),
                steps: retargetSteps,
                rounds: retargetRounds,
                candidates: retargetCandidates,
                pickTries: retargetPickTries,
                pickBy: retargetPickBy,
                ...(retargetAlsoNearest ? { alsoTry: [robotOfSlot.get(nearest)!] } : {}),
                ...(judge
                  ? {
                      judge: pickTrack === 'judge' ? judge : bodyOf(judge, pickShrink),
                      refitOnTries: pickTrack === 'body+tries',
                    }
                  : {}),
                keep: retargetKeep,
                robot: e,
                firstSeed: base + 30_000,
                seed: s,
                env: { imageSize: side },
                onRound: async () => {
                  fits.push({
                    r: await evaluate(policy, e, s),
                    wallS: (performance.now() - t0) / 1000,
                  });
                },
              }).catch((err: Error) => {
                // the play cannot identify the robot: say so in one line
                if (/^identifyActionMap: /.test(err.message))
                  throw new UserError(`results: ${name}: ${err.message} (--play)`);
                throw err;
              });
              // practice from retarget starts where retarget leaves the slot (its last fit, or
              // the kept one with --retarget-keep best)
              retargeted = slotVector(policy, slot);
              copySlot(policy, r.sourceSlot, slot);
              const t1 = performance.now();
              row(
                `retargeted source slot (no fit)${label}`,
                {
                  ...(await evaluate(policy, e, s, r.map)),
                  pick: r.source,
                  ...(r.candidates.length > 0 ? { candidates: r.candidates } : {}),
                },
                t1,
              );
              // a fit's wall time counts from the start of retarget (play, pick, labels); its
              // tries' success where a later round (or keep-best's last tries) measured it
              fits.forEach((f, i) =>
                row(
                  `retarget${i > 0 ? `, round ${i}` : ''}${label}`,
                  {
                    ...f.r,
                    pick: r.source,
                    ...(Number.isFinite(r.tried[i]) ? { tried: r.tried[i]! } : {}),
                  },
                  performance.now() - 1000 * f.wallS,
                ),
              );
              // the kept fit's numbers (evaluation is deterministic), timed to the end
              if (retargetKeep === 'best')
                row(
                  `retarget (keep best)${label}`,
                  { ...fits[r.kept]!.r, pick: r.source, kept: r.kept, tried: r.tried[r.kept]! },
                  t0,
                );
            }
            if (practiceRounds !== undefined) {
              // from the label-free start, the policy's own tries relabelled where they went
              t0 = performance.now();
              if (practiceStart === 'retarget') writeSlotVector(policy, slot, retargeted!);
              else copySlot(policy, nearest, slot);
              // each round's evaluation, for the kept slot's row (evaluation is deterministic)
              const evals: Awaited<ReturnType<typeof evaluate>>[] = [];
              const done = await practice(policy, e, {
                slot,
                keep: practiceKeep,
                ...(practiceStopAt !== undefined ? { stopAt: practiceStopAt } : {}),
                ...(practiceJudge
                  ? {
                      judge:
                        practiceTrack === 'judge' ? practiceJudge : bodyOf(practiceJudge, shrink),
                      refitOnTries: practiceTrack === 'body+tries',
                    }
                  : {}),
                rounds: practiceRounds,
                tries: practiceTries,
                steps: practiceSteps,
                horizon: hindsight ?? 8,
                seed: s,
                firstSeed: base + 30_000,
                env: { imageSize: side },
                toSamples: (eps) => episodesAsSamples(e, eps, 'demo', extractor, c),
                onRound: async (r) => {
                  evals.push(await evaluate(policy, e, s));
                  row(`practice, round ${r.round}${practiceFrom}${label}`, evals.at(-1)!, t0);
                  t0 = performance.now();
                },
              });
              // the kept slot's numbers: a round's slot was evaluated right after its fit, the
              // start is evaluated here, once
              let startEval: Awaited<ReturnType<typeof evaluate>> | undefined;
              const keptEval = async () =>
                done.kept === 0
                  ? (startEval ??= await evaluate(policy, e, s))
                  : evals[done.kept - 1]!;
              if (practiceStopAt !== undefined)
                row(
                  `practice (stop at ${Math.round(100 * practiceStopAt)}%)${practiceFrom}${label}`,
                  {
                    ...(await keptEval()),
                    ...(done.kept < done.tried.length ? { tried: done.tried[done.kept]! } : {}),
                    kept: done.kept,
                    practiceTried: done.tried,
                  },
                  t0,
                );
              if (practiceKeep === 'best')
                row(
                  `practice (keep best)${practiceFrom}${label}`,
                  {
                    ...(await keptEval()),
                    tried: done.tried[done.kept]!,
                    kept: done.kept,
                  },
                  t0,
                );
            }
            if (control) {
              // the same budget and seeds as the target's play, from the control robot
              const other = await recordEpisodes(
                control,
                randomController(s),
                'play',
                budget,
                base,
                extractor,
                c,
              );
              const otherSplit = alignSplit(other);
              const otherHull = params.includes('hull') ? rank(otherSplit).hull : [];
              for (const param of params) {
                t0 = performance.now();
                // hull rows mix the slots nearest the control's play, not the target's
                const alignLosses = await alignOn(otherSplit, param, 'mean', otherHull);
                row(
                  `align ${param} on ${controlName}'s play${label}`,
                  { ...(await evaluate(policy, e, s)), alignLosses },
                  t0,
                );
              }
              for (const b of [...otherSplit.train, ...otherSplit.heldOut]) disposeBatch(b);
            }
            const endCell = () => {
              for (const b of lossBatches) disposeBatch(b);
              lossBatches = [];
              progress.tick();
            };
            if (!baselines) {
              endCell();
              continue;
            }
            // the oracle fits the slot with the action loss on every labelled demo frame
            const demoBatches = playSplit(
              policy,
              demos.samples,
              demos.meta,
              batchSize,
              new Rng(s + 13),
              slot,
              0,
            ).train;
            for (const p of oracleParams) {
              t0 = performance.now();
              resetSlot();
              const o = await align(policy, demoBatches, {
                slot,
                parametrisation: p,
                init: 'mean',
                basis: sourceSlots,
                maxSteps: oracleSteps,
                // free and bias: 10x align's default rate; span coefficients take align's own
                lr: p === 'free' ? 1e-3 : p === 'bias' ? (lrOf[p] ?? 1e-2) : (lrOf[p] ?? 3e-2),
                objective: 'action',
                seed: s,
              });
              o.state.dispose();
              row(
                p === 'free' ? 'oracle adapter' : `oracle adapter (${p})`,
                await evaluate(policy, e, s),
                t0,
              );
            }
            for (const b of demoBatches) disposeBatch(b);
            if (ftSteps > 0) {
              t0 = performance.now();
              const ft = await loadCheckpoint(ckpt);
              try {
                const fp = ft.policy;
                fillWithSourceMean(fp, slot, sourceSlots);
                const rng = new Rng(s + 17);
                const r = await finetune(
                  fp,
                  () => drawBatch(fp, demos.samples, demos.meta, batchSize, rng, slot),
                  { steps: ftSteps, lr: 1e-4, warmup: Math.min(20, ftSteps), seed: s },
                );
                disposePretrain(r);
                row('fine-tune (all parameters)', await evaluate(fp, e, s), t0);
              } finally {
                ft.policy.dispose();
              }
            }
            endCell();
          }
        }
      }
      progress.end();
    } finally {
      judge?.dispose();
      if (practiceJudge !== judge) practiceJudge?.dispose();
      await extractor.dispose();
      policy.dispose();
    }
    const table = formatTable(rows, loaded.step, episodes, evalTask);
    if (outFile) await writeFileAtomic(resolve(io.cwd, outFile), `${table.join('\n')}\n`);
    const raw: RawResults = {
      checkpoint: ckpt,
      step: loaded.step,
      episodes,
      task: evalTask,
      command: `selfalign ${args.argv.join(' ')}`,
      alignWeights,
      rows,
    };
    if (rawFile)
      await writeFileAtomic(resolve(io.cwd, rawFile), `${JSON.stringify(raw, null, 1)}\n`);
    return { lines: table, json: raw };
  },
};

/**
 * The rows of several raw files, each cell (target, budget, seed, method) once: a chunk that
 * reran a cell of another (a seed-0 rerun beside new seeds) must agree with it to the last digit,
 * else the merge is refused rather than counting a cell twice or picking one.
 */
function uniqueCells(parts: readonly RawResults[], files: readonly string[]): Row[] {
  const seen = new Map<string, { row: Row; file: string }>();
  const rows: Row[] = [];
  parts.forEach((p, i) => {
    for (const r of p.rows) {
      const key = `${r.target} / play ${r.budget} / seed ${r.seed} / ${r.method}`;
      const first = seen.get(key);
      if (first === undefined) {
        seen.set(key, { row: r, file: files[i]! });
        rows.push(r);
        continue;
      }
      const same =
        first.row.success === r.success &&
        first.row.actionMse === r.actionMse &&
        first.row.demoLoss === r.demoLoss;
      if (!same)
        throw new UserError(
          `results --merge: ${key} is in ${first.file} and ${files[i]} with different numbers (success ${first.row.success} vs ${r.success}); merge one of them`,
        );
    }
  });
  return rows;
}

/** Checks slot parametrisation names (`what`: how the error names them). */
function parametrisations(names: readonly string[], what: string): (typeof PARAMS)[number][] {
  return names.map((p) => {
    if (!(PARAMS as readonly string[]).includes(p))
      throw new UserError(`results: unknown ${what}parametrisation '${p}' (${PARAMS.join(', ')})`);
    return p as (typeof PARAMS)[number];
  });
}

const meanOf = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * The share of the no adaptation -> oracle improvement that `g` achieves, from the seed means of
 * `f` (signed so that better is positive); 'no gap' where the oracle is not better, undefined
 * where a baseline is missing or a value is not finite.
 */
function gapShare(
  g: readonly Row[],
  none: readonly Row[],
  oracle: readonly Row[],
  f: (r: Row) => number,
  higherIsBetter: boolean,
): number | 'no gap' | undefined {
  if (none.length === 0 || oracle.length === 0) return undefined;
  const sign = higherIsBetter ? 1 : -1;
  const d = sign * (meanOf(oracle.map(f)) - meanOf(none.map(f)));
  if (!Number.isFinite(d)) return undefined;
  if (d <= 1e-9) return 'no gap';
  const share = (sign * (meanOf(g.map(f)) - meanOf(none.map(f)))) / d;
  return Number.isFinite(share) ? share : undefined;
}

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const showGap = (x: number | 'no gap' | undefined) =>
  x === undefined ? '-' : x === 'no gap' ? x : pct(x);

/** The share of the success gap a method must close on every target (the results issue's bar). */
export const GAP_BAR = 0.8;

/** Markdown: one row per (target, budget, method), mean (and spread over seeds), then the gap closed. */
export function formatTable(
  rows: readonly Row[],
  step: number,
  episodes: number,
  task: TaskName = 'reach',
): string[] {
  const groups = groupCells(rows);
  const sd = (xs: number[]) =>
    xs.length < 2
      ? 0
      : Math.sqrt(xs.reduce((a, x) => a + (x - meanOf(xs)) ** 2, 0) / (xs.length - 1));
  const fmt = (xs: number[], pct: boolean) => {
    const m = pct ? `${(100 * meanOf(xs)).toFixed(1)}%` : meanOf(xs).toFixed(4);
    if (xs.length < 2) return m;
    return `${m} +- ${pct ? `${(100 * sd(xs)).toFixed(1)}%` : sd(xs).toFixed(4)}`;
  };
  const out = [
    `checkpoint step ${step}; ${task}, ${episodes} evaluation episodes per row; gap closed = the share of the no adaptation -> oracle adapter improvement that the method achieves ("no gap" where the oracle is not better)`,
    '',
    '| target | play | method | success | action MSE | demo loss | gap closed (success) | gap closed (MSE) | gap closed (demo loss) | wall (s) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const [k, g] of groups) {
    const [target, budget] = k.split('|');
    const none = groups.get(`${target}|${budget}|no adaptation`) ?? [];
    const oracle = groups.get(`${target}|${budget}|oracle adapter`) ?? [];
    // raw files written before the demo-loss column have none
    const loss = (r: Row) => r.demoLoss ?? Number.NaN;
    const losses = g.map(loss);
    const gap = (f: (r: Row) => number, higher: boolean) =>
      showGap(gapShare(g, none, oracle, f, higher));
    out.push(
      `| ${target} | ${budget} | ${g[0]!.method} | ${fmt(
        g.map((r) => r.success),
        true,
      )} | ${fmt(
        g.map((r) => r.actionMse),
        false,
      )} | ${losses.every(Number.isFinite) ? fmt(losses, false) : '-'} | ${gap((r) => r.success, true)} | ${gap((r) => r.actionMse, false)} | ${
        losses.every(Number.isFinite) ? gap(loss, false) : '-'
      } | ${meanOf(g.map((r) => r.wallS)).toFixed(0)} |`,
    );
  }
  return [...out, ...formatSummary(rows)];
}

/** Rows grouped by cell (target, budget, method), in first-seen order. */
function groupCells(rows: readonly Row[]): Map<string, Row[]> {
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const k = `${r.target}|${r.budget}|${r.method}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return groups;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * Markdown: per (budget, method) other than the two ends of the gap, each target's gap closed (as
 * in the table's rows) summarised over the targets (mean and median), and the verdict against the
 * bar: the targets where the method closes at least GAP_BAR of the success gap, and by how much
 * each other target falls short. Empty when no row has both baselines.
 */
export function formatSummary(rows: readonly Row[]): string[] {
  const groups = groupCells(rows);
  const ends = new Set(['no adaptation', 'oracle adapter']);
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) {
    const id = `${r.budget}|${r.method}`;
    if (ends.has(r.method) || seen.has(id)) continue;
    seen.add(id);
    const targets = [
      ...new Set(
        rows.filter((x) => x.budget === r.budget && x.method === r.method).map((x) => x.target),
      ),
    ];
    const per = targets.map((t) => {
      const g = groups.get(`${t}|${r.budget}|${r.method}`)!;
      const none = groups.get(`${t}|${r.budget}|no adaptation`) ?? [];
      const oracle = groups.get(`${t}|${r.budget}|oracle adapter`) ?? [];
      return {
        t,
        success: gapShare(g, none, oracle, (x) => x.success, true),
        mse: gapShare(g, none, oracle, (x) => x.actionMse, false),
      };
    });
    const num = (xs: (number | 'no gap' | undefined)[]) =>
      xs.filter((x): x is number => typeof x === 'number');
    const s = num(per.map((p) => p.success));
    const m = num(per.map((p) => p.mse));
    if (s.length === 0 && m.length === 0) continue;
    const stat = (xs: number[]) =>
      xs.length === 0 ? '-' : `${pct(meanOf(xs))} (${pct(median(xs))})`;
    const scored = per.filter((p) => typeof p.success === 'number') as {
      t: string;
      success: number;
    }[];
    const at = scored.filter((p) => p.success >= GAP_BAR);
    const below = scored
      .filter((p) => p.success < GAP_BAR)
      .sort((a, b) => a.success - b.success)
      .map((p) => `${p.t} ${pct(p.success)}`);
    const noGap = per.filter((p) => p.success === 'no gap').map((p) => p.t);
    // the spread over seeds: each seed's own gap per target (its rows against its baselines), meaned
    const seeds = [
      ...new Set(
        rows.filter((x) => x.budget === r.budget && x.method === r.method).map((x) => x.seed),
      ),
    ].sort((a, b) => a - b);
    const perSeed = seeds.map((seed) => {
      const of = (k: string) => (groups.get(k) ?? []).filter((x) => x.seed === seed);
      const shares = targets.map((t) => {
        const cell = (method: string) => of(`${t}|${r.budget}|${method}`);
        const g = cell(r.method);
        if (g.length === 0) return undefined;
        return [
          gapShare(g, cell('no adaptation'), cell('oracle adapter'), (x) => x.success, true),
          gapShare(g, cell('no adaptation'), cell('oracle adapter'), (x) => x.actionMse, false),
        ] as const;
      });
      const mean2 = (i: 0 | 1) => {
        const xs = num(shares.map((v) => v?.[i]));
        return xs.length === 0 ? '-' : pct(meanOf(xs));
      };
      return `${mean2(0)} / ${mean2(1)}`;
    });
    if (lines.length === 0)
      lines.push(
        '',
        `Over the targets (each target's gap closed as in its row above, from the seed means; mean and median over the targets; the bar: at least ${pct(GAP_BAR)} of the success gap on every target):`,
        '',
        '| play | method | targets | gap closed, success: mean (median) | gap closed, MSE: mean (median) | per seed, success / MSE (mean over targets) | at the bar (success) | below it, worst first |',
        '|---|---|---|---|---|---|---|---|',
      );
    lines.push(
      `| ${r.budget} | ${r.method} | ${targets.length} | ${stat(s)} | ${stat(m)} | ${seeds
        .map((seed, i) => `seed ${seed}: ${perSeed[i]}`)
        .join('; ')} | ${at.length} of ${scored.length}${
        at.length > 0 ? `: ${at.map((p) => p.t).join(', ')}` : ''
      }${noGap.length > 0 ? ` (no gap: ${noGap.join(', ')})` : ''} | ${below.length > 0 ? below.join(', ') : '-'} |`,
    );
  }
  return lines;
}
