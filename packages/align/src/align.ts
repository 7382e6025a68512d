// align (DESIGN 4): fit only the TTT fast weights of one slot to a new robot from unlabelled
// play. The forward runs the prefix and the Alignment Expert only (computeLoss with
// streams ['alignment'] and a prefix K/V cache that carries no gradient and, for a fixed play
// set, is computed once per batch and reused across steps); the Action Expert is never called.
// The loss is the weighted sum of the mean perception, dynamics and inverse-dynamics losses
// (+ L_ttt, + the residual penalty of span+residual); Adam; the policy's training flag and every
// tensor except the fitted slot of W1/b1 stay as they were. Stops on a smoothed loss under
// `lossThreshold`, at `maxSteps`, on a held-out loss that stopped improving, or on a non-finite
// loss (the last good slot is restored). Calling again with the returned state continues.
import {
  createOptimizer,
  disposeOptimizer,
  type Optimizer,
  optimizerStep,
  Rng,
  tf,
} from '@selfalign/core';
import {
  alignmentTasksOf,
  computeLoss,
  disposePrefixCache,
  type ExtraAlignmentTask,
  encodePrefix,
  type LossWeights,
  type Policy,
  type PolicyConfig,
  type PrefixCache,
  type TrainBatch,
} from '@selfalign/experts';
import {
  DEFAULT_LR,
  SlotParam,
  type SlotParametrisation,
  type SlotParamOptions,
} from './slot-param.js';

/** The same batch with every row on `slot` (the caller disposes the new slot tensor). */
export function onSlot(batch: TrainBatch, slot: number): TrainBatch {
  return { ...batch, slot: tf.fill([batch.state.shape[0]!], slot, 'int32') };
}

export type AlignWeights = Pick<
  LossWeights,
  'perception' | 'dynamics' | 'inverseDynamics' | 'ttt'
> &
  Partial<Record<ExtraAlignmentTask, number>>;

export interface AlignOptions {
  /** Adam learning rate (default per parametrisation: free 1e-4, span 3e-2). */
  lr?: number;
  /**
   * 'adam' (default) or 'sgd': plain gradient steps of rate `lr`, the inner steps that
   * align-aware pretraining trained the alignment heads for.
   */
  optimizer?: 'adam' | 'sgd';
  maxSteps?: number;
  /** Stop once the smoothed (EMA) training loss is below this. */
  lossThreshold?: number;
  /** EMA factor of the smoothed loss (default 0.9). */
  smoothing?: number;
  lossWeights?: Partial<AlignWeights>;
  /** The slot being fitted (default 0); every row is put on it. */
  slot?: number;
  parametrisation?: SlotParametrisation;
  init?: SlotParamOptions['init'];
  basis?: readonly number[];
  residualL2?: number;
  /**
   * span and span+residual: lambda of the Gaussian prior on the slot's code (lambda * d^2, d the
   * slot's Mahalanobis distance from the source mean in the source slots' spread; `SlotParam`).
   */
  prior?: number;
  /** Held-out play batches: before/after losses, and early stopping when `patience` is set. */
  heldOut?: readonly TrainBatch[];
  /** Evaluate the held-out loss every this many steps (default 10). */
  evalEvery?: number;
  /** Stop after this many evaluations without improvement, restoring the best slot. */
  patience?: number;
  /** Keep each batch's prefix K/V across steps (default true). */
  cachePrefix?: boolean;
  /** Draws of t and noise (default seed 0). */
  seed?: number;
  /**
   * Evaluate the flow-matching losses at this flow time for every row instead of drawing it
   * (1: pure noise, where a task's loss is its regression error and no noise floor; default:
   * drawn as in pretraining).
   */
  flowTime?: number;
  /** What to fit: 'alignment' (align, unlabelled play) or 'action' (the oracle adapter: labelled target demos). */
  objective?: 'alignment' | 'action';
  /**
   * Iterate averaging (Polyak-Ruppert): from this step of the call on, keep the running mean of
   * the trainable tensors and commit that mean at the end instead of the last iterate. The
   * objective is noisy (flow-matching draws, a few hundred play frames), so late steps wander
   * around its minimum; the mean of the wandering sits nearer it. Not applied when held-out
   * early stopping restored its best slot or a non-finite loss stopped the run. Default: off.
   */
  averageFrom?: number;
  /** Continue from an earlier call. */
  state?: AlignState;
  onStep?: (step: number, loss: number, terms: StepTerms) => void;
  /** Also evaluate the held-out losses every `evalEvery` steps into `heldOutCurve` (reports). */
  traceHeldOut?: boolean;
}

