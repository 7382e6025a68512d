// Policy configs: plain frozen data with named variants (openpi get_config). `tiny` keeps
// unit tests fast, `small` is the CPU demo, `pi0` records the published pi0 sizes
// (PaliGemma gemma_2b + gemma_300m action expert, SigLIP So400m/14 at 224) without weights so
// the parameter layout can later load real pi0 checkpoints. All experts share depth, heads,
// K/V heads and head dim; the Action and Alignment experts also share width (one TTT module).
import type { InnerMode } from '@selfalign/ttt';

export interface ExpertSize {
  width: number;
  mlp: number;
}

export interface VisionConfig {
  /** I */
  imageSize: number;
  patch: number;
  /** C */
  cameras: number;
  width: number;
  depth: number;
  heads: number;
  mlp: number;
  /** K: spatial soft-argmax keypoint tokens per camera after its patch tokens (0 or absent: none). */
  keypoints?: number;
  /**
   * The first N keypoints of camera 0 also join the Action Expert's state token: state_proj
   * reads [state, u1, v1, ..., uN, vN] (Levine et al. 2016 fed feature points to the controller
   * beside the joint angles). 0 or absent: the state token is the state only.
   */
  keypointsToState?: number;
}

export interface TttSettings {
  /** Ht */
  heads: number;
  /** E: embodiment slots */
  slots: number;
  inner: InnerMode;
  baseLr: number;
  alpha: number;
  /** Layer positions that carry a TTT module (in the Action and Alignment experts). */
  layers: readonly number[];
}

export interface PolicyConfig {
  name: string;
  /** L */
  depth: number;
  /** H */
  heads: number;
  /** Hkv */
  kvHeads: number;
  /** Dh */
  headDim: number;
  vlm: ExpertSize;
  action: ExpertSize;
  alignment: ExpertSize;
  vision: VisionConfig;
  /** Prompt tokens (right-padded / truncated). */
  maxTokens: number;
  /** Ha */
  actionHorizon: number;
  /** A (padded) */
  actionDim: number;
  /** Ds (padded) */
  stateDim: number;
  /** F */
  featureDim: number;
  ttt: TttSettings;
  /** Euler steps of sampleActions. */
  flowSteps: number;
  /**
   * Alignment tasks beyond the design's three (alignment-suffix.ts `EXTRA_TASKS`), in this
   * order after them; absent (the published configs) or empty: the design's three only.
   */
  extraAlignmentTasks?: readonly ExtraAlignmentTask[];
}

/**
 * Alignment tasks a config may add, both blind (they see neither the image nor the prompt, so
 * the robot reaches them only through the TTT slot): `stateDynamics` predicts the
 * proprioceptive state after the action chunk from the state and the actions (the joint
 * dynamics: which action moves which joint, which way, how fast); `kinematics` predicts the
 * image features of a frame from its joint state (the body: link lengths, encoder offsets,
 * which a still image shows and the joint dynamics do not).
 */
export const EXTRA_ALIGNMENT_TASKS = ['stateDynamics', 'kinematics'] as const;
export type ExtraAlignmentTask = (typeof EXTRA_ALIGNMENT_TASKS)[number];

