// What the probes share with `selfalign results`: its evaluation (the same episode seeds and
// flow-noise stream per seed, so a probe's row compares with the table's) and the oracle's fit
// (the free slot, action loss on labelled frames, Adam at 1e-3).
import { align } from '@selfalign/align';
import { Rng } from '@selfalign/core';
import type { DatasetMeta, Sample } from '@selfalign/data';
import { disposeBatch, type Policy } from '@selfalign/experts';
import { playSplit, policyController } from '@selfalign/harness';
import { type Embodiment, runEpisodes, seedRange } from '@selfalign/sim';

/** Reach success and action MSE through `slot` on the table's evaluation episodes of `seed`. */
export const tableEvaluation =
  (policy: Policy, slot: number, episodes: number, seed: number) => async (e: Embodiment) => {
    const r = await runEpisodes(
      e,
      'reach',
      seedRange(episodes, 700_000 + 10_000 * seed),
      policyController(policy, { slot, rng: new Rng(710_000 + 10_000 * seed) }),
      { env: { imageSize: policy.config.vision.imageSize }, parallel: 25 },
    );
    return { success: r.successRate, actionMse: r.actionMse };
  };

/** Fit the free slot as it stands with the action loss on `rec`'s frames (the oracle's fit). */
export async function fitActions(
  policy: Policy,
  slot: number,
  rec: { samples: Sample[]; meta: DatasetMeta },
  seed: number,
  steps = 200,
): Promise<void> {
  const batches = playSplit(policy, rec.samples, rec.meta, 16, new Rng(seed + 13), slot, 0).train;
  try {
    const o = await align(policy, batches, {
      slot,
      parametrisation: 'free',
      init: 'current',
      maxSteps: steps,
      lr: 1e-3,
      objective: 'action',
      seed,
    });
    o.state.dispose();
  } finally {
    for (const b of batches) disposeBatch(b);
  }
}
