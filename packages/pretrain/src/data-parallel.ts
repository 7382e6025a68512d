// Data-parallel pretraining on all cores (Node): `worker_threads`, each with its own wasm backend
// and a replica of the policy, compute the gradients of a row shard of every batch; the main
// thread computes the first shard itself, sums the gradients, takes the one optimiser step and
// publishes the new parameters through a SharedArrayBuffer that every replica reads before its
// next shard. Shards divide their masked losses by the whole batch's mask sums
// (`lossDenominators`), so the shard losses and gradients add up to the single-process ones
// (up to float summation order). A worker that fails or exits rejects the step with its error.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { encodeCheckpoint } from '@selfalign/align';
import { currentBackend, tf } from '@selfalign/core';
import {
  computeLoss,
  type LossDenominators,
  type LossWeights,
  type Policy,
  type PrefixCache,
  type TrainBatch,
} from '@selfalign/experts';
import { loggedTerms } from './draws.js';

/** A tensor as host data (rows first). */
export interface HostTensor {
  data: Float32Array | Int32Array | Uint8Array;
  shape: number[];
  dtype: tf.DataType;
}
export type HostFields = Record<string, HostTensor>;

/** What a shard's loss needs besides its rows. */
export interface ShardLossConfig {
  weights: Partial<LossWeights>;
  stopSlotGradient?: readonly ('action' | 'alignment')[];
}

/** Reads every tensor of a batch (or of the step's draws) to the host. */
export function toHost(fields: Record<string, unknown>, prefix = ''): HostFields {
  const out: HostFields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v instanceof tf.Tensor) {
      out[prefix + k] = {
        data: v.dataSync() as HostTensor['data'],
        shape: [...v.shape],
        dtype: v.dtype,
      };
    }
  }
  return out;
}

/** Rows [r0, r1) of every field (views, no copy). */
export function sliceRows(fields: HostFields, r0: number, r1: number): HostFields {
  const out: HostFields = {};
  for (const [k, t] of Object.entries(fields)) {
    const row = t.shape.slice(1).reduce((a, b) => a * b, 1);
    out[k] = {
      data: t.data.subarray(r0 * row, r1 * row),
      shape: [r1 - r0, ...t.shape.slice(1)],
      dtype: t.dtype,
    };
  }
  return out;
}

/** Even row ranges of `b` rows over `n` shards (empty ranges when b < n). */
export function shardRanges(b: number, n: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < n; i++) out.push([Math.floor((i * b) / n), Math.floor(((i + 1) * b) / n)]);
  return out;
}

const PREFIX = 'prefix/';

/** A precomputed prefix (frozen-prefix phase) as host fields `prefix/...`, rows first. */
export function prefixFields(cache: PrefixCache): HostFields {
  const out = toHost(
    { mask: cache.mask, ...(cache.keypoints ? { keypoints: cache.keypoints } : {}) },
    PREFIX,
  );
  cache.kv.forEach(({ k, v }, l) =>
    Object.assign(out, toHost({ [`k${l}`]: k, [`v${l}`]: v }, PREFIX)),
  );
  return out;
}

/**
 * The loss of one row shard (its terms already divided by the whole batch's counts); inside a
 * gradient tape. `terms` receives the shard's part of each logged term.
 */
export function shardLoss(
  policy: Policy,
  fields: HostFields,
  den: LossDenominators,
  share: number,
  cfg: ShardLossConfig,
  terms: Record<string, number>,
): tf.Scalar {
  const t = (k: string) => {
    const h = fields[k];
    return h === undefined ? undefined : tf.tensor(h.data, h.shape, h.dtype);
  };
  const batch = {} as Record<string, tf.Tensor>;
  for (const k of Object.keys(fields))
    if (!k.startsWith('draw/') && !k.startsWith(PREFIX)) batch[k] = t(k)!;
  const kv: PrefixCache['kv'] = [];
  for (let l = 0; fields[`${PREFIX}k${l}`]; l++)
    kv.push({ k: t(`${PREFIX}k${l}`)!, v: t(`${PREFIX}v${l}`)! });
  const keypoints = t(`${PREFIX}keypoints`);
  const prefixCache: PrefixCache | undefined = kv.length
    ? { kv, mask: t(`${PREFIX}mask`)!, ...(keypoints ? { keypoints } : {}) }
    : undefined;
  const noise: Record<string, tf.Tensor> = {};
  for (const k of Object.keys(fields))
    if (k.startsWith('draw/') && k !== 'draw/time') noise[k.slice('draw/'.length)] = t(k)!;
  const time = t('draw/time')!;
  const l = computeLoss(policy, batch as unknown as TrainBatch, {
    time,
    noise,
    weights: cfg.weights,
    denominators: den,
    ...(prefixCache ? { prefixCache } : {}),
    ...(cfg.stopSlotGradient ? { stopSlotGradient: cfg.stopSlotGradient } : {}),
  });
  for (const k of loggedTerms(policy)) terms[k] = l[k]!.dataSync()[0]!;
  // L_ttt is a mean over the shard's tokens: weight it by the shard's share of rows
  const w = cfg.weights.ttt ?? 0;
  const total = w === 0 ? l.total : tf.add(l.total, tf.mul(l.ttt, w * (share - 1)));
  return total as tf.Scalar;
}

