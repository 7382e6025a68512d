// Pretraining (DESIGN 3.8, 4.1): every parameter (or a path filter), computeLoss's total,
// AdamW with warm-up and cosine decay and gradient clipping, batches that carry each row's
// source-embodiment slot and mix demo rows (all losses) with play rows (alignment losses
// only). Options for the levers the feasibility run asked for:
//   contrast              the alignment loss under a row's own slot must undercut the loss under
//                         another source slot by a margin (hinge, per row, same draws);
//   alignmentDefinedSlots W1/b1 take gradients from the alignment losses only (the Action
//                         Expert's TTT calls stop the gradient at the slot);
//   frozenPrefix          the vision tower and the VLM take no step; batches may carry their
//                         frames' prefix precomputed (prefix-store.ts), so a step runs the two
//                         experts only;
// periodic atomic checkpoints, and resume that continues exactly. Full fine-tuning on target
// demos is this same loop (`finetune`).

import { loadCheckpoint, restoreOptimizer, restoreParams, saveCheckpoint } from '@selfalign/align';
import {
  applyGradients,
  createOptimizer,
  disposeOptimizer,
  type HostTensor,
  type Optimizer,
  type PathFilter,
  Rng,
  type StepResult,
  tf,
  warmupCosine,
} from '@selfalign/core';
import {
  computeLoss,
  disposeBatch,
  disposePrefixCache,
  type LossWeights,
  lossDenominators,
  type Policy,
  type PrefixCache,
  type TrainBatch,
} from '@selfalign/experts';
import {
  ALIGN_AWARE_START,
  type AlignAwareOptions,
  addGradients,
  alignAwareGradients,
} from './align-aware.js';
import { drawStep, loggedTerms } from './draws.js';
import { WeightsAverage } from './ema.js';
import { isPrefixParam } from './prefix-params.js';
import { SLOT_CODE_PREFIX, SlotCode } from './slot-code.js';

export { drawStep };

const PROFILE = globalThis.process?.env?.['SELFALIGN_PROFILE'] === '1';

/** Data-parallel replicas (Node): loaded on demand so that browser bundles never see worker_threads. */
async function startPool(policy: Policy, n: number, paths: string[]) {
  const dp = await import('./data-parallel.js');
  return {
    pool: await dp.WorkerPool.start(policy, n, paths),
    toHost: dp.toHost,
    prefixFields: dp.prefixFields,
  };
}

export { isPrefixParam, PREFIX_PARAMS } from './prefix-params.js';

/** A step's batch; with `frozenPrefix`, optionally with its frames' prefix computed already. */
export type PretrainBatch = TrainBatch & { prefixCache?: PrefixCache };

export interface PretrainOptions {
  /** Total steps: the schedule's length (a resumed run continues up to this). */
  steps: number;
  /** Stop at this step instead (train in chunks on the same schedule). */
  until?: number;
  lr?: number;
  warmup?: number;
  endLr?: number;
  weightDecay?: number;
  clipNorm?: number;
  lossWeights?: Partial<LossWeights>;
  /** Which parameters train (default all). */
  filter?: PathFilter;
  /** Slot-contrast loss: weight, margin and the source slots to contrast with. */
  contrast?: { weight: number; margin: number; slots: readonly number[] };
  /**
   * Align-aware pretraining (align-aware.ts): on the steps `batch` gives a meta batch, a source
   * robot plays the new robot and the action loss after K align steps from the source mean
   * joins the step's gradient. One thread (workers 1).
   */
  alignAware?: AlignAwareOptions;
  /** W1/b1 learn from the alignment losses only. */
  alignmentDefinedSlots?: boolean;
  /**
   * The vision tower and the VLM (`PREFIX_PARAMS`) take no step (on top of `filter`); batches
   * may then carry a `prefixCache` (e.g. from a `PrefixStore`), which replaces the prefix's
   * forward. The keypoint loss, which only moves the prefix, is then 0. With `alignAware` the
   * meta rows' prefix is computed once per step and serves every pass of the term.
   */
  frozenPrefix?: boolean;
  /**
   * A low-rank embodiment code (slot-code.ts): the source slots are generated as M + z_e H from
   * a code of `rank` numbers per robot; the code, not the slots, trains. It starts from the
   * current source slots' top principal directions and is saved in the checkpoint.
   */
  slotCode?: { rank: number; sources: readonly number[] };
  /**
   * Keep an exponential moving average of the trained weights with this decay (ema.ts; e.g.
   * 0.999): saved in each checkpoint, where readers take it as the policy's weights.
   */
  ema?: number;
  /** Atomic checkpoint every `every` steps (and at the end). */
  checkpoint?: { path: string; every: number; info?: Record<string, unknown> };
  /** Resume from this checkpoint (its config must match the policy's). */
  resume?: string;
  seed?: number;
  /**
   * Data-parallel replicas in all, this thread's included (Node; default 1 = this thread only):
   * each step's batch is split by rows over `worker_threads`, gradients are summed, one
   * optimiser step is taken. Not combined with `contrast`.
   */
  workers?: number;
  /** Check every N steps that every replica holds the same parameters (default 0 = never). */
  checkReplicasEvery?: number;
  onStep?: (step: number, loss: number, terms: Record<string, number>) => void;
}

