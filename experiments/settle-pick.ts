// Probe for docs/results.md 2s: can tries pick the teacher without a reward? 2q picks retarget's
// teacher by tries: each candidate source slot (with its action map R) tries a few reach
// episodes on the robot and the one that reaches most often teaches. That reads success, i.e.
// where the end effector went. A competent reach policy comes to rest at its goal; a teacher that
// acts for the wrong body may not. This runs every source's retargeted teacher for full-length
// tries (no stop at success, so the episode length says nothing) and scores each by what the
// robot itself measures: the joint speed and the command size over the tries' last steps. The
// scores are ranked against 2q's teacher scan (20 episodes per teacher) and against the tries'
// own success, and the pick among the 5 lowest perception losses (2r) is compared with 2q's pick
// by success. Nothing in the scores reads the end effector or the target. With `--judge FILE`
// (2t) the tries are also scored by a camera judge (`selfalign judge`, trained on the source
// robots' random play): the judged effector-to-target distance over the last steps, and
// the share of tries judged within the reach tolerance at some step.
//   pnpm --filter @selfalign/experiments probe settle-pick.ts CKPT --targets sign,perm
//     --scan S1.json,S2.json --score P1.json,P2.json [--tries 6] [--last 8] [--seed 0] [--raw out.json]
//     [--judge judge.safetensors]
import { readFileSync, writeFileSync } from 'node:fs';
import { loadCheckpoint } from '@selfalign/align';
import { embodimentByName } from '@selfalign/cli/shared';
import { initBackend, Rng } from '@selfalign/core';
import { EffectorJudge, policyController } from '@selfalign/harness';
import {
  GEOMETRY,
  identifyActionMap,
  retargetedController,
  retargetMap,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { arg, rowsOf } from './args.js';

import { playRecorder, playSeeds, sourceActionMaps } from './play.js';
import { spearman } from './rank.js';

const targets = arg('--targets', 'sign').split(',');
const play = Number(arg('--play', '10'));
const tries = Number(arg('--tries', '6'));
const last = Number(arg('--last', '8'));
const s = Number(arg('--seed', '0'));
const raw = arg('--raw', '');
const scan = new Map(
  rowsOf(arg('--scan', ''))
    .filter((r) => r['success'] !== undefined)
    .map((r) => [`${r['target']}/${r['source']}`, r['success'] as number]),
);
const perception = new Map(
  rowsOf(arg('--score', '')).map((r) => [
    `${r['target']}/${r['source']}`,
    r['plain.perception'] as number,
  ]),
);

await initBackend('wasm');
const { policy, info } = await loadCheckpoint(process.argv[2]!);
const slotOf = (info['slots'] ?? {}) as Record<string, number>;
const env = { imageSize: policy.config.vision.imageSize };
const record = playRecorder(env.imageSize, s);
const sources = Object.keys(slotOf);
const maps = await sourceActionMaps(sources, record);
const judgeFile = arg('--judge', '');
const judge = judgeFile
  ? EffectorJudge.decode(policy, readFileSync(judgeFile), judgeFile)
  : undefined;

/** The camera judge's mean distance over the tries' last `last` frames, and the share judged reached. */
const judged = (eps: Awaited<ReturnType<typeof record>>) => {
  if (!judge) return { judged: Number.NaN, judgedReached: Number.NaN };
  let mean = 0;
  let reached = 0;
  for (const ep of eps) {
    const d = judge.distances(ep.frames, ep.length);
    const tail = d.slice(-last);
    mean += tail.reduce((s, v) => s + v, 0) / tail.length / eps.length;
    // as retarget --judge reads a try: reached when some frame is judged within reach
    if (d.some((v) => v < GEOMETRY.reachTolerance)) reached += 1 / eps.length;
  }
  return { judged: mean, judgedReached: reached };
};

/** Mean over episodes of the mean over their last `last` steps of |qdot| and |a| (per joint). */
const settle = (eps: Awaited<ReturnType<typeof record>>, n: number) => {
  let qd = 0;
  let a = 0;
  for (const ep of eps) {
    const from = Math.max(0, ep.length - last);
    for (let t = from; t < ep.length; t++)
      for (let j = 0; j < n; j++) {
        qd += Math.abs(ep.states[t * 3 * n + 2 * n + j]!) / ((ep.length - from) * n);
        a += Math.abs(ep.actions[t * n + j]!) / ((ep.length - from) * n);
      }
  }
  return { qd: qd / eps.length, a: a / eps.length };
};

type Row = {
  target: string;
  source: string;
  success: number;
  reached: number;
  qd: number;
  a: number;
  judged: number;
  judgedReached: number;
};
const rows: Row[] = [];
const summary: Record<string, Record<string, number | string>> = {};
for (const t of targets) {
  const started = Date.now();
  const e = embodimentByName(t, 1);
  const Bt = identifyActionMap(await record(e, playSeeds(play, s)));
  const mine: Row[] = [];
  for (const name of sources) {
    const inner = policyController(policy, {
      slot: slotOf[name]!,
      rng: new Rng(710_000 + 10_000 * s),
    });
    const r = await runEpisodes(
      e,
      'reach',
      seedRange(tries, 30_500 + 10_000 * s),
      retargetedController(inner, retargetMap(Bt, maps.get(name)!)),
      { env, record: true, untilSuccess: false },
    );
    const { qd, a } = settle(r.episodes, e.links.length);
    const row = {
      target: t,
      source: name,
      success: r.successRate,
      reached: r.episodes.filter((ep) => ep.stepsToSuccess >= 0).length / tries,
      qd,
      a,
      ...judged(r.episodes),
    };
    mine.push(row);
    rows.push(row);
  }
  const truth = mine.map((r) => scan.get(`${t}/${r.source}`) ?? Number.NaN);
  const top5 = [...mine]
    .sort(
      (x, y) =>
        (perception.get(`${t}/${x.source}`) ?? 0) - (perception.get(`${t}/${y.source}`) ?? 0),
    )
    .slice(0, 5);
  const pickBy = (k: (r: Row) => number) => top5.reduce((b, r) => (k(r) < k(b) ? r : b));
  const out: Record<string, number | string> = {
    best: Math.max(...truth),
    perception1: scan.get(`${t}/${top5[0]!.source}`)!,
  };
  for (const [key, k] of [
    ['qd', (r: Row) => r.qd],
    ['a', (r: Row) => r.a],
    ['tries', (r: Row) => -r.reached - 1e-3 * r.success],
    ...(judge
      ? ([
          ['judge', (r: Row) => r.judged],
          ['judgeReached', (r: Row) => -r.judgedReached + 1e-3 * r.judged],
        ] as const)
      : []),
  ] as const) {
    out[`rho.${key}`] = spearman(
      mine.map(k),
      truth.map((x) => -x),
    );
    const p = pickBy(k);
    out[`pick.${key}`] = p.source;
    out[`pickSuccess.${key}`] = scan.get(`${t}/${p.source}`)!;
  }
  summary[t] = out;
  console.log(
    `${t} (${((Date.now() - started) / 1000).toFixed(0)} s): ${Object.entries(out)
      .map(([k, v]) => `${k} ${typeof v === 'number' ? v.toFixed(2) : v}`)
      .join(' ')}`,
  );
}
const all = Object.values(summary);
const mean = (k: string) => all.reduce((acc, x) => acc + (x[k] as number), 0) / all.length;
for (const k of [
  'best',
  'perception1',
  'pickSuccess.tries',
  'pickSuccess.qd',
  'pickSuccess.a',
  'rho.tries',
  'rho.qd',
  'rho.a',
  ...(judge
    ? ['pickSuccess.judge', 'pickSuccess.judgeReached', 'rho.judge', 'rho.judgeReached']
    : []),
])
  console.log(`mean ${k.padEnd(20)} ${mean(k).toFixed(3)}`);
if (raw)
  writeFileSync(raw, JSON.stringify({ args: process.argv.slice(3), rows, summary }, null, 1));
