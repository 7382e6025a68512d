// Adam / AdamW over a selected set of parameters, with global-norm gradient clipping and a
// learning-rate schedule. Pretraining and align call the same `optimizerStep`; only the list
// of variables differs (selected from the parameter tree by a path filter). Moment tensors
// exist only for the variables that were stepped, so a frozen parameter has no state at all.
import { fusedAdamW, sumSquares } from './kernels/fast-kernels.js';
import { tf } from './tf.js';

export interface AdamOptions {
  /** Learning rate, or a schedule of the (1-based) step. */
  lr: number | ((step: number) => number);
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay (AdamW); 0 gives Adam. */
  weightDecay?: number;
  /** Clip the global gradient norm to this value. */
  clipNorm?: number;
  /** Per-parameter multiplier of the learning rate (e.g. a faster rate for a few coefficients). */
  lrScale?: (path: string) => number;
  /**
   * 'sgd': plain gradient descent, p -= lr * g (no moments; beta1/beta2/eps unused). What
   * align-aware pretraining's inner steps take, so align can take the same steps.
   */
  method?: 'adam' | 'sgd';
}

export interface Optimizer {
  readonly options: Required<Omit<AdamOptions, 'clipNorm' | 'lrScale'>> & {
    clipNorm: number | undefined;
    lrScale: ((path: string) => number) | undefined;
  };
  /** Steps taken. */
  step: number;
  /** First and second moments, keyed by parameter path. */
  readonly m: Map<string, tf.Variable>;
  readonly v: Map<string, tf.Variable>;
}

export interface StepResult {
  /** The loss before the update. */
  loss: number;
  /** Global gradient norm before clipping (NaN when the loss was not finite). */
  gradNorm: number;
  /** False when the loss or a gradient was not finite: then nothing was changed. */
  applied: boolean;
}

export function createOptimizer(options: AdamOptions): Optimizer {
  return {
    options: {
      lr: options.lr,
      beta1: options.beta1 ?? 0.9,
      beta2: options.beta2 ?? 0.999,
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 0,
      clipNorm: options.clipNorm,
      lrScale: options.lrScale,
      method: options.method ?? 'adam',
    },
    step: 0,
    m: new Map(),
    v: new Map(),
  };
}

/** Linear warm-up then cosine decay from `peak` to `end` at `decaySteps` (LeRobot's pi0 schedule). */
export function warmupCosine(
  peak: number,
  warmupSteps: number,
  decaySteps: number,
  end = peak / 10,
): (step: number) => number {
  return (step) => {
    if (step <= warmupSteps) return (peak * step) / Math.max(1, warmupSteps);
    const p = Math.min(1, (step - warmupSteps) / Math.max(1, decaySteps - warmupSteps));
    return end + 0.5 * (peak - end) * (1 + Math.cos(Math.PI * p));
  };
}

/**
 * One optimisation step: gradients of `lossFn` with respect to `params` only, then Adam(W).
 * A non-finite loss or gradient leaves every parameter and moment untouched.
 * @param params `[path, variable]` pairs, e.g. `tree.select('ttt/**')`
 * @param lossFn returns a scalar; runs inside a gradient tape
 */
export function optimizerStep(
  opt: Optimizer,
  params: readonly [string, tf.Variable][],
  lossFn: () => tf.Scalar,
): StepResult {
  if (params.length === 0) throw new Error('optimizerStep: no parameters selected');
  const { value, grads } = tf.variableGrads(
    lossFn,
    params.map(([, v]) => v),
  );
  return applyGradients(opt, params, value, grads);
}

/**
 * Adam(W) with gradients computed elsewhere (e.g. summed over data-parallel workers): what
 * `optimizerStep` does after its backward pass. Takes ownership of `value` and `grads` (disposes
 * them). A non-finite loss or gradient leaves every parameter and moment untouched.
 * @param grads by variable name; a parameter without an entry is not updated
 */
