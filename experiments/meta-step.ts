// Diagnostic for docs/results.md (the align-closes-the-gap issue, section 2e): does the one align
// step that align-aware pretraining trains carry the new robot's identity, or is it a constant
// move that helps every robot alike? For N robots of a family seed that no run has seen, each
// with a few play and demo episodes, the held-out action loss on its demos (fixed draws):
//   mean    at the source mean (no adaptation), or at the learned start of a checkpoint trained
//           with `--align-aware-start learned`;
//   own     after one SGD step of rate alpha on the alignment losses of its own play rows, in the
//           span of the source slots (what `pretrain --align-aware W:alpha --align-aware-param
//           span` trains);
//   other   after the step computed from another robot's play (robot i+1's), so own - other is
//           what the step knows about *this* robot;
//   best    the best single source slot (a floor that needs labels).
// Also the mean cosine between the steps of different robots (1: the same move for everyone).
//   pnpm --filter @selfalign/experiments probe meta-step.ts CKPT [--robots 40] [--family-seed 17]
//     [--alpha 0.3] [--rows 8] [--episodes 3] [--seed 0] [--out FILE.json]
import { writeFile } from 'node:fs/promises';
import { loadCheckpoint, SlotParam } from '@selfalign/align';
import { embodimentByName, featureExtractor, recordEpisodes } from '@selfalign/cli/shared';
import { initBackend, Rng, tf } from '@selfalign/core';
import {
  computeLoss,
  disposeBatch,
  disposePrefixCache,
  encodePrefix,
  type TrainBatch,
} from '@selfalign/experts';
import { firstFreeSlot, playSplit, sourceSlotsOf } from '@selfalign/harness';
import { ALIGN_AWARE_START, drawStep } from '@selfalign/pretrain';
import { expertController, randomController } from '@selfalign/sim';
import { arg } from './args.js';

const N = Number(arg('--robots', '40'));
const familySeed = Number(arg('--family-seed', '17'));
const alpha = Number(arg('--alpha', '0.3'));
const rows = Number(arg('--rows', '8'));
const episodes = Number(arg('--episodes', '3'));
const seed = Number(arg('--seed', '0'));
const outFile = arg('--out', '');

await initBackend('wasm');
const loaded = await loadCheckpoint(process.argv[2]!);
const policy = loaded.policy;
const sources = sourceSlotsOf(loaded.info);
const slot = firstFreeSlot(policy, sources)!;
const extractor = await featureExtractor('default', process.cwd(), policy.config.featureDim);
const c = policy.config;

interface Robot {
  play: TrainBatch;
  demo: TrainBatch;
}
const robots: Robot[] = [];
for (let r = 0; r < N; r++) {
  const e = embodimentByName(`src-${r}`, familySeed, N);
  const base = 5_000_000 + 1_000 * r + 100_000 * seed;
  const play = await recordEpisodes(
    e,
    randomController(seed + r),
    'play',
    episodes,
    base,
    extractor,
    c,
  );
  const demo = await recordEpisodes(
    e,
    expertController(),
    'demo',
    episodes,
    base + 500,
    extractor,
    c,
  );
  const rng = new Rng(seed * 7919 + r);
  const p = playSplit(policy, play.samples, play.meta, rows, rng, slot, 0);
  const d = playSplit(policy, demo.samples, demo.meta, 64, rng, slot, 0);
  robots.push({ play: p.train[0]!, demo: d.train[0]! });
  for (const b of [...p.train.slice(1), ...d.train.slice(1)]) disposeBatch(b);
}
console.error(`meta-step: ${N} robots of family seed ${familySeed} recorded`);

const ALIGN = { action: 0, perception: 1, dynamics: 1, inverseDynamics: 1, ttt: 0, keypoints: 0 };
const ACTION = { action: 1, perception: 0, dynamics: 0, inverseDynamics: 0, ttt: 0, keypoints: 0 };

const param = new SlotParam(policy, { kind: 'span', slot, init: 'mean', basis: [...sources] });
const coeffs = param.tree.select().map(([, v]) => v);
// the coefficients as SlotParam starts them (the source mean), or the learned start of a run with
// `--align-aware-start learned` (kept in its checkpoint); a step is a change from there
const learned = coeffs.map((_, i) => loaded.extra.get(`${ALIGN_AWARE_START}${i}`));
const startKind = learned.every((t) => t !== undefined) ? 'learned' : 'mean';
const scale = Number(loaded.info['alignAwareStartScale'] ?? 1);
if (startKind === 'learned')
  coeffs.forEach((v, i) =>
    tf.tidy(() => v.assign(tf.mul(tf.tensor(learned[i]!.data, learned[i]!.shape), scale))),
  );
