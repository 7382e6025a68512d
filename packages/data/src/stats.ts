// Normalisation statistics in one streaming pass: exact mean and standard deviation (Welford,
// float64, population std as openpi) and q01/q99 from a seeded reservoir of up to `reservoir`
// values per dimension (exact while a dimension has seen fewer; linear interpolation between
// order statistics, numpy's default). Saved in openpi's norm_stats.json layout, atomically.

import { readFile } from 'node:fs/promises';
import { type NormStats, parseNormStatsJson, type Stats, toNormStatsJson } from '@selfalign/core';
import { writeFileAtomic } from '@selfalign/core/node';
import { Rng } from '@selfalign/core/rng';
import { DataError } from './errors.js';
import { openFrames, type ReadOptions } from './reader.js';

export class StatsAccumulator {
  private n = 0;
  private readonly mean: Float64Array;
  private readonly m2: Float64Array;
  private readonly pool: Float32Array[];
  private readonly rng: Rng;

  constructor(
    readonly dim: number,
    readonly reservoir = 20_000,
    seed = 0,
  ) {
    this.mean = new Float64Array(dim);
    this.m2 = new Float64Array(dim);
    this.pool = Array.from({ length: dim }, () => new Float32Array(reservoir));
    this.rng = new Rng(seed);
  }

  /** Adds `rows` rows of `dim` values (row-major). */
  add(values: Float32Array, rows = values.length / this.dim): void {
    const d = this.dim;
    for (let r = 0; r < rows; r++) {
      this.n += 1;
      // reservoir sampling: row n replaces a random slot with probability reservoir / n
      const slot = this.n <= this.reservoir ? this.n - 1 : this.rng.int(this.n);
      for (let j = 0; j < d; j++) {
        const x = values[r * d + j]!;
        const delta = x - this.mean[j]!;
        this.mean[j]! += delta / this.n;
        this.m2[j]! += delta * (x - this.mean[j]!);
        if (slot < this.reservoir) this.pool[j]![slot] = x;
      }
    }
  }

  get count(): number {
    return this.n;
  }

  result(): Stats {
    if (this.n === 0) throw new Error('no rows: statistics of nothing');
    const kept = Math.min(this.n, this.reservoir);
    const quantiles = this.pool.map((p) => {
      const sorted = p.slice(0, kept).sort();
      return [quantile(sorted, 0.01), quantile(sorted, 0.99)] as const;
    });
    return {
      mean: Array.from(this.mean),
      std: Array.from(this.m2, (m) => Math.sqrt(m / this.n)),
      q01: quantiles.map((q) => q[0]),
      q99: quantiles.map((q) => q[1]),
    };
  }
}

/** numpy's default (linear) quantile of sorted values. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** State and action statistics over one or more frame files, in one pass each. */
export async function computeNormStats(
  paths: readonly string[],
  opts: ReadOptions & { reservoir?: number; seed?: number } = {},
): Promise<NormStats> {
  let state: StatsAccumulator | undefined;
  let actions: StatsAccumulator | undefined;
  for (const path of paths) {
    const { meta, batches } = await openFrames(path, opts);
    state ??= new StatsAccumulator(meta.stateDim, opts.reservoir, opts.seed);
    actions ??= new StatsAccumulator(meta.actionDim, opts.reservoir, (opts.seed ?? 0) + 1);
    if (state.dim !== meta.stateDim || actions.dim !== meta.actionDim) {
      throw new DataError(
        `state/action dims ${meta.stateDim}/${meta.actionDim} differ from the first file's ${state.dim}/${actions.dim}`,
        path,
      );
    }
    for await (const b of batches) {
      state.add(b.states, b.length);
      actions.add(b.actions, b.length);
    }
  }
  if (!state || !actions || state.count === 0)
    throw new DataError('no rows to compute statistics from', paths.join(', ') || '<no files>');
  return { state: state.result(), actions: actions.result() };
}

export async function saveNormStats(path: string, stats: NormStats): Promise<void> {
  await writeFileAtomic(path, `${toNormStatsJson(stats)}\n`);
}

export async function loadNormStats(path: string): Promise<NormStats> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new DataError(
      (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message,
      path,
    );
  }
  try {
    return parseNormStatsJson(text, path);
  } catch (err) {
    throw new DataError((err as Error).message.replace(`${path}: `, ''), path);
  }
}