const deepFreeze = <T>(o: T): T => {
  if (o !== null && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
};

export const tiny: PolicyConfig = deepFreeze({
  name: 'tiny',
  depth: 2,
  heads: 2,
  kvHeads: 1,
  headDim: 8,
  vlm: { width: 32, mlp: 64 },
  action: { width: 32, mlp: 64 },
  alignment: { width: 32, mlp: 64 },
  vision: {
    imageSize: 16,
    patch: 8,
    cameras: 1,
    width: 32,
    depth: 1,
    heads: 2,
    mlp: 64,
    keypoints: 2,
    keypointsToState: 2,
  },
  maxTokens: 8,
  actionHorizon: 4,
  actionDim: 4,
  stateDim: 10,
  featureDim: 8,
  ttt: { heads: 2, slots: 4, inner: 'dual', baseLr: 1, alpha: 0.1, layers: [0, 1] },
  flowSteps: 10,
});

export const small: PolicyConfig = deepFreeze({
  name: 'small',
  depth: 4,
  heads: 4,
  kvHeads: 1,
  headDim: 32,
  vlm: { width: 128, mlp: 256 },
  action: { width: 128, mlp: 256 },
  alignment: { width: 128, mlp: 256 },
  vision: {
    imageSize: 64,
    patch: 8,
    cameras: 1,
    width: 128,
    depth: 2,
    heads: 4,
    mlp: 256,
    keypoints: 16,
    keypointsToState: 2,
  },
  maxTokens: 16,
  actionHorizon: 8,
  actionDim: 4,
  stateDim: 12,
  featureDim: 64,
  ttt: { heads: 4, slots: 40, inner: 'dual', baseLr: 1, alpha: 0.1, layers: [0, 1, 2, 3] },
  flowSteps: 10,
});

export const pi0: PolicyConfig = deepFreeze({
  name: 'pi0',
  depth: 18,
  heads: 8,
  kvHeads: 1,
  headDim: 256,
  vlm: { width: 2048, mlp: 16384 },
  action: { width: 1024, mlp: 4096 },
  alignment: { width: 1024, mlp: 4096 },
  vision: { imageSize: 224, patch: 14, cameras: 3, width: 1152, depth: 27, heads: 16, mlp: 4304 },
  maxTokens: 48,
  actionHorizon: 50,
  actionDim: 32,
  stateDim: 32,
  featureDim: 384,
  ttt: {
    heads: 8,
    slots: 8,
    inner: 'dual',
    baseLr: 1,
    alpha: 0.1,
    layers: Array.from({ length: 18 }, (_, i) => i),
  },
  flowSteps: 10,
});

export const CONFIGS = Object.freeze({ tiny, small, pi0 });
export type ConfigName = keyof typeof CONFIGS;

export function getConfig(name: string): PolicyConfig {
  const c = (CONFIGS as Record<string, PolicyConfig>)[name];
  if (c === undefined) {
    throw new Error(
      `unknown policy config '${name}'; use one of ${Object.keys(CONFIGS).join(', ')}`,
    );
  }
  return c;
}

/** Checks the constraints the model relies on. @throws Error naming the field. */
export function validateConfig(c: PolicyConfig): void {
  const fail = (msg: string) => {
    throw new Error(`policy config '${c.name}': ${msg}`);
  };
  if (c.action.width !== c.alignment.width) {
    fail(`action width ${c.action.width} != alignment width ${c.alignment.width} (they share TTT)`);
  }
  if (c.heads % c.kvHeads !== 0) fail(`${c.heads} heads do not group over ${c.kvHeads} K/V heads`);
  if (c.headDim % 2 !== 0) fail(`head dim ${c.headDim} must be even (RoPE)`);
  if (c.action.width % c.ttt.heads !== 0)
    fail(`width ${c.action.width} not divisible by ${c.ttt.heads} TTT heads`);
  if (c.action.width % 2 !== 0) fail('action width must be even (sincos time embedding)');
  if (c.vision.imageSize % c.vision.patch !== 0)
    fail(`image ${c.vision.imageSize} not divisible by patch ${c.vision.patch}`);
  if (c.vision.width % c.vision.heads !== 0) fail('vision width not divisible by vision heads');
  const kp = c.vision.keypoints ?? 0;
  if (!(Number.isInteger(kp) && kp >= 0)) fail(`keypoints must be a count >= 0, got ${kp}`);
  const ks = c.vision.keypointsToState ?? 0;
  if (!(Number.isInteger(ks) && ks >= 0 && ks <= kp))
    fail(`keypointsToState must be a count from 0 to keypoints (${kp}), got ${ks}`);
  for (const l of c.ttt.layers)
    if (!(l >= 0 && l < c.depth)) fail(`TTT layer ${l} outside 0..${c.depth - 1}`);
  if (c.ttt.slots < 1) fail('at least one TTT slot');
  const extra = c.extraAlignmentTasks ?? [];
  for (const t of extra)
    if (!EXTRA_ALIGNMENT_TASKS.includes(t))
      fail(`unknown alignment task '${t}'; extra tasks: ${EXTRA_ALIGNMENT_TASKS.join(', ')}`);
  if (new Set(extra).size !== extra.length) fail(`an alignment task is listed twice: ${extra}`);
}

/** `c` with the extra alignment tasks `tasks` (none: `c` without the field). */
/** `c` with `slots` TTT slots (validated and frozen, like the named configs). */
export function withSlots(c: PolicyConfig, slots: number): PolicyConfig {
  if (!Number.isInteger(slots) || slots < 1)
    throw new RangeError(`TTT slots must be a positive integer, got ${slots}`);
  if (slots === c.ttt.slots) return c;
  const out: PolicyConfig = { ...c, ttt: { ...c.ttt, slots } };
  validateConfig(out);
  return deepFreeze(out);
}

/** `c` with the TTT inner step `inner` (validated and frozen, like the named configs). */
export function withTttInner(c: PolicyConfig, inner: InnerMode): PolicyConfig {
  if (inner !== 'dual' && inner !== 'none')
    throw new RangeError(`TTT inner mode must be dual or none, got '${String(inner)}'`);
  if (inner === c.ttt.inner) return c;
  const out: PolicyConfig = { ...c, ttt: { ...c.ttt, inner } };
  validateConfig(out);
  return deepFreeze(out);
}

export function withExtraAlignmentTasks(
  c: PolicyConfig,
  tasks: readonly ExtraAlignmentTask[],
): PolicyConfig {
  const { extraAlignmentTasks: _, ...rest } = c;
  const out: PolicyConfig = tasks.length > 0 ? { ...rest, extraAlignmentTasks: [...tasks] } : rest;
  validateConfig(out);
  return deepFreeze(out);
}
