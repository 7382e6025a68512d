// Align's play data: every frame, in shuffled batches, with whole episodes held out.
import { trainBatchFromHost } from '@selfalign/align/browser';
import type { Rng } from '@selfalign/core';
import { type DatasetMeta, packBatch, type Sample } from '@selfalign/data/browser';
import type { Policy, TrainBatch } from '@selfalign/experts';

export interface PlaySplit {
  train: TrainBatch[];
  heldOut: TrainBatch[];
  trainEpisodes: number[];
  heldOutEpisodes: number[];
}

/**
 * Every frame of the play data in batches for align: the episodes are split first (a held-out
 * share of whole episodes, at least one when there are two or more), then each side's frames are
 * shuffled once and cut into batches, so one pass over `train` (an epoch; align cycles through
 * the list and caches each batch's prefix once) sees every training frame exactly once.
 */
export function playSplit(
  policy: Policy,
  samples: readonly Sample[],
  meta: Pick<DatasetMeta, 'imageShape'>,
  size: number,
  rng: Rng,
  slot: number,
  heldOutShare: number,
): PlaySplit {
  const key = (s: Sample) => `${s.embodiment}/${s.episode}`;
  const episodes = [...new Set(samples.map(key))];
  const order = episodes.map((e) => [rng.uniform(), e] as const).sort((a, b) => a[0] - b[0]);
  const nHeld =
    heldOutShare > 0 && episodes.length > 1
      ? Math.min(episodes.length - 1, Math.max(1, Math.round(heldOutShare * episodes.length)))
      : 0;
  const held = new Set(order.slice(0, nHeld).map(([, e]) => e));
  const batches = (rows: Sample[]) => {
    const shuffled = rows.map((s) => [rng.uniform(), s] as const).sort((a, b) => a[0] - b[0]);
    const out: TrainBatch[] = [];
    for (let i = 0; i < shuffled.length; i += size) {
      const pick = shuffled.slice(i, i + size).map(([, s]) => s);
      out.push(trainBatchFromHost(policy, packBatch(pick, meta.imageShape), slot));
    }
    return out;
  };
  const episodeIds = (keep: boolean) =>
    samples.filter((s) => held.has(key(s)) === keep).map((s) => s.episode);
  return {
    train: batches(samples.filter((s) => !held.has(key(s)))),
    heldOut: batches(samples.filter((s) => held.has(key(s)))),
    trainEpisodes: [...new Set(episodeIds(false))],
    heldOutEpisodes: [...new Set(episodeIds(true))],
  };
}
