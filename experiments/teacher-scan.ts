// Probe for docs/results.md 2q: which source slots are good teachers for a target? Retarget
// (2p) picks the source whose body explains the play's end-effector positions and runs the
// policy through its slot with actions mapped by Bt^-1 Bs. On `combo` and `src-34` that teacher
// fails (12-46%). This scans every source: the retargeted slot's success on the target (the
// identified maps, as retarget uses them), the source slot's success on its own robot, and the
// body's kinematic error on the play, so the pick can be compared with the best teacher.
// With --labels N it also labels N play frames with every retargeted teacher's mapped chunk (the
// same flow noise for all) and keeps the teachers' pairwise mean squared chunk distance: do the
// teachers that act right agree with each other (a pick without tries)?
//   pnpm --filter @selfalign/experiments probe teacher-scan.ts CKPT [--targets src-34,combo]
//     [--play 10] [--episodes 20] [--seed 0] [--own yes] [--labels 0] [--raw out.json]
import { writeFileSync } from 'node:fs';
import { loadCheckpoint } from '@selfalign/align';
import { embodimentByName, episodesAsSamples, featureExtractor } from '@selfalign/cli/shared';
import { initBackend, Rng } from '@selfalign/core';
import { disposeBatch } from '@selfalign/experts';
import {
  copySlot,
  firstFreeSlot,
  playSplit,
  policyController,
  retargetedChunks,
} from '@selfalign/harness';
import {
  type Embodiment,
  identifyActionMap,
  kinematicError,
  type Matrix,
  retargetedController,
  retargetMap,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { arg } from './args.js';
import { playRecorder, playSeeds, sourceActionMaps } from './play.js';

const targets = arg('--targets', 'src-34,combo').split(',');
const play = Number(arg('--play', '10'));
const episodes = Number(arg('--episodes', '20'));
const s = Number(arg('--seed', '0'));
const own = arg('--own', 'yes') === 'yes';
const raw = arg('--raw', '');
const labels = Number(arg('--labels', '0'));

await initBackend('wasm');
const { policy, info } = await loadCheckpoint(process.argv[2]!);
const slotOf = (info['slots'] ?? {}) as Record<string, number>;
const slot = firstFreeSlot(policy, Object.values(slotOf))!;
const env = { imageSize: policy.config.vision.imageSize };
const extractor = await featureExtractor('default', process.cwd(), policy.config.featureDim);
const record = playRecorder(env.imageSize, s);
const evalSeeds = seedRange(episodes, 700_000 + 10_000 * s);
const run = (e: Embodiment, k: number, map?: Matrix) => {
  const inner = policyController(policy, { slot: k, rng: new Rng(710_000 + 10_000 * s) });
  return runEpisodes(e, 'reach', evalSeeds, map ? retargetedController(inner, map) : inner, {
    env,
    parallel: 25,
  });
};

const sources = Object.keys(slotOf);
const maps = await sourceActionMaps(sources, record);
const ownSuccess = new Map<string, number>();
if (own)
  for (const name of sources)
    ownSuccess.set(name, (await run(embodimentByName(name, 1), slotOf[name]!)).successRate);
const out: Record<string, unknown>[] = [];
for (const t of targets) {
  const e = embodimentByName(t, 1);
  const playEps = await record(e, playSeeds(play, s));
  const Bt = identifyActionMap(playEps);
  const rows = [];
  const chunks: Float32Array[] = [];
  if (labels > 0) {
    const rec = await episodesAsSamples(e, playEps, 'demo', extractor, policy.config);
    const batches = playSplit(
      policy,
      rec.samples,
      rec.meta,
      16,
      new Rng(s + 13),
      slot,
      0,
    ).train.slice(0, Math.ceil(labels / 16));
    for (const name of sources) {
      const R = retargetMap(Bt, maps.get(name)!);
      const rng = new Rng(s * 1_000 + 99);
      const parts = batches.map((b) => {
        const chunk = retargetedChunks(policy, b, slotOf[name]!, R, rng);
        const values = chunk.dataSync();
        chunk.dispose();
        return values;
      });
      chunks.push(Float32Array.from(parts.flatMap((p) => Array.from(p))));
    }
    for (const b of batches) disposeBatch(b);
  }
  const distances = chunks.map((x) =>
    chunks.map((y) => x.reduce((acc, v, i) => acc + (v - y[i]!) ** 2, 0) / x.length),
  );
  if (labels > 0) out.push({ target: t, seed: s, sources, distances });
  for (const name of sources) {
    copySlot(policy, slotOf[name]!, slot);
    const r = await run(e, slot, retargetMap(Bt, maps.get(name)!));
    const row = {
      target: t,
      seed: s,
      source: name,
      bodyError: kinematicError(embodimentByName(name, 1), playEps),
      success: r.successRate,
      ...(own ? { ownSuccess: ownSuccess.get(name) } : {}),
    };
    rows.push(row);
    out.push(row);
    console.log(
      `${new Date().toISOString()} ${t} ${name.padEnd(6)} body ${row.bodyError.toExponential(1)} teacher ${(100 * r.successRate).toFixed(0).padStart(3)}%${own ? ` own ${(100 * ownSuccess.get(name)!).toFixed(0)}%` : ''}`,
    );
  }
  rows.sort((a, b) => a.bodyError - b.bodyError);
  console.log(
    `${t}: by body ${rows
      .slice(0, 5)
      .map((r) => `${r.source} ${(100 * r.success).toFixed(0)}%`)
      .join(', ')}; best ${[...rows]
      .sort((a, b) => b.success - a.success)
      .slice(0, 5)
      .map((r) => `${r.source} ${(100 * r.success).toFixed(0)}%`)
      .join(', ')}`,
  );
}
if (raw) writeFileSync(raw, JSON.stringify({ args: process.argv.slice(3), rows: out }, null, 1));
