// An exponential moving average of the trained weights (openpi keeps one for pi0 and evaluates
// it): after each step ema += (1 - d_t)(w - ema), with d_t = min(decay, (1 + t) / (10 + t)) so
// that the average of a run's first steps does not hold on to the initial weights. Host copies
// (the update is a few ms per step for the small policy); checkpoints store it as
// `extra/ema/<path>`, which readers take as the policy's weights.
import { EMA_PREFIX } from '@selfalign/align';
import { type HostTensor, tf } from '@selfalign/core';

export class WeightsAverage {
  private readonly values = new Map<string, { data: Float32Array; shape: number[] }>();

  /**
   * @param params the trained parameters by path
   * @param saved a checkpoint's `extra` state to continue from (its `ema/` entries)
   */
  constructor(
    readonly decay: number,
    params: readonly (readonly [string, tf.Variable])[],
    saved?: Map<string, HostTensor>,
  ) {
    if (!(decay > 0 && decay < 1))
      throw new Error(`the weights' moving average needs a decay in (0, 1), got ${decay}`);
    for (const [p, v] of params) {
      const s = saved?.get(`${EMA_PREFIX}${p}`);
      if (saved && s === undefined)
        throw new Error(`the checkpoint has no moving average of ${p} to resume with`);
      if (s && !tf.util.arraysEqual(s.shape, v.shape))
        throw new Error(
          `the checkpoint's moving average of ${p} has shape [${s.shape}], not [${v.shape}]`,
        );
      const data = Float32Array.from(s ? s.data : (v.dataSync() as Float32Array));
      this.values.set(p, { data, shape: [...v.shape] });
    }
  }

  /** The decay of update number `t` (0-based). */
  decayAt(t: number): number {
    return Math.min(this.decay, (1 + t) / (10 + t));
  }

  /** Folds the parameters' current values in as update number `t`. */
  update(params: readonly (readonly [string, tf.Variable])[], t: number): void {
    const k = 1 - this.decayAt(t);
    for (const [p, v] of params) {
      const e = this.values.get(p)!.data;
      const w = v.dataSync() as Float32Array;
      for (let i = 0; i < e.length; i++) e[i]! += k * (w[i]! - e[i]!);
    }
  }

  /** The average as tensors named `ema/<path>` (the caller disposes them). */
  tensors(): [string, tf.Tensor][] {
    return [...this.values].map(([p, e]) => [`${EMA_PREFIX}${p}`, tf.tensor(e.data, e.shape)]);
  }
}
