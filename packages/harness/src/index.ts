// @selfalign/harness: the glue between the simulator, the policy and the data, shared by the
// CLI and the browser playground (browser-safe: no file system, no onnxruntime).
export { type BodyFitOptions, BodyTracker, type Locate, lastLinkShrink } from './body-tracker.js';
export { episodeData, framesMeta, robotDims } from './frames.js';
export {
  type CameraJudge,
  EffectorJudge,
  type EffectorTracker,
  type JudgedEpisode,
  type JudgeTrainOptions,
  judgeEpisode,
  type TargetRead,
  type TryReader,
  verdictOf,
} from './judge.js';
export { type PlaySplit, playSplit } from './play-split.js';
export { type PolicyControllerOptions, policyController } from './policy-controller.js';
export {
  type PracticeOptions,
  type PracticeResult,
  type PracticeRound,
  practice,
} from './practice.js';
export {
  type RetargetOptions,
  type RetargetResult,
  type RetargetRound,
  type RetargetSource,
  retarget,
  retargetedChunks,
} from './retarget.js';
export {
  copySlot,
  fillWithSourceMean,
  firstFreeSlot,
  lowestScored,
  nearestSourceSlot,
  slotVector,
  sourceSlotsOf,
  writeSlotVector,
} from './slots.js';
