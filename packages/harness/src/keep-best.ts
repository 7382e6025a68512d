// keep 'best' of practice and retarget: after the last round, the last fit's own tries (not
// fitted on) measure it, and the fit whose tries did best goes back into the slot.
import { Rng } from '@selfalign/core';
import type { Policy } from '@selfalign/experts';
import {
  type Embodiment,
  type EnvConfig,
  type RunResult,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { policyController } from './policy-controller.js';
import { writeSlotVector } from './slots.js';

/**
 * `fits[i]` is the slot after round i (0: the start) and `tried[i]` its tries' score for every
 * fit but the last. Runs `tries` reach episodes of the last fit (seeds firstSeed + 1000 x
 * fits.length, ..., its flow noise seed x 1000 + fits.length), appends their score to `tried`,
 * writes the best-scored fit (ties: the later) into `slot` and returns its index.
 */
export async function keepBestFit(
  policy: Policy,
  robot: Embodiment,
  opts: {
    slot: number;
    fits: readonly Float32Array[];
    tried: number[];
    tries: number;
    firstSeed: number;
    seed: number;
    env?: Partial<EnvConfig>;
    score: (tries: RunResult) => number;
    /** Record the tries' frames, full length (a camera judge scores them). */
    record?: boolean;
  },
): Promise<number> {
  const n = opts.fits.length;
  const last = await runEpisodes(
    robot,
    'reach',
    seedRange(opts.tries, opts.firstSeed + 1_000 * n),
    policyController(policy, { slot: opts.slot, rng: new Rng(opts.seed * 1_000 + n) }),
    {
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.record ? { record: true, untilSuccess: false } : {}),
    },
  );
  opts.tried.push(opts.score(last));
  const kept = opts.tried.reduce((b, x, i) => (x >= opts.tried[b]! ? i : b), 0);
  writeSlotVector(policy, opts.slot, opts.fits[kept]!);
  return kept;
}
