// Probe for docs/results.md 2r: can the play alone say which source slot teaches? Retarget's
// teacher (2p/2q) is a source slot with the target's actions mapped by R = B_t^-1 B_s, where B_t
// is identified from the play's proprioception (no end effector needed). 2q picks it by tries on
// the robot (30 of them) or by the body (the end effector's position during play); the body is a
// weak guide, the tries a good one. This scores every source slot on the target's play with the
// Alignment Expert's own losses, evaluated through that source slot, once on the play as it is
// ('plain': what the nearest-source-slot row ranks by) and once with the play's actions mapped
// back into the source's action space, a_s = R^-1 a_t ('mapped': if the source slot with R is the
// right teacher, the target's frames and the mapped actions are what the source would have seen),
// and ranks the scores against each teacher's success in 2q's scan (seed 0, 20 episodes each).
// Nothing here reads the end effector or runs the policy on the robot.
//   pnpm --filter @selfalign/experiments probe teacher-score.ts CKPT --targets sign,perm
//     --scan ../docs/results/retarget/scan-seed0-a.json,../docs/results/retarget/scan-seed0-b.json
//     [--play 10] [--seed 0] [--batches 0 (all)] [--flow-time T] [--raw out.json]
import { writeFileSync } from 'node:fs';
import { evaluateLosses, loadCheckpoint } from '@selfalign/align';
import { embodimentByName, episodesAsSamples, featureExtractor } from '@selfalign/cli/shared';
import { initBackend, Rng, tf } from '@selfalign/core';
import { disposeBatch, type TrainBatch } from '@selfalign/experts';
import { copySlot, firstFreeSlot, playSplit } from '@selfalign/harness';
import { identifyActionMap, invertMatrix, type Matrix, retargetMap } from '@selfalign/sim';
import { arg, rowsOf } from './args.js';
import { playRecorder, playSeeds, sourceActionMaps } from './play.js';
import { spearman } from './rank.js';

const targets = arg('--targets', 'sign').split(',');
const play = Number(arg('--play', '10'));
const s = Number(arg('--seed', '0'));
const nBatches = Number(arg('--batches', '0'));
const flowTime = process.argv.includes('--flow-time') ? Number(arg('--flow-time', '1')) : undefined;
const raw = arg('--raw', '');

type ScanRow = { target: string; source: string; success: number; bodyError: number };
const scan = rowsOf(arg('--scan', '')).filter(
  (r) => r['success'] !== undefined && r['source'] !== undefined,
) as ScanRow[];

await initBackend('wasm');
const { policy, info } = await loadCheckpoint(process.argv[2]!);
const slotOf = (info['slots'] ?? {}) as Record<string, number>;
const slot = firstFreeSlot(policy, Object.values(slotOf))!;
const env = { imageSize: policy.config.vision.imageSize };
const extractor = await featureExtractor('default', process.cwd(), policy.config.featureDim);
const record = playRecorder(env.imageSize, s);
const sources = Object.keys(slotOf);
const maps = await sourceActionMaps(sources, record);

/** A copy of `b` whose action chunks are multiplied by M (a_s = M a_t for each action). */
const mapActions = (b: TrainBatch, M: Matrix): TrainBatch =>
  tf.tidy(() => {
    const [n, h, d] = b.actions.shape as [number, number, number];
    const moved = tf.matMul(b.actions.reshape([n * h, d]), tf.tensor2d(M), false, true);
    const out = { ...b, actions: moved.reshape([n, h, d]) } as TrainBatch;
    return out as unknown as tf.TensorContainer;
  }) as unknown as TrainBatch;

const rows: Record<string, unknown>[] = [];
const summary: Record<
  string,
  Record<string, { rho: number; pick: string; pickSuccess: number }>
> = {};
for (const t of targets) {
  const started = Date.now();
  const e = embodimentByName(t, 1);
  const playEps = await record(e, playSeeds(play, s));
  const Bt = identifyActionMap(playEps);
  const rec = await episodesAsSamples(e, playEps, 'play', extractor, policy.config);
  const all = playSplit(policy, rec.samples, rec.meta, 16, new Rng(s + 13), slot, 0).train;
  const batches = nBatches > 0 ? all.slice(0, nBatches) : all;
  for (const b of all.slice(batches.length)) disposeBatch(b);
  const scores: Record<string, Record<string, number>> = {};
  for (const name of sources) {
    copySlot(policy, slotOf[name]!, slot);
    const opts = { seed: 777, ...(flowTime !== undefined ? { flowTime } : {}) };
    const plain = evaluateLosses(policy, batches, opts);
    const back = invertMatrix(retargetMap(Bt, maps.get(name)!)); // a_s = R^-1 a_t
    const mapped = batches.map((b) => mapActions(b, back));
    const m = evaluateLosses(policy, mapped, opts);
    for (const b of mapped) b.actions.dispose(); // the rest is shared with `batches`
    const row: Record<string, number> = {};
    for (const [k, v] of Object.entries(plain))
      if (k !== 'action' && k !== 'total') row[`plain.${k}`] = v;
    for (const [k, v] of Object.entries(m))
      if (k !== 'action' && k !== 'total') row[`mapped.${k}`] = v;
    row['plain.images'] = plain.perception + plain.dynamics + plain.inverseDynamics;
    row['mapped.images'] = m.perception + m.dynamics + m.inverseDynamics;
    row['mapped.actionTasks'] = m.dynamics + m.inverseDynamics;
    scores[name] = row;
    rows.push({ target: t, seed: s, source: name, ...row });
  }
  for (const b of batches) disposeBatch(b);
  const scanned = scan.filter((r) => r.target === t);
  const keys = Object.keys(scores[sources[0]!]!);
  summary[t] = {};
  if (scanned.length > 0) {
    const names = scanned.map((r) => r.source);
    const success = scanned.map((r) => r.success);
    const score = (k: string) => names.map((n) => scores[n]![k]!);
    for (const k of [...keys, 'bodyError']) {
      const v = k === 'bodyError' ? scanned.map((r) => r.bodyError) : score(k);
      const best = v.indexOf(Math.min(...v));
      summary[t]![k] = {
        rho: spearman(
          v,
          success.map((x) => -x),
        ),
        pick: names[best]!,
        pickSuccess: success[best]!,
      };
    }
    const bestTeacher = Math.max(...success);
    console.log(
      `${t} (${((Date.now() - started) / 1000).toFixed(0)} s, best teacher ${(100 * bestTeacher).toFixed(0)}%): ` +
        Object.entries(summary[t]!)
          .map(
            ([k, v]) =>
              `${k} rho ${v.rho.toFixed(2)} pick ${v.pick} ${(100 * v.pickSuccess).toFixed(0)}%`,
          )
          .join('; '),
    );
  } else
    console.log(`${t}: scored (${((Date.now() - started) / 1000).toFixed(0)} s), no scan rows`);
}
const ks = Object.keys(Object.values(summary)[0] ?? {});
for (const k of ks) {
  const v = Object.values(summary).map((x) => x[k]!);
  const mean = (f: (x: (typeof v)[number]) => number) => v.reduce((a, x) => a + f(x), 0) / v.length;
  console.log(
    `${k.padEnd(26)} mean rho ${mean((x) => x.rho).toFixed(2)}  pick's teacher ${(100 * mean((x) => x.pickSuccess)).toFixed(0)}%`,
  );
}
if (raw)
  writeFileSync(raw, JSON.stringify({ args: process.argv.slice(3), rows, summary }, null, 1));
