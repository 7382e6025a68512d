// The pretraining loss (openpi pi0.py compute_loss, extended with the Alignment Expert): one
// joint forward over [prefix, action suffix, alignment suffix] with the DESIGN 3.5 mask.
//   total = w_a L_action + sum over the alignment tasks w_task L_task + w_t L_ttt + w_k L_keypoints
// The alignment tasks are a table (alignment-suffix.ts: perception, dynamics, inverse dynamics
// by default; `opts.tasks` for others), so this function is a loop over it.
// L_keypoints (pretraining only, weight 0 by default) is an auxiliary label for the vision
// tower: its first G keypoints regress the image positions of the G task objects
// (`batch.objects`, NaN where absent), so the goal becomes perceivable (docs/results.md).
// Flow matching everywhere: x_t = t eps + (1 - t) x0, target u = eps - x0, t = 0.999 Beta(1.5,1)
// + 0.001, one t per sample shared by all tasks, independent noise per task. Padded state/action
// dims and chunk steps past the episode end count nothing; play rows (isDemo = 0) add no action
// loss. `streams: ['alignment']` with a `prefixCache` is align's forward: the Action Expert
// is not called at all.
import { assertShape, flowTime, type Rng, randomNormal, ShapeError, tf } from '@selfalign/core';
import { actionStateInput, actionVelocity, embedActionSuffix } from './action-suffix.js';
import {
  type AlignmentTask,
  type AlignmentTaskName,
  alignmentHeads,
  alignmentTasksOf,
  embedAlignmentSuffix,
  type TaskContext,
  taskNoise,
} from './alignment-suffix.js';
import { allowsFor, buildMask, prefixPositions, suffixPositions } from './masks.js';
import { dimMask, normalize, padLast } from './normalize.js';
import { checkObservation, type Observation, prepareState } from './observation.js';
import type { Policy } from './policy.js';
import { embedPrefix, type PrefixCache } from './prefix.js';
import { type ExpertName, runTransformer, type Stream } from './transformer.js';

export interface TrainBatch extends Observation {
  /** [B, Ha, a] actions in robot units (a <= A) */
  actions: tf.Tensor;
  /** [B, Ha] 1 where the chunk step lies inside the episode (default all 1) */
  actionMask?: tf.Tensor;
  /** [B, F] features of the observation after the chunk */
  nextFeatures: tf.Tensor;
  /**
   * [B, s'] the state after the chunk in robot units (s' >= the state's dims; the state's
   * dims are kept): the target of the `stateDynamics` task, when the config has it.
   */
  nextState?: tf.Tensor;
  /** [B] 1 for demo rows (all losses), 0 for play rows (alignment losses only); default all 1 */
  isDemo?: tf.Tensor;
  /** [B, G, 2] image positions (u, v) of the task objects in camera 0, NaN where absent (L_keypoints) */
  objects?: tf.Tensor;
}

/** Weights of the loss terms: one per alignment task of the table (ALIGNMENT_TASKS), and the rest. */
export type LossWeights = {
  action: number;
  ttt: number;
  /** Auxiliary keypoint loss (needs `batch.objects` and a config with keypoints). */
  keypoints: number;
} & Record<AlignmentTaskName, number>;

export const DEFAULT_LOSS_WEIGHTS: Readonly<LossWeights> = Object.freeze({
  action: 1,
  perception: 1,
  dynamics: 1,
  inverseDynamics: 1,
  ttt: 0,
  keypoints: 0,
});

export interface LossOptions {
  /** Term weights (tasks added with `tasks` are weighted by name, default 1). */
  weights?: Partial<LossWeights> & Readonly<Record<string, number>>;
  /**
   * The alignment tasks (default the config's: the design's three and its
   * `extraAlignmentTasks`). Each loss comes back
   * as a term of its name; a name of another term (total, action, ttt, keypoints,
   * alignmentRows) is refused.
   */
  tasks?: readonly AlignmentTask[];
  /** Suffix streams to run (default both). */
  streams?: readonly ('action' | 'alignment')[];
  /** Prefix K/V computed beforehand (no gradient flows into it). */
  prefixCache?: PrefixCache;
  /** Source of t and noise (default: the policy's). */
  rng?: Rng;
  /** [B] flow time, instead of drawing it. */
  time?: tf.Tensor;
  /** Noise per task, instead of drawing it. */
  noise?: Partial<Record<'actions' | 'state' | 'features' | 'inverse' | 'nextState', tf.Tensor>> &
    Readonly<Record<string, tf.Tensor>>;
  /** Experts whose TTT calls pass no gradient into W1/b1 (alignment-defined slots: ['action']). */
  stopSlotGradient?: readonly ExpertName[];
  /** Compute L_ttt even with weight 0 (it is reported as 0 otherwise). */
  withTttLoss?: boolean;
  /** Per layer position: W1/b1 replacing the TTT modules' own in this forward (align's slot parametrisations). */
  fastWeights?: ReadonlyMap<number, { W1: tf.Tensor; b1: tf.Tensor }>;
  /** Also return the weighted alignment loss of each row ([B]), e.g. for a slot-contrast term. */
  rowLosses?: boolean;
  /**
   * Divide each masked loss by these counts instead of this batch's own mask sums: with the
   * counts of a whole batch (`lossDenominators`), the losses of its row shards add up to the
   * whole batch's loss exactly (data-parallel training).
   */
  denominators?: LossDenominators;
}

