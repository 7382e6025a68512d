// Align-aware pretraining (the align-closes-the-gap issue; DESIGN 4.1's failure mode "the
// losses fall, the actions do not improve"): teach the alignment losses to move a slot where
// acting needs it. Now and then, one source robot r plays the new robot:
//   s0 = mean of the other sources' slots              (what align starts from)
//   s_{k+1} = s_k - alpha grad_s A(s_k)                 (K align steps on r's play, SGD)
//   M = w * L_action(s_K)                                (on r's labelled demo rows)
// and the shared parameters theta (prefix, both experts, heads) take dM/dtheta. Its first part,
// dL/dtheta at s_K, trains the Action Expert to act from an aligned slot; the second part is
// what reaches the alignment heads: -alpha sum_k d/dtheta [g . grad_s A(s_k, theta)], with
// g = dM/ds_K (the steps' Jacobians taken as the identity, first order in alpha). That mixed
// second derivative is a finite difference of two first-order gradients (as DARTS does):
//   d/dtheta [g . grad_s A(s)] ~ (grad_theta A(s + eps g) - grad_theta A(s - eps g)) / (2 eps)
// so no second derivatives are taken and every pass is the ordinary backward. Cost per meta
// step: K + 1 + 2K forward/backward passes on the meta rows, and 3 forwards for the logged losses.
// When theta holds no prefix parameter (pretraining's frozenPrefix), the prefix runs once per
// step on the play rows and once on the demo rows, forward only, and every pass reuses it: the
// gradients are the same (the prefix's output does not depend on what trains), the passes run
// the two experts only.

import { SlotParam } from '@selfalign/align';
import { globalNorm, type Rng, tf } from '@selfalign/core';
import {
  computeLoss,
  disposePrefixCache,
  encodePrefix,
  type LossWeights,
  type Policy,
  type TrainBatch,
} from '@selfalign/experts';
import { drawStep } from './draws.js';
import { isPrefixParam } from './prefix-params.js';

export interface AlignAwareBatch {
  /** The source slot playing the new robot; every row of `play` and `demo` is on it. */
  slot: number;
  /** Unlabelled rows of that robot (the inner align steps see their alignment losses only). */
  play: TrainBatch;
  /** Labelled demo rows of that robot (the action loss through the adapted slot). */
  demo: TrainBatch;
}

export interface AlignAwareOptions {
  /** The meta batch of a step (pretrain disposes it), or undefined for a step without the term. */
  batch: (step: number) => AlignAwareBatch | undefined | Promise<AlignAwareBatch | undefined>;
  /** Weight w of the meta action loss. */
  weight: number;
  /** alpha: the inner align steps' SGD learning rate. */
  innerLr: number;
  /** K inner steps (default 1). */
  innerSteps?: number;
  /** The source slots whose mean starts the inner steps (the meta slot itself is left out). */
  sources: readonly number[];
  /** Finite-difference radius relative to |g| (default 0.01, as DARTS). */
  eps?: number;
  /**
   * What the inner align steps move (default 'free': every W1/b1 number of the slot); 'span':
   * only the coefficients over the other sources' slots, as `align --params span` does (with a
   * slot code, the code's affine space).
   */
  innerParam?: 'free' | 'span';
  /**
   * A learned start for the inner steps (first-order MAML), shaped as the inner
   * parametrisation's variables: the slot takes it before the first inner step, and the outer
   * gradient at s_K is its gradient (the steps' Jacobians taken as the identity). A move that
   * helps every robot alike is then learned by the start, so the steps must carry the robot
   * (docs/results.md 2e: from the fixed mean the step learns one constant move). `pretrain`
   * trains it and keeps it in the checkpoint (`ALIGN_AWARE_START`).
   */
  start?: readonly tf.Variable[];
  /**
   * The start is `startScale` x the variables (default 1), so the optimiser moves it
   * `startScale` times faster than the network: an inner step moves a span coefficient by
   * ~alpha |grad|, orders of magnitude more than one optimiser step of the network's rate.
   */
  startScale?: number;
}

