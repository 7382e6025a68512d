// @selfalign/align: adapting a pretrained policy to a new robot through its TTT fast weights.
// Everything of ./browser.ts, plus what needs Node (files, @selfalign/data).

export { AdapterStore, type StoredAdapter } from './adapters.js';
export {
  type AlignAwareBatch,
  type AlignAwareOptions,
  type AlignAwareTerms,
  addGradients,
  alignAwareGradients,
} from './align-aware.js';
export * from './browser.js';
export { loadCheckpoint, restoreOptimizer, saveCheckpoint } from './checkpoint.js';
export { defaultWorkers, WorkerPool } from './data-parallel.js';
export { OnlineAligner, type OnlineOptions, type Step } from './online.js';
export {
  contrastSlots,
  disposePretrain,
  drawStep,
  finetune,
  type PretrainOptions,
  type PretrainResult,
  pretrain,
} from './pretrain.js';
