// selfalign align: fit one TTT slot of a checkpoint's policy to play data of a new robot.

import { resolve } from 'node:path';
import {
  align,
  defaultAlignWeights,
  SLOT_PARAMETRISATIONS,
  saveCheckpoint,
} from '@selfalign/align';
import { Rng } from '@selfalign/core';
import { EXTRA_ALIGNMENT_TASKS, type TrainBatch } from '@selfalign/experts';
import { lowestScored, nearestSourceSlot, playSplit } from '@selfalign/harness';
import type { Command } from '../command.js';
import { Progress, UserError } from '../io.js';
import { checkOutputDir, checkOutputs, trainingState } from '../paths.js';
import {
  adapterTarget,
  checkTaskWeights,
  drawBatch,
  loadPolicy,
  loadSamples,
  parseTaskWeights,
} from '../shared.js';
import { TASK_TITLE } from '../task-titles.js';

export const alignCommand: Command = {
  name: 'align',
  summary: 'fit only TTT W1/b1 of one slot to unlabelled play data, save the adapter',
  usage: `selfalign align --checkpoint CKPT --data FILES --adapter NAME [options]
  --slot K               slot to fit (default: the first slot no embodiment uses)
  --param P              free | span | span+residual | hull | bias (default span; bias: b1
                         only; hull: a mixture of the --hull-k source slots with the lowest
                         align objective on the play, the weights trained)
  --hull-k K             hull: how many of the nearest source slots it mixes   (default 4)
  --init I               current | mean | nearest | K: where the slot starts (span: the mean
                         of the source slots or one of them); nearest: the source slot with
                         the lowest align objective on the play (label-free)  (default mean)
  --steps N              (default 200; 0 with --init nearest or K keeps that slot as it is)
  --lr LR                (default: free 1e-4, span 3e-2)
  --span-prior L         span, span+residual: add L * d^2 to the loss, d the slot's distance
                         from the source mean in the source slots' own spread (a Gaussian
                         prior on the robot's code; the sources sit at d^2 ~ the span's
                         dimension)                         (default 0: none)
  --average-from K       commit the mean of the iterates from step K on instead of the last
                         one (iterate averaging: the objective is noisy)  (default: off)
  --optimizer O          adam | sgd (plain steps of --lr, as align-aware pretraining's inner
                         steps)                             (default adam)
  --batch-size B         (default 16)
  --held-out-share S     share of the play episodes held out for before/after losses and
                         early stopping (whole episodes; default 0.2); the other episodes'
                         frames are all used, shuffled into batches, one epoch per pass
  --batches N            instead the old fixed-batch mode: N random batches drawn once and
                         reused every step, plus --held-out N random batches (default 1)
  --patience N           stop after N held-out evaluations without improvement
  --task-weights W       perception,dynamics,inverse[,stateDynamics[,kinematics]] loss weights
                         (the fourth and fifth for a policy pretrained with those --extra-tasks;
                         0 holds a missing task's place; default: the state-dynamics task alone
                         (0,0,0,1, kinematics 0) for a policy with it, else 1,1,1; weights not
                         given take these defaults)
  --ttt-weight W         also minimise W x L_ttt, the TTT layers' own inner reconstruction
                         loss on the play frames (DESIGN 4's optional term; the --init
                         nearest score keeps the task weights)  (default 0)
  --adapters DIR         where adapters are saved            (default adapters)
  --save-checkpoint F    also write the checkpoint with the slot filled (weights only; refuses
                         to replace a resumable training checkpoint without --force)
  --seed S               (default 0)`,
  options: {
    checkpoint: { type: 'string' },
    data: { type: 'string' },
    adapter: { type: 'string' },
    slot: { type: 'string' },
    param: { type: 'string' },
    init: { type: 'string' },
    steps: { type: 'string' },
    lr: { type: 'string' },
    optimizer: { type: 'string' },
    'span-prior': { type: 'string' },
    'hull-k': { type: 'string' },
    'average-from': { type: 'string' },
    'batch-size': { type: 'string' },
    batches: { type: 'string' },
    'held-out': { type: 'string' },
    'held-out-share': { type: 'string' },
    patience: { type: 'string' },
    'task-weights': { type: 'string' },
    'ttt-weight': { type: 'string' },
    adapters: { type: 'string' },
    'save-checkpoint': { type: 'string' },
    force: { type: 'boolean' },
    seed: { type: 'string' },
  },
  async run(args, io) {
    const ckptPath = resolve(io.cwd, args.str('checkpoint'));
    const dataFiles = args.list('data').map((f) => resolve(io.cwd, f));
    const saveTo = args.optStr('save-checkpoint');
    const savePath = saveTo === undefined ? undefined : resolve(io.cwd, saveTo);
    if (savePath) {
      checkOutputs('align', dataFiles, [savePath]);
      if ((await trainingState(savePath))?.resumable && !args.has('force'))
        throw new UserError(
          `align: ${savePath} is a resumable training checkpoint; --save-checkpoint writes weights only and would drop its optimiser state (give another path, or --force)`,
        );
    }
    checkOutputDir('align', resolve(io.cwd, args.str('adapters', 'adapters')));
    if (args.has('lr')) args.lr('lr');
    const optimizer = args.choice('optimizer', ['adam', 'sgd'] as const, 'adam');
    const prior = args.num('span-prior', 0, (n) => Number.isFinite(n) && n >= 0, 'a number >= 0');
    const weights = parseTaskWeights(args, 'task-weights');
    const tttWeight = args.num(
      'ttt-weight',
      0,
      (n) => Number.isFinite(n) && n >= 0,
      'a number >= 0',
    );
    const loaded = await loadPolicy(ckptPath);
    const { policy, slots } = loaded;
    try {
      const { store, name, slot, used } = adapterTarget(
        'align',
        args,
        policy,
        slots,
        resolve(io.cwd, args.str('adapters', 'adapters')),
      );
      const E = policy.config.ttt.slots;
      checkTaskWeights('align', 'task-weights', weights, policy.config, ckptPath);
      // the weights given, over the policy's defaults: what align minimises and the adapter records
      const taskWeights = { ...defaultAlignWeights(policy.config), ...weights };
      const param = args.choice('param', SLOT_PARAMETRISATIONS, 'span');
      const initArg = args.str('init', 'mean');
      const nearest = initArg === 'nearest'; // picked below, once the play is loaded
      let init: number | 'current' | 'mean' =
        initArg === 'current'
          ? 'current'
          : initArg === 'mean' || nearest
            ? 'mean'
            : Number(initArg);
      if (typeof init === 'number' && !(Number.isInteger(init) && init >= 0 && init < E))
        throw new UserError(
          `align: --init must be current, mean, nearest or a slot, got '${initArg}'`,
        );
      const basis = [...used].filter((k) => k !== slot).sort((a, b) => a - b);
      if (basis.length === 0 && (param !== 'free' || init === 'mean'))
        throw new UserError(
          `align: '${param}' with --init ${initArg} needs the checkpoint's source slots; this checkpoint records none`,
        );
      if (
        (param === 'span' || param === 'span+residual') &&
        basis.length > 0 &&
        (init === 'current' || (typeof init === 'number' && !basis.includes(init)))
      )
        throw new UserError(
          `align: '${param}' starts at the mean of the source slots or at one of them (--init mean or ${basis[0]}..), got --init ${initArg}`,
        );
      if (param === 'hull' && init !== 'mean')
        throw new UserError(
          `align: 'hull' starts at the equal mixture of its slots (--init mean) or at the nearest one (--init nearest), got --init ${initArg}`,
        );
      const hullK = args.int('hull-k', 4, 1);
      const { samples, meta } = await loadSamples(
        args.list('data').map((f) => resolve(io.cwd, f)),
        policy.config.actionHorizon,
      );
      if (meta.featureDim !== policy.config.featureDim)
        throw new UserError(
          `align: the data has ${meta.featureDim ?? 'no'} features per frame, the policy needs ${policy.config.featureDim}`,
        );
      const seed = args.int('seed', 0);
      const bs = args.int('batch-size', 16, 1);
      const rng = new Rng(seed);
      let batches: TrainBatch[];
      let heldOut: TrainBatch[];
      let split = 'fixed batches';
      if (args.has('batches')) {
        batches = Array.from({ length: args.int('batches', 4, 1) }, () =>
          drawBatch(policy, samples, meta, bs, rng, slot),
        );
        heldOut = Array.from({ length: args.int('held-out', 1, 0) }, () =>
          drawBatch(policy, samples, meta, bs, rng, slot),
        );
      } else {
        const share = args.num('held-out-share', 0.2);
        if (!(share >= 0 && share < 1))
          throw new UserError(`align: --held-out-share must be in [0, 1), got ${share}`);
        const p = playSplit(policy, samples, meta, bs, rng, slot, share);
        batches = p.train;
        heldOut = p.heldOut;
        split = `${p.trainEpisodes.length} episodes in ${batches.length} batches per epoch, ${p.heldOutEpisodes.length} held out`;
      }
      // the label-free pick among the source slots: the lowest align objective on the play
      // (hull mixes the hullK lowest)
      const picked =
        nearest || param === 'hull'
          ? nearestSourceSlot(policy, batches, basis, slot, { weights: taskWeights, seed })
          : undefined;
      if (picked && nearest) init = picked.nearest;
      const hullBasis = param === 'hull' && picked ? lowestScored(picked.scores, hullK) : undefined;
      if (prior > 0 && param !== 'span' && param !== 'span+residual')
        throw new UserError(
          `align: --span-prior is a prior on the span's code; --param ${param} has none`,
        );
      const steps = args.int('steps', 200, typeof init === 'number' || param === 'hull' ? 0 : 1);
      const averageFrom = args.has('average-from') ? args.int('average-from', 0, 0) : undefined;
      if (averageFrom !== undefined && averageFrom >= steps)
        throw new UserError(
          `align: --average-from ${averageFrom} is not before the last of --steps ${steps}`,
        );
      const progress = new Progress(io, 'align', steps, !args.has('json'));
      const r = await align(policy, batches, {
        slot,
        parametrisation: param,
        init,
        ...(hullBasis ? { basis: hullBasis } : basis.length ? { basis } : {}),
        maxSteps: steps,
        ...(args.has('lr') ? { lr: args.lr('lr') } : {}),
        optimizer,
        ...(prior > 0 ? { prior } : {}),
        ...(averageFrom !== undefined ? { averageFrom } : {}),
        lossWeights: tttWeight > 0 ? { ...taskWeights, ttt: tttWeight } : taskWeights,
        ...(heldOut.length ? { heldOut } : {}),
        ...(args.has('patience') ? { patience: args.int('patience', undefined, 1) } : {}),
        seed,
        onStep: (_, loss) => progress.tick(1, `loss ${loss.toFixed(3)}`),
      });
      progress.end();
      const stats = {
        steps: r.steps,
        stopReason: r.stopReason,
        before: r.before,
        after: r.after,
        wallMs: Math.round(r.wallMs),
        param,
        ...(prior > 0 ? { spanPrior: prior } : {}),
        ...(averageFrom !== undefined ? { averageFrom } : {}),
        slot,
        taskWeights,
        ...(tttWeight > 0 ? { tttWeight } : {}),
        init: picked ? { nearest: picked.nearest, scores: picked.scores } : initArg,
        ...(hullBasis ? { hullBasis } : {}),
        frames: samples.length,
        split,
      };
      const path = await store.save(name, policy, slot, stats);
      const ck = args.optStr('save-checkpoint');
      if (ck)
        await saveCheckpoint(resolve(io.cwd, ck), policy, {
          info: { ...loaded.info, slots: { ...slots, [name]: slot } },
        });
      r.state.dispose();
      const f = (x: number) => x.toFixed(3);
      // the extra (blind) tasks the policy has, after the design's three
      const extra = EXTRA_ALIGNMENT_TASKS.filter((t) => r.before[t] !== undefined)
        .map((t) => `, ${TASK_TITLE[t]} ${f(r.before[t]!)} -> ${f(r.after[t]!)}`)
        .join('');
      return {
        lines: [
          `aligned slot ${slot} (${param}) for ${r.steps} steps in ${(r.wallMs / 1000).toFixed(1)} s, stopped: ${r.stopReason}; play: ${split}`,
          `  held-out   perception ${f(r.before.perception)} -> ${f(r.after.perception)}, dynamics ${f(r.before.dynamics)} -> ${f(r.after.dynamics)}, inverse ${f(r.before.inverseDynamics)} -> ${f(r.after.inverseDynamics)}${extra}${r.before.ttt !== undefined ? `, L_ttt ${f(r.before.ttt)} -> ${f(r.after.ttt!)}` : ''}`,
          `  adapter ${path}`,
        ],
        json: { adapter: path, ...stats },
      };
    } finally {
      policy.dispose();
    }
  },
};