/** Checkpoint `extra` path prefix of the learned start (`AlignAwareOptions.start`), `<prefix><i>`. */
export const ALIGN_AWARE_START = 'align-aware-start/';

/** What one meta step measured (for logs): the action loss on the meta demo rows before and after. */
export interface AlignAwareTerms {
  /** L_action at s0 (the mean slot), w excluded. */
  before: number;
  /** L_action at s_K, w excluded. */
  after: number;
  /** The alignment loss of the play rows at s0 and at s_K. */
  alignBefore: number;
  alignAfter: number;
  /** |grad_s A(s0)|: with alpha, how far the first inner step moves the slot. */
  innerGradNorm: number;
  /** |dM/ds_K| (w included). */
  outerGradNorm: number;
}

const ALIGN_WEIGHTS: Partial<LossWeights> = {
  action: 0,
  perception: 1,
  dynamics: 1,
  inverseDynamics: 1,
  ttt: 0,
  keypoints: 0,
};
const ACTION_WEIGHTS: Partial<LossWeights> = {
  action: 1,
  perception: 0,
  dynamics: 0,
  inverseDynamics: 0,
  ttt: 0,
  keypoints: 0,
};

function checkRows(b: TrainBatch, slot: number, what: string): void {
  const rows = b.slot?.dataSync();
  if (rows === undefined || Array.from(rows).some((s) => s !== slot))
    throw new Error(`align-aware: every ${what} row must be on slot ${slot}`);
}

/**
 * dM/dtheta of one meta step, by variable name (only `params` that the term reaches), and the
 * losses it measured. Leaves every parameter as it found it.
 */
