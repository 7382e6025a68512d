// From episodes to training samples and batches (DESIGN 5). A sample at frame t holds the
// observation at t, the action chunk t .. t+Ha-1 with a mask that is 0 past the episode end
// (those steps are zero), and the features and state of the frame after the chunk, t+Ha,
// clamped to the last frame. A seeded shuffle buffer mixes samples across episodes with bounded memory;
// batches are flat host arrays, and `toTensors` turns one into the tensors of a TrainBatch.
// No file system here (browser-safe); sample-stream.ts reads samples from frame files.

import { tf } from '@selfalign/core';
import { Rng } from '@selfalign/core/rng';
import { DataError } from './errors.js';
import type { DatasetMeta } from './schema.js';
import type { EpisodeData } from './writer.js';

export interface Sample {
  episode: number;
  frame: number;
  task: string;
  embodiment: string;
  /** demo rows carry expert actions; play rows only exploration */
  isDemo: boolean;
  /** [H*W*3] view */
  image: Uint8Array;
  /** [Ds] view */
  state: Float32Array;
  /** [Ha*A], zeros past the episode end */
  actions: Float32Array;
  /** [Ha], 1 inside the episode */
  actionMask: Uint8Array;
  /** [F] view: features of frame min(t + Ha, T - 1) */
  nextFeatures?: Float32Array;
  /** [Ds] view: state of frame min(t + Ha, T - 1) */
  nextState: Float32Array;
  /** [2G] view: image positions of the task objects at t (NaN where absent) */
  objects?: Float32Array;
}

/** Every sample of one episode, in frame order. */
export function* episodeSamples(
  ep: EpisodeData,
  meta: Pick<
    DatasetMeta,
    'imageShape' | 'stateDim' | 'actionDim' | 'featureDim' | 'objectDim' | 'kind'
  >,
  horizon: number,
): Generator<Sample> {
  if (!(Number.isInteger(horizon) && horizon > 0))
    throw new RangeError(`horizon must be a positive integer, got ${horizon}`);
  const [h, w, c] = meta.imageShape;
  const img = h * w * c;
  const { stateDim: ds, actionDim: da, featureDim: df } = meta;
  const T = ep.length;
  for (let t = 0; t < T; t++) {
    const steps = Math.min(horizon, T - t);
    const actions = new Float32Array(horizon * da);
    actions.set(ep.actions.subarray(t * da, (t + steps) * da));
    const actionMask = new Uint8Array(horizon);
    actionMask.fill(1, 0, steps);
    const next = Math.min(t + horizon, T - 1);
    const s: Sample = {
      episode: ep.episodeIndex,
      frame: t,
      task: ep.task,
      embodiment: ep.embodiment,
      isDemo: meta.kind === 'demo',
      image: ep.images.subarray(t * img, (t + 1) * img),
      state: ep.states.subarray(t * ds, (t + 1) * ds),
      nextState: ep.states.subarray(next * ds, (next + 1) * ds),
      actions,
      actionMask,
    };
    if (df !== undefined && ep.features) {
      s.nextFeatures = ep.features.subarray(next * df, (next + 1) * df);
    }
    const dobj = meta.objectDim;
    if (dobj !== undefined && ep.objects) s.objects = ep.objects.subarray(t * dobj, (t + 1) * dobj);
    yield s;
  }
}

/** Seeded shuffle buffer: holds at most `size` items, emits a random one as each new one arrives. */
export async function* shuffled<T>(
  source: AsyncIterable<T> | Iterable<T>,
  size: number,
  seed: number,
): AsyncGenerator<T> {
  if (!(Number.isInteger(size) && size > 0))
    throw new RangeError(`shuffle buffer size must be a positive integer, got ${size}`);
  const rng = new Rng(seed);
  const buffer: T[] = [];
  for await (const item of source) {
    if (buffer.length < size) {
      buffer.push(item);
      continue;
    }
    const k = rng.int(size);
    const out = buffer[k]!;
    buffer[k] = item;
    yield out;
  }
  rng.shuffle(buffer);
  yield* buffer;
}

/** B samples as flat row-major host arrays. */
export interface HostBatch {
  size: number;
  imageShape: [number, number, number];
  stateDim: number;
  actionDim: number;
  horizon: number;
  featureDim?: number;
  /** uint8 [B*H*W*3] */
  images: Uint8Array;
  /** [B*Ds] */
  states: Float32Array;
  /** [B*Ha*A] */
  actions: Float32Array;
  /** [B*Ha] */
  actionMask: Float32Array;
  /** [B*F] */
  nextFeatures?: Float32Array;
  /** [B*Ds] the state after the chunk */
  nextStates: Float32Array;
  /** [B*2G] object image positions, when every sample has them */
  objects?: Float32Array;
  objectDim?: number;
  /** [B]: 1 demo, 0 play */
  isDemo: Float32Array;
  tasks: string[];
  embodiments: string[];
  episodes: Int32Array;
  frames: Int32Array;
}

