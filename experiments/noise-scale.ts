// Diagnostic for docs/results.md: does the flow's starting noise make the policy dither? Scales
// the noise sampleActions starts from (1: the policy as trained and evaluated; 0: the flow's
// deterministic path from zero noise) and evaluates on the source robots.
//   pnpm --filter @selfalign/experiments probe noise-scale.ts CKPT [--task push]
//     [--scales 0,0.5,1] [--sources 8] [--episodes 25] [--no-velocity]
import { loadCheckpoint } from '@selfalign/align';
import { initBackend, Rng, randomNormal, tf } from '@selfalign/core';
import type { Observation, SampleOptions } from '@selfalign/experts';
import { policyController } from '@selfalign/harness';
import { runEpisodes, sampleSources, seedRange } from '@selfalign/sim';
import { arg } from './args.js';

const task = arg('--task', 'push') as 'reach' | 'push';
const scales = arg('--scales', '0,0.5,1').split(',').map(Number);
const robots = sampleSources(Number(arg('--sources', '8')), 1);
const episodes = Number(arg('--episodes', '25'));
const ds = process.argv.includes('--no-velocity') ? 6 : 9;
await initBackend('wasm');
const { policy, step } = await loadCheckpoint(process.argv[2]!);
const sample = policy.sampleActions.bind(policy);
const ha = policy.config.actionHorizon;
for (const scale of scales) {
  const noiseRng = new Rng(17);
  policy.sampleActions = (obs: Observation, opts: SampleOptions = {}) =>
    tf.tidy(() => {
      const b = obs.images.shape[0]!;
      const shape = [b, ha, policy.config.actionDim];
      return sample(obs, { ...opts, noise: tf.mul(randomNormal(noiseRng, shape), scale) });
    });
  const rates: number[] = [];
  for (const [k, e] of robots.entries()) {
    const r = await runEpisodes(
      e,
      task,
      seedRange(episodes, 900_000),
      policyController(policy, { slot: k, stateDims: ds }),
      { env: { imageSize: policy.config.vision.imageSize }, parallel: 25 },
    );
    rates.push(r.successRate);
  }
  const mean = rates.reduce((a, x) => a + x, 0) / rates.length;
  console.log(
    `step ${step}, ${task}, noise x${scale}: ${(100 * mean).toFixed(1)}% (${rates.map((x) => (100 * x).toFixed(0)).join(' / ')})`,
  );
}
