// The shipped camera judge of the 32-source policy (checkpoints/small-reach32.judge.safetensors,
// `selfalign judge`): it is the judge of that checkpoint, and on a robot it never saw it finds the
// end effector from the frames alone, near enough for retarget's pick (docs/results.md 2t).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCheckpoint } from '@selfalign/align';
import { initBackend } from '@selfalign/core';
import { EffectorJudge } from '@selfalign/harness';
import { randomController, runEpisodes, seedRange } from '@selfalign/sim';
import { beforeAll, describe, expect, it } from 'vitest';
import { embodimentByName, loadJudge } from '../src/shared.js';

const root = join(import.meta.dirname, '..', '..', '..');
const checkpoint = join(root, 'checkpoints', 'small-reach32.safetensors');
const file = join(root, 'checkpoints', 'small-reach32.judge.safetensors');

beforeAll(() => initBackend('wasm'));

describe('the shipped camera judge', () => {
  it('belongs to the shipped policy and locates the end effector of a held-out robot', async () => {
    const { policy } = await loadCheckpoint(checkpoint);
    const judge = await loadJudge('test', file, policy);
    try {
      expect(judge.kind).toBe('tuned');
      expect(judge.metadata['fingerprint']).toBe(policy.fingerprint);
      // random play of a body outside the 32 sources (link lengths), frames and labels
      const play = (
        await runEpisodes(
          embodimentByName('links', 1),
          'reach',
          seedRange(2, 123_000),
          randomController(5),
          {
            record: true,
            env: { imageSize: policy.config.vision.imageSize },
          },
        )
      ).episodes;
      expect(judge.rms(play)).toBeLessThan(0.12); // 0.064 here; untrained ~0.7, the 5-episode judge of 2t ~0.2
      // the same bytes decode to the same judge
      const again = EffectorJudge.decode(policy, await readFile(file), file);
      expect(again.distances(play[0]!.frames, 4)).toEqual(judge.distances(play[0]!.frames, 4));
      again.dispose();
    } finally {
      judge.dispose();
      policy.dispose();
    }
  }, 120_000);
});