const start = coeffs.map((v) => tf.clone(v));
console.error(
  `meta-step: the steps start at the ${startKind === 'learned' ? 'learned start' : 'source mean'}`,
);
const setCoeffs = (delta?: readonly tf.Tensor[]) =>
  coeffs.forEach((v, i) =>
    tf.tidy(() => v.assign(delta ? tf.add(start[i]!, delta[i]!) : start[i]!)),
  );

/** One SGD step's change of the coefficients from the mean, on `r`'s play rows. */
function stepFrom(r: Robot, draws: ReturnType<typeof drawStep>): tf.Tensor[] {
  setCoeffs();
  const cache = encodePrefix(policy, r.play);
  const { value, grads } = tf.variableGrads(
    () =>
      computeLoss(policy, r.play, {
        streams: ['alignment'],
        weights: ALIGN,
        time: draws.time,
        noise: draws.noise,
        fastWeights: param.fastWeights(),
        prefixCache: cache,
      }).total,
    coeffs,
  );
  value.dispose();
  disposePrefixCache(cache);
  const out = coeffs.map((v) => tf.mul(grads[v.name]!, -alpha));
  tf.dispose(Object.values(grads));
  return out;
}

const rowsOut: Record<string, number>[] = [];
const steps: Float32Array[] = [];
for (let i = 0; i < N; i++) {
  const r = robots[i]!;
  const rng = new Rng(1_000 + i);
  const pd = drawStep(rng, policy, r.play.state.shape[0]!);
  const dd = drawStep(rng, policy, r.demo.state.shape[0]!);
  const od = drawStep(rng, policy, robots[(i + 1) % N]!.play.state.shape[0]!);
  const cache = encodePrefix(policy, r.demo);
  const actionLoss = (fast = param.fastWeights()) =>
    tf.tidy(
      () =>
        computeLoss(policy, r.demo, {
          streams: ['action'],
          weights: ACTION,
          time: dd.time,
          noise: dd.noise,
          fastWeights: fast,
          prefixCache: cache,
        }).action.dataSync()[0]!,
    );
  setCoeffs();
  const mean = actionLoss();
  const own = stepFrom(r, pd);
  steps.push(Float32Array.from(tf.tidy(() => tf.concat(own.map((t) => t.flatten()))).dataSync()));
  setCoeffs(own);
  const ownLoss = actionLoss();
  const other = stepFrom(robots[(i + 1) % N]!, od);
  setCoeffs(other);
  const otherLoss = actionLoss();
  // the best source slot: its slot's own fast weights (the slot table's row)
  let best = Number.POSITIVE_INFINITY;
  for (const s of sources) {
    const l = tf.tidy(() => {
      const slotIdx = tf.fill([r.demo.state.shape[0]!], s, 'int32');
      return computeLoss(
        policy,
        { ...r.demo, slot: slotIdx },
        {
          streams: ['action'],
          weights: ACTION,
          time: dd.time,
          noise: dd.noise,
          prefixCache: cache,
        },
      ).action.dataSync()[0]!;
    });
    best = Math.min(best, l);
  }
  tf.dispose([
    ...own,
    ...other,
    pd.time,
    ...Object.values(pd.noise),
    dd.time,
    ...Object.values(dd.noise),
    od.time,
    ...Object.values(od.noise),
  ]);
  disposePrefixCache(cache);
  rowsOut.push({ robot: i, mean, own: ownLoss, other: otherLoss, best });
  console.error(
    `robot ${i}: mean ${mean.toFixed(3)}  own step ${ownLoss.toFixed(3)}  other's step ${otherLoss.toFixed(3)}  best source ${best.toFixed(3)}`,
  );
}

const avg = (k: string) => rowsOut.reduce((a, r) => a + r[k]!, 0) / rowsOut.length;
const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, j) => s + x * b[j]!, 0);
let cos = 0;
let pairs = 0;
for (let i = 0; i < steps.length; i++)
  for (let j = i + 1; j < steps.length; j++) {
    cos +=
      dot(steps[i]!, steps[j]!) / Math.sqrt(dot(steps[i]!, steps[i]!) * dot(steps[j]!, steps[j]!));
    pairs++;
  }
const ownWins = rowsOut.filter((r) => r.own! < r.other!).length;
const summary = {
  checkpoint: process.argv[2],
  familySeed,
  start: startKind,
  robots: N,
  alpha,
  rows,
  episodes,
  mean: avg('mean'),
  own: avg('own'),
  other: avg('other'),
  best: avg('best'),
  ownBeatsOther: ownWins / N,
  stepCosine: cos / pairs,
};
console.log(JSON.stringify(summary));
if (outFile)
  await writeFile(outFile, `${JSON.stringify({ ...summary, rows: rowsOut }, null, 2)}\n`);
param.dispose();
tf.dispose(start);
for (const r of robots) {
  disposeBatch(r.play);
  disposeBatch(r.demo);
}
policy.dispose();
