// Probe for docs/results.md 2y: how each way of reading the candidates' tries would pick, from
// pick-read.ts rows (no policy runs). For every reader (the judged body, the body refitted on the
// tries, each against the target read once per try (2z), the simulator, the camera judge) three
// rules: the most tries read as reached with ties to
// the closer mean last distance (retarget's 'reached'), the same with ties to the closer mean
// closest approach, and the closest mean approach (retarget's 'approach'); each as the mean
// 50-episode no-fit success of the slot it picks over the cells of each file, beside the best
// and the mean candidate. --tries N reads the first N tries of each candidate (default 6). Then,
// over all the files' candidates, how each reader reads slots of known strength (2z).
//   pnpm probe pick-rules.ts A.json[,A2.json] B.json ...   (one column per argument)
import { GEOMETRY } from '@selfalign/sim';
import { arg, rowsOf } from './args.js';

type Reader = 'body' | 'refit' | 'truth' | 'judge' | 'body, start' | 'refit, start';
type Try = Record<Reader, number> & { reached: boolean; last?: Record<Reader, number> };
type Row = { target: string; seed: number; name: string; success: number; tries: Try[] };

const tol = GEOMETRY.reachTolerance;
const n = Number(arg('--tries', '6'));
const columns = process.argv
  .slice(2)
  .filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--tries');
if (columns.length === 0)
  throw new Error('usage: pick-rules.ts A.json[,A2.json] B.json ... [--tries N]');
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Per candidate and reader: tries read as reached, mean closest approach, mean last distance. */
const read = (r: Row, k: Reader) => {
  const ts = r.tries.slice(0, n);
  if (ts.length < n) throw new Error(`${r.target} ${r.name}: ${ts.length} tries, --tries ${n}`);
  return {
    count: ts.filter((t) => (k === 'truth' ? t.reached : t[k] < tol)).length,
    approach: mean(ts.map((t) => t[k])),
    last: mean(ts.map((t) => t.last?.[k] ?? Number.NaN)), // absent in 12-try runs
  };
};
const RULES = {
  'most reached, ties to the last distance': (a, b) => b.count - a.count || a.last - b.last,
  'most reached, ties to the approach': (a, b) => b.count - a.count || a.approach - b.approach,
  'closest mean approach': (a, b) => a.approach - b.approach,
} satisfies Record<string, (a: ReturnType<typeof read>, b: ReturnType<typeof read>) => number>;

const table = new Map<string, string[]>();
const put = (label: string, v: number) =>
  table.set(label, [
    ...(table.get(label) ?? []),
    Number.isNaN(v) ? '' : `${(100 * v).toFixed(1)}%`,
  ]);
for (const col of columns) {
  const rows = rowsOf(col) as Row[];
  const cells = new Map<string, Row[]>();
  for (const r of rows)
    cells.set(`${r.target} ${r.seed}`, [...(cells.get(`${r.target} ${r.seed}`) ?? []), r]);
  for (const k of ['body', 'refit', 'body, start', 'refit, start', 'truth', 'judge'] as const)
    for (const [rule, cmp] of Object.entries(RULES)) {
      // a reader or the last distances the rows do not hold (runs before this session's refit)
      if (!(k in rows[0]!.tries[0]!) || (rule.includes('last') && !rows[0]!.tries[0]!.last)) {
        put(`${k}: ${rule}`, Number.NaN);
        continue;
      }
      // the pick: the first candidate in the rule's order (a stable sort keeps the tried order on ties)
      const picks = [...cells.values()].map(
        (cs) => [...cs].sort((a, b) => cmp(read(a, k), read(b, k)))[0]!,
      );
      put(`${k}: ${rule}`, mean(picks.map((p) => p.success)));
    }
  put(
    'the best candidate',
    mean([...cells.values()].map((cs) => Math.max(...cs.map((c) => c.success)))),
  );
  put('the mean candidate', mean([...cells.values()].map((cs) => mean(cs.map((c) => c.success)))));
  console.log(`${col}: ${cells.size} cells`);
}
console.log(`| pick (${n} tries) | ${columns.map((c) => c.split('/').at(-1)).join(' | ')} |`);
console.log(`|---|${columns.map(() => '---').join('|')}|`);
for (const [label, vs] of table) console.log(`| ${label} | ${vs.join(' | ')} |`);

// How each reader reads slots of known strength (2z: a gate's absolute threshold depends on it):
// over every column's candidates, by 50-episode success band, the share of tries read as reached
// and of candidates read at 5 of 6 or more.
const everyRow = columns.flatMap((col) => rowsOf(col) as Row[]);
const readers = (
  ['truth', 'body', 'body, start', 'refit', 'refit, start', 'judge'] as const
).filter((k) => k === 'truth' || k in everyRow[0]!.tries[0]!);
const hit = (t: Try, k: Reader) => (k === 'truth' ? t.reached : t[k] < tol);
console.log(
  `\n| candidates by 50-episode success | candidates | mean success | ${readers.map((k) => `tries read as reached: ${k}`).join(' | ')} | ${readers.map((k) => `read at 5 of 6 or more: ${k}`).join(' | ')} |`,
);
console.log(
  `|---|---|---|${readers.map(() => '---').join('|')}|${readers.map(() => '---').join('|')}|`,
);
for (const [lo, hi, label] of [
  [0.8, 2, '80% or more'],
  [0.6, 0.8, '60-80%'],
  [0, 0.6, 'below 60%'],
] as const) {
  const band = everyRow.filter((r) => r.success >= lo && r.success < hi);
  const tries = band.flatMap((r) => r.tries.slice(0, n));
  const pc = (x: number) => `${(100 * x).toFixed(1)}%`;
  console.log(
    `| ${label} | ${band.length} | ${pc(mean(band.map((r) => r.success)))} | ${readers
      .map((k) => pc(tries.filter((t) => hit(t, k)).length / tries.length))
      .join(' | ')} | ${readers
      .map(
        (k) =>
          `${Math.round((100 * band.filter((r) => r.tries.slice(0, n).filter((t) => hit(t, k)).length >= 5).length) / band.length)}%`,
      )
      .join(' | ')} |`,
  );
}
