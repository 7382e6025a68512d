// @selfalign/data/browser: the parts of the data package that run in a browser.
export { defaultEncoderTf, type TfEncoder } from './encoder-tf.js';
export {
  DEFAULT_ENCODER,
  defaultEncoderWeights,
  type EncoderOptions,
  type EncoderWeights,
} from './encoder-weights.js';
// types only (erased): the file-side modules stay out of browser bundles
export type { DatasetMeta } from './schema.js';
export { quantile, StatsAccumulator } from './stats-accumulator.js';
export {
  batched,
  episodeSamples,
  type HostBatch,
  labelTensors,
  packBatch,
  type Sample,
  shuffled,
  toTensors,
} from './window.js';
export type { EpisodeData } from './writer.js';
