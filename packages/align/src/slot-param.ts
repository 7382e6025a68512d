// How align parametrises the slot it fits (DESIGN 4.1). The TTT fast weights of one slot
// (W1 [Ht,d,d] and b1 [Ht,1,d] at every TTT layer) are a function of a few trainable tensors:
//   free           slot = S                          S trains (the design note's recipe)
//   span           slot = mean + sum_k c_k (s_k - mean)   only c [K] trains (an embodiment code
//                                                    over the K trained source slots s_k)
//   span+residual  slot = span + R,  + lambda ||R||^2     c and R train
//   span + prior   the span with lambda * d^2 added to the loss, d the slot's distance from the
//                  mean in the spread of the source slots (a Gaussian prior on the embodiment code)
//   hull           slot = sum_k softmax(z)_k s_k      only z [K] trains: a mixture of the basis
//                                                    slots (convex: it stays among the slots
//                                                    pretraining trained the Action Expert on;
//                                                    with the basis the K nearest sources by
//                                                    align's objective, docs/results.md 2k)
//   bias           slot = (W1 as it starts, B)         only b1 trains: the one part of the slot
//                                                    that every token of both experts reads
//                                                    alike (W1 is read through each stream's
//                                                    own query directions)
// The policy's own variables are read, never written, until `commit` puts the slot in place.
import { ParamTree, symmetricEigen, tf } from '@selfalign/core';
import type { Policy } from '@selfalign/experts';
import { writeSlot } from '@selfalign/ttt';

export type SlotParametrisation = 'free' | 'span' | 'span+residual' | 'hull' | 'bias';

export interface SlotParamOptions {
  kind: SlotParametrisation;
  /** The policy slot being fitted. */
  slot: number;
  /**
   * Starting point: the slot's current value, the mean of the basis, or a copy of another slot.
   * span and span+residual start at the mean of the basis, or at a basis slot given by number
   * (its coefficient 1, the others 0); they cannot start at 'current' (it need not be in the span).
   * hull starts at the mean (equal weights) or with a basis slot's logit HULL_PEAK above the others'.
   */
  init?: 'current' | 'mean' | number;
  /** Source slots that span (and average to) the embodiment space (default: all but `slot`). */
  basis?: readonly number[];
  /** lambda of the residual's L2 penalty (span+residual, default 1e-2). */
  residualL2?: number;
  /**
   * span and span+residual: add lambda * d^2 to the loss, where d is the Mahalanobis distance of
   * the span part of the slot from the basis mean, measured in the basis slots' own spread (the
   * basis slots themselves sit at d^2 = r on average, r the dimension they span: 12 for a
   * 12-number embodiment code). A Gaussian prior on the robot's code: align stays among slots
   * like the ones pretraining trained the Action Expert on. Default 0 (none).
   */
  prior?: number;
}

/** Default learning rates (Adam) per parametrisation, from DESIGN 4.1's measurements. */
export const DEFAULT_LR: Readonly<Record<SlotParametrisation, number>> = Object.freeze({
  free: 1e-4,
  span: 3e-2,
  'span+residual': 3e-2,
  hull: 3e-2,
  bias: 1e-3,
});

/**
 * hull started at a basis slot: that slot's logit exceeds the others' by this much (with 4 basis
 * slots it holds 95% of the weight, so the mixture can still move).
 */
export const HULL_PEAK = 4;

/** Every slot parametrisation, in DEFAULT_LR's order. */
export const SLOT_PARAMETRISATIONS = Object.freeze(
  Object.keys(DEFAULT_LR) as SlotParametrisation[],
);

interface LayerBasis {
  layer: number;
  W1path: string;
  b1path: string;
  /** [Ht,d,d] / [Ht,1,d] */
  meanW1: tf.Tensor;
  meanB1: tf.Tensor;
  /** [K, Ht*d*d] / [K, Ht*d]: s_k - mean */
  diffW1: tf.Tensor;
  diffB1: tf.Tensor;
}

export class SlotParam {
  /** The trainable tensors (`slot/<l>/W1`, `coef`, `residual/<l>/b1`, ...). */
  readonly tree = new ParamTree();
  readonly basis: readonly number[];
  private readonly layers: LayerBasis[];
  /** 'bias': each layer's W1 as it started (constant). */
  private readonly fixedW1 = new Map<number, tf.Tensor>();
  /** The prior's whitening: d^2 = K ||c U||^2, U [K, r] the basis Gram matrix's eigenvectors. */
  private priorU: tf.Tensor2D | undefined;

