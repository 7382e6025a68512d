// Probe for docs/results.md 2x: which part of retarget's pick read errs? The pick (2w) reads
// each candidate's 6 reach tries and takes the one read to reach most often; read through the
// judged body it still ranks the candidates loosely (its pick acts at 20-100% when read at 6 of
// 6), and on `sign` it has read the nearest source slot (src-6, 90-94% with no fit) at 3 of 6 at
// three seeds. This replays one `results --retarget-also-nearest` cell's pick exactly as retarget
// runs it (the same play, maps, candidates, seeds and flow noise; a line says where a read
// differs from the raw rows') and reads every try six ways, each from where it takes the end
// effector and the target in every frame:
//   truth        the simulator (reached the target at some step)
//   body         the pipeline's read: the judged body's end effector against the judge's
//                reading of the target
//   body, true   the same body against the true target (the tracker's own error)
//   true, judged the true end effector against the judge's target (the target's error)
//   refit        the body fitted again on the play and every candidate's tries of the cell,
//                against the judge's target (retarget's refitOnTries, --track body+tries)
//   judge        the camera judge's positions and target (its verdict, the pick in 2t-2w)
//   body, start  the body against the judge's target read once per try, the median over its
//   refit, start first 5 frames, before the arm can cover it (--judge-target start, 2z)
// each as tries read to reach (closest approach within the reach tolerance) and as the mean
// closest approach over the tries (a read without a threshold); and evaluates each candidate
// over 50 episodes, as the table's no-fit row (same seeds). Prints per candidate the reads and
// the 50-episode success, each reader's pick (ties to the closer approach), and over all cells
// each reader's correlation with the 50-episode success and its agreement with the simulator.
//   pnpm probe pick-read.ts CKPT --judge J --raw A.json[,B.json] [--targets sign,rotate]
//     [--seed 7] [--shrink 1.395] [--tries 6] [--out rows.json]
// --raw: a `results --retarget-pick-track body --retarget-also-nearest` run's raw rows (their
// candidates, in the order tried); --shrink: the judge's last-link shrink (results measures
// 1.395 on the first 8 source robots and prints it); --tries: tries per candidate (retarget's
// `pickTries`; the first 6 are retarget's 6, the rest run 6 at a time with flow-noise generators
// of their own, so a 12-try run holds the 6-try reads too: each
// row keeps every try's closest approach per reader and the simulator's verdict).
import { readFileSync, writeFileSync } from 'node:fs';
import { loadCheckpoint } from '@selfalign/align';
import { embodimentByName, judgedBody } from '@selfalign/cli/shared';
import { backendChoiceFromEnv, initBackend, Rng } from '@selfalign/core';
import {
  type BodyTracker,
  copySlot,
  EffectorJudge,
  firstFreeSlot,
  policyController,
} from '@selfalign/harness';
import {
  type Episode,
  GEOMETRY,
  identifyActionMap,
  imageToWorld,
  randomController,
  retargetedController,
  retargetMap,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { arg, type PickCandidate, type PickRow, rowsOf } from './args.js';
import { playRecorder, playSeeds } from './play.js';

type Row = PickRow;

const ckpt = process.argv[2]!;
const judgePath = arg('--judge', '');
const s = Number(arg('--seed', '7'));
const shrink = Number(arg('--shrink', '1.395'));
const budget = 10;
const tries = Number(arg('--tries', '6'));
const episodes = 50;
const tol = GEOMETRY.reachTolerance;
const picks = rowsOf(arg('--raw', '')).filter(
  (r): r is Row =>
    r['seed'] === s &&
    String(r['method']).startsWith('retargeted source slot (no fit)') &&
    Array.isArray(r['candidates']),
);
const targets = arg('--targets', [...new Set(picks.map((r) => r.target))].join(',')).split(',');

await initBackend(backendChoiceFromEnv());
const { policy, info } = await loadCheckpoint(ckpt);
const slotOf = (info['slots'] ?? {}) as Record<string, number>;
const slot = firstFreeSlot(policy, Object.values(slotOf))!;
const judge = EffectorJudge.decode(policy, readFileSync(judgePath), judgePath);
const side = policy.config.vision.imageSize;
const env = { imageSize: side };
const sources = Object.keys(slotOf)
  .filter((k) => k.startsWith('src-'))
  .map((k) => embodimentByName(k, 1));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

// where each reader takes the end effector and the target from, per frame
const READERS = {
  truth: ['true', 'true'],
  body: ['body', 'judged'],
  'body, true': ['body', 'true'],
  'true, judged': ['true', 'judged'],
  refit: ['refit', 'judged'], // the body fitted again on the play and the cell's tries
  judge: ['judge', 'judged'], // = judgeEpisode's distances (imageToWorld is rigid, x span/2)
  // the target read once per try, the median over its first 5 frames (--judge-target start, 2z)
  'body, start': ['body', 'start'],
  'refit, start': ['refit', 'start'],
} as const;
type Reader = keyof typeof READERS;
const NAMES = Object.keys(READERS) as Reader[];

/** Per reader, the try's closest approach (m) of its end effector to its target, and its last distance. */
function closest(
  ep: Episode,
  body: BodyTracker,
  refit: BodyTracker,
): { min: Record<Reader, number>; last: Record<Reader, number> } {
  const w = ep.objects.length / ep.length;
  const at = {
    true: Array.from(
      { length: ep.length },
      (_, t) => [ep.effector![2 * t]!, ep.effector![2 * t + 1]!] as [number, number],
    ),
    body: body.track(ep),
    refit: refit.track(ep),
    judge: judge.positions(ep.frames, ep.length),
  };
  const goal = {
    // the target's image position (the objects' first slot) in world coordinates
    true: Array.from({ length: ep.length }, (_, t) =>
      imageToWorld(judge.camera, ep.objects[t * w]!, ep.objects[t * w + 1]!),
    ),
    judged: judge.targetPositions(ep.frames, ep.length),
    start: judge.startTargetPositions(ep.frames, ep.length),
  };
  const d = Object.fromEntries(
    NAMES.map((k) => {
      const [a, g] = READERS[k];
      return [k, at[a].map((p, t) => Math.hypot(p[0] - goal[g][t]![0], p[1] - goal[g][t]![1]))];
    }),
  ) as Record<Reader, number[]>;
  const of = (f: (xs: number[]) => number) =>
    Object.fromEntries(NAMES.map((k) => [k, f(d[k])])) as Record<Reader, number>;
  return { min: of((xs) => Math.min(...xs)), last: of((xs) => xs.at(-1)!) };
}

// --known: an earlier run's rows; their 50-episode successes are reused (the same episodes)
const known = new Map<string, number>(
  rowsOf(arg('--known', '')).map((r) => [
    `${r['target']} ${r['seed']} ${r['name']}`,
    r['success'] as number,
  ]),
);
/** The table's no-fit row: the candidate's slot copied into the free slot, through its map. */
async function evaluate(
  e: ReturnType<typeof embodimentByName>,
  name: string,
  m: ReturnType<typeof retargetMap>,
): Promise<number> {
  copySlot(policy, slotOf[name]!, slot);
  const ev = await runEpisodes(
    e,
    'reach',
    seedRange(episodes, 700_000 + 10_000 * s),
    retargetedController(policyController(policy, { slot, rng: new Rng(710_000 + 10_000 * s) }), m),
    { env, parallel: 25 },
  );
  return ev.successRate;
}

const out: Record<string, unknown>[] = [];
const maps = new Map<string, ReturnType<typeof identifyActionMap>>();
for (const t of targets) {
  const row = picks.find((r) => r.target === t);
  if (!row) throw new Error(`pick-read: no pick row for ${t} at seed ${s} in --raw`);
  const e = embodimentByName(t, 1);
  // results' play for the cell, and retarget's identified maps (its seeds)
  const base = 1_000_000 * (s + 1) + 10_000 * budget;
  const play = await playRecorder(side, s)(e, playSeeds(budget, s));
  const body = judgedBody(judge, play, sources, shrink);
  const targetMap = identifyActionMap(play.map(({ effector: _, ...ep }) => ep));
  // every candidate's tries first: the refit reader's body is fitted on all of them
  const cell: {
    c: PickCandidate;
    m: ReturnType<typeof retargetMap>;
    tried: Episode[];
  }[] = [];
  for (const c of row.candidates!) {
    let B = maps.get(c.name);
    if (!B) {
      const own = await runEpisodes(
        embodimentByName(c.name, 1),
        'reach',
        seedRange(10, 900_000),
        randomController(s),
        { record: true, untilSuccess: false, env },
      );
      B = identifyActionMap(own.episodes);
      maps.set(c.name, B);
    }
    const m = retargetMap(targetMap, B);
    // retarget's 6 tries (one batch, one flow-noise generator), then any more in batches of 6
    // with generators of their own, so the first 6 stay retarget's
    const tried: Episode[] = [];
    for (let from = 0; from < tries; from += 6) {
      const r = await runEpisodes(
        e,
        'reach',
        seedRange(Math.min(6, tries - from), base + 30_000 + 500 + from),
        retargetedController(
          policyController(policy, { slot: slotOf[c.name]!, rng: new Rng(s * 1_000 + 500 + from) }),
          m,
        ),
        { env, record: true, untilSuccess: false },
      );
      tried.push(...r.episodes);
    }
    cell.push({ c, m, tried });
  }
  const refit = judgedBody(judge, [...play, ...cell.flatMap((x) => x.tried)], sources, shrink);
  for (const { c, m, tried } of cell) {
    const reads = tried.map((ep) => closest(ep, body, refit));
    const per = reads.map((r) => r.min);
    const truth = tried.map((ep) => ep.stepsToSuccess >= 0);
    // per reader: tries read as reached, tries where that agrees with the simulator, and the
    // mean closest approach over the tries (a read without a threshold)
    const count = {} as Record<Reader, number>;
    const agree = {} as Record<Reader, number>;
    const approach = {} as Record<Reader, number>;
    for (const k of NAMES) {
      const hit = per.map((p) => p[k] < tol);
      count[k] = k === 'truth' ? truth.filter(Boolean).length : hit.filter(Boolean).length;
      agree[k] = hit.filter((h, i) => h === truth[i]).length;
      approach[k] = mean(per.map((p) => p[k]));
    }
    // the table's no-fit row: the candidate's slot copied into the free slot, through its map
    // (or its success from --known, an earlier run of this probe on the same cells)
    const ev = known.get(`${t} ${s} ${c.name}`) ?? (await evaluate(e, c.name, m));
    out.push({
      target: t,
      seed: s,
      name: c.name,
      count,
      agree,
      approach,
      success: ev,
      tries: per.map((p, i) => ({ ...p, reached: truth[i], last: reads[i]!.last })),
    });
    // the raw rows read retarget's tries: the first `raw` of these
    const raw = Math.round(c.success * 6);
    const mine = per.slice(0, 6).filter((p) => p.body < tol).length;
    const check = raw === mine ? '' : ` (raw rows read ${raw} of their 6, this ${mine})`;
    console.log(
      `${t} seed ${s} ${c.name.padEnd(6)} ${NAMES.map((k) => `${k} ${count[k]} (${(100 * approach[k]).toFixed(1)} cm)`).join(', ')} | 50 episodes ${(100 * ev).toFixed(0)}%${check}`,
    );
  }
  const cells = out.filter((r) => r['target'] === t);
  const of = (r: Record<string, unknown>, what: 'count' | 'approach', k: Reader) =>
    (r[what] as Record<Reader, number>)[k];
  // a reader's pick: the most tries read as reached, ties to the closer mean approach
  const pickBy = (k: Reader) =>
    cells.reduce((a, b) =>
      of(b, 'count', k) > of(a, 'count', k) ||
      (of(b, 'count', k) === of(a, 'count', k) && of(b, 'approach', k) < of(a, 'approach', k))
        ? b
        : a,
    );
  const pct = (r: Record<string, unknown>) => `${(100 * (r['success'] as number)).toFixed(0)}%`;
  console.log(
    `${t} seed ${s} picks: ${NAMES.map((k) => `${k} ${pickBy(k)['name']} ${pct(pickBy(k))}`).join('; ')}; best ${(100 * Math.max(...cells.map((r) => r['success'] as number))).toFixed(0)}%`,
  );
}

const corr = (xs: number[], ys: number[]) => {
  const mx = mean(xs);
  const my = mean(ys);
  const sxy = xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - my), 0);
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  const syy = ys.reduce((a, y) => a + (y - my) ** 2, 0);
  return sxy / Math.sqrt(sxx * syy);
};
const success = out.map((r) => r['success'] as number);
console.log(
  `${out.length} candidates in ${new Set(out.map((r) => r['target'])).size} cells; 50-episode success ${(100 * mean(success)).toFixed(0)}% on average`,
);
for (const k of NAMES) {
  const read = out.map((r) => (r['count'] as Record<Reader, number>)[k] / tries);
  const near = out.map((r) => -(r['approach'] as Record<Reader, number>)[k]);
  const agree = out.reduce((a, r) => a + (r['agree'] as Record<Reader, number>)[k], 0);
  console.log(
    `${k.padEnd(12)} tries read as reached vs the 50-episode success: correlation ${corr(read, success).toFixed(2)}, mean ${(100 * mean(read)).toFixed(0)}%; closest approach: correlation ${corr(near, success).toFixed(2)}; agrees with the simulator on ${agree} of ${out.length * tries} tries`,
  );
}
const file = arg('--out', '');
if (file) writeFileSync(file, JSON.stringify({ args: process.argv.slice(3), rows: out }, null, 1));
