// The pretraining loss (openpi pi0.py compute_loss, extended with the Alignment Expert): one
// joint forward over [prefix, action suffix, alignment suffix] with the DESIGN 3.5 mask.
//   total = w_a L_action + w_p L_perception + w_d L_dynamics + w_i L_inverse + w_t L_ttt
//           + w_k L_keypoints
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
import { alignmentHeads, embedAlignmentSuffix } from './alignment-suffix.js';
import { buildMask, prefixPositions, suffixPositions } from './masks.js';
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
  /** [B] 1 for demo rows (all losses), 0 for play rows (alignment losses only); default all 1 */
  isDemo?: tf.Tensor;
  /** [B, G, 2] image positions (u, v) of the task objects in camera 0, NaN where absent (L_keypoints) */
  objects?: tf.Tensor;
}

export interface LossWeights {
  action: number;
  perception: number;
  dynamics: number;
  inverseDynamics: number;
  ttt: number;
  /** Auxiliary keypoint loss (needs `batch.objects` and a config with keypoints). */
  keypoints: number;
}

export const DEFAULT_LOSS_WEIGHTS: Readonly<LossWeights> = Object.freeze({
  action: 1,
  perception: 1,
  dynamics: 1,
  inverseDynamics: 1,
  ttt: 0,
  keypoints: 0,
});

