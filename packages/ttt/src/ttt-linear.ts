// TTT-Linear (DESIGN 3.7; mirrors test-time-training/ttt-lm-pytorch TTTLinear, non-causal).
// One module per layer position, shared by the Action and the Alignment expert of one policy.
// Its fast weights W1 [E,Ht,d,d] / b1 [E,Ht,1,d] hold one embodiment context per slot E; each
// sample picks its slot. In "dual" mode one batch-parallel inner gradient step on the
// reconstruction loss 1/2 ||LN_h(XK W1 + b1) - (XV - XK)||^2 adapts W1/b1 to the tokens
// before they are read with XQ; "none" reads them directly. A forward never writes W1/b1.
//
// Notable: the inner step only mixes tokens that may see each other. `innerMask` [B,T,T] is
// the expert's own attention mask (query row, key column); with a full mask this is exactly
// the design's Zbar = XQ W1 - (XQ XK^T)(eta G) + (b1 - sum_t eta_t G_t). Without it the
// alignment stream's inverse-dynamics tokens could read the clean actions of the dynamics
// segment through the inner update.
import {
  bmm,
  embed,
  layerNorm,
  linear,
  type ParamTree,
  type Rng,
  randomNormal,
  tf,
  transposeLast2,
} from '@selfalign/core';

export type InnerMode = 'dual' | 'none';

export interface TttConfig {
  /** D: width of the experts that share the module. */
  width: number;
  /** Ht: TTT heads; d = D / Ht. */
  heads: number;
  /** E: embodiment slots. */
  slots: number;
  inner: InnerMode;
  /** base_lr of the inner step. */
  baseLr: number;
  /** Initial value of the per-channel gate alpha (output is scaled by tanh(alpha)). */
  alpha: number;
}

export interface TttForwardOptions {
  /** int32 [B]: embodiment slot per sample (default: all 0). */
  slot?: tf.Tensor;
  /** bool [B,T,T]: which tokens' inner gradients a token's read may use (default: all). */
  innerMask?: tf.Tensor;
  /** bool/float [B,T]: real tokens (padding takes no part in the inner step or L_ttt). */
  tokenMask?: tf.Tensor;
  /** Also return L_ttt. */
  withLoss?: boolean;
  /** Stop gradients at W1/b1 (the module's other parameters still get them). */
  stopSlotGradient?: boolean;
  /**
   * W1 [E,Ht,d,d] and b1 [E,Ht,1,d] to use instead of the module's own (align builds them
   * from its trainable slot parametrisation so gradients reach that; nothing is written).
   */
  fastWeights?: { W1: tf.Tensor; b1: tf.Tensor };
}

export interface TttOutput {
  /** [B,T,D]: tanh(alpha) * o(post_norm(XQ + LN_h(Zbar))), to be added to the residual. */
  out: tf.Tensor;
  /** Scalar L_ttt = mean over real tokens and heads of 1/2 ||LN_h(XK W1 + b1) - (XV - XK)||^2. */
  loss?: tf.Scalar;
}

/**
 * Per-head LayerNorm of `z` and its closed-form gradient for 1/2 ||LN(z) - target||^2
 * (ttt-lm-pytorch ln_fused_l2_bwd): with xhat = (z - mu)/sigma, g = (gamma xhat + beta - target) gamma,
 * G = (d g - sum(g) - xhat sum(g xhat)) / (d sigma).
 * @param z [..., d]
 * @param gamma [Ht, 1, d] (broadcast)
 */
export function lnL2Grad(
  z: tf.Tensor,
  target: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps = 1e-6,
): tf.Tensor {
  return tf.tidy(() => {
    const d = z.shape.at(-1)!;
    const mu = tf.mean(z, -1, true);
    const xc = tf.sub(z, mu);
    const sigma = tf.sqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps));
    const xhat = tf.div(xc, sigma);
    const g = tf.mul(tf.sub(tf.add(tf.mul(xhat, gamma), beta), target), gamma);
    const num = tf.sub(
      tf.sub(tf.mul(g, d), tf.sum(g, -1, true)),
      tf.mul(xhat, tf.sum(tf.mul(g, xhat), -1, true)),
    );
    return tf.div(num, tf.mul(sigma, d));
  });
}

/** The inner reconstruction loss per token, 1/2 ||LN(z) - target||^2: [..., d] -> [...]. */
export function lnL2Loss(z: tf.Tensor, target: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) {
  return tf.tidy(() =>
    tf.mul(tf.sum(tf.square(tf.sub(layerNorm(z, gamma, beta), target)), -1), 0.5),
  );
}

