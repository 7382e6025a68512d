// @selfalign/align/browser: the parts of align that run in a browser (no file system, no
// onnxruntime-node): align itself, the slot parametrisations, checkpoints as bytes.
export {
  type AlignOptions,
  type AlignResult,
  type AlignState,
  type AlignWeights,
  align,
  defaultAlignWeights,
  evaluateLosses,
  fixedTime,
  onSlot,
  type StepTerms,
  type StopReason,
  type TaskLosses,
} from './align.js';
export { trainBatchFromHost } from './batches.js';
export {
  CHECKPOINT_FORMAT,
  type CheckpointDtype,
  decodeCheckpoint,
  EMA_PREFIX,
  encodeCheckpoint,
  type LoadedCheckpoint,
  restoreParams,
  type TrainingState,
  type WeightsChoice,
} from './checkpoint-codec.js';
export {
  DEFAULT_LR,
  HULL_PEAK,
  SLOT_PARAMETRISATIONS,
  SlotParam,
  type SlotParametrisation,
  type SlotParamOptions,
} from './slot-param.js';
