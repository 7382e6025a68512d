// Diagnostic for docs/results.md: open-loop action error of a pretrained checkpoint on fresh
// expert demo frames of its source robots (the training distribution), next to two references:
// predicting the demo's mean action, and the untrained policy. If open-loop error is low while
// closed-loop success is low, the gap is compounding/control; if it is high, the policy has
// not learned yet.
//   pnpm --filter @selfalign/experiments probe open-loop.ts CKPT [--sources 0,3,6] [--episodes 10]
//     [--task reach|push] [--no-velocity]
import { loadCheckpoint } from '@selfalign/align';
import { initBackend, Rng, tf } from '@selfalign/core';
import { defaultFeatureExtractor } from '@selfalign/data';
import { createPolicy, makeObservation, type Policy } from '@selfalign/experts';
import { expertController, runEpisodes, sampleSources, seedRange } from '@selfalign/sim';
import { arg } from './args.js';

const path = process.argv[2]!;

const which = arg('--sources', '0,3,6').split(',').map(Number);
const episodes = Number(arg('--episodes', '10'));
const task = arg('--task', 'reach') as 'reach' | 'push';
/** --no-velocity: the checkpoint was trained on joint angles only (6 state values). */
const ds = process.argv.includes('--no-velocity') ? 6 : 9;
await initBackend('wasm');
const loaded = await loadCheckpoint(path);
const trained = loaded.policy;
const untrained = createPolicy(trained.config, {
  seed: 123,
  ...(trained.normStats ? { normStats: trained.normStats } : {}),
});
const sources = sampleSources(8, 1);
const side = trained.config.vision.imageSize;
const ha = trained.config.actionHorizon;
void defaultFeatureExtractor;
const rows: string[] = [];
for (const k of which) {
  const r = await runEpisodes(
    sources[k]!,
    task,
    seedRange(episodes, 777_000 + k),
    expertController(),
    { record: true, env: { imageSize: side } },
  );
  const err = { trained: [0, 0, 0], untrained: [0, 0, 0], mean: [0, 0, 0] }; // [first action, whole chunk, first action at t = 0]
  let n = 0;
  let nChunk = 0;
  const all = r.episodes.flatMap((e) => Array.from(e.actions));
  const meanA = [0, 1, 2].map(
    (j) => all.filter((_, i) => i % 3 === j).reduce((a, b) => a + b, 0) / (all.length / 3),
  );
  for (const e of r.episodes) {
    const T = e.length;
    const obs = (p: Policy) =>
      makeObservation(p, {
        batch: T,
        images: e.frames,
        prompts: new Array(T).fill(e.instruction),
        state: Float32Array.from(
          { length: T * ds },
          (_, i) => e.states[Math.floor(i / ds) * 9 + (i % ds)]!,
        ),
        stateDims: ds,
        slots: new Array(T).fill(k),
      });
    for (const [name, p] of [
      ['trained', trained],
      ['untrained', untrained],
    ] as const) {
      const o = obs(p);
      const a = p.sampleActions(o, { rng: new Rng(5), actionDims: 3 });
      const pred = a.dataSync() as Float32Array;
      tf.dispose([a, ...Object.values(o)]);
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < ha && t + h < T; h++) {
          for (let j = 0; j < 3; j++) {
            const d = (pred[(t * ha + h) * 3 + j]! - e.actions[(t + h) * 3 + j]!) ** 2 / 3;
            err[name][1]! += d;
            if (h === 0) err[name][0]! += d;
            if (h === 0 && t === 0) err[name][2]! += d;
          }
        }
      }
    }
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < ha && t + h < T; h++) {
        for (let j = 0; j < 3; j++) {
          const d = (meanA[j]! - e.actions[(t + h) * 3 + j]!) ** 2 / 3;
          err.mean[1]! += d;
          if (h === 0) err.mean[0]! += d;
          if (h === 0 && t === 0) err.mean[2]! += d;
        }
        nChunk++;
      }
      n++;
    }
  }
  const f = (x: number[]) =>
    `${(x[0]! / n).toFixed(3)} / ${(x[1]! / nChunk).toFixed(3)} / ${(x[2]! / r.episodes.length).toFixed(3)}`;
  rows.push(`| src-${k} | ${n} | ${f(err.trained)} | ${f(err.untrained)} | ${f(err.mean)} |`);
}
console.log(
  `checkpoint ${path} (step ${loaded.step}); fresh expert ${task} demos, ${episodes} episodes per robot`,
);
console.log(
  '| robot | frames | trained: first action / whole chunk / first action at t=0 | untrained | mean demo action |',
);
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(r);
