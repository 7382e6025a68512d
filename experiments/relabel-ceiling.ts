// Probe for docs/results.md 2o: is practice limited by its labels (hindsight relabelling) or by
// its tries (what the policy does on the new robot)? The free slot is fitted from the mean of the
// source slots, as the oracle adapter (action loss, 200 Adam steps at 1e-3), on four data sets of
// the same robot: the oracle's 10 expert demos (true targets, stop at success); 10 and 40 expert
// episodes relabelled in hindsight (full length, frame t's target where the end effector was H
// steps later: practice's labels with the expert's tries); 10 random-play episodes relabelled
// the same way (section 2m). If relabelled expert tries act like the oracle, relabelling loses
// nothing and practice is limited by its tries.
//   pnpm --filter @selfalign/experiments probe relabel-ceiling.ts CKPT [--targets perm,src-33]
//     [--horizon 8] [--steps 200] [--episodes 50] [--seed 0] [--raw out.json]
import { writeFileSync } from 'node:fs';
import { loadCheckpoint } from '@selfalign/align';
import { embodimentByName, episodesAsSamples, featureExtractor } from '@selfalign/cli/shared';
import { initBackend } from '@selfalign/core';
import type { DatasetMeta, Sample } from '@selfalign/data';
import { fillWithSourceMean, firstFreeSlot } from '@selfalign/harness';
import {
  type Controller,
  expertController,
  heldRandomController,
  hindsightEpisodes,
  ouController,
  randomController,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { arg } from './args.js';
import { servo } from './servo.js';
import { fitActions, tableEvaluation } from './table-cells.js';

const targets = arg('--targets', 'perm,src-33').split(',');
const horizon = Number(arg('--horizon', '8'));
const steps = Number(arg('--steps', '200'));
const episodes = Number(arg('--episodes', '50'));
const s = Number(arg('--seed', '0'));
const raw = arg('--raw', '');
const only = arg('--sets', 'oracle,expert10,expert40,random10').split(',');

const servoPlay = Number(arg('--servo-play', '20'));

await initBackend('wasm');
const ckpt = process.argv[2]!;
const { policy, info } = await loadCheckpoint(ckpt);
const c = policy.config;
const sourceSlots = Object.values((info['slots'] ?? {}) as Record<string, number>);
const slot = firstFreeSlot(policy, sourceSlots)!;
const side = c.vision.imageSize;
const extractor = await featureExtractor('default', process.cwd(), c.featureDim);
const env = { imageSize: side };

const evaluate = tableEvaluation(policy, slot, episodes, s);

const out: Record<string, unknown>[] = [];
for (const t of targets) {
  const e = embodimentByName(t, 1);
  const base = 1_000_000 * (s + 1) + 50_000;
  const relabelled = async (ctrl: Controller, n: number) =>
    episodesAsSamples(
      e,
      await hindsightEpisodes(e, seedRange(n, base), ctrl, { horizon, env }),
      'demo',
      extractor,
      c,
    );
  const sets: [string, string, () => Promise<{ samples: Sample[]; meta: DatasetMeta }>][] = [
    [
      'oracle',
      'oracle: 10 expert demos',
      async () => {
        const r = await runEpisodes(e, 'reach', seedRange(10, base), expertController(), {
          record: true,
          env,
        });
        return episodesAsSamples(e, r.episodes, 'demo', extractor, c);
      },
    ],
    [
      'expert10',
      `10 expert tries, relabelled H=${horizon}`,
      () => relabelled(expertController(), 10),
    ],
    [
      'expert40',
      `40 expert tries, relabelled H=${horizon}`,
      () => relabelled(expertController(), 40),
    ],
    [
      'random10',
      `10 random play, relabelled H=${horizon}`,
      () => relabelled(randomController(s), 10),
    ],
    ['ou10', `10 OU play, relabelled H=${horizon}`, () => relabelled(ouController(s), 10)],
    [
      'held10',
      `10 held-8 play, relabelled H=${horizon}`,
      () => relabelled(heldRandomController(s, 8), 10),
    ],
    [
      'held40',
      `40 held-8 play, relabelled H=${horizon}`,
      () => relabelled(heldRandomController(s, 8), 40),
    ],
    [
      'servo10',
      `10 servo tries (${servoPlay} held play), relabelled H=${horizon}`,
      async () => {
        const ctrl = await servo(e, seedRange(servoPlay, base + 20_000), s, env);
        const own = await runEpisodes(e, 'reach', seedRange(10, base), ctrl, { env });
        console.log(
          `${t}: the servo alone reaches ${(100 * own.successRate).toFixed(0)}% of its targets`,
        );
        return relabelled(ctrl, 10);
      },
    ],
  ];
  for (const [key, what, make] of sets) {
    if (!only.includes(key)) continue;
    const t0 = performance.now();
    const rec = await make();
    fillWithSourceMean(policy, slot, sourceSlots);
    await fitActions(policy, slot, rec, s, steps);
    const r = { ...(await evaluate(e)), frames: rec.samples.length };
    out.push({ target: t, seed: s, what, ...r, wallS: (performance.now() - t0) / 1000 });
    console.log(
      `${new Date().toISOString()} ${t.padEnd(7)} ${what.padEnd(38)} success ${(100 * r.success).toFixed(0).padStart(3)}%  action MSE ${r.actionMse.toFixed(4)}  (${rec.samples.length} frames)`,
    );
  }
}
if (raw)
  writeFileSync(
    raw,
    `${JSON.stringify({ ckpt, args: process.argv.slice(3), rows: out }, null, 2)}\n`,
  );
policy.dispose();