/** The training batch's alignment losses at one step (a config's extra tasks too). */
export type StepTerms = {
  perception: number;
  dynamics: number;
  inverseDynamics: number;
} & Partial<Record<ExtraAlignmentTask, number>>;

export interface AlignState {
  param: SlotParam;
  opt: Optimizer;
  rng: Rng;
  /** Steps taken over all calls. */
  step: number;
  ema: number | undefined;
  dispose(): void;
}

/** Mean losses per task (a config's extra alignment tasks too). */
export type TaskLosses = {
  total: number;
  perception: number;
  dynamics: number;
  inverseDynamics: number;
  action: number;
  /** The TTT inner reconstruction loss (L_ttt): only when its weight is above 0. */
  ttt?: number;
} & Partial<Record<ExtraAlignmentTask, number>>;

export type StopReason = 'threshold' | 'maxSteps' | 'heldOut' | 'nonFinite';

export interface AlignResult {
  /** Training loss of each step of this call. */
  losses: number[];
  steps: number;
  stopReason: StopReason;
  /** Per-task losses on the held-out batches (else the play batches) before and after, same draws. */
  before: TaskLosses;
  after: TaskLosses;
  /** Held-out total at each evaluation. */
  heldOutLosses: number[];
  /** Per-step alignment losses of the training batch. */
  stepTerms: StepTerms[];
  /** Held-out losses by step (step 0 = before), with `traceHeldOut`. */
  heldOutCurve: { step: number; losses: TaskLosses }[];
  wallMs: number;
  state: AlignState;
}

/** Mean per-task losses over batches, with fixed draws (seed) so two evaluations compare. */
export function evaluateLosses(
  policy: Policy,
  batches: readonly TrainBatch[],
  opts: {
    weights?: Partial<LossWeights>;
    fastWeights?: Map<number, { W1: tf.Tensor; b1: tf.Tensor }>;
    objective?: 'alignment' | 'action';
    seed?: number;
    caches?: (b: TrainBatch) => PrefixCache | undefined;
    /** Flow time of every row (AlignOptions.flowTime; default drawn). */
    flowTime?: number;
  } = {},
): TaskLosses {
  const rng = new Rng(opts.seed ?? 12345);
  const sum: TaskLosses = { total: 0, perception: 0, dynamics: 0, inverseDynamics: 0, action: 0 };
  for (const task of alignmentTasksOf(policy.config)) sum[task.name as keyof TaskLosses] = 0;
  if ((opts.weights?.ttt ?? 0) > 0) sum.ttt = 0;
  for (const b of batches) {
    const cache = opts.caches?.(b);
    const time = fixedTime(b, opts.flowTime);
    const t = computeLoss(policy, b, {
      streams: [opts.objective === 'action' ? 'action' : 'alignment'],
      rng,
      ...(opts.weights ? { weights: opts.weights } : {}),
      ...(opts.fastWeights ? { fastWeights: opts.fastWeights } : {}),
      ...(cache ? { prefixCache: cache } : {}),
      ...(time ? { time } : {}),
    });
    time?.dispose();
    for (const k of Object.keys(sum) as (keyof TaskLosses)[])
      sum[k]! += t[k]!.dataSync()[0]! / batches.length;
    tf.dispose(Object.values(t) as tf.Tensor[]);
  }
  return sum;
}

/** Throws unless `flowTime` is undefined (draw t) or in (0, 1]. */
function checkFlowTime(flowTime: number | undefined): void {
  if (flowTime !== undefined && !(flowTime > 0 && flowTime <= 1))
    throw new RangeError(`flowTime must be in (0, 1], got ${flowTime}`);
}

/** [B] copies of `flowTime` for `batch` (undefined: draw t). */
export function fixedTime(batch: TrainBatch, flowTime: number | undefined): tf.Tensor | undefined {
  checkFlowTime(flowTime);
  return flowTime === undefined ? undefined : tf.fill([batch.state.shape[0]!], flowTime);
}

