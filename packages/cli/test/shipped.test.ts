// The shipped pretrained policy (checkpoints/): it loads with its checksum verified, is the
// policy its card describes (fingerprint, parameter checksum, slot map), and acts: on one of its
// source robots a handful of reach episodes on fixed seeds succeed.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCheckpoint } from '@selfalign/align';
import { initBackend } from '@selfalign/core';
import { policyController } from '@selfalign/harness';
import { runEpisodes } from '@selfalign/sim';
import { beforeAll, describe, expect, it } from 'vitest';
import { shippedCheckpoint } from '../src/commands/demo.js';
import { embodimentByName } from '../src/shared.js';

const root = join(import.meta.dirname, '..', '..', '..');

interface Card {
  file: string;
  fingerprint: string;
  dataChecksum: string;
  sources: number;
  check: { robot: string; seeds: number[]; minSuccesses: number };
}

let card: Card;
beforeAll(async () => {
  await initBackend('wasm');
  card = JSON.parse(await readFile(join(root, 'checkpoints', 'small-reach.json'), 'utf8'));
});

describe('the shipped checkpoint', () => {
  it('is the file the demo and the playground use, and the policy its card describes', async () => {
    const path = shippedCheckpoint();
    expect(path).toBe(join(root, card.file));
    const loaded = await loadCheckpoint(path!);
    try {
      expect(loaded.notices).toEqual([]); // carries its checksum, and it matched
      expect(loaded.policy.fingerprint).toBe(card.fingerprint);
      expect(loaded.moments.metadata['data_checksum']).toBe(card.dataChecksum);
      expect(loaded.policy.config.name).toBe('small');
      expect(Object.keys(loaded.info['slots'] as object).length).toBe(card.sources);
      expect(loaded.optStep).toBe(0); // weights only: no optimiser state ships
    } finally {
      loaded.policy.dispose();
    }
  });

  it('acts: reach episodes on a source robot succeed (fixed seeds)', async () => {
    const loaded = await loadCheckpoint(shippedCheckpoint()!);
    try {
      const slots = loaded.info['slots'] as Record<string, number>;
      const r = await runEpisodes(
        embodimentByName(card.check.robot, 1),
        'reach',
        card.check.seeds,
        policyController(loaded.policy, { slot: slots[card.check.robot]! }),
        {
          env: { imageSize: loaded.policy.config.vision.imageSize },
          parallel: card.check.seeds.length,
        },
      );
      const successes = r.summaries.filter((s) => s.success).length;
      expect(successes).toBeGreaterThanOrEqual(card.check.minSuccesses);
    } finally {
      loaded.policy.dispose();
    }
  }, 120_000);
});
