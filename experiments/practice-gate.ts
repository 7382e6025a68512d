// Probe for docs/results.md 2u ("Seeds 0 and 1"): how practice's gate and its one round did per
// cell, read from the raw rows of `results --practice-track body` (no policy runs). Per cell it
// pairs retarget's success after its DAgger rounds (50 episodes) with the share of practice's
// first tries the tracker read as reached, and the success after the gated practice row; then the
// correlation of read and true, how many strong slots were kept and weak ones practised, and what
// practice did to the cells it touched.
// With --gate G: what a lower gate would have done with the same rows. A gate only decides
// whether practice runs: a cell read at G or more keeps retarget's slot (its round-2 row, the
// row a kept cell repeats), one read below G is practised exactly as in the run (the run's gate
// is higher, so it practised it too, with the same seeds). When the files also hold the
// baselines ('no adaptation', 'oracle adapter' rows of the same targets and seeds), each
// target's gap closed (seed means, as `results` computes it) for retarget, the run's gate and G.
//   pnpm probe practice-gate.ts [--gate G] RAW.json [RAW.json ...]
import { readFileSync } from 'node:fs';

interface Row {
  target: string;
  seed: number;
  method: string;
  success: number;
  actionMse: number;
  kept?: number;
  practiceTried?: number[];
}

const usage = 'usage: practice-gate.ts [--gate G] RAW.json [RAW.json ...]';
const argv = process.argv.slice(2);
const gateAt = argv.indexOf('--gate');
const gate = gateAt >= 0 ? Number(argv[gateAt + 1]) : undefined;
if (gate !== undefined && !(gate > 0 && gate <= 1))
  throw new Error(`--gate: a share in (0, 1]; ${usage}`);
