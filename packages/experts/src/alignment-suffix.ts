// The Alignment Expert's suffix (DESIGN 3.4) as a table of self-supervised flow-matching tasks
// that share one t per sample and draw independent noise. Each task says once what it predicts
// (its clean target x0 and loss mask), which tokens carry it (conditioning tokens, then its
// noisy target time-fused), which of its own tokens the head reads, what else it may attend to,
// and how its loss's denominator is counted; the loss, the mask, the parameters and the
// data-parallel denominators are loops over the table. The three tasks of the design:
//   perception  1 token       noisy state s_t (time-fused)                        ar [1]
//   dynamics    Ha + 1 tokens clean actions a, then noisy next-obs features f_t   ar [1, 0...]
//   inverse     1 + Ha tokens clean next-obs features f, then noisy actions a_t   ar [1, 0...]
// and one a config may add (`extraAlignmentTasks`, EXTRA_TASKS):
//   stateDynamics  Ha + 2 tokens clean state s, clean actions a, then the noisy state after the
//                  chunk s'_t; it does not see the prefix (blind), so the embodiment it needs
//                  (which action moves which joint, which way, how fast) can come only from
//                  the TTT slot                                                      ar [1, 0...]
//   kinematics     2 tokens     clean state after the chunk s', then the noisy features of that
//                  frame f_t; blind too: what the arm looks like in a given joint state (link
//                  lengths, encoder offsets) can come only from the slot             ar [1, 0]
// Heads: perception Linear(D, Ds) on its token, dynamics Linear(D, F) on the noisy feature
// token, inverse Linear(D, A) on the last Ha tokens. Action tokens past the episode end are
// padding (they neither attend nor are attended). Adding a task = a table entry (and the data
// column its target comes from); a test adds a toy fourth task this way.
import { linear, type MaskSegment, type Rng, randomNormal, tf } from '@selfalign/core';
import { fuseTime } from './action-suffix.js';
import type { ExtraAlignmentTask, PolicyConfig } from './config.js';
import type { Policy } from './policy.js';

/** What every task may read: the batch, prepared once by computeLoss. */
export interface TaskContext {
  policy: Policy;
  /** [B, Ds] normalised state, zero-padded; [1, Ds] 1 on the dims the robot has */
  state: tf.Tensor;
  stateDims: tf.Tensor;
  /** [B, Ha, A] normalised actions, zero-padded and zero past the episode end; [A] dim mask */
  actions: tf.Tensor;
  actionDims: tf.Tensor;
  /** [B, Ha] 1 where the chunk step lies inside the episode */
  chunk: tf.Tensor;
  /** [B, F] features of the observation after the chunk */
  features: tf.Tensor;
  /** [B, Ds] normalised state after the chunk, zero-padded (when the batch has it) */
  nextState?: tf.Tensor;
  /** [B] flow time */
  t: tf.Tensor;
}

/** Host counts of a whole batch, for data-parallel denominators. */
export interface TaskCounts {
  rows: number;
  /** chunk steps inside the episode, over all rows */
  steps: number;
  /** state / action dims the robot has */
  stateDims: number;
  actionDims: number;
  config: PolicyConfig;
}

