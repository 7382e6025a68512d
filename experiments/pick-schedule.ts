// Diagnostic for docs/results.md 2q: would another way of spending retarget's tries pick better
// teachers? Reads teacher-scan.ts's raw files (every source slot's success as a retargeted
// teacher on each target, 20 episodes) and takes those rates as each teacher's true success.
// Each schedule spends a budget of tries on candidates in body order (nearest first) and picks
// one; repeated `--draws` times with Bernoulli tries, the mean true success of its picks is what
// the schedule is worth on that target. Schedules: `even` (k candidates, budget / k tries each:
// retarget's pick), `halving` (successive halving: ceil(log2 k) rounds share the budget, the
// better half by success so far goes on; ties to the nearer body).
//   pnpm --filter @selfalign/experiments probe pick-schedule.ts \
//     ../docs/results/retarget/scan-seed0-a.json,../docs/results/retarget/scan-seed0-b.json [--draws 4000]
//     [--order SCORES.json[,SCORES2.json] --key plain.perception] [--tried RAW.json[,RAW2.json]]
// With --order the candidates are ordered by teacher-score.ts's score KEY (lowest first) instead
// of by body (docs/results.md 2r: the perception loss through each source slot). With --tried
// the candidates are those a `results --retarget-candidates` run tried, per target and seed (its
// raw rows' `candidates`, in their order), and each target is worth the mean over its seeds
// (docs/results.md 2s).
import { Rng } from '@selfalign/core';
import { arg, rowsOf } from './args.js';

interface ScanRow {
  target: string;
  source?: string;
  bodyError?: number;
  success?: number;
}

const files = process.argv[2]?.split(',') ?? [];
if (files.length === 0)
  throw new Error('usage: pick-schedule.ts SCAN.json[,SCAN2.json] [--draws N]');
const draws = Number(arg('--draws', '4000'));
const orderFiles = arg('--order', '').split(',').filter(Boolean);
const key = arg('--key', 'plain.perception');
const scoreOf = new Map<string, number>();
for (const r of rowsOf(orderFiles.join(',')))
  if (typeof r[key] === 'number') scoreOf.set(`${r['target']}/${r['source']}`, r[key] as number);
const byTarget = new Map<string, { error: number; success: number }[]>();
for (const r of rowsOf(files.join(',')) as unknown as ScanRow[])
  if (r.success !== undefined && r.bodyError !== undefined) {
    const list = byTarget.get(r.target) ?? [];
    const score = orderFiles.length > 0 ? scoreOf.get(`${r.target}/${r.source}`) : r.bodyError;
    if (score === undefined)
      throw new Error(`pick-schedule: no ${key} for ${r.target}/${r.source}`);
    list.push({ error: score, success: r.success });
    byTarget.set(r.target, list);
  }
for (const list of byTarget.values()) list.sort((a, b) => a.error - b.error);
/** Per target, the candidate lists to pick from (their true success rates, in try order). */
const lists = new Map<string, number[][]>();
const triedFiles = arg('--tried', '');
if (triedFiles) {
  const rate = new Map(
    (rowsOf(files.join(',')) as unknown as ScanRow[])
      .filter((r) => r.success !== undefined)
      .map((r) => [`${r.target}/${r.source}`, r.success!]),
  );
  for (const r of rowsOf(triedFiles)) {
    const names = (r['candidates'] as { name: string }[] | undefined)?.map((c) => c.name);
    if (!names) continue;
    const t = r['target'] as string;
    const rates = names.map((n) => {
      const x = rate.get(`${t}/${n}`);
      if (x === undefined) throw new Error(`pick-schedule: no scan rate for ${t}/${n}`);
      return x;
    });
    lists.set(t, [...(lists.get(t) ?? []), rates]);
  }
} else for (const [t, list] of byTarget) lists.set(t, [list.map((c) => c.success)]);

const rng = new Rng(1);
const tries = (p: number, n: number) => {
  let s = 0;
  for (let i = 0; i < n; i++) if (rng.uniform() < p) s++;
  return s;
};
/** The picked candidate's index (body order) after spending `budget` tries. */
type Schedule = (rates: readonly number[], k: number, budget: number) => number;
const even: Schedule = (rates, k, budget) => {
  const n = Math.floor(budget / k);
  let best = 0;
  let bestS = -1;
  for (let i = 0; i < k; i++) {
    const s = tries(rates[i]!, n);
    if (s > bestS) [best, bestS] = [i, s];
  }
  return best;
};
const halving: Schedule = (rates, k, budget) => {
  let alive = Array.from({ length: k }, (_, i) => i);
  const wins = new Array<number>(k).fill(0);
  const rounds = Math.max(1, Math.ceil(Math.log2(k)));
  let used = 0;
  for (let r = 0; r < rounds; r++) {
    const share = r === rounds - 1 ? budget - used : Math.floor((budget - used) / (rounds - r));
    const n = Math.max(1, Math.floor(share / alive.length));
    for (const i of alive) wins[i]! += tries(rates[i]!, n);
    used += n * alive.length;
    // survivors have had the same tries: rank by wins, ties to the nearer body
    alive = [...alive].sort((a, b) => wins[b]! - wins[a]! || a - b);
    if (r < rounds - 1) alive = alive.slice(0, Math.ceil(alive.length / 2));
  }
  return alive[0]!;
};
const schedules: [string, Schedule, number, number][] = [
  ['even, 5 x 6 (retarget)', even, 5, 30],
  ['even, 10 x 3', even, 10, 30],
  ['halving, 5, 30 tries', halving, 5, 30],
  ['halving, 12, 30 tries', halving, 12, 30],
  ['halving, 32, 30 tries', halving, 32, 30],
  ['even, 5 x 8', even, 5, 40],
  ['halving, 16, 40 tries', halving, 16, 40],
  ['halving, 32, 40 tries', halving, 32, 40],
  ['even, 8 x 6', even, 8, 48],
  ['even, 5 x 12', even, 5, 60],
  ['even, 5 x 24', even, 5, 120],
];
const targets = [...lists.keys()];
const meanOf = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
console.log(`| schedule | ${targets.join(' | ')} | mean | targets >= 80% |`);
console.log(`|---|${targets.map(() => '---|').join('')}---|---|`);
const fewest = Math.min(...[...lists.values()].flat().map((rates) => rates.length));
// a schedule over more candidates than were tried says nothing about those tried
for (const [name, pick, k, budget] of schedules.filter(([, , k]) => !triedFiles || k <= fewest)) {
  const worth = targets.map((t) =>
    meanOf(
      lists.get(t)!.map((rates) => {
        let sum = 0;
        for (let d = 0; d < draws; d++)
          sum += rates[pick(rates, Math.min(k, rates.length), budget)]!;
        return sum / draws;
      }),
    ),
  );
  const mean = meanOf(worth);
  console.log(
    `| ${name} | ${worth.map(pct).join(' | ')} | ${pct(mean)} | ${worth.filter((w) => w >= 0.8).length} |`,
  );
}
const best = targets.map((t) => meanOf(lists.get(t)!.map((rates) => Math.max(...rates))));
console.log(
  `| best of ${triedFiles ? 'the candidates tried' : 'all sources'} | ${best.map(pct).join(' | ')} | ${pct(meanOf(best))} | |`,
);