export interface LossOptions {
  weights?: Partial<LossWeights>;
  /** Suffix streams to run (default both). */
  streams?: readonly ('action' | 'alignment')[];
  /** Prefix K/V computed beforehand (no gradient flows into it). */
  prefixCache?: PrefixCache;
  /** Source of t and noise (default: the policy's). */
  rng?: Rng;
  /** [B] flow time, instead of drawing it. */
  time?: tf.Tensor;
  /** Noise per task, instead of drawing it. */
  noise?: Partial<Record<'actions' | 'state' | 'features' | 'inverse', tf.Tensor>>;
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

/** The mask sums each masked-mean loss divides by. */
export interface LossDenominators {
  action: number;
  perception: number;
  dynamics: number;
  inverseDynamics: number;
  keypoints: number;
}

export interface LossTerms {
  total: tf.Scalar;
  action: tf.Scalar;
  perception: tf.Scalar;
  dynamics: tf.Scalar;
  inverseDynamics: tf.Scalar;
  ttt: tf.Scalar;
  /** Mean squared keypoint error over present objects (0 without `batch.objects` or a prefix). */
  keypoints: tf.Scalar;
  /** [B] weighted sum of the three alignment losses per row (with `rowLosses`). */
  alignmentRows?: tf.Tensor1D;
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
export function lossDenominators(policy: Policy, batch: TrainBatch): LossDenominators {
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
  return {
    action: demoSteps * a,
    perception: b * Math.min(batch.state.shape[1]!, c.stateDim),
    dynamics: b * c.featureDim,
    inverseDynamics: steps * a,
    keypoints,
  };
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
  const w = { ...DEFAULT_LOSS_WEIGHTS, ...opts.weights };
  const streams = opts.streams ?? ['action', 'alignment'];
  const runAction = streams.includes('action');
  const runAlign = streams.includes('alignment');
  const rng = opts.rng ?? policy.rng;
  const withTtt = w.ttt !== 0 || (opts.withTttLoss ?? false);
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
    const feats = batch.nextFeatures;
    const t = opts.time ?? flowTime(rng, b);
    const t2 = tf.reshape(t, [b, 1]);
    const t3 = tf.reshape(t, [b, 1, 1]);
    const mix = (eps: tf.Tensor, x0: tf.Tensor, tt: tf.Tensor) =>
      tf.add(tf.mul(tt, eps), tf.mul(tf.sub(1, tt), x0));
    const draw = (key: 'actions' | 'state' | 'features' | 'inverse', shape: number[]) =>
      opts.noise?.[key] ?? randomNormal(rng, shape);

    const cache = opts.prefixCache;
    const prefix = cache ? undefined : embedPrefix(policy, batch);
    const prefixMask = cache ? cache.mask : prefix!.mask;
    const list: Stream[] = prefix ? [{ expert: 'vlm', x: prefix.x, tokenMask: prefix.mask }] : [];
    const segments = [];
    const positions = prefix ? [prefixPositions(prefixMask)] : [];
    let uAction: tf.Tensor | undefined;
    if (runAction) {
      const eps = draw('actions', [b, ha, c.actionDim]);
      uAction = tf.sub(eps, actions);
      const kp = cache ? cache.keypoints : prefix!.keypoints;
      const suffix = embedActionSuffix(
        policy,
        actionStateInput(policy, state, kp),
        mix(eps, actions, t3),
        t,
      );
      list.push({ expert: 'action', x: suffix.x, tokenMask: suffix.mask });
      segments.push({ name: 'action', inputMask: suffix.mask, ar: suffix.ar });
      positions.push(suffixPositions(prefixMask, suffix.mask));
    }
    let targets: { s: tf.Tensor; f: tf.Tensor; a: tf.Tensor } | undefined;
    if (runAlign) {
      const es = draw('state', [b, c.stateDim]);
      const ef = draw('features', [b, c.featureDim]);
      const ea = draw('inverse', [b, ha, c.actionDim]);
      targets = { s: tf.sub(es, state), f: tf.sub(ef, feats), a: tf.sub(ea, actions) };
      const g = embedAlignmentSuffix(policy, {
        stateT: mix(es, state, t2),
        actions,
        featuresT: mix(ef, feats, t2),
        features: feats,
        actionsT: mix(ea, actions, t3),
        t,
        chunkMask: chunk,
      });
      list.push({ expert: 'alignment', x: g.x, tokenMask: g.mask });
      segments.push(...g.segments);
      positions.push(suffixPositions(prefixMask, g.mask));
    }
    const out = runTransformer(policy, list, {
      mask: buildMask(prefixMask, segments, !cache),
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
    let perception: tf.Scalar = zero();
    let dynamics: tf.Scalar = zero();
    let inverseDynamics: tf.Scalar = zero();
    let alignmentRows: tf.Tensor1D | undefined;
    if (runAlign) {
      const pred = alignmentHeads(policy, out.outputs[k++]!);
      const masks = [
        tf.expandDims(sdim, 0),
        tf.ones([1, c.featureDim]),
        tf.mul(chunk3, adim),
      ] as const;
      perception = maskedMse(pred.perception, targets!.s, masks[0], den?.perception);
      dynamics = maskedMse(pred.dynamics, targets!.f, masks[1], den?.dynamics);
      inverseDynamics = maskedMse(pred.inverse, targets!.a, masks[2], den?.inverseDynamics);
      if (opts.rowLosses) {
        alignmentRows = tf.addN([
          tf.mul(maskedMseRows(pred.perception, targets!.s, masks[0]), w.perception),
          tf.mul(maskedMseRows(pred.dynamics, targets!.f, masks[1]), w.dynamics),
          tf.mul(maskedMseRows(pred.inverse, targets!.a, masks[2]), w.inverseDynamics),
        ]) as tf.Tensor1D;
      }
    }
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
      tf.mul(action, w.action),
      tf.mul(perception, w.perception),
      tf.mul(dynamics, w.dynamics),
      tf.mul(inverseDynamics, w.inverseDynamics),
      tf.mul(ttt, w.ttt),
      tf.mul(keypoints, w.keypoints),
    ]) as tf.Scalar;
    const terms: LossTerms = {
      total,
      action,
      perception,
      dynamics,
      inverseDynamics,
      ttt,
      keypoints,
    };
    if (alignmentRows) terms.alignmentRows = alignmentRows;
    return terms as unknown as tf.TensorContainer;
  }) as unknown as LossTerms;
}

/** Disposes every term. */
export function disposeLoss(terms: LossTerms): void {
  tf.dispose(Object.values(terms) as tf.Tensor[]);
}