/** The mask sums each masked-mean loss divides by (alignment tasks by name). */
export type LossDenominators = {
  action: number;
  keypoints: number;
} & Record<AlignmentTaskName, number> &
  Record<string, number>;

export interface LossTerms {
  total: tf.Scalar;
  action: tf.Scalar;
  perception: tf.Scalar;
  dynamics: tf.Scalar;
  inverseDynamics: tf.Scalar;
  ttt: tf.Scalar;
  /** Mean squared keypoint error over present objects (0 without `batch.objects` or a prefix). */
  keypoints: tf.Scalar;
  /** [B] weighted sum of the alignment losses per row (with `rowLosses`). */
  alignmentRows?: tf.Tensor1D;
  /** Tasks given in `LossOptions.tasks` beyond the design's three, by name. */
  [task: string]: tf.Tensor | undefined;
}

/**
 * sum(mask * (pred - target)^2) / max(1, sum(mask)), mask broadcast to pred; `denominator`
 * replaces sum(mask) (a whole batch's count when this is one shard of it).
 */
export function maskedMse(
  pred: tf.Tensor,
  target: tf.Tensor,
  mask: tf.Tensor,
  denominator?: number,
): tf.Scalar {
  return tf.tidy(() => {
    const m = tf.broadcastTo(tf.cast(mask, 'float32'), pred.shape);
    const sum = tf.sum(tf.mul(tf.square(tf.sub(pred, target)), m));
    return (
      denominator === undefined
        ? tf.div(sum, tf.maximum(tf.sum(m), 1))
        : tf.div(sum, Math.max(denominator, 1))
    ) as tf.Scalar;
  });
}

/**
 * The mask sums of computeLoss's masked means over `batch` (host arithmetic on its masks), for
 * `LossOptions.denominators` when the batch is split into shards.
 */
export function lossDenominators(
  policy: Policy,
  batch: TrainBatch,
  tasks: readonly AlignmentTask[] = alignmentTasksOf(policy.config),
): LossDenominators {
  const c = policy.config;
  const b = batch.state.shape[0]!;
  const ha = c.actionHorizon;
  const a = batch.actions.shape[2]!;
  const chunk = batch.actionMask ? batch.actionMask.dataSync() : new Float32Array(b * ha).fill(1);
  const demo = batch.isDemo ? batch.isDemo.dataSync() : new Float32Array(b).fill(1);
  let steps = 0;
  let demoSteps = 0;
  for (let r = 0; r < b; r++) {
    let n = 0;
    for (let h = 0; h < ha; h++) n += Number(chunk[r * ha + h]);
    steps += n;
    demoSteps += n * Number(demo[r]);
  }
  let keypoints = 0;
  if (batch.objects) for (const v of batch.objects.dataSync()) if (!Number.isNaN(v)) keypoints++;
  const counts = { rows: b, steps, stateDims: batch.state.shape[1]!, actionDims: a, config: c };
  return {
    action: demoSteps * a,
    keypoints,
    ...Object.fromEntries(tasks.map((t) => [t.name, t.count(counts)])),
  } as LossDenominators;
}

/** Per-row masked MSE: [B] = sum over the rest of mask * (pred - target)^2 / max(1, sum(mask)). */
export function maskedMseRows(pred: tf.Tensor, target: tf.Tensor, mask: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const m = tf.broadcastTo(tf.cast(mask, 'float32'), pred.shape);
    const axes = pred.shape.slice(1).map((_, i) => i + 1);
    return tf.div(
      tf.sum(tf.mul(tf.square(tf.sub(pred, target)), m), axes),
      tf.maximum(tf.sum(m, axes), 1),
    ) as tf.Tensor1D;
  });
}

