// @selfalign/core: the tensor layer under the selfalign policy.
export {
  type BackendChoice,
  BackendError,
  type BackendInfo,
  type BackendName,
  type BackendOptions,
  backendChoiceFromEnv,
  currentBackend,
  initBackend,
  setKernels,
} from './backend.js';
export {
  encodeParams,
  type LoadParamsOptions,
  loadParams,
  readTensors,
  type WantedTensor,
} from './checkpoint.js';
export {
  fastKernelsActive,
  installFastKernels,
  type KernelSet,
  kernelChoiceFromEnv,
  PINNED_TFJS_WASM,
  uninstallFastKernels,
} from './kernels/fast-kernels.js';
export { symmetricEigen } from './linalg.js';
export {
  type NormMode,
  type NormStats,
  parseNormStatsJson,
  type Stats,
  toNormStatsJson,
} from './norm-stats.js';
export { attention, type KVCache, MASKED_LOGIT } from './ops/attention.js';
export { composeAttnMask, type MaskSegment, makeAttnMask } from './ops/attn-mask.js';
export { embed } from './ops/embedding.js';
export { layerNorm } from './ops/layer-norm.js';
export { bmm, linear, transposeLast2 } from './ops/linear.js';
export { gegluMlp, geluTanh, type MlpWeights } from './ops/mlp.js';
export { posembSincos } from './ops/posemb.js';
export { rmsNorm } from './ops/rms-norm.js';
export { applyRope, type RopeTables, ropeTables } from './ops/rope.js';
export {
  type AdamOptions,
  applyGradients,
  createOptimizer,
  disposeOptimizer,
  globalNorm,
  momentVariable,
  type Optimizer,
  optimizerStep,
  type StepResult,
  warmupCosine,
} from './optim.js';
export {
  disposeSnapshot,
  globToRegExp,
  type ParamSnapshot,
  ParamTree,
  type PathFilter,
  pathMatcher,
} from './params.js';
export { flowTime, normalArray, randomNormal, randomUniform } from './random.js';
export { beta15, Rng } from './rng.js';
export {
  CheckpointError,
  type DecodedSafetensors,
  decodeSafetensors,
  encodeSafetensors,
  f16ToF32,
  f32ToF16,
  type HostTensor,
  roundToF16,
  type SafetensorsDtype,
} from './safetensors.js';
export { assertShape, type Dim, SHAPE_LEGEND, ShapeError } from './shapes.js';
export { tf };

import { tf } from './tf.js';
