// @selfalign/sim: the built-in robot benchmark. Zero tensor dependencies; the same code runs
// in Node and the browser.
export {
  ArmEnv,
  DEFAULT_ENV,
  type EnvConfig,
  GEOMETRY,
  jointLimit,
  OBJECT_SLOTS,
  type TaskName,
} from './arm-env.js';
export { actionJumpShare, type JumpOptions, type JumpResult } from './clonability.js';
export {
  actionToCommand,
  commandToAction,
  DEFAULT_LINKS,
  describeEmbodiment,
  type Embodiment,
  getPreset,
  HELD_OUT,
  PRESETS,
  planeRotation,
  sampleEmbodiment,
  sampleSources,
  sourceEmbodiment,
  validateEmbodiment,
} from './embodiment.js';
export { expertAction, type PushStrategy, pushVelocity, type ReachSolution } from './expert.js';
export { type HindsightOptions, hindsightEpisodes, pathDirectness } from './hindsight.js';
export {
  type ActionMapOptions,
  type Body,
  bodyEffector,
  fitBody,
  identifyActionMap,
  invertMatrix,
  type KinematicsScratch,
  kinematicError,
  type Matrix,
  matMul,
  retargetedController,
  retargetMap,
  solveLinear,
} from './identify.js';
export {
  dlsStep,
  forwardKinematics,
  inverseKinematics3,
  jacobian,
  wrapAngle,
} from './kinematics.js';
export {
  type Controller,
  expertController,
  heldRandomController,
  ouController,
  randomController,
  type StepObservation,
} from './play.js';
export {
  type Appearance,
  type Camera,
  DEFAULT_APPEARANCE,
  DEFAULT_CAMERA,
  imageToWorld,
  Raster,
  type Rgb,
  renderScene,
  type Scene,
  worldToImage,
} from './render.js';
export {
  type Episode,
  type EpisodeSummary,
  type RunOptions,
  type RunResult,
  runEpisodes,
  seedRange,
} from './rollout.js';