const stopGradient = (x: tf.Tensor): tf.Tensor =>
  tf.customGrad((y) => ({
    value: tf.clone(y as tf.Tensor),
    gradFunc: (dy) => tf.zerosLike(dy as tf.Tensor),
  }))(x);

export class TttLinear {
  readonly d: number;
  /** Parameter paths, e.g. `ttt/3/W1`. */
  readonly paths: Readonly<
    Record<
      | 'q'
      | 'k'
      | 'v'
      | 'o'
      | 'lnGamma'
      | 'lnBeta'
      | 'postGamma'
      | 'postBeta'
      | 'W1'
      | 'b1'
      | 'lrW'
      | 'lrB'
      | 'alpha',
      string
    >
  >;

  /**
   * Adds the module's parameters under `prefix` (e.g. `ttt/3`) to `tree`.
   */
  constructor(
    readonly tree: ParamTree,
    readonly prefix: string,
    readonly config: TttConfig,
    rng: Rng,
  ) {
    const { width: D, heads: Ht, slots: E } = config;
    if (D % Ht !== 0) throw new Error(`TTT width ${D} is not divisible by ${Ht} heads`);
    const d = D / Ht;
    this.d = d;
    const p = (name: string) => `${prefix}/${name}`;
    this.paths = {
      q: p('q'),
      k: p('k'),
      v: p('v'),
      o: p('o'),
      lnGamma: p('ln_gamma'),
      lnBeta: p('ln_beta'),
      postGamma: p('post_gamma'),
      postBeta: p('post_beta'),
      W1: p('W1'),
      b1: p('b1'),
      lrW: p('lr_w'),
      lrB: p('lr_b'),
      alpha: p('alpha'),
    };
    const std = 1 / Math.sqrt(D);
    for (const n of ['q', 'k', 'v', 'o'] as const)
      tree.add(this.paths[n], randomNormal(rng, [D, D], std));
    tree.add(this.paths.lnGamma, tf.ones([Ht, d]));
    tree.add(this.paths.lnBeta, tf.zeros([Ht, d]));
    tree.add(this.paths.postGamma, tf.ones([D]));
    tree.add(this.paths.postBeta, tf.zeros([D]));
    tree.add(this.paths.W1, randomNormal(rng, [E, Ht, d, d], 0.02));
    tree.add(this.paths.b1, tf.zeros([E, Ht, 1, d]));
    tree.add(this.paths.lrW, randomNormal(rng, [Ht, D], 0.02));
    tree.add(this.paths.lrB, tf.zeros([Ht]));
    tree.add(this.paths.alpha, tf.fill([D], config.alpha));
  }

  private get(name: keyof TttLinear['paths']): tf.Variable {
    return this.tree.get(this.paths[name]);
  }

  /** [B,T,D] -> [B,Ht,T,d] */
  private heads(x: tf.Tensor): tf.Tensor {
    const [b, t] = x.shape as [number, number, number];
    return tf.transpose(tf.reshape(x, [b, t, this.config.heads, this.d]), [0, 2, 1, 3]);
  }

  /**
   * W1/b1 of each sample's slot.
   * @returns W1 [B,Ht,d,d], b1 [B,Ht,1,d]
   */
  slotWeights(
    slot: tf.Tensor,
    stop = false,
    override?: { W1: tf.Tensor; b1: tf.Tensor },
  ): { W1: tf.Tensor; b1: tf.Tensor } {
    return tf.tidy(() => {
      const { slots: E, heads: Ht } = this.config;
      const d = this.d;
      const b = slot.shape[0]!;
      let W1: tf.Tensor = override?.W1 ?? this.get('W1');
      let b1: tf.Tensor = override?.b1 ?? this.get('b1');
      if (
        override &&
        (!tf.util.arraysEqual(W1.shape, [E, Ht, d, d]) ||
          !tf.util.arraysEqual(b1.shape, [E, Ht, 1, d]))
      ) {
        throw new Error(
          `TTT ${this.prefix}: fast weights [${W1.shape}] / [${b1.shape}] should be [${[E, Ht, d, d]}] / [${[E, Ht, 1, d]}]`,
        );
      }
      if (stop) {
        W1 = stopGradient(W1);
        b1 = stopGradient(b1);
      }
      const idx = tf.cast(slot, 'int32');
      const w = tf.reshape(embed(tf.reshape(W1, [E, Ht * d * d]), idx), [b, Ht, d, d]);
      const bb = tf.reshape(embed(tf.reshape(b1, [E, Ht * d]), idx), [b, Ht, 1, d]);
      return { W1: w, b1: bb };
    });
  }