export function computeLoss(policy: Policy, batch: TrainBatch, opts: LossOptions = {}): LossTerms {
  const c = policy.config;
  const b = checkObservation(policy, batch);
  assertShape(batch.actions, [b, c.actionHorizon, null], 'batch.actions');
  if (batch.actions.shape[2]! > c.actionDim) {
    throw new ShapeError(
      `batch.actions has ${batch.actions.shape[2]} dims, the model takes at most ${c.actionDim}`,
    );
  }
  assertShape(batch.nextFeatures, [b, c.featureDim], 'batch.nextFeatures');
  if (batch.nextState) {
    assertShape(batch.nextState, [b, null], 'batch.nextState');
    if (batch.nextState.shape[1]! < batch.state.shape[1]!)
      throw new ShapeError(
        `batch.nextState has ${batch.nextState.shape[1]} dims, the state ${batch.state.shape[1]}`,
      );
  }
  if (batch.actionMask) assertShape(batch.actionMask, [b, c.actionHorizon], 'batch.actionMask');
  if (batch.isDemo) assertShape(batch.isDemo, [b], 'batch.isDemo');
  if (batch.objects) {
    assertShape(batch.objects, [b, null, 2], 'batch.objects');
    const k = c.vision.keypoints ?? 0;
    if (batch.objects.shape[1]! > k)
      throw new ShapeError(
        `batch.objects has ${batch.objects.shape[1]} objects, the vision tower has ${k} keypoints`,
      );
  }
  const w: Readonly<Record<string, number>> = { ...DEFAULT_LOSS_WEIGHTS, ...opts.weights };
  const tasks = opts.tasks ?? alignmentTasksOf(c);
  for (const task of tasks)
    if (RESERVED_TERMS.includes(task.name))
      throw new Error(
        `an alignment task cannot be named '${task.name}': that is another loss term`,
      );
  const weight = (name: string) => w[name] ?? 1;
  const streams = opts.streams ?? ['action', 'alignment'];
  const runAction = streams.includes('action');
  const runAlign = streams.includes('alignment');
  const rng = opts.rng ?? policy.rng;
  const withTtt = w['ttt'] !== 0 || (opts.withTttLoss ?? false);
  const den = opts.denominators;
  return tf.tidy(() => {
    const ha = c.actionHorizon;
    const { state, dims: sdim } = prepareState(policy, batch.state);
    const adim = dimMask(batch.actions.shape[2]!, c.actionDim);
    const chunk = batch.actionMask ? tf.cast(batch.actionMask, 'float32') : tf.ones([b, ha]);
    const chunk3 = tf.expandDims(chunk, 2);
    const actions = tf.mul(
      padLast(
        normalize(batch.actions, policy.normStats?.actions, policy.normMode),
        c.actionDim,
        'actions',
      ),
      chunk3,
    );
    const t = opts.time ?? flowTime(rng, b);
    // x_t = t eps + (1 - t) x0, t broadcast over x0's rank
    const mix = (eps: tf.Tensor, x0: tf.Tensor) => {
      const tt = tf.reshape(t, [b, ...x0.shape.slice(1).map(() => 1)]);
      return tf.add(tf.mul(tt, eps), tf.mul(tf.sub(1, tt), x0));
    };

    const cache = opts.prefixCache;
    const prefix = cache ? undefined : embedPrefix(policy, batch);
    const prefixMask = cache ? cache.mask : prefix!.mask;
    const list: Stream[] = prefix ? [{ expert: 'vlm', x: prefix.x, tokenMask: prefix.mask }] : [];
    const segments = [];
    const positions = prefix ? [prefixPositions(prefixMask)] : [];
    let uAction: tf.Tensor | undefined;
    if (runAction) {
      const eps = opts.noise?.['actions'] ?? randomNormal(rng, [b, ha, c.actionDim]);
      uAction = tf.sub(eps, actions);
      const kp = cache ? cache.keypoints : prefix!.keypoints;
      const suffix = embedActionSuffix(
        policy,
        actionStateInput(policy, state, kp),
        mix(eps, actions),
        t,
      );
      list.push({ expert: 'action', x: suffix.x, tokenMask: suffix.mask });
      segments.push({ name: 'action', inputMask: suffix.mask, ar: suffix.ar });
      positions.push(suffixPositions(prefixMask, suffix.mask));
    }
    // the alignment tasks: targets, noise (in table order) and tokens
    const ctx: TaskContext = {
      policy,
      state,
      stateDims: tf.expandDims(sdim, 0),
      actions,
      actionDims: adim,
      chunk,
      features: batch.nextFeatures,
      t,
    };
    if (batch.nextState) {
      const keep = tf.slice(batch.nextState, [0, 0], [b, batch.state.shape[1]!]);
      ctx.nextState = prepareState(policy, keep).state;
    }
    let aligned: { x0: tf.Tensor; mask: tf.Tensor; u: tf.Tensor }[] = [];
    let offsets: readonly number[] = [];
    if (runAlign) {
      const goals = tasks.map((task) => task.target(ctx));
      const eps = taskNoise(
        tasks,
        goals.map((g) => g.x0),
        opts.noise,
        rng,
      );
      aligned = goals.map((g, i) => ({ ...g, u: tf.sub(eps[i]!, g.x0) }));
      const g = embedAlignmentSuffix(
        ctx,
        tasks,
        goals.map((goal, i) => mix(eps[i]!, goal.x0)),
      );
      offsets = g.offsets;
      list.push({ expert: 'alignment', x: g.x, tokenMask: g.mask });
      segments.push(...g.segments);
      positions.push(suffixPositions(prefixMask, g.mask));
    }
    const out = runTransformer(policy, list, {
      mask: buildMask(prefixMask, segments, !cache, allowsFor(tasks)),
      positions: tf.concat(positions, 1),
      ...(cache ? { cache: cache.kv } : {}),
      ...(batch.slot ? { slot: batch.slot } : {}),
      withTttLoss: withTtt,
      ...(opts.stopSlotGradient ? { stopSlotGradient: opts.stopSlotGradient } : {}),
      ...(opts.fastWeights ? { fastWeights: opts.fastWeights } : {}),
    });
    const zero = () => tf.scalar(0);
    let k = prefix ? 1 : 0;
    let action: tf.Scalar = zero();
    if (runAction) {
      const v = actionVelocity(policy, out.outputs[k++]!);
      const demo = batch.isDemo
        ? tf.reshape(tf.cast(batch.isDemo, 'float32'), [b, 1, 1])
        : tf.ones([b, 1, 1]);
      action = maskedMse(v, uAction!, tf.mul(tf.mul(chunk3, adim), demo), den?.action);
    }
    const taskLoss: Record<string, tf.Scalar> = {};
    let alignmentRows: tf.Tensor1D | undefined;
    if (runAlign) {
      const pred = alignmentHeads(policy, tasks, out.outputs[k++]!, offsets);
      tasks.forEach((task, i) => {
        const { u, mask } = aligned[i]!;
        taskLoss[task.name] = maskedMse(pred[i]!, u, mask, den?.[task.name]);
      });
      if (opts.rowLosses)
        alignmentRows = tf.addN(
          tasks.map((task, i) =>
            tf.mul(maskedMseRows(pred[i]!, aligned[i]!.u, aligned[i]!.mask), weight(task.name)),
          ),
        ) as tf.Tensor1D;
    } else for (const task of tasks) taskLoss[task.name] = zero();
    const ttt = out.tttLoss ?? zero();
    let keypoints: tf.Scalar = zero();
    if (batch.objects && prefix?.keypoints) {
      const g = batch.objects.shape[1]!;
      const pred = tf.slice(prefix.keypoints, [0, 0, 0, 0], [b, 1, g, 2]).reshape([b, g, 2]);
      const present = tf.logicalNot(tf.isNaN(batch.objects));
      keypoints = maskedMse(
        pred,
        tf.where(present, batch.objects, tf.zerosLike(pred)),
        present,
        den?.keypoints,
      );
    }
    const total = tf.addN([
      tf.mul(action, weight('action')),
      ...tasks.map((task) => tf.mul(taskLoss[task.name]!, weight(task.name))),
      tf.mul(ttt, weight('ttt')),
      tf.mul(keypoints, weight('keypoints')),
    ]) as tf.Scalar;
    const design = (name: AlignmentTaskName) => taskLoss[name] ?? zero();
    const terms: LossTerms = {
      ...taskLoss,
      total,
      action,
      perception: design('perception'),
      dynamics: design('dynamics'),
      inverseDynamics: design('inverseDynamics'),
      ttt,
      keypoints,
    };
    if (alignmentRows) terms.alignmentRows = alignmentRows;
    return terms as unknown as tf.TensorContainer;
  }) as unknown as LossTerms;
}

const RESERVED_TERMS: readonly string[] = ['total', 'action', 'ttt', 'keypoints', 'alignmentRows'];

/** Disposes every term. */
export function disposeLoss(terms: LossTerms): void {
  tf.dispose(terms as unknown as tf.TensorContainer);
}
