// Probe for docs/results.md 2z: how far off is the judged target, and does a read of it once per
// try do better? Retarget's pick (2w-2y) reads a try as reached when the tracked end effector
// comes within the tolerance of the target as the judge reads it: the policy's own target
// keypoint, frame by frame (`EffectorJudge.targetPositions`). 2x found that read to cost about
// half of the pick's read error. The target does not move during a reach try, so a frame's read
// of it can be pooled over the try; the arm covers it exactly when it matters (near the
// target). This records reach tries on robots (the robot's own expert: tries that reach; the
// source robot's expert: tries that often miss) and reports, per robot group:
//   - the per-frame error of the judged target (cm), by the true end-effector-to-target distance
//   - its mean offset (a bias a correction could remove)
//   - per try, the error of pooled reads: the first frame, the median over the first 5, over all
//     frames, over frames where the judged end effector (judge positions) is far from the judged
//     target
//   - the share of tries whose reached/missed read (the TRUE end effector against each target
//     read) agrees with the simulator's
//   pnpm probe target-read.ts CKPT --judge J [--tries 10] [--out rows.json]
import { readFileSync, writeFileSync } from 'node:fs';
import { loadCheckpoint } from '@selfalign/align';
import { embodimentByName } from '@selfalign/cli/shared';
import { backendChoiceFromEnv, initBackend } from '@selfalign/core';
import { EffectorJudge } from '@selfalign/harness';
import {
  type Episode,
  expertController,
  GEOMETRY,
  imageToWorld,
  PRESETS,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { arg } from './args.js';

const ckpt = process.argv[2]!;
const judgePath = arg('--judge', '');
const tries = Number(arg('--tries', '10'));
const groups: Record<string, string[]> = {
  sources: 'src-0,src-1,src-2,src-3,src-4,src-5,src-6,src-7'.split(','),
  presets: 'sign,offset,links,perm,rotate,combo'.split(','),
  sampled: 'src-32,src-33,src-34,src-35,src-36'.split(','),
};
const tol = GEOMETRY.reachTolerance;

await initBackend(backendChoiceFromEnv());
const { policy } = await loadCheckpoint(ckpt);
const judge = EffectorJudge.decode(policy, readFileSync(judgePath), judgePath);
const env = { imageSize: policy.config.vision.imageSize };

type P = [number, number];
const dist = (a: P, b: P) => Math.hypot(a[0] - b[0], a[1] - b[1]);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const medianPoint = (ps: P[]): P => [median(ps.map((p) => p[0])), median(ps.map((p) => p[1]))];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);

/** Per try: the true effector and target per frame, the judged target and effector per frame. */
function readTry(ep: Episode) {
  const w = ep.objects.length / ep.length;
  const fx: P[] = Array.from({ length: ep.length }, (_, t) => [
    ep.effector![2 * t]!,
    ep.effector![2 * t + 1]!,
  ]);
  const goal: P[] = Array.from({ length: ep.length }, (_, t) =>
    imageToWorld(judge.camera, ep.objects[t * w]!, ep.objects[t * w + 1]!),
  );
  return {
    fx,
    goal,
    judged: judge.targetPositions(ep.frames, ep.length),
    seen: judge.positions(ep.frames, ep.length),
  };
}

const BINS = [0.03, 0.06, 0.12, Number.POSITIVE_INFINITY];
const POOLS = [
  'per frame',
  'first frame',
  'median, first 5',
  'median',
  'median, far frames',
] as const;
type Pool = (typeof POOLS)[number];

const out: Record<string, unknown>[] = [];
for (const [group, robots] of Object.entries(groups)) {
  const byBin = BINS.map(() => [] as number[]);
  const offsets: P[] = [];
  const pooledErr: Record<Pool, number[]> = Object.fromEntries(
    POOLS.map((k) => [k, []]),
  ) as unknown as Record<Pool, number[]>;
  const agree: Record<Pool, number> = Object.fromEntries(POOLS.map((k) => [k, 0])) as Record<
    Pool,
    number
  >;
  let n = 0;
  let reachedTrue = 0;
  for (const name of robots) {
    const e = embodimentByName(name, 1);
    for (const [ci, controller] of [
      expertController(),
      expertController(PRESETS.source),
    ].entries()) {
      const run = await runEpisodes(e, 'reach', seedRange(tries, 40_000 + 1000 * ci), controller, {
        record: true,
        env,
        untilSuccess: false, // full-length tries, as retarget's pick runs them with a reader
      });
      for (const [i, ep] of run.episodes.entries()) {
        const r = readTry(ep);
        const truth = run.summaries[i]!.success;
        reachedTrue += truth ? 1 : 0;
        n++;
        for (let t = 0; t < ep.length; t++) {
          const err = dist(r.judged[t]!, r.goal[t]!);
          byBin[BINS.findIndex((b) => dist(r.fx[t]!, r.goal[t]!) < b)]!.push(err);
          offsets.push([r.judged[t]![0] - r.goal[t]![0], r.judged[t]![1] - r.goal[t]![1]]);
        }
        const far = r.judged.filter((g, t) => dist(r.seen[t]!, g) > 0.12);
        const pooled: Record<Exclude<Pool, 'per frame'>, P> = {
          'first frame': r.judged[0]!,
          'median, first 5': medianPoint(r.judged.slice(0, 5)),
          median: medianPoint(r.judged),
          'median, far frames': medianPoint(far.length > 0 ? far : r.judged),
        };
        pooledErr['per frame'].push(mean(r.judged.map((g, t) => dist(g, r.goal[t]!))));
        const perFrame = r.fx.some((p, t) => dist(p, r.judged[t]!) < tol);
        agree['per frame'] += perFrame === truth ? 1 : 0;
        for (const [k, g] of Object.entries(pooled) as [Pool, P][]) {
          pooledErr[k].push(dist(g, r.goal[0]!));
          agree[k] += r.fx.some((p) => dist(p, g) < tol) === truth ? 1 : 0;
        }
      }
    }
  }
  const cm = (x: number) => (100 * x).toFixed(1);
  console.log(
    `\n${group} (${robots.length} robots, ${n} tries, ${reachedTrue} reached by the simulator)`,
  );
  console.log(
    `  per-frame error of the judged target (cm) by true effector-to-target distance: ${BINS.map(
      (b, i) =>
        `<${Number.isFinite(b) ? cm(b) : 'inf'}: ${cm(mean(byBin[i]!))} (${byBin[i]!.length})`,
    ).join(', ')}`,
  );
  console.log(
    `  mean offset (judged - true): (${cm(mean(offsets.map((o) => o[0])))}, ${cm(mean(offsets.map((o) => o[1])))}) cm`,
  );
  for (const k of POOLS)
    console.log(
      `  ${k.padEnd(20)} error ${cm(mean(pooledErr[k]))} cm (median ${cm(median(pooledErr[k]))}); reached read as the simulator by the true effector: ${agree[k]}/${n}`,
    );
  out.push({
    group,
    robots,
    tries: n,
    reached: reachedTrue,
    byDistance: BINS.map((b, i) => ({
      below: b,
      error: mean(byBin[i]!),
      frames: byBin[i]!.length,
    })),
    offset: [mean(offsets.map((o) => o[0])), mean(offsets.map((o) => o[1]))],
    reads: POOLS.map((k) => ({
      read: k,
      error: mean(pooledErr[k]),
      median: median(pooledErr[k]),
      agree: agree[k],
    })),
  });
}
const file = arg('--out', '');
if (file) writeFileSync(file, JSON.stringify({ args: process.argv.slice(3), rows: out }, null, 1));
