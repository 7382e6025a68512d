// @selfalign/align: adapting a pretrained policy to a new robot through its TTT fast weights.
export { AdapterStore, type StoredAdapter } from './adapters.js';
export {
  type AlignOptions,
  type AlignResult,
  type AlignState,
  type AlignWeights,
  align,
  evaluateLosses,
  onSlot,
  type StopReason,
  type TaskLosses,
} from './align.js';
export { trainBatchFromHost } from './batches.js';
export {
  CHECKPOINT_FORMAT,
  decodeCheckpoint,
  encodeCheckpoint,
  type LoadedCheckpoint,
  loadCheckpoint,
  restoreOptimizer,
  restoreParams,
  saveCheckpoint,
  type TrainingState,
} from './checkpoint.js';
export { OnlineAligner, type OnlineOptions, type Step } from './online.js';
export {
  disposePretrain,
  finetune,
  type PretrainOptions,
  type PretrainResult,
  pretrain,
} from './pretrain.js';
export {
  DEFAULT_LR,
  SlotParam,
  type SlotParametrisation,
  type SlotParamOptions,
} from './slot-param.js';