/**
 * The alignment-task weights align uses where it is not told: for a policy pretrained with the
 * blind state-dynamics task, that task alone (docs/results.md 2f and 2g: aligned alone through
 * the embodiment code it is the first objective that finds the robot; the image tasks carry no
 * robot and, even at a tenth of its weight, pull align off it); otherwise the design's three at
 * 1. The kinematics task, where a policy has it, is 0 unless asked: its loss barely tells one
 * robot's slot from another's and adding it did not help (docs/results.md 2i).
 */
export function defaultAlignWeights(config: PolicyConfig): Partial<AlignWeights> {
  const extra = config.extraAlignmentTasks ?? [];
  const out: Partial<AlignWeights> = extra.includes('stateDynamics')
    ? { perception: 0, dynamics: 0, inverseDynamics: 0, stateDynamics: 1 }
    : { perception: 1, dynamics: 1, inverseDynamics: 1 };
  if (extra.includes('kinematics')) out.kinematics = 0;
  return out;
}

export async function align(
  policy: Policy,
  playBatches: readonly TrainBatch[],
  opts: AlignOptions = {},
): Promise<AlignResult> {
  if (playBatches.length === 0) throw new Error('align needs at least one play batch');
  checkFlowTime(opts.flowTime);
  const t0 = performance.now();
  const slot = opts.state?.param.options.slot ?? opts.slot ?? 0;
  const kind = opts.state?.param.options.kind ?? opts.parametrisation ?? 'free';
  const objective = opts.objective ?? 'alignment';
  const weights: Partial<LossWeights> =
    objective === 'action'
      ? { action: 1, perception: 0, dynamics: 0, inverseDynamics: 0, ttt: 0 }
      : { action: 0, ttt: 0, ...defaultAlignWeights(policy.config), ...opts.lossWeights };
  const lr = opts.lr ?? DEFAULT_LR[kind];
  let state = opts.state;
  if (state === undefined) {
    const param = new SlotParam(policy, {
      kind,
      slot,
      ...(opts.init !== undefined ? { init: opts.init } : {}),
      ...(opts.basis ? { basis: opts.basis } : {}),
      ...(opts.residualL2 !== undefined ? { residualL2: opts.residualL2 } : {}),
      ...(opts.prior !== undefined ? { prior: opts.prior } : {}),
    });
    const opt = createOptimizer({
      lr,
      lrScale: param.lrScale(lr),
      method: opts.optimizer ?? 'adam',
    });
    state = {
      param,
      opt,
      rng: new Rng(opts.seed ?? 0),
      step: 0,
      ema: undefined,
      dispose() {
        param.dispose();
        disposeOptimizer(opt);
      },
    };
  }
  const { param, opt } = state;
  const tasks = alignmentTasksOf(policy.config);
  const batches = playBatches.map((b) => onSlot(b, slot));
  const heldOut = (opts.heldOut ?? []).map((b) => onSlot(b, slot));
  const evalSet = heldOut.length > 0 ? heldOut : batches;
  // Prefix K/V: no TTT in the prefix, so it does not change while W1/b1 move.
  const useCache = (opts.cachePrefix ?? true) && objective === 'alignment';
  const caches = new Map<TrainBatch, PrefixCache>();
  const cacheOf = (b: TrainBatch) => {
    if (!useCache) return undefined;
    let c = caches.get(b);
    if (c === undefined) {
      c = encodePrefix(policy, b);
      caches.set(b, c);
    }
    return c;
  };
  const evaluate = () => {
    const fw = param.fastWeights();
    try {
      return evaluateLosses(policy, evalSet, {
        weights,
        fastWeights: fw,
        objective,
        caches: cacheOf,
        ...(opts.flowTime !== undefined ? { flowTime: opts.flowTime } : {}),
      });
    } finally {
      for (const w of fw.values()) tf.dispose([w.W1, w.b1]);
    }
  };
  const before = evaluate();
  const losses: number[] = [];
  const heldOutLosses: number[] = [];
  const stepTerms: StepTerms[] = [];
  const heldOutCurve: { step: number; losses: TaskLosses }[] = opts.traceHeldOut
    ? [{ step: 0, losses: before }]
    : [];
  let stopReason: StopReason = 'maxSteps';
  let lastGood = param.tree.snapshot();
  let best: { loss: number; snap: Map<string, tf.Tensor> } | undefined;
  let sinceBest = 0;
  const smoothing = opts.smoothing ?? 0.9;
  const maxSteps = opts.maxSteps ?? 100;
  const evalEvery = opts.evalEvery ?? 10;
  const averageFrom = opts.averageFrom;
  if (averageFrom !== undefined && !(Number.isInteger(averageFrom) && averageFrom >= 0))
    throw new RangeError(`averageFrom must be a step >= 0, got ${averageFrom}`);
  let average: { n: number; mean: Map<string, tf.Tensor> } | undefined;
  try {
    for (let i = 0; i < maxSteps; i++) {
      const b = batches[state.step % batches.length]!;
      const cache = cacheOf(b);
      const stepT: StepTerms = { perception: 0, dynamics: 0, inverseDynamics: 0 };
      const time = fixedTime(b, opts.flowTime);
      const res = optimizerStep(opt, param.tree.select(), () => {
        const terms = computeLoss(policy, b, {
          streams: [objective],
          rng: state.rng,
          weights,
          fastWeights: param.fastWeights(),
          ...(cache ? { prefixCache: cache } : {}),
          ...(time ? { time } : {}),
        });
        for (const task of tasks)
          stepT[task.name as keyof StepTerms] = terms[task.name]!.dataSync()[0]!;
        const { total, ...rest } = terms;
        tf.dispose(Object.values(rest) as tf.Tensor[]);
        return tf.add(total, param.penalty()) as tf.Scalar;
      });
      time?.dispose();
      if (!res.applied) {
        param.tree.restore(lastGood);
        stopReason = 'nonFinite';
        break;
      }
      state.step += 1;
      losses.push(res.loss);
      stepTerms.push(stepT);
      opts.onStep?.(state.step, res.loss, stepT);
      if (opts.traceHeldOut && heldOut.length > 0 && (i + 1) % evalEvery === 0)
        heldOutCurve.push({ step: state.step, losses: evaluate() });
      for (const t of lastGood.values()) t.dispose();
      lastGood = param.tree.snapshot();
      if (averageFrom !== undefined && i >= averageFrom) {
        if (average === undefined) average = { n: 1, mean: param.tree.snapshot() };
        else {
          const n = ++average.n;
          for (const [path, v] of param.tree.select()) {
            const old = average.mean.get(path)!;
            average.mean.set(
              path,
              tf.tidy(() => tf.add(old, tf.div(tf.sub(v, old), n))),
            );
            old.dispose();
          }
        }
      }
      state.ema =
        state.ema === undefined ? res.loss : smoothing * state.ema + (1 - smoothing) * res.loss;
      if (opts.lossThreshold !== undefined && state.ema < opts.lossThreshold) {
        stopReason = 'threshold';
        break;
      }
      if (heldOut.length > 0 && opts.patience !== undefined && (i + 1) % evalEvery === 0) {
        const h = evaluate().total;
        heldOutLosses.push(h);
        if (best === undefined || h < best.loss) {
          if (best) for (const t of best.snap.values()) t.dispose();
          best = { loss: h, snap: param.tree.snapshot() };
          sinceBest = 0;
        } else if (++sinceBest >= opts.patience) {
          param.tree.restore(best.snap);
          stopReason = 'heldOut';
          break;
        }
      }
    }
    if (average !== undefined && (stopReason === 'maxSteps' || stopReason === 'threshold'))
      param.tree.restore(average.mean);
    param.commit();
    const after = evaluate();
    return {
      losses,
      steps: losses.length,
      stopReason,
      before,
      after,
      heldOutLosses,
      stepTerms,
      heldOutCurve,
      wallMs: performance.now() - t0,
      state,
    };
  } finally {
    for (const t of lastGood.values()) t.dispose();
    if (best) for (const t of best.snap.values()) t.dispose();
    if (average) for (const t of average.mean.values()) t.dispose();
    for (const c of caches.values()) disposePrefixCache(c);
    for (const b of [...batches, ...heldOut]) b.slot?.dispose();
  }
}