/** Where the worker script is: the .ts source inside the repo, the built .js when published. */
function workerScript(): { url: URL; execArgv: string[] } {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const url = new URL('./train-worker-source.mjs', here);
    return { url, execArgv: ['--conditions=@selfalign/source'] };
  }
  const url = new URL('./train-worker.js', here);
  if (!existsSync(fileURLToPath(url))) throw new Error(`data-parallel worker missing: ${url}`);
  return { url, execArgv: [] };
}

/** What a replica reports for its shard: the loss, the logged terms, where its time went. */
interface ShardResult {
  loss: number;
  terms: Record<string, number>;
  timing?: string;
}

interface Pending {
  resolve: (v: ShardResult) => void;
  reject: (e: Error) => void;
}

/** A pool of gradient workers holding replicas of one policy. */
export class WorkerPool {
  /** Replicas in all, the main thread's included. */
  readonly size: number;
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly params: [string, tf.Variable][];
  private readonly paramView: Float32Array;
  private readonly gradViews: Float32Array[] = [];
  private failure: Error | undefined;
  private closed = false;

  private constructor(size: number, params: [string, tf.Variable][]) {
    this.size = size;
    this.params = params;
    const n = params.reduce((a, [, v]) => a + v.size, 0);
    this.paramView = new Float32Array(new SharedArrayBuffer(4 * n));
    for (let i = 1; i < size; i++)
      this.gradViews.push(new Float32Array(new SharedArrayBuffer(4 * n)));
  }

  /**
   * Starts `size - 1` workers, each with a replica of `policy` (same parameters, config, norm
   * stats), computing gradients of `params` (paths of policy.params).
   */
  static async start(policy: Policy, size: number, paths: readonly string[]): Promise<WorkerPool> {
    if (!Number.isInteger(size) || size < 2)
      throw new Error(`a worker pool needs size >= 2, got ${size}`);
    const params = paths.map(
      (p) => [p, policy.params.get(p) as tf.Variable] as [string, tf.Variable],
    );
    const pool = new WorkerPool(size, params);
    pool.publish();
    const bytes = await encodeCheckpoint(policy);
    const { url, execArgv } = workerScript();
    const kernels = currentBackend()?.kernels ?? 'fast';
    await Promise.all(
      pool.gradViews.map(
        (grad, i) =>
          new Promise<void>((resolve, reject) => {
            const w = new Worker(url, {
              execArgv,
              workerData: { checkpoint: bytes, paths, params: pool.paramView, grad, kernels },
            });
            pool.workers.push(w);
            const onInit = (m: { type: string; error?: string }) => {
              if (m.type === 'ready') resolve();
              else if (m.type === 'error')
                reject(new Error(`worker ${i + 1} failed to start: ${m.error}`));
            };
            w.once('message', onInit);
            w.once('error', (e) =>
              reject(new Error(`worker ${i + 1} failed to start: ${e.message}`)),
            );
            w.on(
              'message',
              (m: {
                type: string;
                id?: number;
                loss?: number;
                terms?: Record<string, number>;
                timing?: string;
                error?: string;
              }) => {
                if (m.id === undefined) return;
                const p = pool.pending.get(m.id);
                if (!p) return;
                pool.pending.delete(m.id);
                if (m.type === 'done')
                  p.resolve({
                    loss: m.loss!,
                    terms: m.terms!,
                    ...(m.timing ? { timing: m.timing } : {}),
                  });
                else p.reject(new Error(`worker ${i + 1}: ${m.error}`));
              },
            );
            w.on('error', (e) => pool.fail(new Error(`worker ${i + 1} crashed: ${e.message}`)));
            w.on('exit', (code) => {
              if (!pool.closed) pool.fail(new Error(`worker ${i + 1} exited (code ${code})`));
            });
          }),
      ),
    ).catch(async (err) => {
      await pool.close();
      throw err;
    });
    return pool;
  }