export interface PretrainResult {
  losses: number[];
  /** Steps done in total (including resumed ones). */
  step: number;
  opt: Optimizer;
  rng: Rng;
}

/**
 * The contrast slot of each row at `step`: another slot of `slots`, rotating through all of
 * them over steps (deterministic, so a resumed run and a test can reproduce it).
 */
export function contrastSlots(own: Int32Array, slots: readonly number[], step: number): Int32Array {
  const k = slots.length;
  if (k < 2) throw new Error('the slot-contrast loss needs at least two source slots');
  return Int32Array.from(own, (s) => {
    const i = slots.indexOf(s);
    const j = i >= 0 ? (i + 1 + (step % (k - 1))) % k : step % k;
    return slots[j] === s ? slots[(j + 1) % k]! : slots[j]!;
  });
}

/**
 * @param getBatch the batch of a step (deterministic per step, so a resumed run sees the same
 *   data); pretrain disposes each batch after its step
 */
export async function pretrain(
  policy: Policy,
  getBatch: (step: number) => PretrainBatch | Promise<PretrainBatch>,
  opts: PretrainOptions,
): Promise<PretrainResult> {
  const lr = opts.lr ?? 2.5e-4;
  const warmup = opts.warmup ?? Math.min(100, Math.floor(opts.steps / 10));
  const optOptions = {
    lr: warmupCosine(lr, warmup, opts.steps, opts.endLr ?? lr / 10),
    beta1: 0.9,
    beta2: 0.95,
    weightDecay: opts.weightDecay ?? 0.01,
    clipNorm: opts.clipNorm ?? 1,
  };
  let opt: Optimizer;
  let rng: Rng;
  let step = 0;
  let savedCode: Map<string, HostTensor> | undefined;
  let savedAverage: Map<string, HostTensor> | undefined;
  if (opts.resume) {
    const loaded = await loadCheckpoint(opts.resume);
    try {
      if (loaded.policy.fingerprint !== policy.fingerprint)
        throw new Error(`${opts.resume}: checkpoint of another config`);
      restoreParams(policy, loaded.moments, opts.resume);
      opt = restoreOptimizer(loaded, optOptions);
      rng = loaded.rng ?? new Rng(opts.seed ?? 0);
      step = loaded.step;
      const hadAverage = loaded.weights === 'ema';
      if (hadAverage && opts.ema !== undefined && loaded.info['ema'] !== opts.ema)
        throw new Error(
          `${opts.resume}: the checkpoint's moving average has decay ${loaded.info['ema']}, not ${opts.ema}`,
        );
      if (hadAverage !== (opts.ema !== undefined))
        throw new Error(
          hadAverage
            ? `${opts.resume}: the checkpoint keeps a moving average of the weights; resume it with the same ema decay`
            : `${opts.resume}: the checkpoint has no moving average of the weights to resume with (it was trained without one)`,
        );
      if (hadAverage) savedAverage = loaded.extra;
      const start = opts.alignAware?.start;
      if (start)
        start.forEach((v, i) => {
          const t = loaded.extra.get(`${ALIGN_AWARE_START}${i}`);
          if (!t || !tf.util.arraysEqual(t.shape, v.shape))
            throw new Error(
              `${opts.resume}: the checkpoint has no learned align-aware start of this shape to resume with`,
            );
          v.assign(tf.tensor(t.data, t.shape));
        });
      if (opts.slotCode) {
        savedCode = loaded.extra;
        if (![...savedCode.keys()].some((k) => k.startsWith(SLOT_CODE_PREFIX)))
          throw new Error(`${opts.resume}: the checkpoint has no slot code to resume with`);
      }
    } finally {
      loaded.policy.dispose();
    }
  } else {
    opt = createOptimizer(optOptions);
    rng = new Rng(opts.seed ?? 0);
  }
  const params = policy.params
    .select(opts.filter ?? '**')
    .filter(([p]) => !(opts.frozenPrefix && isPrefixParam(p)));
  const code = opts.slotCode
    ? new SlotCode(policy, opts.slotCode.sources, opts.slotCode.rank, savedCode)
    : undefined;
  const average =
    opts.ema !== undefined ? new WeightsAverage(opts.ema, params, savedAverage) : undefined;
  // what the optimiser steps: the policy's parameters and the code (whose W1/b1 rows it writes)
  // the learned start of align-aware pretraining's inner steps, if any
  const startParams = (opts.alignAware?.start ?? []).map(
    (v, i) => [`${ALIGN_AWARE_START}${i}`, v] as [string, tf.Variable],
  );
  const trained = [...params, ...(code ? code.params() : []), ...startParams];
  const apply = (value: tf.Scalar, grads: tf.NamedTensorMap): StepResult => {
    code?.mapGradients(grads);
    const r = applyGradients(opt, trained, value, grads);
    if (r.applied) code?.write();
    return r;
  };
  const losses: number[] = [];
  const nWorkers = opts.workers ?? 1;
  if (nWorkers > 1 && opts.contrast)
    throw new Error('the slot-contrast loss runs in one thread: use workers 1 with it');
  if (nWorkers > 1 && opts.alignAware)
    throw new Error('align-aware pretraining runs in one thread: use workers 1 with it');
  const parallel =
    nWorkers > 1
      ? await startPool(
          policy,
          nWorkers,
          params.map(([p]) => p),
        )
      : undefined;
  try {
    const save = async () => {
      if (!opts.checkpoint) return;
      const averaged = average?.tensors() ?? [];
      try {
        await saveCheckpoint(opts.checkpoint.path, policy, {
          opt,
          step,
          rng,
          info: {
            ...(opts.checkpoint.info ?? {}),
            ...(code ? { slotCode: { rank: code.rank, sources: code.sources } } : {}),
            ...(average ? { ema: average.decay } : {}),
            ...(opts.alignAware?.start
              ? { alignAwareStartScale: opts.alignAware.startScale ?? 1 }
              : {}),
          },
          extra: [...(code ? code.params() : []), ...startParams, ...averaged],
        });
      } finally {
        tf.dispose(averaged.map(([, t]) => t));
      }
    };
    const stop = Math.min(opts.steps, opts.until ?? opts.steps);
    while (step < stop) {
      const { prefixCache: cache, ...batch } = await getBatch(step);
      const b = batch.state.shape[0]!;
      const cached = cache ? { prefixCache: cache } : {};
      if (cache && !opts.frozenPrefix) {
        disposePrefixCache(cache);
        disposeBatch(batch);
        throw new Error(
          `pretraining step ${step}: the batch carries a precomputed prefix but the prefix trains (frozenPrefix)`,
        );
      }
      // one set of draws per step, shared by the contrast pass
      const { time, noise } = drawStep(rng, policy, b);
      const own = batch.slot ? (batch.slot.dataSync() as Int32Array) : new Int32Array(b);
      const other = opts.contrast
        ? tf.tensor1d(contrastSlots(own, opts.contrast.slots, step), 'int32')
        : undefined;
      const terms: Record<string, number> = {};
      let res: StepResult;
      if (parallel) {
        const { pool, toHost, prefixFields } = parallel;
        const t0 = performance.now();
        let t1 = t0;
        const fields = {
          ...toHost(batch as unknown as Record<string, unknown>),
          ...toHost({ time, ...noise }, 'draw/'),
          ...(cache ? prefixFields(cache) : {}),
        };
        const cfg = {
          weights: opts.lossWeights ?? {},
          ...(opts.alignmentDefinedSlots ? { stopSlotGradient: ['action'] as const } : {}),
        };
        let g: Awaited<ReturnType<typeof pool.gradients>>;
        try {
          t1 = performance.now();
          g = await pool.gradients(policy, fields, lossDenominators(policy, batch), cfg);
        } catch (err) {
          tf.dispose([time, ...Object.values(noise)]);
          disposeBatch(batch);
          if (cache) disposePrefixCache(cache);
          throw new Error(
            `pretraining step ${step}: ${(err as Error).message}; the last checkpoint is kept`,
          );
        }
        Object.assign(terms, g.terms);
        const t2 = performance.now();
        res = apply(g.value, g.grads);
        const t3 = performance.now();
        pool.publish();
        if (PROFILE)
          console.error(
            `profile step ${step}: host ${(t1 - t0).toFixed(0)} ms, gradients ${(t2 - t1).toFixed(0)} (${pool.lastProfile}), optimiser ${(t3 - t2).toFixed(0)}, publish ${(performance.now() - t3).toFixed(0)}`,
          );
        const every = opts.checkReplicasEvery ?? 0;
        if (every > 0 && (step + 1) % every === 0) {
          const sums = await pool.checksums();
          if (sums.some((c) => c !== sums[0]))
            throw new Error(`pretraining step ${step + 1}: replicas diverged (${sums.join(', ')})`);
        }
      } else {
        const lossFn = () => {
          const t = computeLoss(policy, batch, {
            time,
            noise,
            ...cached,
            ...(opts.lossWeights ? { weights: opts.lossWeights } : {}),
            ...(opts.alignmentDefinedSlots ? { stopSlotGradient: ['action'] } : {}),
            rowLosses: opts.contrast !== undefined,
          });
          let total: tf.Scalar = t.total;
          if (opts.contrast && other) {
            const o = computeLoss(
              policy,
              { ...batch, slot: other },
              {
                time,
                noise,
                ...cached,
                streams: ['alignment'],
                ...(opts.lossWeights ? { weights: opts.lossWeights } : {}),
                rowLosses: true,
              },
            );
            // hinge per row: own slot must undercut the other by `margin`
            const hinge = tf.mean(
              tf.relu(tf.add(tf.sub(t.alignmentRows!, o.alignmentRows!), opts.contrast.margin)),
            );
            terms['contrast'] = hinge.dataSync()[0]!;
            total = tf.add(total, tf.mul(hinge, opts.contrast.weight)) as tf.Scalar;
          }
          for (const k of loggedTerms(policy)) terms[k] = t[k]!.dataSync()[0]!;
          return total;
        };
        const meta = opts.alignAware ? await opts.alignAware.batch(step) : undefined;
        const main = tf.variableGrads(
          lossFn,
          params.map(([, v]) => v),
        );
        if (meta && opts.alignAware) {
          try {
            const m = alignAwareGradients(policy, params, meta, opts.alignAware, rng);
            addGradients(main.grads, m.grads);
            for (const [k, v] of Object.entries(m.terms)) terms[`meta/${k}`] = v;
          } catch (err) {
            tf.dispose([main.value, ...Object.values(main.grads)]);
            throw err;
          } finally {
            disposeBatch(meta.play);
            disposeBatch(meta.demo);
          }
        }
        res = apply(main.value, main.grads);
      }
      tf.dispose([time, ...Object.values(noise), ...(other ? [other] : [])]);
      disposeBatch(batch);
      if (cache) disposePrefixCache(cache);
      if (!res.applied)
        throw new Error(
          `pretraining step ${step}: the loss is not finite (${res.loss}); the parameters were left as they were`,
        );
      average?.update(params, step);
      step += 1;
      losses.push(res.loss);
      opts.onStep?.(step, res.loss, terms);
      if (opts.checkpoint && step % opts.checkpoint.every === 0) await save();
    }
    if (opts.checkpoint && step % opts.checkpoint.every !== 0) await save();
  } finally {
    await parallel?.pool.close();
    code?.dispose();
  }
  return { losses, step, opt, rng };
}

/** Full fine-tuning with labelled target demos (the upper baseline): pretraining's loop on other data. */
export const finetune = pretrain;

export function disposePretrain(r: PretrainResult): void {
  disposeOptimizer(r.opt);
}
