// Diagnostic for docs/results.md 2m: do the slots that the plain hindsight action loss picks
// act with wider actions? Random play's actions are uniform in [-1, 1] (RMS 0.577); a slot whose
// actions spread like them explains random labels well whatever the goal. Evaluates reach on
// each target under each named source robot's slot and reports success and the RMS of the
// actions the policy executes; with --noise-scale 0 the flow starts from zero noise (its
// deterministic path: close to the mean action the action loss scores).
//   pnpm --filter @selfalign/experiments probe hindsight-picks.ts CKPT \
//     [--targets sign,perm] [--slots src-10,src-21,src-6] [--episodes 25] [--noise-scale 1]
import { loadCheckpoint } from '@selfalign/align';
import { embodimentByName } from '@selfalign/cli/shared';
import { initBackend, Rng, randomNormal, tf } from '@selfalign/core';
import type { Observation, SampleOptions } from '@selfalign/experts';
import { policyController } from '@selfalign/harness';
import { type Controller, runEpisodes, seedRange } from '@selfalign/sim';
import { arg } from './args.js';

const targets = arg('--targets', 'sign,perm').split(',');
const robots = arg('--slots', 'src-10,src-21,src-6').split(',');
const episodes = Number(arg('--episodes', '25'));
await initBackend('wasm');
const { policy, info } = await loadCheckpoint(process.argv[2]!);
const slotOf = (info['slots'] ?? {}) as Record<string, number>;
const scale = Number(arg('--noise-scale', '1'));
if (scale !== 1) {
  const sample = policy.sampleActions.bind(policy);
  const noiseRng = new Rng(17);
  const shape = (b: number) => [b, policy.config.actionHorizon, policy.config.actionDim];
  policy.sampleActions = (obs: Observation, opts: SampleOptions = {}) =>
    tf.tidy(() =>
      sample(obs, {
        ...opts,
        noise: tf.mul(randomNormal(noiseRng, shape(obs.images.shape[0]!)), scale),
      }),
    );
}
for (const t of targets) {
  const e = embodimentByName(t, 1);
  for (const robot of robots) {
    const slot = slotOf[robot];
    if (slot === undefined) throw new Error(`${robot} has no slot in ${process.argv[2]}`);
    const inner = policyController(policy, { slot, rng: new Rng(710_000) });
    let sq = 0;
    let count = 0;
    const recording: Controller = {
      ...inner,
      async act(obs) {
        const out = await inner.act(obs);
        for (const a of out)
          for (let j = 0; j < a.length; j++) {
            sq += a[j]! * a[j]!;
            count += 1;
          }
        return out;
      },
    };
    const r = await runEpisodes(e, 'reach', seedRange(episodes, 700_000), recording, {
      env: { imageSize: policy.config.vision.imageSize },
      parallel: 25,
    });
    console.log(
      `${t.padEnd(7)} slot of ${robot.padEnd(7)} success ${(100 * r.successRate).toFixed(0).padStart(3)}%  action RMS ${Math.sqrt(sq / count).toFixed(3)}`,
    );
  }
}
