// Retarget: teach the TTT slot a new robot from its random play, with the policy as its own
// teacher. From the play alone it identifies the robot's action -> joint-velocity map (B_t) and,
// from where the end effector was, the source robot whose body explains the play best (the
// source robots are ours: their bodies are known and their maps are identified from their own
// random play). Through that source's slot the policy acts as if on the source arm; sending
// R a = B_t^-1 B_s a moves the target's joints as the policy meant to move the source's
// (`retargetedController`). The policy, through the source slot, labels every play frame with a
// chunk, R maps the chunk to the target's actions, and the free slot is fitted to those labels
// with the action loss: only W1/b1 move, nothing runs on the robot beyond the play, and no expert
// or action label is read. What it needs beyond the brief's unlabelled play: the end effector's
// position during play (a tracker; the simulator has it) and a robot whose actuators are linear
// in the action away from clamps (velocity commands), which the identification checks.
import { align } from '@selfalign/align/browser';
import { Rng, tf } from '@selfalign/core';
import type { DatasetMeta, Sample } from '@selfalign/data/browser';
import { disposeBatch, type Policy, type TrainBatch } from '@selfalign/experts';
import {
  type Embodiment,
  type EnvConfig,
  type Episode,
  identifyActionMap,
  kinematicError,
  type Matrix,
  randomController,
  retargetMap,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { playSplit } from './play-split.js';
import { copySlot, fillWithSourceMean } from './slots.js';

export interface RetargetSource {
  name: string;
  /** Its trained TTT slot. */
  slot: number;
  /** Its body (links, offsets) and actuators: identified from its own random play. */
  embodiment: Embodiment;
}

export interface RetargetOptions {
  /** The slot that learns the robot (filled here: the mean of the sources, or the picked one). */
  slot: number;
  sources: readonly RetargetSource[];
  /**
   * The target's random play, recorded with proprioception, actions and end-effector positions
   * (`runEpisodes(..., { record: true })` of a reach scene: the frames show a target).
   */
  play: readonly Episode[];
  /** Recorded episodes as demo samples with features (the caller owns the feature extractor). */
  toSamples: (episodes: Episode[]) => Promise<{ samples: Sample[]; meta: DatasetMeta }>;
  /** Random-play episodes per source to identify its map (default 10; cached in `maps`). */
  sourcePlay?: number;
  /** Identified source maps by name, reused across targets (filled as they are identified). */
  maps?: Map<string, Matrix>;
  /** Fitting steps (default 200) and Adam rate (default 1e-3): the oracle adapter's. */
  steps?: number;
  lr?: number;
  batchSize?: number;
  /** Where the fit starts: the mean of the source slots (default) or the picked source's slot. */
  start?: 'mean' | 'source';
  seed?: number;
  env?: Partial<EnvConfig>;
}

export interface RetargetResult {
  /** The source whose body explains the play best, and its slot. */
  source: string;
  sourceSlot: number;
  /** R = B_t^-1 B_s (n x n). */
  map: Matrix;
  /** Every source's kinematic error on the play (mean squared end-effector distance), best first. */
  bodies: { name: string; error: number }[];
  /** The action loss per fitting step. */
  losses: number[];
}

/** Fit `opts.slot` to the retargeted source policy's chunks on the target's play frames. */
export async function retarget(policy: Policy, opts: RetargetOptions): Promise<RetargetResult> {
  if (opts.sources.length === 0) throw new Error('retarget: no source robots');
  if (opts.play.length === 0) throw new Error('retarget: no play episodes');
  const seed = opts.seed ?? 0;
  const bodies = opts.sources
    .map((s) => ({ name: s.name, error: kinematicError(s.embodiment, opts.play) }))
    .sort((a, b) => a.error - b.error);
  const source = opts.sources.find((s) => s.name === bodies[0]!.name)!;
  const maps = opts.maps ?? new Map<string, Matrix>();
  let sourceMap = maps.get(source.name);
  if (!sourceMap) {
    const played = await runEpisodes(
      source.embodiment,
      'reach',
      seedRange(opts.sourcePlay ?? 10, 900_000),
      randomController(seed),
      { record: true, untilSuccess: false, ...(opts.env ? { env: opts.env } : {}) },
    );
    sourceMap = identifyActionMap(played.episodes);
    maps.set(source.name, sourceMap);
  }
  const map = retargetMap(identifyActionMap(opts.play), sourceMap);
  const rec = await opts.toSamples([...opts.play]);
  const batches = playSplit(
    policy,
    rec.samples,
    rec.meta,
    opts.batchSize ?? 16,
    new Rng(seed + 13),
    opts.slot,
    0,
  ).train;
  let labelled: TrainBatch[] = [];
  try {
    labelled = label(policy, batches, source.slot, map, new Rng(seed * 1_000 + 99));
  } finally {
    for (const b of batches) disposeBatch(b);
  }
  try {
    if ((opts.start ?? 'mean') === 'mean')
      fillWithSourceMean(
        policy,
        opts.slot,
        opts.sources.map((s) => s.slot),
      );
    else copySlot(policy, source.slot, opts.slot);
    const fit = await align(policy, labelled, {
      slot: opts.slot,
      parametrisation: 'free',
      init: 'current',
      maxSteps: opts.steps ?? 200,
      lr: opts.lr ?? 1e-3,
      objective: 'action',
      seed,
    });
    fit.state.dispose();
    if (fit.stopReason === 'nonFinite')
      throw new Error('retarget: the action loss became non-finite');
    return { source: source.name, sourceSlot: source.slot, map, bodies, losses: fit.losses };
  } finally {
    for (const b of labelled) disposeBatch(b);
  }
}

/**
 * Copies of `batches` whose action chunks are the policy's through `sourceSlot`, mapped by R
 * (each action scaled down as a whole to stay in [-1, 1]), whole chunks, as demo rows.
 */
function label(
  policy: Policy,
  batches: readonly TrainBatch[],
  sourceSlot: number,
  map: Matrix,
  rng: Rng,
): TrainBatch[] {
  return batches.map(
    (b) =>
      tf.tidy(() => {
        const n = b.state.shape[0]!;
        const chunk = policy.sampleActions(
          { ...b, slot: tf.fill([n], sourceSlot, 'int32') },
          { rng, actionDims: map.length },
        );
        const [, h, d] = chunk.shape as [number, number, number];
        const moved = tf.matMul(chunk.reshape([n * h, d]), tf.tensor2d(map), false, true);
        const peak = tf.maximum(tf.max(tf.abs(moved), 1, true), 1);
        const out: TrainBatch = {
          images: b.images.clone(),
          promptIds: b.promptIds.clone(),
          promptMask: b.promptMask.clone(),
          state: b.state.clone(),
          nextFeatures: b.nextFeatures.clone(),
          actions: tf.div(moved, peak).reshape([n, h, d]),
          isDemo: tf.ones([n]),
        };
        for (const k of ['imageMask', 'slot', 'nextState', 'objects'] as const) {
          const t = b[k];
          if (t) out[k] = t.clone();
        }
        return out as unknown as tf.TensorContainer;
      }) as unknown as TrainBatch,
  );
}