export function applyGradients(
  opt: Optimizer,
  params: readonly [string, tf.Variable][],
  value: tf.Scalar,
  grads: tf.NamedTensorMap,
): StepResult {
  try {
    // A parameter the loss does not reach gets no gradient from tfjs: it is left alone.
    const gradList = params.map(([, v]) => grads[v.name]);
    const present = gradList.filter((g): g is tf.Tensor => g !== undefined);
    const lossValue = value.dataSync()[0]!;
    const gradNorm = globalNorm(present);
    if (!Number.isFinite(lossValue) || !Number.isFinite(gradNorm)) {
      return { loss: lossValue, gradNorm: Number.NaN, applied: false };
    }
    opt.step += 1;
    const o = opt.options;
    const lr = typeof o.lr === 'function' ? o.lr(opt.step) : o.lr;
    const clip = o.clipNorm !== undefined && gradNorm > o.clipNorm ? o.clipNorm / gradNorm : 1;
    const c1 = 1 - o.beta1 ** opt.step;
    const c2 = 1 - o.beta2 ** opt.step;
    params.forEach(([path, p], i) => {
      const grad = gradList[i];
      if (grad === undefined) return;
      const rate = lr * (o.lrScale ? o.lrScale(path) : 1);
      if (o.method === 'sgd') {
        tf.tidy(() => {
          let update = clip === 1 ? grad : tf.mul(grad, clip);
          if (o.weightDecay > 0) update = tf.add(update, tf.mul(p, o.weightDecay));
          p.assign(tf.sub(p, tf.mul(update, rate)));
        });
        return;
      }
      let m = opt.m.get(path);
      let v = opt.v.get(path);
      if (m === undefined || v === undefined) {
        m = momentVariable(tf.zerosLike(p));
        v = momentVariable(tf.zerosLike(p));
        opt.m.set(path, m);
        opt.v.set(path, v);
      }
      const mv = m;
      const vv = v;
      const fused = fusedAdamW(p, grad, mv, vv, {
        clip,
        beta1: o.beta1,
        beta2: o.beta2,
        c1,
        c2,
        eps: o.eps,
        weightDecay: o.weightDecay,
        rate,
      });
      if (fused !== undefined) {
        // one wasm pass (the fast kernels) computing what the element-wise form below does
        p.assign(fused[0]);
        mv.assign(fused[1]);
        vv.assign(fused[2]);
        tf.dispose(fused);
        return;
      }
      tf.tidy(() => {
        const g = clip === 1 ? grad : tf.mul(grad, clip);
        const mNew = tf.add(tf.mul(mv, o.beta1), tf.mul(g, 1 - o.beta1));
        const vNew = tf.add(tf.mul(vv, o.beta2), tf.mul(tf.square(g), 1 - o.beta2));
        mv.assign(mNew);
        vv.assign(vNew);
        let update = tf.div(tf.div(mNew, c1), tf.add(tf.sqrt(tf.div(vNew, c2)), o.eps));
        if (o.weightDecay > 0) update = tf.add(update, tf.mul(p, o.weightDecay));
        p.assign(tf.sub(p, tf.mul(update, rate)));
      });
    });
    return { loss: lossValue, gradNorm, applied: true };
  } finally {
    value.dispose();
    tf.dispose(Object.values(grads));
  }
}

/**
 * The L2 norm of all the tensors together (a gradient's global norm). With the fast kernels each
 * tensor is read once in place; otherwise as tfjs ops.
 */
export function globalNorm(tensors: readonly tf.Tensor[]): number {
  if (tensors.length === 0) return 0;
  const fast = tensors.map((t) => sumSquares(t));
  if (fast.every((x): x is number => x !== undefined))
    return Math.sqrt(fast.reduce((a, x) => a + x, 0));
  return Math.sqrt(tf.tidy(() => tf.addN(tensors.map((t) => tf.sum(tf.square(t)))).dataSync()[0]!));
}

/**
 * An optimiser state variable holding `init`'s values. `init` is disposed: a variable shares its
 * tensor's data, so keeping `init` alive would hold that memory after the variable is disposed.
 */
export function momentVariable(init: tf.Tensor): tf.Variable {
  const v = tf.variable(init, false);
  init.dispose();
  return v;
}

export function disposeOptimizer(opt: Optimizer): void {
  for (const t of [...opt.m.values(), ...opt.v.values()]) t.dispose();
  opt.m.clear();
  opt.v.clear();
}
