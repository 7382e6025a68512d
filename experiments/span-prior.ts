// Where does align's span slot go, and does a prior on the code keep it acting? For each held-out
// robot (the seeds of `selfalign results`, so its no-adaptation / nearest / align rows reproduce),
// the Mahalanobis distance d of a slot from the source slots' mean, in the source slots' own
// spread (the sources sit at d^2 ~ r, the dimension they span), and the share of the slot outside
// that span; then success and action MSE:
//   - the oracle adapters first (free and span: the action loss on 10 labelled demos; every
//     other row's distance and cosine to the span oracle, in the whitened code coordinates);
//   - the mean, the nearest source slot (align's objective on the play);
//   - align's objective on the held-out play episodes at every slot (a label-free selection?);
//   - align span along its steps (success at 0, 25, 50, 100, 200 steps: where should it stop?);
//   - align span with the Gaussian prior lambda * d^2 for each lambda of --priors;
//   - with --average-from K, align span committing the mean of its iterates from step K on.
//   pnpm --filter @selfalign/experiments probe span-prior.ts CKPT --targets sign,combo [--seed 0]
//     [--episodes 50] [--priors 0.01,0.1] [--curve 25,50,100,200] [--average-from 100]
import { align, defaultAlignWeights, evaluateLosses, loadCheckpoint } from '@selfalign/align';
import { embodimentByName, featureExtractor, recordEpisodes } from '@selfalign/cli/shared';
import { initBackend, Rng, symmetricEigen } from '@selfalign/core';
import {
  fillWithSourceMean,
  firstFreeSlot,
  nearestSourceSlot,
  playSplit,
  policyController,
  slotVector,
  sourceSlotsOf,
} from '@selfalign/harness';
import {
  type Embodiment,
  expertController,
  randomController,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { arg } from './args.js';

const path = process.argv[2]!;
const targets = arg('--targets', 'sign,combo').split(',');
const seed = Number(arg('--seed', '0'));
const episodes = Number(arg('--episodes', '50'));
const priors = arg('--priors', '0.01,0.1').split(',').filter(Boolean).map(Number);
const curve = arg('--curve', '25,50,100,200').split(',').filter(Boolean).map(Number);
const averageFrom = process.argv.includes('--average-from')
  ? Number(arg('--average-from', '100'))
  : undefined;
const PLAY = 10;
await initBackend('wasm');
const loaded = await loadCheckpoint(path);
const policy = loaded.policy;
const sources = sourceSlotsOf(loaded.info);
const slot = firstFreeSlot(policy, sources)!;
const c = policy.config;
const weights = defaultAlignWeights(c);
const extractor = await featureExtractor('default', process.cwd(), c.featureDim);

// the source slots' principal directions: d^2 and the off-span share of any slot vector
const S = sources.map((k) => slotVector(policy, k));
const K = S.length;
const P = S[0]!.length;
const mu = new Float64Array(P);
for (const v of S) for (let j = 0; j < P; j++) mu[j]! += v[j]! / K;
const D = S.map((v) => Float64Array.from(v, (x, j) => x - mu[j]!));
const G = new Float64Array(K * K);
for (let a = 0; a < K; a++)
  for (let b = a; b < K; b++) {
    let s = 0;
    for (let j = 0; j < P; j++) s += D[a]![j]! * D[b]![j]!;
    G[a * K + b] = s;
    G[b * K + a] = s;
  }
const eig = symmetricEigen(G, K);
const kept = eig.values.flatMap((g, i) => (g > 1e-6 * eig.values[0]! ? [i] : []));
const geometry = (v: Float32Array) => {
  const x = Float64Array.from(v, (t, j) => t - mu[j]!);
  const y = D.map((row) => row.reduce((s, r, j) => s + r * x[j]!, 0));
  let inSpan = 0;
  // whitened coordinates: along principal direction i the coordinate is uy/sqrt(g), the
  // sources' variance there g/K, so z_i = sqrt(K) uy / g and d = ||z||
  const z = kept.map((i) => {
    const g = eig.values[i]!;
    const uy = eig.vectors[i]!.reduce((s, ui, k) => s + ui * y[k]!, 0);
    inSpan += (uy * uy) / g;
    return (Math.sqrt(K) * uy) / g;
  });
  const norm2 = x.reduce((s, t) => s + t * t, 0);
  const d = Math.hypot(...z);
  return { z, d, offSpan: norm2 > 0 ? Math.sqrt(Math.max(0, 1 - inSpan / norm2)) : 0 };
};
const dist = (a: number[], b: number[]) => Math.hypot(...a.map((t, i) => t - b[i]!));
const cosine = (a: number[], b: number[]) => {
  const n = Math.hypot(...a) * Math.hypot(...b);
  return n > 0 ? a.reduce((s, t, i) => s + t * b[i]!, 0) / n : 0;
};
const sourceD = S.map((v) => geometry(v).d);
console.log(
  `# ${path}: ${K} source slots spanning ${kept.length} directions; source d: mean ${(sourceD.reduce((a, b) => a + b, 0) / K).toFixed(2)}, max ${Math.max(...sourceD).toFixed(2)}`,
);
console.log(
  '| target | slot | success | action MSE | d (source spread) | off-span share | to the span oracle: distance / cosine | align loss (held-out) |',
);
console.log('|---|---|---|---|---|---|---|---|');

const evaluate = async (e: Embodiment) =>
  runEpisodes(
    e,
    'reach',
    seedRange(episodes, 700_000 + 10_000 * seed),
    policyController(policy, { slot, rng: new Rng(710_000 + 10_000 * seed) }),
    { env: { imageSize: c.vision.imageSize }, parallel: 25 },
  );

for (const name of targets) {
  const e = embodimentByName(name, 1);
  const base = 1_000_000 * (seed + 1) + 10_000 * PLAY;
  const play = await recordEpisodes(e, randomController(seed), 'play', PLAY, base, extractor, c);
  const demos = await recordEpisodes(
    e,
    expertController(),
    'demo',
    PLAY,
    base + 5_000,
    extractor,
    c,
  );
  const split = playSplit(policy, play.samples, play.meta, 16, new Rng(seed + 11), slot, 0.2);
  const demoB = playSplit(policy, demos.samples, demos.meta, 16, new Rng(seed + 13), slot, 0).train;
  // align's objective on the held-out play episodes, at whatever slot is in place (fixed draws)
  let oracleZ: number[] | undefined;
  const report = async (label: string) => {
    const heldOut = evaluateLosses(policy, split.heldOut, { seed, weights }).total;
    const r = await evaluate(e);
    const g = geometry(slotVector(policy, slot));
    const toOracle = oracleZ
      ? `${dist(g.z, oracleZ).toFixed(2)} / ${cosine(g.z, oracleZ).toFixed(2)}`
      : '';
    console.log(
      `| ${name} | ${label} | ${(100 * r.successRate).toFixed(0)}% | ${r.actionMse.toFixed(4)} | ${g.d.toFixed(2)} | ${g.d < 1e-3 ? '-' : `${(100 * g.offSpan).toFixed(0)}%`} | ${toOracle} | ${heldOut.toFixed(4)} |`,
    );
    return g;
  };
  // the oracles first: the span oracle is the reference point of the other rows
  for (const kind of ['span', 'free'] as const) {
    fillWithSourceMean(policy, slot, sources);
    const o = await align(policy, demoB, {
      slot,
      parametrisation: kind,
      init: 'mean',
      basis: sources,
      maxSteps: 200,
      lr: kind === 'free' ? 1e-3 : 3e-2,
      objective: 'action',
      seed,
    });
    o.state.dispose();
    const g = await report(`oracle adapter (${kind})`);
    if (kind === 'span') oracleZ = g.z;
  }
  fillWithSourceMean(policy, slot, sources);
  await report('mean of the sources');
  nearestSourceSlot(policy, split.train, sources, slot, { weights, seed });
  await report('nearest source slot');
  const fitSpan = async (prior: number, from?: number) => {
    fillWithSourceMean(policy, slot, sources);
    return align(policy, split.train, {
      slot,
      parametrisation: 'span',
      init: 'mean',
      basis: sources,
      maxSteps: curve.at(-1) ?? 200,
      seed,
      lossWeights: weights,
      heldOut: split.heldOut,
      prior,
      ...(from !== undefined ? { averageFrom: from } : {}),
    });
  };
  // align span along its steps: one run continued chunk by chunk
  fillWithSourceMean(policy, slot, sources);
  let state: Awaited<ReturnType<typeof align>>['state'] | undefined;
  let done = 0;
  for (const at of curve) {
    const r = await align(policy, split.train, {
      slot,
      parametrisation: 'span',
      init: 'mean',
      basis: sources,
      maxSteps: at - done,
      seed,
      lossWeights: weights,
      heldOut: split.heldOut,
      ...(state ? { state } : {}),
    });
    state = r.state;
    done = at;
    await report(`align span, ${at} steps`);
  }
  state?.dispose();
  for (const lambda of priors) {
    const r = await fitSpan(lambda);
    r.state.dispose();
    await report(`align span + prior ${lambda}`);
  }
  if (averageFrom !== undefined) {
    const r = await fitSpan(0, averageFrom);
    r.state.dispose();
    await report(`align span, the mean of its iterates from step ${averageFrom}`);
  }
}
await extractor.dispose();
policy.dispose();