  constructor(
    readonly policy: Policy,
    readonly options: SlotParamOptions,
  ) {
    const E = policy.config.ttt.slots;
    const { slot, kind } = options;
    if (!Number.isInteger(slot) || slot < 0 || slot >= E)
      throw new RangeError(`slot ${slot} is out of range: the policy has ${E} slots`);
    this.basis = options.basis ?? Array.from({ length: E }, (_, k) => k).filter((k) => k !== slot);
    if (
      this.basis.length === 0 &&
      ((kind !== 'free' && kind !== 'bias') || options.init === 'mean')
    ) {
      throw new Error(
        `'${kind}' with init ${options.init} needs at least one basis slot besides slot ${slot}`,
      );
    }
    for (const k of this.basis)
      if (!(k >= 0 && k < E)) throw new RangeError(`basis slot ${k} is out of range`);
    if ((options.prior ?? 0) !== 0 && (kind === 'free' || kind === 'bias'))
      throw new RangeError(`the prior is on the span's code: '${kind}' has no span`);
    const idx = tf.tensor1d(Int32Array.from(this.basis), 'int32');
    this.layers = policy.ttt.flatMap((m, layer) => {
      if (m === undefined) return [];
      const W1 = policy.params.get(m.paths.W1);
      const b1 = policy.params.get(m.paths.b1);
      return [
        tf.tidy(() => {
          const gW = this.basis.length ? tf.gather(W1, idx) : tf.zeros([1, ...W1.shape.slice(1)]);
          const gB = this.basis.length ? tf.gather(b1, idx) : tf.zeros([1, ...b1.shape.slice(1)]);
          const meanW1 = tf.mean(gW, 0);
          const meanB1 = tf.mean(gB, 0);
          return {
            layer,
            W1path: m.paths.W1,
            b1path: m.paths.b1,
            meanW1: tf.keep(meanW1),
            meanB1: tf.keep(meanB1),
            diffW1: tf.keep(tf.reshape(tf.sub(gW, meanW1), [gW.shape[0]!, -1])),
            diffB1: tf.keep(tf.reshape(tf.sub(gB, meanB1), [gB.shape[0]!, -1])),
          };
        }),
      ];
    });
    idx.dispose();
    const start = (l: LayerBasis, which: 'W1' | 'b1'): tf.Tensor =>
      tf.tidy(() => {
        const v = policy.params.get(which === 'W1' ? l.W1path : l.b1path);
        const init = options.init ?? 'current';
        if (init === 'mean') return tf.clone(which === 'W1' ? l.meanW1 : l.meanB1);
        const from = init === 'current' ? slot : init;
        if (!(Number.isInteger(from) && from >= 0 && from < E))
          throw new RangeError(`init slot ${from} is out of range`);
        return tf.squeeze(tf.slice(v, [from], [1]), [0]);
      });
    if (kind === 'free') {
      for (const l of this.layers) {
        this.tree.add(`slot/${l.layer}/W1`, start(l, 'W1'));
        this.tree.add(`slot/${l.layer}/b1`, start(l, 'b1'));
      }
    } else if (kind === 'bias') {
      for (const l of this.layers) {
        this.fixedW1.set(l.layer, start(l, 'W1'));
        this.tree.add(`slot/${l.layer}/b1`, start(l, 'b1'));
      }
    } else {
      const init = options.init ?? 'mean';
      const at = typeof init === 'number' ? this.basis.indexOf(init) : -1;
      if (init === 'current' || (typeof init === 'number' && at < 0))
        throw new RangeError(
          `'${kind}' starts at the mean of its basis or at one of its basis slots (${this.basis.join(', ')}), not at ${init === 'current' ? 'the current slot' : `slot ${init}`}`,
        );
      const coef = new Float32Array(this.basis.length);
      if (at >= 0) coef[at] = kind === 'hull' ? HULL_PEAK : 1;
      // hull: the mixture's logits (all equal: the mean of the basis)
      this.tree.add(kind === 'hull' ? 'logits' : 'coef', tf.tensor1d(coef));
      const prior = options.prior ?? 0;
      if (!(Number.isFinite(prior) && prior >= 0))
        throw new RangeError(`the span prior must be a number >= 0, got ${prior}`);
      if (prior > 0 && kind === 'hull')
        throw new RangeError(`the prior is on the span's code: 'hull' stays among its basis slots`);
      if (prior > 0) this.priorU = this.whitening();
      if (kind === 'span+residual') {
        for (const l of this.layers) {
          this.tree.add(`residual/${l.layer}/W1`, tf.zeros(l.meanW1.shape));
          this.tree.add(`residual/${l.layer}/b1`, tf.zeros(l.meanB1.shape));
        }
      }
    }
  }

  /** The fitted slot's W1 [Ht,d,d] and b1 [Ht,1,d] at one TTT layer position. */
  slotWeights(layer: number): { W1: tf.Tensor; b1: tf.Tensor } {
    const l = this.layers.find((x) => x.layer === layer);
    if (l === undefined) throw new Error(`no TTT module at layer ${layer}`);
    return tf.tidy(() => {
      if (this.options.kind === 'free' || this.options.kind === 'bias') {
        return {
          W1: tf.clone(this.fixedW1.get(layer) ?? this.tree.get(`slot/${layer}/W1`)),
          b1: tf.clone(this.tree.get(`slot/${layer}/b1`)),
        };
      }
      // hull: sum_k w_k s_k = mean + sum_k w_k (s_k - mean), the weights summing to 1
      const c = tf.reshape(
        this.options.kind === 'hull' ? tf.softmax(this.tree.get('logits')) : this.tree.get('coef'),
        [1, -1],
      ); // [1,K]
      let W1 = tf.add(l.meanW1, tf.reshape(tf.matMul(c, l.diffW1), l.meanW1.shape));
      let b1 = tf.add(l.meanB1, tf.reshape(tf.matMul(c, l.diffB1), l.meanB1.shape));
      if (this.options.kind === 'span+residual') {
        W1 = tf.add(W1, this.tree.get(`residual/${layer}/W1`));
        b1 = tf.add(b1, this.tree.get(`residual/${layer}/b1`));
      }
      return { W1, b1 };
    });
  }