export interface AlignmentTask<N extends string = string> {
  /** Loss term and weight key. */
  name: N;
  /** Mask segment name (DESIGN 3.5). */
  segment: string;
  /** Other alignment segments its tokens attend to (besides the prefix and itself). */
  sees: readonly string[];
  /** Its tokens do not attend to the prefix (the image and the prompt). */
  blind?: boolean;
  /** Key of its noise in `LossOptions.noise`. */
  noiseKey: string;
  /** The shape of its noise (= of its x0) for a batch of `b` rows. */
  noiseShape(c: PolicyConfig, b: number): number[];
  /** Its input projections (alignment/<name>: in -> width), created before the shared time MLP. */
  inputs(c: PolicyConfig): readonly (readonly [string, number])[];
  /** Its head (alignment/<name>: width -> out), created after the shared time MLP. */
  head(c: PolicyConfig): readonly [string, number];
  /** The clean target x0 and its loss mask (broadcast to x0). */
  target(ctx: TaskContext): { x0: tf.Tensor; mask: tf.Tensor };
  /** Its tokens [B, n, D] from the noisy target x_t, their input mask [B, n] and ar flags. */
  tokens(
    ctx: TaskContext,
    xt: tf.Tensor,
    lin: (x: tf.Tensor, name: string) => tf.Tensor,
  ): { x: tf.Tensor; inputMask: tf.Tensor; ar: number[] };
  /** Which of its own tokens the head reads; `squeeze` for a single token read as [B, out]. */
  readout(ha: number): { start: number; count: number; squeeze: boolean };
  /** The number its masked mean divides by over a whole batch. */
  count(n: TaskCounts): number;
}

const fused = (ctx: TaskContext, x: tf.Tensor) => fuseTime(ctx.policy, 'alignment', x, ctx.t);
const ones = (ctx: TaskContext) => tf.ones([ctx.t.shape[0]!, 1], 'bool');
const chunkBool = (ctx: TaskContext) => tf.cast(ctx.chunk, 'bool');
const block = (ha: number) => [1, ...new Array<number>(ha).fill(0)];

export const PERCEPTION: AlignmentTask<'perception'> = {
  name: 'perception',
  segment: 'perception',
  sees: [],
  noiseKey: 'state',
  noiseShape: (c, b) => [b, c.stateDim],
  inputs: (c) => [['state_in', c.stateDim]],
  head: (c) => ['perception_head', c.stateDim],
  target: (ctx) => ({ x0: ctx.state, mask: ctx.stateDims }),
  tokens: (ctx, xt, lin) => ({
    x: fused(ctx, tf.expandDims(lin(xt, 'state_in'), 1)),
    inputMask: ones(ctx),
    ar: [1],
  }),
  readout: () => ({ start: 0, count: 1, squeeze: true }),
  count: (n) => n.rows * Math.min(n.stateDims, n.config.stateDim),
};

export const DYNAMICS: AlignmentTask<'dynamics'> = {
  name: 'dynamics',
  segment: 'dynamics',
  sees: ['perception'],
  noiseKey: 'features',
  noiseShape: (c, b) => [b, c.featureDim],
  inputs: (c) => [
    ['dyn_action_in', c.actionDim],
    ['dyn_feature_in', c.featureDim],
  ],
  head: (c) => ['dynamics_head', c.featureDim],
  target: (ctx) => ({ x0: ctx.features, mask: tf.ones([1, ctx.features.shape[1]!]) }),
  tokens: (ctx, xt, lin) => ({
    x: tf.concat(
      [lin(ctx.actions, 'dyn_action_in'), fused(ctx, tf.expandDims(lin(xt, 'dyn_feature_in'), 1))],
      1,
    ),
    inputMask: tf.concat([chunkBool(ctx), ones(ctx)], 1),
    ar: block(ctx.actions.shape[1]!),
  }),
  readout: (ha) => ({ start: ha, count: 1, squeeze: true }),
  count: (n) => n.rows * n.config.featureDim,
};

export const INVERSE_DYNAMICS: AlignmentTask<'inverseDynamics'> = {
  name: 'inverseDynamics',
  segment: 'inverse',
  sees: ['perception'],
  noiseKey: 'inverse',
  noiseShape: (c, b) => [b, c.actionHorizon, c.actionDim],
  inputs: (c) => [
    ['inv_feature_in', c.featureDim],
    ['inv_action_in', c.actionDim],
  ],
  head: (c) => ['inverse_head', c.actionDim],
  target: (ctx) => ({ x0: ctx.actions, mask: tf.mul(tf.expandDims(ctx.chunk, 2), ctx.actionDims) }),
  tokens: (ctx, xt, lin) => ({
    x: tf.concat(
      [tf.expandDims(lin(ctx.features, 'inv_feature_in'), 1), fused(ctx, lin(xt, 'inv_action_in'))],
      1,
    ),
    inputMask: tf.concat([ones(ctx), chunkBool(ctx)], 1),
    ar: block(ctx.actions.shape[1]!),
  }),
  readout: (ha) => ({ start: 1, count: ha, squeeze: false }),
  count: (n) => n.steps * n.actionDims,
};

