// Diagnostic for the checkpoint card: how good are the Alignment Expert's three heads on fresh
// frames of the source robots (not seen in pretraining), against a mean predictor? For a
// flow-matching target u = eps - x0 (eps ~ N(0, 1) drawn independently), the best constant
// prediction is E[u] = -E[x0] and its loss is 1 + Var(x0) per (unmasked) dimension: that is the
// mean-predictor column, estimated on the same frames.
//   pnpm --filter @selfalign/experiments probe alignment-heads.ts CKPT [--sources 8] [--episodes 4]
import { evaluateLosses, loadCheckpoint } from '@selfalign/align';
import { embodimentByName, featureExtractor, recordEpisodes } from '@selfalign/cli/shared';
import { initBackend, Rng, tf } from '@selfalign/core';
import { normalize, prepareState, type TrainBatch } from '@selfalign/experts';
import { playSplit } from '@selfalign/harness';
import { expertController, randomController } from '@selfalign/sim';
import { arg } from './args.js';

const path = process.argv[2]!;
const nSources = Number(arg('--sources', '8'));
const episodes = Number(arg('--episodes', '4'));
await initBackend('wasm');
const loaded = await loadCheckpoint(path);
const policy = loaded.policy;
const slots = (loaded.info['slots'] ?? {}) as Record<string, number>;
const extractor = await featureExtractor('default', process.cwd(), policy.config.featureDim);

/** Variance per unmasked dimension of x, averaged (x: [N, d], mask: which dims count). */
function meanVariance(rows: Float32Array, d: number, used: number): number {
  const n = rows.length / d;
  let total = 0;
  for (let j = 0; j < used; j++) {
    let m = 0;
    for (let i = 0; i < n; i++) m += rows[i * d + j]!;
    m /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (rows[i * d + j]! - m) ** 2;
    total += v / n;
  }
  return total / used;
}

const out: string[] = [
  '| robot | frames | perception (model / mean predictor) | dynamics | inverse dynamics |',
  '|---|---|---|---|---|',
];
const sums: Record<'p' | 'd' | 'i', [number, number]> = { p: [0, 0], d: [0, 0], i: [0, 0] };
for (let k = 0; k < nSources; k++) {
  const name = `src-${k}`;
  const e = embodimentByName(name, 1);
  const slot = slots[name] ?? k;
  const demo = await recordEpisodes(
    e,
    expertController(),
    'demo',
    episodes,
    880_000 + 100 * k,
    extractor,
    policy.config,
  );
  const play = await recordEpisodes(
    e,
    randomController(k),
    'play',
    episodes,
    890_000 + 100 * k,
    extractor,
    policy.config,
  );
  const batches: TrainBatch[] = [
    ...playSplit(policy, demo.samples, demo.meta, 16, new Rng(k), slot, 0).train,
    ...playSplit(policy, play.samples, play.meta, 16, new Rng(k + 1), slot, 0).train,
  ];
  const model = evaluateLosses(policy, batches, { seed: 7 });
  // mean predictor: 1 + Var(x0) per unmasked dim
  const c = policy.config;
  const states: Float32Array[] = [];
  const feats: Float32Array[] = [];
  const acts: Float32Array[] = [];
  let ds = 0;
  let da = 0;
  for (const b of batches) {
    tf.tidy(() => {
      const st = prepareState(policy, b.state);
      ds = b.state.shape[1]!;
      states.push(st.state.dataSync().slice() as Float32Array);
      feats.push(b.nextFeatures.dataSync().slice() as Float32Array);
      da = b.actions.shape[2]!;
      const a = normalize(b.actions, policy.normStats?.actions, policy.normMode);
      const mask = b.actionMask ? b.actionMask.dataSync() : undefined;
      const av = a.dataSync();
      const rows: number[] = [];
      const ha = c.actionHorizon;
      for (let r = 0; r < b.state.shape[0]!; r++)
        for (let h = 0; h < ha; h++)
          if (!mask || mask[r * ha + h])
            for (let j = 0; j < da; j++) rows.push(av[(r * ha + h) * da + j]!);
      acts.push(Float32Array.from(rows));
    });
  }
  const cat = (xs: Float32Array[]) => {
    const o = new Float32Array(xs.reduce((n, x) => n + x.length, 0));
    let p = 0;
    for (const x of xs) {
      o.set(x, p);
      p += x.length;
    }
    return o;
  };
  const base = {
    p: 1 + meanVariance(cat(states), c.stateDim, ds),
    d: 1 + meanVariance(cat(feats), c.featureDim, c.featureDim),
    i: 1 + meanVariance(cat(acts), da, da),
  };
  const frames = demo.samples.length + play.samples.length;
  out.push(
    `| ${name} | ${frames} | ${model.perception.toFixed(3)} / ${base.p.toFixed(3)} | ${model.dynamics.toFixed(3)} / ${base.d.toFixed(3)} | ${model.inverseDynamics.toFixed(3)} / ${base.i.toFixed(3)} |`,
  );
  sums.p[0] += model.perception / nSources;
  sums.p[1] += base.p / nSources;
  sums.d[0] += model.dynamics / nSources;
  sums.d[1] += base.d / nSources;
  sums.i[0] += model.inverseDynamics / nSources;
  sums.i[1] += base.i / nSources;
  for (const b of batches)
    tf.dispose(Object.values(b).filter((v) => v instanceof tf.Tensor) as tf.Tensor[]);
}
out.push(
  `| mean | | ${sums.p[0].toFixed(3)} / ${sums.p[1].toFixed(3)} | ${sums.d[0].toFixed(3)} / ${sums.d[1].toFixed(3)} | ${sums.i[0].toFixed(3)} / ${sums.i[1].toFixed(3)} |`,
);
await extractor.dispose();
policy.dispose();
console.log(out.join('\n'));