  /**
   * The inner step and read-out, before the output head: exposed for tests and analysis.
   * @param x [B,T,D]
   * @returns XQ/XK/Zbar [B,Ht,T,d], eta [B,Ht,T,1] (zero for padding), Z1/target [B,Ht,T,d]
   *   (only with `withLoss` or in dual mode), the slot weights and the token mask [B,1,T,1]
   */
  innerRead(x: tf.Tensor, options: TttForwardOptions = {}) {
    const { heads: Ht, inner, baseLr } = this.config;
    const d = this.d;
    const [b, t, D] = x.shape as [number, number, number];
    if (D !== this.config.width) {
      throw new Error(`TTT ${this.prefix}: input width ${D}, module width ${this.config.width}`);
    }
    return tf.tidy(() => {
      const slot = options.slot ?? tf.zeros([b], 'int32');
      const real = options.tokenMask
        ? tf.reshape(tf.cast(options.tokenMask, 'float32'), [b, 1, t, 1])
        : tf.ones([b, 1, t, 1]);
      const XQ = this.heads(linear(x, this.get('q')));
      const XK = this.heads(linear(x, this.get('k')));
      const XV = this.heads(linear(x, this.get('v')));
      const { W1, b1 } = this.slotWeights(
        slot,
        options.stopSlotGradient ?? false,
        options.fastWeights,
      );
      const gamma = tf.reshape(this.get('lnGamma'), [1, Ht, 1, d]);
      const beta = tf.reshape(this.get('lnBeta'), [1, Ht, 1, d]);
      let Zbar = tf.add(bmm(XQ, W1), b1); // [B,Ht,T,d] @ [B,Ht,d,d] -> [B,Ht,T,d]
      const needZ1 = inner === 'dual' || options.withLoss === true;
      const target = needZ1 ? tf.sub(XV, XK) : undefined;
      const Z1 = needZ1 ? tf.add(bmm(XK, W1), b1) : undefined;
      let eta: tf.Tensor | undefined;
      if (inner === 'dual') {
        const G = lnL2Grad(Z1!, target!, gamma, beta); // [B,Ht,T,d]
        const gate = tf.sigmoid(tf.add(linear(x, tf.transpose(this.get('lrW'))), this.get('lrB'))); // [B,T,Ht]
        eta = tf.mul(tf.mul(tf.transpose(tf.expandDims(gate, -1), [0, 2, 1, 3]), baseLr / d), real);
        const etaG = tf.mul(eta, G); // [B,Ht,T,d]; padding contributes nothing
        // (XQ XK^T + 1), masked: the W1 part and the b1 part of the update in one product
        let mix = tf.add(bmm(XQ, transposeLast2(XK)), 1); // [B,Ht,T,T]
        if (options.innerMask) {
          mix = tf.mul(mix, tf.expandDims(tf.cast(options.innerMask, 'float32'), 1));
        }
        Zbar = tf.sub(Zbar, bmm(mix, etaG));
      }
      return { XQ, XK, Zbar, eta, Z1, target, W1, b1, gamma, beta, real };
    });
  }

  /**
   * @param x [B,T,D]: the expert's attention output for its own tokens
   */
  forward(x: tf.Tensor, options: TttForwardOptions = {}): TttOutput {
    const Ht = this.config.heads;
    const [b, t, D] = x.shape as [number, number, number];
    let loss: tf.Scalar | undefined;
    const out = tf.tidy(() => {
      const r = this.innerRead(x, options);
      const read = tf.add(r.XQ, layerNorm(r.Zbar, r.gamma, r.beta)); // [B,Ht,T,d]
      const merged = tf.reshape(tf.transpose(read, [0, 2, 1, 3]), [b, t, D]);
      const y = linear(
        layerNorm(merged, this.get('postGamma'), this.get('postBeta')),
        this.get('o'),
      );
      if (options.withLoss) {
        const perToken = tf.expandDims(lnL2Loss(r.Z1!, r.target!, r.gamma, r.beta), -1); // [B,Ht,T,1]
        const count = tf.maximum(tf.mul(tf.sum(r.real), Ht), 1);
        loss = tf.keep(tf.div(tf.sum(tf.mul(perToken, r.real)), count) as tf.Scalar);
      }
      return tf.mul(y, tf.tanh(this.get('alpha')));
    });
    return loss === undefined ? { out } : { out, loss };
  }
}