/** Packs samples into one batch. @throws DataError when they disagree in shape. */
export function packBatch(
  samples: readonly Sample[],
  imageShape: [number, number, number],
  file = '<samples>',
): HostBatch {
  const b = samples.length;
  const s0 = samples[0];
  if (s0 === undefined) throw new DataError('cannot pack an empty batch', file);
  const img = imageShape[0] * imageShape[1] * imageShape[2];
  const ds = s0.state.length;
  const ha = s0.actionMask.length;
  const da = s0.actions.length / ha;
  const df = s0.nextFeatures?.length;
  const out: HostBatch = {
    size: b,
    imageShape,
    stateDim: ds,
    actionDim: da,
    horizon: ha,
    images: new Uint8Array(b * img),
    states: new Float32Array(b * ds),
    nextStates: new Float32Array(b * ds),
    actions: new Float32Array(b * ha * da),
    actionMask: new Float32Array(b * ha),
    isDemo: new Float32Array(b),
    tasks: [],
    embodiments: [],
    episodes: new Int32Array(b),
    frames: new Int32Array(b),
  };
  if (df !== undefined) {
    out.featureDim = df;
    out.nextFeatures = new Float32Array(b * df);
  }
  const dobj = s0.objects?.length;
  if (dobj !== undefined) {
    out.objectDim = dobj;
    out.objects = new Float32Array(b * dobj);
  }
  samples.forEach((s, i) => {
    if (
      s.image.length !== img ||
      s.state.length !== ds ||
      s.nextState.length !== ds ||
      s.actions.length !== ha * da ||
      (s.nextFeatures?.length ?? -1) !== (df ?? -1) ||
      (s.objects?.length ?? -1) !== (dobj ?? -1)
    ) {
      throw new DataError(
        `sample ${i} (episode ${s.episode}, frame ${s.frame}) has other shapes than sample 0`,
        file,
      );
    }
    out.images.set(s.image, i * img);
    out.states.set(s.state, i * ds);
    out.nextStates.set(s.nextState, i * ds);
    out.actions.set(s.actions, i * ha * da);
    for (let k = 0; k < ha; k++) out.actionMask[i * ha + k] = s.actionMask[k]!;
    if (df !== undefined) out.nextFeatures!.set(s.nextFeatures!, i * df);
    if (dobj !== undefined) out.objects!.set(s.objects!, i * dobj);
    out.isDemo[i] = s.isDemo ? 1 : 0;
    out.tasks.push(s.task);
    out.embodiments.push(s.embodiment);
    out.episodes[i] = s.episode;
    out.frames[i] = s.frame;
  });
  return out;
}

/** Groups samples into batches of `size` (the last one may be smaller unless `dropLast`). */
export async function* batched(
  samples: AsyncIterable<Sample>,
  size: number,
  imageShape: [number, number, number],
  dropLast = false,
): AsyncGenerator<HostBatch> {
  let group: Sample[] = [];
  for await (const s of samples) {
    group.push(s);
    if (group.length === size) {
      yield packBatch(group, imageShape);
      group = [];
    }
  }
  if (group.length > 0 && !dropLast) yield packBatch(group, imageShape);
}

/**
 * The label tensors of a host batch (everything but the observation: actions, chunk mask, demo
 * flags, the state after the chunk, next-observation features and object positions when
 * present), shaped as
 * @selfalign/experts' TrainBatch fields.
 */
export function labelTensors(b: HostBatch) {
  const t = {
    actions: tf.tensor3d(b.actions, [b.size, b.horizon, b.actionDim]),
    actionMask: tf.tensor2d(b.actionMask, [b.size, b.horizon]),
    isDemo: tf.tensor1d(b.isDemo),
    nextState: tf.tensor2d(b.nextStates, [b.size, b.stateDim]),
  };
  const objects = b.objects
    ? { objects: tf.tensor3d(b.objects, [b.size, b.objectDim! / 2, 2]) }
    : {};
  return b.nextFeatures
    ? { ...t, ...objects, nextFeatures: tf.tensor2d(b.nextFeatures, [b.size, b.featureDim!]) }
    : { ...t, ...objects };
}

/** Tensors of a host batch, shaped as @selfalign/experts' TrainBatch fields (one camera). */
export function toTensors(b: HostBatch) {
  const [h, w, c] = b.imageShape;
  return {
    images: tf.tensor(Int32Array.from(b.images), [b.size, 1, h, w, c], 'int32'),
    state: tf.tensor2d(b.states, [b.size, b.stateDim]),
    ...labelTensors(b),
  };
}