/** The design's three tasks, in token order (the order also fixes noise draws and parameters). */
export const ALIGNMENT_TASKS = [PERCEPTION, DYNAMICS, INVERSE_DYNAMICS] as const;
export type AlignmentTaskName = (typeof ALIGNMENT_TASKS)[number]['name'];

const nextStateOf = (ctx: TaskContext, task: string): tf.Tensor => {
  if (ctx.nextState === undefined)
    throw new Error(`the ${task} alignment task needs batch.nextState (the state after the chunk)`);
  return ctx.nextState;
};

export const STATE_DYNAMICS: AlignmentTask<'stateDynamics'> = {
  name: 'stateDynamics',
  segment: 'stateDynamics',
  sees: [],
  blind: true,
  noiseKey: 'nextState',
  noiseShape: (c, b) => [b, c.stateDim],
  inputs: (c) => [
    ['sdyn_state_in', c.stateDim],
    ['sdyn_action_in', c.actionDim],
    ['sdyn_next_in', c.stateDim],
  ],
  head: (c) => ['state_dynamics_head', c.stateDim],
  target: (ctx) => ({ x0: nextStateOf(ctx, 'stateDynamics'), mask: ctx.stateDims }),
  tokens: (ctx, xt, lin) => ({
    x: tf.concat(
      [
        tf.expandDims(lin(ctx.state, 'sdyn_state_in'), 1),
        lin(ctx.actions, 'sdyn_action_in'),
        fused(ctx, tf.expandDims(lin(xt, 'sdyn_next_in'), 1)),
      ],
      1,
    ),
    inputMask: tf.concat([ones(ctx), chunkBool(ctx), ones(ctx)], 1),
    ar: block(ctx.actions.shape[1]! + 1),
  }),
  readout: (ha) => ({ start: ha + 1, count: 1, squeeze: true }),
  count: (n) => n.rows * Math.min(n.stateDims, n.config.stateDim),
};

export const KINEMATICS: AlignmentTask<'kinematics'> = {
  name: 'kinematics',
  segment: 'kinematics',
  sees: [],
  blind: true,
  noiseKey: 'kinematics',
  noiseShape: (c, b) => [b, c.featureDim],
  inputs: (c) => [
    ['kin_state_in', c.stateDim],
    ['kin_feature_in', c.featureDim],
  ],
  head: (c) => ['kinematics_head', c.featureDim],
  // the dynamics task's target, predicted from the joint state instead of the image and actions
  target: (ctx) => DYNAMICS.target(ctx),
  tokens: (ctx, xt, lin) => ({
    x: tf.concat(
      [
        tf.expandDims(lin(nextStateOf(ctx, 'kinematics'), 'kin_state_in'), 1),
        fused(ctx, tf.expandDims(lin(xt, 'kin_feature_in'), 1)),
      ],
      1,
    ),
    inputMask: tf.ones([ctx.t.shape[0]!, 2], 'bool'),
    ar: [1, 0],
  }),
  readout: () => ({ start: 1, count: 1, squeeze: true }),
  count: (n) => n.rows * n.config.featureDim,
};

/** Tasks a config may add after the design's three (`PolicyConfig.extraAlignmentTasks`). */
export const EXTRA_TASKS: Readonly<Record<ExtraAlignmentTask, AlignmentTask>> = Object.freeze({
  stateDynamics: STATE_DYNAMICS,
  kinematics: KINEMATICS,
});