const files = gateAt >= 0 ? argv.filter((_, i) => i !== gateAt && i !== gateAt + 1) : argv;
if (files.length === 0) throw new Error(usage);
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
      target: p.target,
      seed: p.seed,
      before: t.success,
      beforeMse: t.actionMse,
      read: p.practiceTried[0]!,
      after: p.success,
      afterMse: p.actionMse,
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
// the read's squared error against the evaluation, and what binomial noise alone would give:
// TRIES tries at the gate (the runs' --practice-tries) and EPISODES evaluation episodes
const TRIES = 10;
const EPISODES = 50;
const binomial = (n: number) => mean(cells.map((c) => (c.before * (1 - c.before)) / n));
const mse = mean(cells.map((c) => (c.read - c.before) ** 2));
console.log(
  `read vs true: mean squared error ${mse.toFixed(3)} (bias ${(100 * (mr - mb)).toFixed(1)} points); binomial noise of ${TRIES} tries ${binomial(TRIES).toFixed(3)}, of ${EPISODES} evaluation episodes ${binomial(EPISODES).toFixed(3)}, the rest (the tracker) ${(mse - binomial(TRIES) - binomial(EPISODES)).toFixed(3)}; with 20 tries about ${(mse - binomial(TRIES) + binomial(20)).toFixed(3)}, with 40 ${(mse - binomial(TRIES) + binomial(40)).toFixed(3)}`,
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

if (gate !== undefined) {
  // the counterfactual: kept at G or more, practised as in the run below it
  if (cells.some((c) => c.kept && c.read < gate))
    throw new Error(
      `--gate ${gate}: above the run's own gate (a cell kept by the run is read below it)`,
    );
  type Cell = (typeof cells)[number];
  // a cell's numbers with retarget's slot kept, or after its practice round
  const outcome = (c: Cell, keep: boolean) =>
    keep ? { success: c.before, mse: c.beforeMse } : { success: c.after, mse: c.afterMse };
  const atG = (c: Cell) => outcome(c, c.read >= gate);
  const atRun = (c: Cell) => outcome(c, c.kept);
  const changed = cells.filter((c) => !c.kept && c.read >= gate);
  console.log(
    `\ngate ${pct(gate)}: ${changed.length} cells the run practised are kept instead (${changed
      .map((c) => `${c.cell} read ${Math.round(10 * c.read)}: ${pct(c.after)} -> ${pct(c.before)}`)
      .join('; ')})`,
  );
  const practisedG = cells.filter((c) => c.read < gate);
  console.log(
    `gate ${pct(gate)}: ${practisedG.length} cells practised, ${practisedG.filter((c) => c.after > c.before).length} up, ${practisedG.filter((c) => c.after < c.before).length} down, mean change ${(100 * mean(practisedG.map((c) => c.after - c.before))).toFixed(1)} points; mean success over all cells ${pct(mean(cells.map((c) => atG(c).success)))} (the run's gate ${pct(mean(cells.map((c) => atRun(c).success)))}, retarget ${pct(mean(cells.map((c) => c.before)))})`,
  );
  // each target's gap closed from the seed means, against the files' baselines
  // a baseline's success and action MSE over the seeds, one row per seed (a baseline merged
  // from several files appears once per file); undefined when a seed has none
  const base = (method: string, target: string, seeds: number[]) => {
    const xs = seeds.map((s) =>
      rows.find((r) => r.method === method && r.target === target && r.seed === s),
    );
    if (!xs.every((x) => x !== undefined)) return undefined;
    return { success: mean(xs.map((x) => x.success)), mse: mean(xs.map((x) => x.actionMse)) };
  };
  const targets = [...new Set(cells.map((c) => c.target))];
  // NaN where the oracle does no better than no adaptation (results' 'no gap')
  const share = (x: number, none: number, oracle: number, higher: boolean) => {
    const gap = higher ? oracle - none : none - oracle;
    return gap > 1e-9 ? (higher ? x - none : none - x) / gap : Number.NaN;
  };
  const table = targets.flatMap((t) => {
    const of = cells.filter((c) => c.target === t);
    const seeds = of.map((c) => c.seed);
    const none = base('no adaptation', t, seeds);
    const oracle = base('oracle adapter', t, seeds);
    if (!none || !oracle) return [];
    const gaps = (pick: (c: Cell) => { success: number; mse: number }) => [
      share(mean(of.map((c) => pick(c).success)), none.success, oracle.success, true),
      share(mean(of.map((c) => pick(c).mse)), none.mse, oracle.mse, false),
    ];
    return [
      {
        t,
        seeds,
        retarget: gaps((c) => outcome(c, true)),
        run: gaps(atRun),
        atG: gaps(atG),
      },
    ];
  });
  if (table.length > 0) {
    console.log(
      `\n| target (seeds) | retarget | the run's gate | gate ${pct(gate)} |\n|---|---|---|---|`,
    );
    const show = (x: number) => (Number.isFinite(x) ? pct(x) : 'no gap');
    const cell = (g: number[]) => `${show(g[0]!)} / ${show(g[1]!)}`;
    for (const r of table)
      console.log(
        `| ${r.t} (${r.seeds.join(', ')}) | ${cell(r.retarget)} | ${cell(r.run)} | ${cell(r.atG)} |`,
      );
    const sum = (k: 'retarget' | 'run' | 'atG') => {
      const s = table.map((r) => r[k][0]!).filter(Number.isFinite);
      const m = table.map((r) => r[k][1]!).filter(Number.isFinite);
      return `${pct(mean(s))} / ${pct(mean(m))}, bar on ${s.filter((x) => x >= 0.8).length} of ${s.length}`;
    };
    console.log(`| **mean over targets** | ${sum('retarget')} | ${sum('run')} | ${sum('atG')} |`);
  }
}

// where the files hold the nearest source slot's row too: the cells where it acts better than
// the judge's pick, both with no fit (the 'retargeted source slot (no fit)' row)
const nearestRows = rows.filter((r) => r.method === 'nearest source slot');
if (nearestRows.length > 0) {
  const picks = rows.filter((r) => r.method.startsWith('retargeted source slot (no fit)'));
  const better = picks.flatMap((p) => {
    const n = nearestRows.find((r) => key(r) === key(p));
    return n && n.success > p.success + 0.1
      ? [`${key(p)} ${pct(n.success)} vs ${pct(p.success)}`]
      : [];
  });
  console.log(
    `\nthe nearest source slot beats the pick (no fit) by more than 10 points in ${better.length} of ${picks.length} cells${better.length > 0 ? `: ${better.join('; ')}` : ''}`,
  );
}
