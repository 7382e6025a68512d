// @selfalign/align: adapting a pretrained policy to a new robot through its TTT fast weights.
// Everything of ./browser.ts, plus what needs Node (files, @selfalign/data). Pretraining and
// fine-tuning, which produce the policies align starts from, are @selfalign/pretrain.

export { AdapterStore, type StoredAdapter } from './adapters.js';
export * from './browser.js';
export { loadCheckpoint, restoreOptimizer, saveCheckpoint } from './checkpoint.js';
export { OnlineAligner, type OnlineOptions, type Step } from './online.js';
