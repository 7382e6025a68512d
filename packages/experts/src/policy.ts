// The policy object: one named parameter tree, one TTT module per TTT layer position (owned by
// this instance, handed to both the Action and the Alignment expert), normalisation stats and
// two verbs, computeLoss and sampleActions. Parameter paths:
//   vision/...                          SigLIP-like tower
//   vlm/embed, {vlm,action,alignment}/layers/<l>/{attn_norm,attn/{q,k,v,o},mlp_norm,mlp/{gate,up,down}}
//   {action,alignment}/final_norm
//   action/{state_proj,action_in,time_in,time_out,action_out}/{w,b}
//   alignment/{state_in,dyn_action_in,dyn_feature_in,inv_feature_in,inv_action_in,time_in,time_out,
//              perception_head,dynamics_head,inverse_head}/{w,b}
//   ttt/<l>/{q,k,v,o,ln_gamma,ln_beta,post_gamma,post_beta,W1,b1,lr_w,lr_b,alpha}
import { ParamTree, type Rng, Rng as RngClass, randomNormal, tf } from '@selfalign/core';
import { fingerprint, TttLinear } from '@selfalign/ttt';
import { ALIGNMENT_TASKS, addTaskParams, EXTRA_TASKS } from './alignment-suffix.js';
import { computeLoss, type LossOptions, type LossTerms, type TrainBatch } from './compute-loss.js';
import { type PolicyConfig, validateConfig } from './config.js';
import type { NormMode, NormStats } from './normalize.js';
import type { Observation } from './observation.js';
import { type SampleOptions, sampleActions } from './sample-actions.js';
import { ByteTokenizer, type Tokenizer } from './tokenizer.js';
import type { ExpertName } from './transformer.js';
import { addVisionParams } from './vision.js';

export interface PolicyOptions {
  seed?: number;
  normStats?: NormStats;
  normMode?: NormMode;
  tokenizer?: Tokenizer;
  /**
   * The state values per row the policy takes (the first N of each row, e.g. 6 joint angles
   * without velocities; 1..config.stateDim). Default: as many as the state norm stats cover,
   * else all a row has. Checkpoints store it.
   */
  stateDims?: number;
}

export interface ExpertLayers {
  /** Per layer: the TTT module this expert calls there (the same object for action and alignment). */
  readonly layers: readonly { readonly ttt: TttLinear | undefined }[];
}

function dense(tree: ParamTree, path: string, din: number, dout: number, rng: Rng, std?: number) {
  tree.add(`${path}/w`, randomNormal(rng, [din, dout], std ?? 1 / Math.sqrt(din)));
  tree.add(`${path}/b`, tf.zeros([dout]));
}

function addExpert(tree: ParamTree, c: PolicyConfig, name: ExpertName, rng: Rng): void {
  const { width: D, mlp: M } = c[name];
  const qd = c.heads * c.headDim;
  const kvd = c.kvHeads * c.headDim;
  const w = (path: string, din: number, dout: number) =>
    tree.add(path, randomNormal(rng, [din, dout], 1 / Math.sqrt(din)));
  for (let l = 0; l < c.depth; l++) {
    const p = `${name}/layers/${l}`;
    tree.add(`${p}/attn_norm`, tf.zeros([D]));
    w(`${p}/attn/q`, D, qd);
    w(`${p}/attn/k`, D, kvd);
    w(`${p}/attn/v`, D, kvd);
    w(`${p}/attn/o`, qd, D);
    tree.add(`${p}/mlp_norm`, tf.zeros([D]));
    w(`${p}/mlp/gate`, D, M);
    w(`${p}/mlp/up`, D, M);
    w(`${p}/mlp/down`, M, D);
  }
  // the VLM's output is never read (the suffixes read its K/V), so it has no final norm
  if (name !== 'vlm') tree.add(`${name}/final_norm`, tf.zeros([D]));
}

export class Policy {
  readonly params = new ParamTree();
  /** Per layer position: the shared TTT module, or undefined where the layer has none. */
  readonly ttt: readonly (TttLinear | undefined)[];
  readonly experts: Readonly<Record<ExpertName, ExpertLayers>>;
  /** Training flag (no layer depends on it yet; align must leave it as it found it). */
  training = false;
  normStats: NormStats | undefined;
  normMode: NormMode;
  private readonly explicitStateDims: number | undefined;
  readonly tokenizer: Tokenizer;
  /** How many forwards ran each expert (instrumentation for tests and benchmarks). */
  readonly calls: Record<ExpertName, number> = { vlm: 0, action: 0, alignment: 0 };
  /** Draws flow times and noise when none are given. */
  rng: Rng;
  /** Fingerprint of the config: adapters carry it. */
  readonly fingerprint: string;

