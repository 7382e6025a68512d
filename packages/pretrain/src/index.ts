// @selfalign/pretrain: the policies align starts from. Multi-embodiment pretraining (every
// parameter, a TTT slot per source robot, data-parallel on worker threads), align-aware
// pretraining, and full fine-tuning on labelled demos (the upper baseline). Checkpoints and
// the slot parametrisations are @selfalign/align's.

export {
  ALIGN_AWARE_START,
  type AlignAwareBatch,
  type AlignAwareOptions,
  type AlignAwareTerms,
  addGradients,
  alignAwareGradients,
} from './align-aware.js';
export { defaultWorkers, WorkerPool } from './data-parallel.js';
export { drawStep } from './draws.js';
export { PrefixStore, type PrefixStoreOptions, toHalf } from './prefix-store.js';
export {
  contrastSlots,
  disposePretrain,
  finetune,
  isPrefixParam,
  PREFIX_PARAMS,
  type PretrainBatch,
  type PretrainOptions,
  type PretrainResult,
  pretrain,
} from './pretrain.js';
export { SLOT_CODE_PREFIX, SlotCode, slotSpectrum, symmetricEigen } from './slot-code.js';
