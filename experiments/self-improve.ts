// Probe for docs/results.md 2n: does the policy teach itself the new robot from its own tries?
// Goal-conditioned supervised learning (GCSL, Ghosh et al. 2019) with the TTT slot as the only
// thing that moves: the policy, through the current slot, tries reach episodes on the target
// robot; each try is relabelled in hindsight (frame t's target where the end effector is H steps
// later, `hindsightEpisodes`); the slot is fitted with the action loss on every try so far; again.
// Unlike section 2m's random play, the policy's own tries are goal-directed, so the relabelled
// actions are the goal-to-action map of this robot, not a random policy's. No expert, no labels;
// it needs the end effector's position (as 2m) and the robot running the policy.
//   pnpm --filter @selfalign/experiments probe self-improve.ts CKPT [--targets sign,links]
//     [--rounds 3] [--tries 10] [--steps 100] [--lr 1e-3] [--horizon 8 | 4,8,16,40] [--explore 0] [--direct 1] [--guide 0.5 (a play-fitted servo steers the tries)]
//     [--start nearest|mean|held|nearest-held] [--episodes 50] [--seed 0] [--raw out.json]
import { writeFileSync } from 'node:fs';
import { defaultAlignWeights, loadCheckpoint } from '@selfalign/align';
import {
  embodimentByName,
  episodesAsSamples,
  featureExtractor,
  recordEpisodes,
} from '@selfalign/cli/shared';
import { initBackend, Rng } from '@selfalign/core';
import { disposeBatch } from '@selfalign/experts';
import {
  copySlot,
  fillWithSourceMean,
  firstFreeSlot,
  nearestSourceSlot,
  playSplit,
  practice,
} from '@selfalign/harness';
import {
  heldRandomController,
  hindsightEpisodes,
  randomController,
  seedRange,
} from '@selfalign/sim';
import { arg } from './args.js';
import { servo } from './servo.js';
import { fitActions, tableEvaluation } from './table-cells.js';

const targets = arg('--targets', 'sign,links').split(',');
const rounds = Number(arg('--rounds', '3'));
const tries = Number(arg('--tries', '10'));
const steps = Number(arg('--steps', '100'));
const lr = Number(arg('--lr', '1e-3'));
const horizon = arg('--horizon', '8').split(',').map(Number);
const explore = Number(arg('--explore', '0'));
const directShare = Number(arg('--direct', '1'));
const guideWeight = Number(arg('--guide', '0'));
const start = arg('--start', 'nearest');
const episodes = Number(arg('--episodes', '50'));
const s = Number(arg('--seed', '0'));
const play = Number(arg('--play', '10'));
const raw = arg('--raw', '');
const keep = arg('--keep', 'best') as 'last' | 'best';

await initBackend('wasm');
const ckpt = process.argv[2]!;
const { policy, info } = await loadCheckpoint(ckpt);
const c = policy.config;
const slotOf = (info['slots'] ?? {}) as Record<string, number>;
const sourceSlots = Object.values(slotOf);
const robotOf = new Map(Object.entries(slotOf).map(([r, k]) => [k, r]));
const slot = firstFreeSlot(policy, sourceSlots)!;
const side = c.vision.imageSize;
const extractor = await featureExtractor('default', process.cwd(), c.featureDim);
const batchSize = 16;

const evaluate = tableEvaluation(policy, slot, episodes, s);

const out: Record<string, unknown>[] = [];
const log = (target: string, round: number, what: string, r: Record<string, number>) => {
  out.push({ target, round, what, ...r });
  console.log(
    `${new Date().toISOString()} ${target.padEnd(7)} round ${round} ${what.padEnd(28)} success ${(100 * r['success']!).toFixed(0).padStart(3)}%  action MSE ${r['actionMse']!.toFixed(4)}${r['wallS'] !== undefined ? `  (${r['wallS'].toFixed(0)} s)` : ''}`,
  );
};

for (const t of targets) {
  const e = embodimentByName(t, 1);
  const base = 1_000_000 * (s + 1) + 10_000 * play;
  fillWithSourceMean(policy, slot, sourceSlots);
  if (start === 'nearest' || start === 'nearest-held') {
    // the results table's label-free start: the source slot with the lowest align objective
    const rec = await recordEpisodes(e, randomController(s), 'play', play, base, extractor, c);
    const split = playSplit(policy, rec.samples, rec.meta, batchSize, new Rng(s + 11), slot, 0.2);
    const { nearest } = nearestSourceSlot(policy, split.train, sourceSlots, slot, {
      weights: defaultAlignWeights(c),
      seed: s,
    });
    for (const b of [...split.train, ...split.heldOut]) disposeBatch(b);
    copySlot(policy, nearest, slot);
    console.log(`${t}: start at the nearest source slot, ${robotOf.get(nearest)}`);
  }
  if (start === 'held' || start === 'nearest-held') {
    // held-random play relabelled in hindsight, fitted from the mean (or nearest) slot
    // (relabel-ceiling.ts)
    const eps = await hindsightEpisodes(e, seedRange(play, base), heldRandomController(s, 8), {
      horizon: 8,
      env: { imageSize: side },
    });
    const rec = await episodesAsSamples(e, eps, 'demo', extractor, c);
    await fitActions(policy, slot, rec, s);
    console.log(`${t}: start at the slot fitted on ${play} held-random play episodes, relabelled`);
  }
  log(t, 0, `start (${start})`, await evaluate(e));
  if (rounds === 0) continue; // the start only
  // the servo of relabel-ceiling.ts, fitted on 20 held-random play episodes, steers the tries
  const guide =
    guideWeight > 0
      ? {
          controller: await servo(e, seedRange(20, base + 20_000), s, { imageSize: side }),
          weight: guideWeight,
        }
      : undefined;
  const done = await practice(policy, e, {
    ...(guide ? { guide } : {}),
    keep,
    slot,
    rounds,
    tries,
    steps,
    horizon,
    explore,
    directShare,
    lr,
    seed: s,
    firstSeed: base + 30_000,
    env: { imageSize: side },
    toSamples: (eps) => episodesAsSamples(e, eps, 'demo', extractor, c),
    onRound: async (r) =>
      log(t, r.round, `free +${steps} steps, ${r.frames} frames`, {
        ...(await evaluate(e)),
        fitLoss: r.loss,
        trySuccess: r.trySuccess,
        wallS: r.wallS,
      }),
  });
  // the kept slot is one of those evaluated above (0: the start)
  out.push({ target: t, kept: done.kept, tried: done.tried });
  console.log(
    `${t}: tries reached ${done.tried.map((x) => `${Math.round(100 * x)}%`).join(', ')} (start, then after each round); kept ${done.kept}`,
  );
}
if (raw)
  writeFileSync(
    raw,
    `${JSON.stringify({ ckpt, args: process.argv.slice(3), rows: out }, null, 2)}\n`,
  );
policy.dispose();
