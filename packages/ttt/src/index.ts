// @selfalign/ttt: the shared TTT-Linear embodiment adapter.
export {
  type AdapterInfo,
  encodeAdapter,
  fingerprint,
  loadAdapter,
  readAdapterInfo,
  TTT_FAST_WEIGHTS,
  writeSlot,
} from './adapter.js';
export {
  type InnerMode,
  lnL2Grad,
  lnL2Loss,
  type TttConfig,
  type TttForwardOptions,
  TttLinear,
  type TttOutput,
} from './ttt-linear.js';