  /**
   * The state values per row this policy takes (makeObservation keeps the first N of each
   * row), or undefined: all a row has (up to config.stateDim).
   */
  get stateDims(): number | undefined {
    return this.explicitStateDims ?? this.normStats?.state.mean.length;
  }

  constructor(
    readonly config: PolicyConfig,
    options: PolicyOptions = {},
  ) {
    validateConfig(config);
    const seed = options.seed ?? 0;
    const root = new RngClass(seed);
    this.rng = root.fork('sampling');
    this.normStats = options.normStats;
    const sd = options.stateDims;
    if (sd !== undefined) {
      if (!(Number.isInteger(sd) && sd >= 1 && sd <= config.stateDim))
        throw new RangeError(`stateDims must be 1..${config.stateDim}, got ${sd}`);
      const statsDims = options.normStats?.state.mean.length;
      if (statsDims !== undefined && statsDims !== sd)
        throw new RangeError(`stateDims ${sd} but the state norm stats cover ${statsDims} values`);
    }
    this.explicitStateDims = sd;
    this.normMode = options.normMode ?? 'zscore';
    this.tokenizer = options.tokenizer ?? new ByteTokenizer();
    this.fingerprint = fingerprint(config);
    const c = config;
    const tree = this.params;
    // Every part draws from its own fork, so (e.g.) TTT placement does not move other weights.
    addVisionParams(tree, c.vision, c.vlm.width, root.fork('vision'));
    const vlmRng = root.fork('vlm');
    tree.add(
      'vlm/embed',
      randomNormal(vlmRng, [this.tokenizer.vocabSize, c.vlm.width], 1 / Math.sqrt(c.vlm.width)),
    );
    addExpert(tree, c, 'vlm', vlmRng);
    const aRng = root.fork('action');
    addExpert(tree, c, 'action', aRng);
    const D = c.action.width;
    dense(tree, 'action/state_proj', c.stateDim + 2 * (c.vision.keypointsToState ?? 0), D, aRng);
    dense(tree, 'action/action_in', c.actionDim, D, aRng);
    dense(tree, 'action/time_in', 2 * D, D, aRng);
    dense(tree, 'action/time_out', D, D, aRng);
    dense(tree, 'action/action_out', D, c.actionDim, aRng);
    const gRng = root.fork('alignment');
    addExpert(tree, c, 'alignment', gRng);
    // each task's input projections, the shared time MLP, then each task's head (this order
    // fixes the seeded weights)
    for (const task of ALIGNMENT_TASKS) addTaskParams(this, c, task, 'inputs', gRng);
    dense(tree, 'alignment/time_in', 2 * D, D, gRng);
    dense(tree, 'alignment/time_out', D, D, gRng);
    for (const task of ALIGNMENT_TASKS) addTaskParams(this, c, task, 'head', gRng);
    const tRng = root.fork('ttt');
    this.ttt = Array.from({ length: c.depth }, (_, l) =>
      c.ttt.layers.includes(l)
        ? new TttLinear(
            tree,
            `ttt/${l}`,
            {
              width: D,
              heads: c.ttt.heads,
              slots: c.ttt.slots,
              inner: c.ttt.inner,
              baseLr: c.ttt.baseLr,
              alpha: c.ttt.alpha,
            },
            tRng.fork(l),
          )
        : undefined,
    );
    // a config's extra tasks draw from forks taken last: every other weight is as the
    // config without them draws it
    for (const name of c.extraAlignmentTasks ?? []) {
      const xRng = root.fork(`alignment/${name}`);
      addTaskParams(this, c, EXTRA_TASKS[name], 'inputs', xRng);
      addTaskParams(this, c, EXTRA_TASKS[name], 'head', xRng);
    }
    const shared = { layers: this.ttt.map((ttt) => ({ ttt })) };
    this.experts = Object.freeze({
      vlm: { layers: this.ttt.map(() => ({ ttt: undefined })) },
      action: shared,
      alignment: { layers: this.ttt.map((ttt) => ({ ttt })) },
    });
  }

  /** The TTT modules that exist, in layer order. */
  tttModules(): TttLinear[] {
    return this.ttt.filter((m): m is TttLinear => m !== undefined);
  }

  /** Pretraining loss (and align's, with `streams: ['alignment']`). The caller disposes the terms. */
  computeLoss(batch: TrainBatch, options?: LossOptions): LossTerms {
    return computeLoss(this, batch, options);
  }

  /** Action chunks [B, Ha, a] in the robot's units. */
  sampleActions(obs: Observation, options?: SampleOptions): tf.Tensor {
    return sampleActions(this, obs, options);
  }

  dispose(): void {
    this.params.dispose();
  }
}

/** A freshly initialised policy. */
export function createPolicy(config: PolicyConfig, options: PolicyOptions | number = {}): Policy {
  return new Policy(config, typeof options === 'number' ? { seed: options } : options);
}
