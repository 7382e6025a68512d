// The shipped pretrained policies (checkpoints/): each loads with its checksum verified, is the
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

/** The shipped policies: the demo's default (32 sources) and the first one, its --init. */
const CARDS = ['small-reach32.json', 'small-reach.json'];
const cards = new Map<string, Card>();
beforeAll(async () => {
  await initBackend('wasm');
  for (const name of CARDS)
    cards.set(name, JSON.parse(await readFile(join(root, 'checkpoints', name), 'utf8')));
});

describe('the shipped checkpoints', () => {
  it('the demo and the playground use the 32-source policy', () => {
    expect(shippedCheckpoint()).toBe(join(root, cards.get(CARDS[0]!)!.file));
  });

  it.each(CARDS)('%s: the policy its card describes', async (name) => {
    const card = cards.get(name)!;
    const loaded = await loadCheckpoint(join(root, card.file));
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

  it.each(CARDS)(
    '%s acts: reach episodes on a source robot succeed (fixed seeds)',
    async (name) => {
      const card = cards.get(name)!;
      const loaded = await loadCheckpoint(join(root, card.file));
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
    },
    120_000,
  );
});
