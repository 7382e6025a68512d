// The retarget probes' shared set-up (teacher-scan, teacher-score, settle-pick): random play as
// the results table records it, and each source robot's action map identified as retarget does.

import { embodimentByName } from '@selfalign/cli/shared';
import {
  type Embodiment,
  identifyActionMap,
  type Matrix,
  randomController,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';

/** Records random-play reach episodes (controller seed `seed`, images of `imageSize`). */
export const playRecorder =
  (imageSize: number, seed: number) => async (e: Embodiment, seeds: number[]) =>
    (
      await runEpisodes(e, 'reach', seeds, randomController(seed), {
        record: true,
        env: { imageSize },
      })
    ).episodes;

/** The target's play episode seeds at table seed `s` with `play` trajectories (as `results`). */
export const playSeeds = (play: number, s: number): number[] =>
  seedRange(play, 1_000_000 * (s + 1) + 10_000 * play);

/** Each source robot's action -> joint-velocity map, from 10 random-play episodes of its own. */
export async function sourceActionMaps(
  names: readonly string[],
  record: ReturnType<typeof playRecorder>,
): Promise<Map<string, Matrix>> {
  const maps = new Map<string, Matrix>();
  for (const name of names)
    maps.set(
      name,
      identifyActionMap(await record(embodimentByName(name, 1), seedRange(10, 900_000))),
    );
  return maps;
}
