// Probe for docs/results.md 2w: what `results --retarget-also-nearest` changed, read from raw rows
// (no policy runs). The flag adds the nearest source slot (by align's objective on the play) as
// a sixth candidate after the perception rank's first five, tried last with its own seeds, and
// the pick moves only when it reads strictly better; so where the pick stays among the first
// five, every row of the cell is the one a run without the flag gives. Per cell: the first
// five's best read, the nearest slot's read (or 'no sixth candidate'), the pick, and whether it moved.
// With --without (the same pipeline without the flag, run on the cells whose pick moved): checks
// that its five candidates read exactly as in the --with run (the tries are seeded per
// candidate), and with --out writes the pipeline-without-the-flag rows of every cell (the --with
// run's rows, relabelled, where the pick stayed; --without's where it moved) for
// `results --merge` to tabulate beside the --with run.
//   pnpm probe also-nearest.ts --with A.json,B.json [--without C.json] [--out D.json]
import { arg, type PickCandidate, type PickRow, rowsOf, writeDerived } from './args.js';

type Row = PickRow;
type Candidate = PickCandidate;

const WITH_LABEL = 'pick of 5 and the nearest by the camera judge';
const WITHOUT_LABEL = 'pick of 5 by the camera judge';
const usage = 'usage: also-nearest.ts --with A.json[,..] [--without B.json[,..]] [--out C.json]';
const withRows = rowsOf(arg('--with', '')) as Row[];
if (withRows.length === 0) throw new Error(usage);
const withoutRows = rowsOf(arg('--without', '')) as Row[];
const out = arg('--out', '');
const key = (r: Row) => `${r.target} / seed ${r.seed}`;
const pct = (x: number) => `${Math.round(100 * x)}%`;
const read = (c: Candidate) => `${c.name} ${Math.round(6 * c.success)}/6`;
// the candidates' winner as retarget picks it: more successes, then the shorter final distance
const best = (cs: readonly Candidate[]) =>
  cs.reduce((b, c) =>
    c.success > b.success || (c.success === b.success && c.distance < b.distance) ? c : b,
  );
const noFit = (rows: Row[], k: string) =>
  rows.find((r) => key(r) === k && r.method.startsWith('retargeted source slot (no fit)'));

const cells = withRows.filter((r) => r.method.startsWith('retargeted source slot (no fit)'));
const moved = new Set<string>();
for (const c of cells) {
  const cs = c.candidates ?? [];
  if (cs.length < 5 || cs.length > 6) throw new Error(`${key(c)}: ${cs.length} candidates`);
  const five = best(cs.slice(0, 5));
  if (best(cs).name !== c.pick) throw new Error(`${key(c)}: the pick is not the best read`);
  const sixth = cs[5];
  if (c.pick !== five.name) moved.add(key(c));
  console.log(
    `${key(c)}: first five best ${read(five)}; nearest ${sixth ? read(sixth) : 'no sixth candidate'} -> ${c.pick} ${pct(c.success)} (no fit)${c.pick !== five.name ? ' MOVED' : ''}`,
  );
}
// the tries saturate: cells where more than one candidate reads the top count (the final
// distance breaks the tie)
const tied = cells.filter((c) => {
  const cs = c.candidates ?? [];
  const top = Math.max(...cs.map((x) => x.success));
  return cs.filter((x) => x.success === top).length > 1;
});
console.log(
  `\n${cells.length} cells; the nearest slot outside the first five in ${cells.filter((c) => c.candidates?.length === 6).length}; the pick moved in ${moved.size}${moved.size > 0 ? `: ${[...moved].join('; ')}` : ''}; the top read shared by two or more candidates in ${tied.length} (${tied.filter((c) => Math.max(...c.candidates!.map((x) => x.success)) === 1).length} of them at every try)`,
);

// how well the pick's read of its own tries tells the picked slot's success (no fit, the
// evaluation's episodes): correlation and bias over the cells, and what a full read spans
const readOf = (c: Row) => c.candidates!.find((x) => x.name === c.pick)!.success;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const rs = cells.map(readOf);
const ss = cells.map((c) => c.success);
const [mr, ms] = [mean(rs), mean(ss)];
const sd = (xs: number[], m: number) => Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
const corr = mean(rs.map((r, i) => (r - mr) * (ss[i]! - ms))) / (sd(rs, mr) * sd(ss, ms));
const full = cells.filter((c) => readOf(c) === 1).map((c) => c.success);
console.log(
  `the pick's read vs its slot's success (no fit): correlation ${corr.toFixed(2)}, bias ${(100 * (mr - ms)).toFixed(0)} points; read ${full.length > 0 ? `at every try in ${full.length} cells, acting at ${pct(Math.min(...full))}-${pct(Math.max(...full))} (mean ${pct(mean(full))})` : 'at every try in no cell'}`,
);

// with --without: the moved cells' rows without the flag
for (const k of withoutRows.length > 0 || out ? moved : []) {
  const w = noFit(withoutRows, k);
  const a = noFit(withRows, k)!;
  if (!w) throw new Error(`--without has no row for ${k}, whose pick moved`);
  const same =
    w.candidates?.length === 5 &&
    w.candidates.every(
      (c, i) => c.name === a.candidates![i]!.name && c.success === a.candidates![i]!.success,
    );
  if (!same) throw new Error(`${k}: the five candidates read differently without the flag`);
  const last = (rows: Row[]) => rows.filter((r) => key(r) === k).at(-1)!;
  console.log(
    `${k}: without the nearest ${w.pick} ${pct(w.success)} (no fit), final ${pct(last(withoutRows).success)}; with it ${a.pick} ${pct(a.success)}, final ${pct(last(withRows).success)}`,
  );
}
if (out) {
  const rows = [
    ...withRows
      .filter((r) => !moved.has(key(r)))
      .map((r) => ({ ...r, method: r.method.replace(WITH_LABEL, WITHOUT_LABEL) })),
    ...withoutRows.filter((r) => moved.has(key(r))),
  ];
  writeDerived(
    out,
    arg('--with', ''),
    `derived by experiments/also-nearest.ts from --with ${arg('--with', '')} --without ${arg('--without', '')}`,
    rows,
  );
}
