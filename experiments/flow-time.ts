// Diagnostic for docs/results.md (the align-closes-the-gap issue): do the alignment losses rank
// candidate slots by how well they act, and does it matter at which flow time they are
// evaluated? The three alignment losses are flow-matching losses: at a drawn t (as in
// pretraining) part of each loss is noise the model cannot predict whatever the slot; at t = 1
// (pure noise in, u = eps - x0 out) the loss is the task's regression error alone.
// For each target: candidates at the first free slot (no adaptation = the source mean, the
// oracle fitted on labelled demos, points on the way from the mean to the oracle, every source
// slot), scored by the held-out demo action loss (acting) and by the held-out play alignment
// losses at each flow time; the Spearman correlation across candidates says whether the
// alignment losses rank slots as acting does. Then align (free, Adam) with drawn t and with each
// fixed t, and what it buys: action loss, distance to the oracle, success.
//   pnpm --filter @selfalign/experiments probe flow-time.ts CKPT [--targets sign,offset,links]
//     [--play 10] [--times 1,0.7] [--steps 200] [--lr 1e-3] [--episodes 50] [--seed 0]
//     [--out FILE.json]
import { writeFile } from 'node:fs/promises';
import { align, evaluateLosses, loadCheckpoint, type TaskLosses } from '@selfalign/align';
import { featureExtractor } from '@selfalign/cli/shared';
import { initBackend } from '@selfalign/core';
import {
  disposePrefixCache,
  encodePrefix,
  type PrefixCache,
  type TrainBatch,
} from '@selfalign/experts';
import { slotVector, sourceSlotsOf, writeSlotVector } from '@selfalign/harness';
import { arg } from './args.js';
import { setupTarget } from './target.js';

const targets = arg('--targets', 'sign,offset,links').split(',');
const nPlay = Number(arg('--play', '10'));
const times = arg('--times', '1,0.7').split(',').map(Number);
const steps = Number(arg('--steps', '200'));
const lr = Number(arg('--lr', '1e-3'));
const episodes = Number(arg('--episodes', '50'));
const seed = Number(arg('--seed', '0'));
const outFile = arg('--out', '');
const DRAWS = 3; // seeds of drawn t / noise averaged per evaluation

await initBackend('wasm');
const loaded = await loadCheckpoint(process.argv[2]!);
const policy = loaded.policy;
const sources = sourceSlotsOf(loaded.info);
const extractor = await featureExtractor('default', process.cwd(), policy.config.featureDim);
const timeKeys = ['drawn', ...times.map(String)];
const TASKS = ['perception', 'dynamics', 'inverseDynamics', 'total'] as const;

/** Mean losses over DRAWS seeds at a flow time ('drawn': t drawn as in pretraining). */
function losses(
  batches: readonly TrainBatch[],
  objective: 'alignment' | 'action',
  time: string,
  caches?: (b: TrainBatch) => PrefixCache | undefined,
): TaskLosses {
  const sum: TaskLosses = { total: 0, perception: 0, dynamics: 0, inverseDynamics: 0, action: 0 };
  for (let k = 0; k < DRAWS; k++) {
    const l = evaluateLosses(policy, batches, {
      objective,
      seed: 100 + k,
      ...(caches ? { caches } : {}),
      ...(time === 'drawn' ? {} : { flowTime: Number(time) }),
    });
    for (const key of Object.keys(sum) as (keyof TaskLosses)[]) sum[key]! += (l[key] ?? 0) / DRAWS;
  }
  return sum;
}

/** Spearman rank correlation. */
function spearman(a: number[], b: number[]): number {
  const rank = (x: number[]) => {
    const order = x.map((v, i) => [v, i] as const).sort((p, q) => p[0] - q[0]);
    const r = new Array<number>(x.length);
    order.forEach(([, i], k) => {
      r[i] = k;
    });
    return r;
  };
  const ra = rank(a);
  const rb = rank(b);
  const n = a.length;
  const d2 = ra.reduce((s, r, i) => s + (r - rb[i]!) ** 2, 0);
  return 1 - (6 * d2) / (n * (n * n - 1));
}

const dist = (a: Float32Array, b: Float32Array) =>
  Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]!) ** 2, 0));
const f3 = (x: number) => x.toFixed(3);
const report: Record<string, unknown> = {};
const lines: string[] = [];

