// Probe for docs/results.md 2y: the pipeline with `--retarget-pick-by approach`, read from raw
// rows (no policy runs). The candidates' tries do not depend on how they are read, so where the
// closest mean approach picks the candidate the count picked, every row of the cell is the
// count's; only the cells whose pick moves need a run. --reads: pick-read.ts rows of the same
// cells (each candidate's mean closest approach through the judged body, as retarget computes
// it); --base: the count-picked pipeline's raw rows; --moved: the approach-picked pipeline's rows
// on the cells whose pick moved. Checks that --moved covers exactly the moved cells, that its
// candidates read as --base's, and that its pick is the one --reads names; prints each moved
// cell's rows both ways; with --out writes the approach pipeline's rows of every cell (--base's,
// relabelled, where the pick stayed; --moved's where it moved) for `results --merge`.
//   pnpm probe pick-by.ts --reads R.json[,..] --base A.json[,..] --moved M.json[,..] [--out D.json]
import { arg, type PickRow, rowsOf, writeDerived } from './args.js';

const BASE_LABEL = 'pick of 5 and the nearest through the judged body';
const MOVED_LABEL = 'pick of 5 and the nearest by the closest approach through the judged body';
type Read = { target: string; seed: number; name: string; approach: { body: number } };
const reads = rowsOf(arg('--reads', '')) as Read[];
const base = rowsOf(arg('--base', '')) as PickRow[];
const moved = rowsOf(arg('--moved', '')) as PickRow[];
if (reads.length === 0 || base.length === 0)
  throw new Error('usage: pick-by.ts --reads R.json --base A.json --moved M.json [--out D.json]');
const key = (r: { target: string; seed: number }) => `${r.target} / seed ${r.seed}`;
const pct = (x: number) => `${Math.round(100 * x)}%`;
const noFit = (rows: PickRow[], k: string) =>
  rows.find((r) => key(r) === k && r.method.startsWith('retargeted source slot (no fit)'));

const cells = base.filter((r) => r.method.startsWith('retargeted source slot (no fit)'));
const movedKeys = new Set<string>();
for (const c of cells) {
  const k = key(c);
  // the approach pick: the lowest mean closest approach (ties: the earlier candidate)
  const mine = c.candidates!.map((x) => {
    const r = reads.find((y) => key(y) === k && y.name === x.name);
    if (!r) throw new Error(`--reads has no row for ${x.name} at ${k}`);
    return { name: x.name, approach: r.approach.body };
  });
  const pick = mine.reduce((b, x) => (x.approach < b.approach ? x : b)).name;
  if (pick === c.pick) continue;
  movedKeys.add(k);
  const m = noFit(moved, k);
  if (!m) throw new Error(`--moved has no row for ${k}, whose pick moves to ${pick}`);
  if (m.pick !== pick) throw new Error(`${k}: --moved picked ${m.pick}, the reads say ${pick}`);
  const same = m.candidates!.every(
    (x, i) => x.name === c.candidates![i]!.name && x.success === c.candidates![i]!.success,
  );
  if (!same) throw new Error(`${k}: --moved's candidates read differently from --base's`);
  // retarget's own mean closest approach (raw rows since --retarget-pick-by) is the probe's,
  // to 0.1 mm (the probe's last-link shrink is results' 1.3951... rounded to 1.395)
  for (const [i, x] of m.candidates!.entries()) {
    const a = x.approach;
    if (a !== undefined && Math.abs(a - mine[i]!.approach) > 1e-4)
      throw new Error(
        `${k}: ${x.name}'s approach ${a} in --moved, ${mine[i]!.approach} in --reads`,
      );
  }
  const rows = (all: PickRow[]) =>
    all
      .filter((r) => key(r) === k)
      .map((r) => pct(r.success))
      .join(' -> ');
  console.log(`${k}: by count ${c.pick} ${rows(base)}; by approach ${pick} ${rows(moved)}`);
}
const extra = moved.filter(
  (r) => r.method.startsWith('retargeted source slot (no fit)') && !movedKeys.has(key(r)),
);
if (extra.length > 0)
  throw new Error(`--moved has cells whose pick does not move: ${extra.map(key).join('; ')}`);
console.log(`${cells.length} cells; the pick moves in ${movedKeys.size}`);
const out = arg('--out', '');
if (out) {
  const rows = [
    ...base
      .filter((r) => !movedKeys.has(key(r)))
      .map((r) => ({ ...r, method: r.method.replace(BASE_LABEL, MOVED_LABEL) })),
    ...moved,
  ];
  writeDerived(
    out,
    arg('--base', ''),
    `derived by experiments/pick-by.ts from --base ${arg('--base', '')} --moved ${arg('--moved', '')}`,
    rows,
  );
}
