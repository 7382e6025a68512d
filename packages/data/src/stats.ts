// Normalisation statistics in one streaming pass: exact mean and standard deviation (Welford,
// float64, population std as openpi) and q01/q99 from a seeded reservoir of up to `reservoir`
// values per dimension (exact while a dimension has seen fewer; linear interpolation between
// order statistics, numpy's default). Saved in openpi's norm_stats.json layout, atomically.

import { readFile } from 'node:fs/promises';
import { type NormStats, parseNormStatsJson, toNormStatsJson } from '@selfalign/core';
import { writeFileAtomic } from '@selfalign/core/node';
import { DataError } from './errors.js';
import { openFrames, type ReadOptions } from './reader.js';
import { StatsAccumulator } from './stats-accumulator.js';

export { quantile, StatsAccumulator } from './stats-accumulator.js';

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