  /** Per layer: the policy's W1/b1 with the fitted slot replaced (differentiable in the trainables). */
  fastWeights(): Map<number, { W1: tf.Tensor; b1: tf.Tensor }> {
    const E = this.policy.config.ttt.slots;
    const out = new Map<number, { W1: tf.Tensor; b1: tf.Tensor }>();
    for (const l of this.layers) {
      const w = this.slotWeights(l.layer);
      const replace = (all: tf.Tensor, one: tf.Tensor) =>
        tf.tidy(() => {
          const hot = tf.reshape(tf.oneHot(tf.tensor1d([this.options.slot], 'int32'), E), [
            E,
            ...all.shape.slice(1).map(() => 1),
          ]);
          return tf.add(tf.mul(all, tf.sub(1, hot)), tf.mul(tf.expandDims(one, 0), hot));
        });
      out.set(l.layer, {
        W1: replace(this.policy.params.get(l.W1path), w.W1),
        b1: replace(this.policy.params.get(l.b1path), w.b1),
      });
      tf.dispose([w.W1, w.b1]);
    }
    return out;
  }

  /**
   * The span's slot = mean + c D (D [K,P]: the basis slots minus their mean, all layers). With
   * G = D D^T = U diag(g) U^T, the slot's coordinates along the principal directions are
   * sqrt(g_i) (c U)_i and the basis slots' variance there is g_i / K, so the squared Mahalanobis
   * distance is d^2 = K ||c U||^2 over the r directions with g_i > 0 (null directions of c do
   * not move the slot).
   */
  private whitening(): tf.Tensor2D {
    const K = this.basis.length;
    const G = tf.tidy(() =>
      tf.addN(
        this.layers.flatMap((l) => [
          tf.matMul(l.diffW1, l.diffW1, false, true),
          tf.matMul(l.diffB1, l.diffB1, false, true),
        ]),
      ),
    );
    const g = Float64Array.from(G.dataSync());
    G.dispose();
    const { values, vectors } = symmetricEigen(g, K);
    const kept = vectors.filter((_, i) => values[i]! > 1e-6 * Math.max(values[0]!, 1e-30));
    if (kept.length === 0)
      throw new RangeError('the span prior needs basis slots that differ: they are all equal');
    const U = new Float32Array(K * kept.length);
    kept.forEach((v, j) => {
      for (let k = 0; k < K; k++) U[k * kept.length + j] = v[k]!;
    });
    return tf.tensor2d(U, [K, kept.length]);
  }

  /**
   * The span part's squared Mahalanobis distance from the basis mean, in the basis slots' spread
   * (needs the prior; else undefined).
   */
  priorDistance2(): tf.Scalar | undefined {
    const U = this.priorU;
    if (U === undefined) return undefined;
    return tf.tidy(() => {
      const cu = tf.matMul(tf.reshape(this.tree.get('coef'), [1, -1]), U);
      return tf.mul(tf.sum(tf.square(cu)), this.basis.length) as tf.Scalar;
    });
  }

  /** lambda * sum ||R||^2 for span+residual, plus the span prior's lambda * d^2; else 0. */
  penalty(): tf.Scalar {
    return tf.tidy(() => {
      let total: tf.Scalar = tf.scalar(0);
      if (this.options.kind === 'span+residual') {
        const lambda = this.options.residualL2 ?? 1e-2;
        total = tf.mul(
          tf.addN(this.tree.select('residual/**').map(([, v]) => tf.sum(tf.square(v)))),
          lambda,
        ) as tf.Scalar;
      }
      const d2 = this.priorDistance2();
      if (d2 !== undefined) total = tf.add(total, tf.mul(d2, this.options.prior ?? 0)) as tf.Scalar;
      return total;
    });
  }

  /** Learning-rate scale per trainable path: residuals move at the free rate within a span optimiser. */
  lrScale(baseLr: number): (path: string) => number {
    return (path) => (path.startsWith('residual/') ? DEFAULT_LR.free / baseLr : 1);
  }

  /** Writes the fitted slot into the policy's W1/b1 (other slots and tensors untouched). */
  commit(): void {
    for (const l of this.layers) {
      const w = this.slotWeights(l.layer);
      writeSlot(this.policy.params.get(l.W1path), this.options.slot, w.W1);
      writeSlot(this.policy.params.get(l.b1path), this.options.slot, w.b1);
    }
  }

  dispose(): void {
    this.tree.dispose();
    this.priorU?.dispose();
    tf.dispose([...this.fixedW1.values()]);
    for (const l of this.layers) tf.dispose([l.meanW1, l.meanB1, l.diffW1, l.diffB1]);
  }
}