for (const name of targets) {
  const t0 = Date.now();
  const t = await setupTarget(policy, name, sources, extractor, {
    play: nPlay,
    oracleSteps: steps,
    seed,
  });
  const { slot, mean, oracle } = t;
  const split = t.play;
  const demoSplit = t.demos;
  const success = () => t.success(episodes);
  const caches = new Map<TrainBatch, PrefixCache>();
  const cacheOf = (b: TrainBatch) => {
    let k = caches.get(b);
    if (!k) {
      k = encodePrefix(policy, b);
      caches.set(b, k);
    }
    return k;
  };
  // the candidates
  const cands: { label: string; vec: Float32Array }[] = [
    { label: 'no adaptation (mean)', vec: mean },
    ...[0.25, 0.5, 0.75].map((a) => ({
      label: `mean + ${a} (oracle - mean)`,
      vec: mean.map((x, i) => x + a * (oracle[i]! - x)),
    })),
    { label: 'oracle', vec: oracle },
    ...sources.map((s) => ({ label: `source slot ${s}`, vec: slotVector(policy, s) })),
  ];
  const scored = cands.map(({ label, vec }) => {
    writeSlotVector(policy, slot, vec);
    const act = losses(demoSplit.heldOut, 'action', 'drawn').action;
    const al = Object.fromEntries(
      timeKeys.map((t) => [t, losses(split.heldOut, 'alignment', t, cacheOf)]),
    );
    return { label, act, al, toOracle: dist(vec, oracle) };
  });
  const acts = scored.map((s) => s.act);
  const rho: Record<string, Record<string, number>> = {};
  for (const ft of timeKeys)
    rho[ft] = Object.fromEntries(
      TASKS.map((k) => [
        k,
        spearman(
          acts,
          scored.map((s) => s.al[ft]![k]),
        ),
      ]),
    );
  // align from the mean with drawn t and with each fixed t
  const aligned: Record<
    string,
    { act: number; toOracle: number; success: number; held: TaskLosses }
  > = {};
  for (const ft of timeKeys) {
    writeSlotVector(policy, slot, mean);
    const r = await align(policy, split.train, {
      slot,
      parametrisation: 'free',
      init: 'current',
      basis: sources,
      maxSteps: steps,
      lr,
      seed,
      ...(ft === 'drawn' ? {} : { flowTime: Number(ft) }),
    });
    r.state.dispose();
    const vec = slotVector(policy, slot);
    aligned[ft] = {
      act: losses(demoSplit.heldOut, 'action', 'drawn').action,
      toOracle: dist(vec, oracle),
      success: await success(),
      held: losses(split.heldOut, 'alignment', ft, cacheOf),
    };
  }
  writeSlotVector(policy, slot, mean);
  const meanSuccess = await success();
  writeSlotVector(policy, slot, oracle);
  const oracleSuccess = await success();
  for (const k of caches.values()) disposePrefixCache(k);
  lines.push(
    `\n### ${name} (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
    '',
    `| candidate slot | held-out demo action loss | distance to oracle | ${timeKeys.map((t) => `alignment total (t ${t})`).join(' | ')} |`,
    `|---|---|---|${timeKeys.map(() => '---').join('|')}|`,
    ...scored.map(
      (s) =>
        `| ${s.label} | ${f3(s.act)} | ${f3(s.toOracle)} | ${timeKeys.map((t) => f3(s.al[t]!.total)).join(' | ')} |`,
    ),
    '',
    `Spearman correlation across the ${scored.length} candidates between the action loss and each alignment loss (1 = ranks slots as acting does):`,
    '',
    `| flow time | ${TASKS.join(' | ')} |`,
    `|---|${TASKS.map(() => '---').join('|')}|`,
    ...timeKeys.map((t) => `| ${t} | ${TASKS.map((k) => rho[t]![k]!.toFixed(2)).join(' | ')} |`),
    '',
    `Align (free, lr ${lr}, ${steps} steps from the mean) by flow time; no adaptation: action loss ${f3(scored[0]!.act)}, success ${(100 * meanSuccess).toFixed(0)}%; oracle: ${f3(scored[4]!.act)}, ${(100 * oracleSuccess).toFixed(0)}%:`,
    '',
    '| flow time | held-out demo action loss | distance to oracle (start ' +
      f3(scored[0]!.toOracle) +
      ') | success |',
    '|---|---|---|---|',
    ...timeKeys.map(
      (t) =>
        `| ${t} | ${f3(aligned[t]!.act)} | ${f3(aligned[t]!.toOracle)} | ${(100 * aligned[t]!.success).toFixed(0)}% |`,
    ),
  );
  console.log(lines.slice(lines.findLastIndex((l) => l.startsWith('\n###'))).join('\n'));
  report[name] = { scored, rho, aligned, meanSuccess, oracleSuccess };
}
if (outFile) await writeFile(outFile, `${JSON.stringify(report, null, 2)}\n`);
await extractor.dispose();
policy.dispose();
