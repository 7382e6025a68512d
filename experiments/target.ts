// The shared set-up of the align probes: a held-out robot's play and labelled demos (the seeds
// of `selfalign diagnose`), split by episode, and the no-adaptation (source mean) and oracle
// (action loss on the demos, TTT-only, free slot) versions of the first free slot.
import { align } from '@selfalign/align';
import { embodimentByName, type featureExtractor, recordEpisodes } from '@selfalign/cli/shared';
import { Rng } from '@selfalign/core';
import type { Policy } from '@selfalign/experts';
import {
  fillWithSourceMean,
  firstFreeSlot,
  type PlaySplit,
  playSplit,
  policyController,
  slotVector,
  writeSlotVector,
} from '@selfalign/harness';
import {
  type Embodiment,
  expertController,
  randomController,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';

export interface Target {
  e: Embodiment;
  slot: number;
  play: PlaySplit;
  demos: PlaySplit;
  mean: Float32Array;
  oracle: Float32Array;
  /** Reach success at the slot as it is now, `episodes` episodes from seed 700,000. */
  success(episodes: number): Promise<number>;
}

export async function setupTarget(
  policy: Policy,
  name: string,
  sources: readonly number[],
  extractor: Awaited<ReturnType<typeof featureExtractor>>,
  o: { play: number; oracleSteps: number; seed: number },
): Promise<Target> {
  const slot = firstFreeSlot(policy, sources)!;
  const e = embodimentByName(name, 1);
  const base = 3_000_000 + 10_000 * o.seed;
  const c = policy.config;
  const play = await recordEpisodes(
    e,
    randomController(o.seed),
    'play',
    o.play,
    base,
    extractor,
    c,
  );
  const demos = await recordEpisodes(
    e,
    expertController(),
    'demo',
    o.play,
    base + 5_000,
    extractor,
    c,
  );
  const playS = playSplit(policy, play.samples, play.meta, 16, new Rng(o.seed + 11), slot, 0.2);
  const demoS = playSplit(policy, demos.samples, demos.meta, 16, new Rng(o.seed + 13), slot, 0.2);
  fillWithSourceMean(policy, slot, sources);
  const mean = slotVector(policy, slot);
  const r = await align(policy, demoS.train, {
    slot,
    parametrisation: 'free',
    init: 'mean',
    basis: [...sources],
    maxSteps: o.oracleSteps,
    lr: 1e-3,
    objective: 'action',
    seed: o.seed,
  });
  r.state.dispose();
  const oracle = slotVector(policy, slot);
  writeSlotVector(policy, slot, mean);
  return {
    e,
    slot,
    play: playS,
    demos: demoS,
    mean,
    oracle,
    success: async (episodes) =>
      (
        await runEpisodes(
          e,
          'reach',
          seedRange(episodes, 700_000),
          policyController(policy, { slot }),
          {
            env: { imageSize: c.vision.imageSize },
            parallel: 25,
          },
        )
      ).successRate,
  };
}
