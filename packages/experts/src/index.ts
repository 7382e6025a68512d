// @selfalign/experts: the pi0-style policy with an Action Expert and an Alignment Expert that
// share one TTT adapter per layer.
export { actionVelocity, embedActionSuffix, fuseTime, type SuffixTokens } from './action-suffix.js';
export {
  ALIGNMENT_TASKS,
  type AlignmentTask,
  type AlignmentTaskName,
  type AlignmentTokens,
  addTaskParams,
  alignmentHeads,
  alignmentTasksOf,
  DYNAMICS,
  EXTRA_TASKS,
  embedAlignmentSuffix,
  INVERSE_DYNAMICS,
  PERCEPTION,
  STATE_DYNAMICS,
  type TaskContext,
  type TaskCounts,
  taskNoise,
} from './alignment-suffix.js';
export { disposeBatch, randomBatch } from './batch.js';
export {
  computeLoss,
  DEFAULT_LOSS_WEIGHTS,
  disposeLoss,
  type LossDenominators,
  type LossOptions,
  type LossTerms,
  type LossWeights,
  lossDenominators,
  maskedMse,
  maskedMseRows,
  type TrainBatch,
} from './compute-loss.js';
export {
  CONFIGS,
  type ConfigName,
  EXTRA_ALIGNMENT_TASKS,
  type ExpertSize,
  type ExtraAlignmentTask,
  getConfig,
  type PolicyConfig,
  pi0,
  small,
  type TttSettings,
  tiny,
  type VisionConfig,
  validateConfig,
  withExtraAlignmentTasks,
  withSlots,
  withTttInner,
} from './config.js';
export {
  allows,
  allowsFor,
  buildMask,
  prefixPositions,
  SEES,
  type SegmentName,
  suffixPositions,
} from './masks.js';
export {
  dimMask,
  type NormMode,
  type NormStats,
  normalize,
  padLast,
  type Stats,
  unnormalize,
} from './normalize.js';
export {
  checkObservation,
  type HostObservation,
  makeObservation,
  type Observation,
  prepareState,
} from './observation.js';
export { createPolicy, type ExpertLayers, Policy, type PolicyOptions } from './policy.js';
export {
  disposePrefixCache,
  embedPrefix,
  encodePrefix,
  type PrefixCache,
  type PrefixTokens,
} from './prefix.js';
export { type SampleOptions, sampleActions } from './sample-actions.js';
export { ByteTokenizer, type Tokenizer, tokenizeBatch } from './tokenizer.js';
export {
  type ExpertName,
  type LayerKV,
  runTransformer,
  type Stream,
  type TransformerOptions,
  type TransformerOutput,
} from './transformer.js';
export {
  addVisionParams,
  embedImages,
  encodeImages,
  type ImageEncoding,
  keypointPositions,
} from './vision.js';
