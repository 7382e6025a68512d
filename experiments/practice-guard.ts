// Probe for docs/results.md 2z: the pipeline with a change at practice's gate, read from raw rows
// (no policy runs): practice's round kept only when its own tries read better than the gate's
// (`results --practice-keep best` beside `--practice-stop-at 0.8`: 10 more tries of the
// practised slot, read through the same judged body), or the gate read through the body refitted
// on its tries (`--practice-track body+tries`). A cell whose gate stopped practice runs exactly
// as without the guard, so only the practised cells need a run (with the refitted gate that is
// an assumption: a gate the play's body read at 8 of 10 or more is taken to stop again). --base: the pipeline's raw rows; --guarded: the guarded
// pipeline's rows on the cells --base practised. Checks that --guarded covers exactly those
// cells and that every row before the guard reproduces --base's (the same picks, fits and
// tries); prints each practised cell both ways; with --out writes the guarded pipeline's rows
// of every cell (--base's, relabelled, where the gate stopped; --guarded's where it practised,
// without its duplicate '(keep best)' row) for `results --merge`. --from/--to: the text of
// --base's method names that --guarded's replace (default: the guard's label).
//   pnpm probe practice-guard.ts --base A.json[,..] --guarded G.json[,..] [--from T --to U]
//     [--out D.json]
import { arg, type PickRow, rowsOf, writeDerived } from './args.js';

const BASE_LABEL = 'pick of 5 and the nearest through the judged body refitted on the tries';
const FROM = arg('--from', BASE_LABEL);
const TO = arg('--to', `${BASE_LABEL}, practice kept only if its tries read better`);
type Row = PickRow & { kept?: number; practiceTried?: number[] };
const base = rowsOf(arg('--base', '')) as Row[];
const guarded = rowsOf(arg('--guarded', '')) as Row[];
if (base.length === 0 || guarded.length === 0)
  throw new Error('usage: practice-guard.ts --base A.json --guarded G.json [--out D.json]');
const key = (r: { target: string; seed: number }) => `${r.target} / seed ${r.seed}`;
const pct = (x: number) => `${Math.round(100 * x)}%`;
const gateRow = (rows: Row[], k: string) =>
  rows.find((r) => key(r) === k && r.method.startsWith('practice (stop at'));

// practised: the gate's tries read below the bar, round 1's fit kept (kept 0: the gate stopped)
const practised = new Set(
  base.filter((r) => r.method.startsWith('practice (stop at') && r.kept !== 0).map(key),
);
const guardedCells = new Set(guarded.map(key));
for (const k of practised)
  if (!guardedCells.has(k)) throw new Error(`--guarded has no rows for ${k}, a practised cell`);
for (const k of guardedCells)
  if (!practised.has(k)) throw new Error(`--guarded has ${k}, whose gate stopped practice`);
for (const k of practised) {
  // every row before practice reads as --base's
  const mine = (rows: Row[]) =>
    rows.filter((r) => key(r) === k && !r.method.startsWith('practice'));
  const b = mine(base);
  const g = mine(guarded);
  const same =
    b.length === g.length &&
    b.every(
      (r, i) =>
        r.method.replace(FROM, TO) === g[i]!.method &&
        r.success === g[i]!.success &&
        r.pick === g[i]!.pick,
    );
  if (!same) throw new Error(`${k}: --guarded's rows before the guard differ from --base's`);
  const was = gateRow(base, k)!;
  const now = gateRow(guarded, k)!;
  console.log(
    `${k}: gate ${pct(was.practiceTried![0]!)}, practised ${pct(was.success)}; guarded: tries ${now.practiceTried!.map(pct).join(', ')}, kept ${now.kept === 0 ? "retarget's slot" : "practice's"} ${pct(now.success)}`,
  );
}
console.log(`${new Set(base.map(key)).size} cells; practised ${practised.size}`);
const out = arg('--out', '');
if (out)
  writeDerived(
    out,
    arg('--base', ''),
    `derived by experiments/practice-guard.ts from --base ${arg('--base', '')} --guarded ${arg('--guarded', '')}`,
    [
      ...base
        .filter((r) => !practised.has(key(r)))
        .map((r) => ({ ...r, method: r.method.replace(FROM, TO) })),
      ...guarded.filter((r) => !r.method.startsWith('practice (keep best)')),
    ],
  );
