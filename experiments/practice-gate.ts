// Probe for docs/results.md 2u ("Seeds 0 and 1"): how practice's gate and its one round did per
// cell, read from the raw rows of `results --practice-track body` (no policy runs). Per cell it
// pairs retarget's success after its DAgger rounds (50 episodes) with the share of practice's
// first tries the tracker read as reached, and the success after the gated practice row; then the
// correlation of read and true, how many strong slots were kept and weak ones practised, and what
// practice did to the cells it touched.
//   pnpm probe practice-gate.ts RAW.json [RAW.json ...]
import { readFileSync } from 'node:fs';

interface Row {
  target: string;
  seed: number;
  method: string;
  success: number;
  kept?: number;
  practiceTried?: number[];
}

const files = process.argv.slice(2);
if (files.length === 0) throw new Error('usage: practice-gate.ts RAW.json [RAW.json ...]');
const rows = files.flatMap((f) => (JSON.parse(readFileSync(f, 'utf8')) as { rows: Row[] }).rows);
const key = (r: Row) => `${r.target} / seed ${r.seed}`;
const teacher = new Map(
  rows.filter((r) => r.method.startsWith('retarget, round 2 ')).map((r) => [key(r), r]),
);
const cells = rows
  .filter((r) => r.method.startsWith('practice (stop at'))
  .map((p) => {
    const t = teacher.get(key(p));
    if (!t || !p.practiceTried) throw new Error(`${key(p)}: no retarget row or no tries`);
    return {
      cell: key(p),
      before: t.success,
      read: p.practiceTried[0]!,
      after: p.success,
      kept: p.kept === 0,
    };
  });
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const pct = (x: number) => `${Math.round(100 * x)}%`;
for (const c of cells)
  console.log(
    `${c.cell}: retarget ${pct(c.before)}, read ${Math.round(10 * c.read)}/10 -> ${c.kept ? 'kept' : pct(c.after)}`,
  );
const mb = mean(cells.map((c) => c.before));
const mr = mean(cells.map((c) => c.read));
const cov = mean(cells.map((c) => (c.before - mb) * (c.read - mr)));
const sd = (xs: number[], m: number) => Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
const corr =
  cov /
  (sd(
    cells.map((c) => c.before),
    mb,
  ) *
    sd(
      cells.map((c) => c.read),
      mr,
    ));
console.log(
  `${cells.length} cells: read vs true correlation ${corr.toFixed(2)}; mean read ${pct(mr)}, true ${pct(mb)}`,
);
const strong = cells.filter((c) => c.before >= 0.8);
const weak = cells.filter((c) => c.before < 0.8);
console.log(
  `at 80% or more: ${strong.filter((c) => c.kept).length} of ${strong.length} kept; below: ${weak.filter((c) => !c.kept).length} of ${weak.length} practised`,
);
const practised = cells.filter((c) => !c.kept);
for (const [name, band] of [
  ['at 34% or less', practised.filter((c) => c.before <= 0.34)],
  ['above 34%', practised.filter((c) => c.before > 0.34)],
  ['all practised', practised],
] as const)
  console.log(
    `${name}: ${band.length} cells, ${band.filter((c) => c.after > c.before).length} up, ${band.filter((c) => c.after < c.before).length} down, mean change ${(100 * mean(band.map((c) => c.after - c.before))).toFixed(1)} points`,
  );