  private fail(err: Error) {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** Writes the main thread's current parameter values for the replicas to read. */
  publish(): void {
    let o = 0;
    for (const [, v] of this.params) {
      this.paramView.set(v.dataSync() as Float32Array, o);
      o += v.size;
    }
  }

  private nextId = 0;
  /** Where the last `gradients` call spent its time (SELFALIGN_PROFILE=1 prints it). */
  lastProfile = '';

  /**
   * Loss and gradients of a whole batch: shard 0 here, the others on the workers; returns the
   * summed loss and gradients by variable name (as tf.variableGrads does).
   */
  async gradients(
    policy: Policy,
    fields: HostFields,
    den: LossDenominators,
    cfg: ShardLossConfig,
  ): Promise<{ value: tf.Scalar; grads: tf.NamedTensorMap; terms: Record<string, number> }> {
    if (this.failure) throw this.failure;
    const t0 = performance.now();
    const b = fields['state']!.shape[0]!;
    const ranges = shardRanges(b, this.size);
    const jobs: Promise<ShardResult>[] = [];
    const used: number[] = [];
    ranges.slice(1).forEach(([r0, r1], i) => {
      if (r1 === r0) return;
      const id = this.nextId++;
      used.push(i);
      jobs.push(
        new Promise((resolve, reject) => {
          this.pending.set(id, { resolve, reject });
          this.workers[i]!.postMessage({
            type: 'step',
            id,
            fields: sliceRows(fields, r0, r1),
            den,
            share: (r1 - r0) / b,
            cfg,
          });
        }),
      );
    });
    const [r0, r1] = ranges[0]!;
    const terms: Record<string, number> = {};
    const tMain = performance.now();
    const { value, grads } = tf.variableGrads(
      () => shardLoss(policy, sliceRows(fields, r0, r1), den, (r1 - r0) / b, cfg, terms),
      this.params.map(([, v]) => v),
    );
    let results: ShardResult[];
    const tWait = performance.now();
    try {
      results = await Promise.all(jobs);
    } catch (err) {
      value.dispose();
      tf.dispose(Object.values(grads));
      throw err;
    }
    for (const r of results)
      for (const [k, v] of Object.entries(r.terms)) terms[k] = (terms[k] ?? 0) + v;
    const tSum = performance.now();
    const total = tf.tidy(
      () =>
        tf.add(
          value,
          results.reduce((a, r) => a + r.loss, 0),
        ) as tf.Scalar,
    );
    value.dispose();
    const summed: tf.NamedTensorMap = {};
    let o = 0;
    for (const [, v] of this.params) {
      const g = grads[v.name];
      if (g !== undefined) {
        // the replicas' gradients are copied into the backend as they lie in shared memory and
        // added there (one copy and one add per replica, no host loop)
        summed[v.name] = tf.tidy(() =>
          tf.addN([
            g,
            ...used.map((i) => tf.tensor(this.gradViews[i]!.subarray(o, o + v.size), g.shape)),
          ]),
        );
        g.dispose();
      }
      o += v.size;
    }
    this.lastProfile = `post ${(tMain - t0).toFixed(0)}, own shard ${(tWait - tMain).toFixed(0)}, wait ${(tSum - tWait).toFixed(0)}, sum ${(performance.now() - tSum).toFixed(0)}; workers: ${results.map((r) => r.timing ?? '?').join(' | ')}`;
    return { value: total, grads: summed, terms };
  }

  /** Checksums of every replica's parameters (the main thread's first): equal when in sync. */
  async checksums(): Promise<number[]> {
    const own = checksum(this.params.map(([, v]) => v.dataSync() as Float32Array));
    const others = await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<number>((resolve, reject) => {
            const id = this.nextId++;
            this.pending.set(id, { resolve: (r) => resolve(r.loss), reject });
            w.postMessage({ type: 'checksum', id });
          }),
      ),
    );
    return [own, ...others];
  }

  /** Live tensor counts of the workers (memory discipline checks). */
  async workerTensors(): Promise<number[]> {
    return Promise.all(
      this.workers.map(
        (w) =>
          new Promise<number>((resolve, reject) => {
            const id = this.nextId++;
            this.pending.set(id, { resolve: (r) => resolve(r.loss), reject });
            w.postMessage({ type: 'memory', id });
          }),
      ),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** FNV-1a over the float bits of the arrays, in order. */
export function checksum(arrays: readonly Float32Array[]): number {
  let h = 0x811c9dc5;
  for (const a of arrays) {
    const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
    for (let i = 0; i < u.length; i++) {
      h ^= u[i]!;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return h >>> 0;
}

/** The default number of replicas: the cores this process may use. */
export function defaultWorkers(): number {
  return Math.max(1, availableParallelism());
}
