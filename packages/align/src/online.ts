// Online alignment (DESIGN 4, item 7): while the policy acts, keep a FIFO buffer of
// (observation, executed action chunk, next observation) from consecutive steps of the same
// episode, and align every `every` calls once the buffer holds `minSize` transitions, with an
// optimiser state that persists across calls (optionally reset at each new episode).
import type { FeatureExtractor, HostBatch } from '@selfalign/data';
import { disposeBatch, type Policy } from '@selfalign/experts';
import { type AlignOptions, type AlignResult, type AlignState, align } from './align.js';
import { trainBatchFromHost } from './batches.js';

export interface Step {
  episode: number;
  /** uint8 [H*W*3] */
  image: Uint8Array;
  /** [ds] */
  state: Float32Array;
  task: string;
  /** The actions executed after this observation, row-major [n * a] (n <= Ha). */
  executed: Float32Array;
}

interface Transition {
  obs: Step;
  /** features of the next observation */
  next: Float32Array;
  /** state of the next observation */
  nextState: Float32Array;
}

export interface OnlineOptions {
  capacity: number;
  minSize: number;
  /** Align every this many `observe` calls. */
  every: number;
  batchSize: number;
  imageShape: [number, number, number];
  actionDim: number;
  features: FeatureExtractor;
  /** Options of each align call (slot, parametrisation, steps per call ...). */
  align: AlignOptions;
  /** Start a fresh slot parametrisation and optimiser at each new episode. */
  resetPerEpisode?: boolean;
}

export class OnlineAligner {
  readonly buffer: Transition[] = [];
  private previous: Step | undefined;
  private calls = 0;
  state: AlignState | undefined;
  readonly results: AlignResult[] = [];

  constructor(
    readonly policy: Policy,
    readonly options: OnlineOptions,
  ) {
    if (options.minSize > options.capacity)
      throw new RangeError(`minSize ${options.minSize} exceeds capacity ${options.capacity}`);
  }

  /** Records a step; returns the align result when this call triggered one. */
  async observe(step: Step): Promise<AlignResult | undefined> {
    const prev = this.previous;
    if (prev && prev.episode === step.episode) {
      const [h, w] = this.options.imageShape;
      const next = await this.options.features.extract(step.image, 1, h, w);
      this.buffer.push({ obs: prev, next, nextState: step.state });
      if (this.buffer.length > this.options.capacity) this.buffer.shift();
    } else if (prev && this.options.resetPerEpisode) {
      this.state?.dispose();
      this.state = undefined;
    }
    this.previous = step;
    this.calls += 1;
    if (this.calls % this.options.every !== 0 || this.buffer.length < this.options.minSize)
      return undefined;
    return this.alignNow();
  }

  /** Aligns on the newest `batchSize` transitions. */
  async alignNow(): Promise<AlignResult> {
    const items = this.buffer.slice(-this.options.batchSize);
    const batch = trainBatchFromHost(this.policy, this.hostBatch(items));
    try {
      const r = await align(this.policy, [batch], {
        ...this.options.align,
        ...(this.state ? { state: this.state } : {}),
      });
      this.state = r.state;
      this.results.push(r);
      return r;
    } finally {
      disposeBatch(batch);
    }
  }

  private hostBatch(items: Transition[]): HostBatch {
    const [h, w, c] = this.options.imageShape;
    const ha = this.policy.config.actionHorizon;
    const da = this.options.actionDim;
    const ds = items[0]!.obs.state.length;
    const f = items[0]!.next.length;
    const b = items.length;
    const out: HostBatch = {
      size: b,
      imageShape: [h, w, c],
      stateDim: ds,
      actionDim: da,
      horizon: ha,
      featureDim: f,
      images: new Uint8Array(b * h * w * c),
      states: new Float32Array(b * ds),
      nextStates: new Float32Array(b * ds),
      actions: new Float32Array(b * ha * da),
      actionMask: new Float32Array(b * ha),
      nextFeatures: new Float32Array(b * f),
      isDemo: new Float32Array(b),
      tasks: items.map((t) => t.obs.task),
      embodiments: items.map(() => 'online'),
      episodes: Int32Array.from(items, (t) => t.obs.episode),
      frames: new Int32Array(b),
    };
    items.forEach((t, i) => {
      out.images.set(t.obs.image, i * h * w * c);
      out.states.set(t.obs.state, i * ds);
      out.nextStates.set(t.nextState, i * ds);
      const n = Math.min(ha, t.obs.executed.length / da);
      out.actions.set(t.obs.executed.subarray(0, n * da), i * ha * da);
      out.actionMask.fill(1, i * ha, i * ha + n);
      out.nextFeatures!.set(t.next, i * f);
    });
    return out;
  }

  dispose(): void {
    this.state?.dispose();
    this.state = undefined;
  }
}