/** The alignment tasks of a config: the design's three, then its extra ones in order. */
export function alignmentTasksOf(c: PolicyConfig): readonly AlignmentTask[] {
  const extra = c.extraAlignmentTasks ?? [];
  return extra.length === 0
    ? ALIGNMENT_TASKS
    : [...ALIGNMENT_TASKS, ...extra.map((n) => EXTRA_TASKS[n])];
}

/** Creates a task's input projections (`which` 'inputs') or head (`'head'`) under alignment/. */
export function addTaskParams(
  policy: Pick<Policy, 'params'>,
  c: PolicyConfig,
  task: AlignmentTask,
  which: 'inputs' | 'head',
  rng: Rng,
): void {
  const D = c.alignment.width;
  const layers = which === 'inputs' ? task.inputs(c) : [task.head(c)];
  for (const [name, n] of layers) {
    const [din, dout] = which === 'inputs' ? [n, D] : [D, n];
    policy.params.add(`alignment/${name}/w`, randomNormal(rng, [din, dout], 1 / Math.sqrt(din)));
    policy.params.add(`alignment/${name}/b`, tf.zeros([dout]));
  }
}

export interface AlignmentTokens {
  /** [B, S, D]: every task's tokens, in table order */
  x: tf.Tensor;
  /** bool [B, S] */
  mask: tf.Tensor;
  segments: MaskSegment[];
  /** Per task: where its tokens start in the suffix. */
  offsets: number[];
}

const linOf = (policy: Policy) => (x: tf.Tensor, name: string) =>
  linear(x, policy.params.get(`alignment/${name}/w`), policy.params.get(`alignment/${name}/b`));

/** The suffix of `tasks` from each task's noisy target (same order). */
export function embedAlignmentSuffix(
  ctx: TaskContext,
  tasks: readonly AlignmentTask[],
  noisy: readonly tf.Tensor[],
): AlignmentTokens {
  return tf.tidy(() => {
    const lin = linOf(ctx.policy);
    const parts = tasks.map((task, i) => task.tokens(ctx, noisy[i]!, lin));
    const offsets: number[] = [];
    let at = 0;
    for (const p of parts) {
      offsets.push(at);
      at += p.x.shape[1]!;
    }
    const segments: MaskSegment[] = parts.map((p, i) => ({
      name: tasks[i]!.segment,
      inputMask: p.inputMask,
      ar: p.ar,
    }));
    return {
      x: tf.concat(
        parts.map((p) => p.x),
        1,
      ),
      mask: tf.concat(
        parts.map((p) => p.inputMask),
        1,
      ),
      segments,
      offsets,
    } as unknown as tf.TensorContainer;
  }) as unknown as AlignmentTokens;
}

/** Each task's prediction (shaped like its x0) from the alignment stream's output [B, S, D]. */
export function alignmentHeads(
  policy: Policy,
  tasks: readonly AlignmentTask[],
  out: tf.Tensor,
  offsets: readonly number[],
): tf.Tensor[] {
  return tf.tidy(() => {
    const lin = linOf(policy);
    const ha = policy.config.actionHorizon;
    return tasks.map((task, i) => {
      const r = task.readout(ha);
      const tokens = tf.slice(out, [0, offsets[i]! + r.start, 0], [-1, r.count, -1]);
      return lin(r.squeeze ? tf.squeeze(tokens, [1]) : tokens, task.head(policy.config)[0]);
    });
  });
}

/** Draws each task's noise (shaped like its x0) unless given, in table order. */
export function taskNoise(
  tasks: readonly AlignmentTask[],
  x0: readonly tf.Tensor[],
  given: Partial<Record<string, tf.Tensor>> | undefined,
  rng: Rng,
): tf.Tensor[] {
  return tasks.map((task, i) => given?.[task.noiseKey] ?? randomNormal(rng, x0[i]!.shape));
}