export function alignAwareGradients(
  policy: Policy,
  params: readonly [string, tf.Variable][],
  mb: AlignAwareBatch,
  opts: AlignAwareOptions,
  rng: Rng,
): { grads: tf.NamedTensorMap; terms: AlignAwareTerms } {
  checkRows(mb.play, mb.slot, 'play');
  checkRows(mb.demo, mb.slot, 'demo');
  const K = opts.innerSteps ?? 1;
  const alpha = opts.innerLr;
  const basis = opts.sources.filter((k) => k !== mb.slot);
  if (basis.length === 0) throw new Error('align-aware: needs at least two source slots');
  const param = new SlotParam(policy, {
    kind: opts.innerParam ?? 'free',
    slot: mb.slot,
    init: 'mean',
    basis,
  });
  const sVars = param.tree.select().map(([, v]) => v);
  const start = opts.start;
  const startScale = opts.startScale ?? 1;
  if (start) {
    const fits =
      start.length === sVars.length &&
      start.every((v, i) => tf.util.arraysEqual(v.shape, sVars[i]!.shape));
    if (!fits) {
      param.dispose();
      throw new Error(
        `align-aware: the learned start has shapes ${start.map((v) => `[${v.shape}]`).join(' ')}, the inner steps move ${sVars.map((v) => `[${v.shape}]`).join(' ')}`,
      );
    }
    sVars.forEach((v, i) => tf.tidy(() => v.assign(tf.mul(start[i]!, startScale))));
  }
  const thetaVars = params.map(([, v]) => v);
  const pDraw = drawStep(rng, policy, mb.play.state.shape[0]!);
  const dDraw = drawStep(rng, policy, mb.demo.state.shape[0]!);
  // the prefix's output is a constant for theta when no prefix parameter is in it
  const prefixFrozen = !params.some(([p]) => isPrefixParam(p));
  const cache = encodePrefix(policy, mb.play);
  const demoCache = prefixFrozen ? encodePrefix(policy, mb.demo) : undefined;
  const alignLoss = (cached: boolean): tf.Scalar => {
    const t = computeLoss(policy, mb.play, {
      streams: ['alignment'],
      weights: ALIGN_WEIGHTS,
      time: pDraw.time,
      noise: pDraw.noise,
      fastWeights: param.fastWeights(),
      ...(cached ? { prefixCache: cache } : {}),
    });
    return t.total;
  };
  const actionLoss = (): tf.Scalar =>
    computeLoss(policy, mb.demo, {
      streams: ['action'],
      weights: ACTION_WEIGHTS,
      time: dDraw.time,
      noise: dDraw.noise,
      fastWeights: param.fastWeights(),
      ...(demoCache ? { prefixCache: demoCache } : {}),
    }).action;
  const scalar = (f: () => tf.Scalar) => tf.tidy(() => f().dataSync()[0]!);
  const snapshots: tf.Tensor[][] = [];
  const out: tf.NamedTensorMap = {};
  try {
    const before = scalar(actionLoss);
    const alignBefore = scalar(() => alignLoss(true));
    let innerGradNorm = Number.NaN;
    for (let k = 0; k < K; k++) {
      snapshots.push(sVars.map((v) => tf.clone(v)));
      const { value, grads } = tf.variableGrads(() => alignLoss(true), sVars);
      value.dispose();
      if (k === 0) innerGradNorm = globalNorm(Object.values(grads));
      for (const v of sVars) tf.tidy(() => v.assign(tf.sub(v, tf.mul(grads[v.name]!, alpha))));
      tf.dispose(Object.values(grads));
    }
    const alignAfter = scalar(() => alignLoss(true));
    const outer = tf.variableGrads(
      () => tf.mul(actionLoss(), opts.weight) as tf.Scalar,
      [...thetaVars, ...sVars],
    );
    const after = outer.value.dataSync()[0]! / opts.weight;
    outer.value.dispose();
    const g = sVars.map((v) => outer.grads[v.name]!);
    for (const v of thetaVars) if (outer.grads[v.name]) out[v.name] = outer.grads[v.name]!;
    if (start) start.forEach((v, i) => (out[v.name] = tf.mul(g[i]!, startScale)));
    const gNorm = globalNorm(g);
    if (gNorm > 0 && Number.isFinite(gNorm)) {
      const eps = (opts.eps ?? 0.01) / gNorm;
      const at = (k: number, sign: 1 | -1) => {
        sVars.forEach((v, i) =>
          tf.tidy(() => v.assign(tf.add(snapshots[k]![i]!, tf.mul(g[i]!, sign * eps)))),
        );
        const r = tf.variableGrads(() => alignLoss(prefixFrozen), thetaVars);
        r.value.dispose();
        return r.grads;
      };
      for (let k = 0; k < K; k++) {
        const plus = at(k, 1);
        const minus = at(k, -1);
        const second: tf.NamedTensorMap = {};
        for (const v of thetaVars) {
          const p = plus[v.name];
          const m = minus[v.name];
          if (p !== undefined && m !== undefined)
            second[v.name] = tf.tidy(() => tf.mul(tf.sub(p, m), -alpha / (2 * eps)));
        }
        tf.dispose([...Object.values(plus), ...Object.values(minus)]);
        addGradients(out, second);
      }
    }
    tf.dispose(g);
    return {
      grads: out,
      terms: { before, after, alignBefore, alignAfter, innerGradNorm, outerGradNorm: gNorm },
    };
  } catch (err) {
    tf.dispose(Object.values(out));
    throw err;
  } finally {
    for (const s of snapshots) tf.dispose(s);
    disposePrefixCache(cache);
    if (demoCache) disposePrefixCache(demoCache);
    tf.dispose([
      pDraw.time,
      ...Object.values(pDraw.noise),
      dDraw.time,
      ...Object.values(dDraw.noise),
    ]);
    param.dispose();
  }
}

/** Adds `extra` into `into` by name (both by variable name; `extra` is consumed). */
export function addGradients(into: tf.NamedTensorMap, extra: tf.NamedTensorMap): void {
  for (const [name, g] of Object.entries(extra)) {
    const prev = into[name];
    if (prev === undefined) into[name] = g;
    else {
      into[name] = tf.add(prev, g);
      tf.dispose([prev, g]);
    }
  }
}
