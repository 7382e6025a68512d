// Diagnostic for docs/results.md: closed-loop action error against the robot's own expert by
// step index. Step 0 is in the demo distribution; a low error there that grows later means
// covariate shift, a high one from the start means the closed-loop pipeline differs from training.
//   pnpm --filter @selfalign/experiments probe closed-loop-steps.ts CKPT [--source 3] [--episodes 20]
//     [--task reach|push] [--no-velocity]
import { loadCheckpoint } from '@selfalign/align';
import { initBackend } from '@selfalign/core';
import { policyController } from '@selfalign/harness';
import { ArmEnv, expertAction, sampleSources } from '@selfalign/sim';
import { arg } from './args.js';

const k = Number(arg('--source', '3'));
const episodes = Number(arg('--episodes', '20'));
const task = arg('--task', 'reach') as 'reach' | 'push';
const ds = process.argv.includes('--no-velocity') ? 6 : 9;
await initBackend('wasm');
const { policy, step } = await loadCheckpoint(process.argv[2]!);
const robot = sampleSources(8, 1)[k]!;
const side = policy.config.vision.imageSize;
const T = task === 'reach' ? 40 : 100;
const sum = new Float64Array(T);
const count = new Float64Array(T);
const envs = Array.from({ length: episodes }, (_, i) =>
  new ArmEnv(robot, { imageSize: side }).reset(10_000 + i, task),
);
const ctl = policyController(policy, { slot: k, execute: 1, stateDims: ds });
envs.forEach((_, i) => ctl.reset?.(i, 10_000 + i));
for (let t = 0; t < T; t++) {
  const active = envs.map((e, i) => ({ e, i })).filter(({ e }) => !e.done());
  if (active.length === 0) break;
  const obs = active.map(({ e, i }) => ({
    index: i,
    env: e,
    image: e.render(),
    state: e.observeState(),
    instruction: e.instruction,
    step: e.steps,
  }));
  const acts = await ctl.act(obs);
  active.forEach(({ e }, j) => {
    const want = expertAction(e);
    const a = acts[j]!;
    let d = 0;
    for (let q = 0; q < 3; q++) d += (Math.max(-1, Math.min(1, a[q]!)) - want[q]!) ** 2 / 3;
    sum[t]! += d;
    count[t]! += 1;
    e.step(a);
  });
}
console.log(
  `checkpoint step ${step}, src-${k}, ${task}, ${episodes} episodes, re-planning every step`,
);
console.log(`| step | ${[0, 1, 2, 3, 5, 10, 20, 30].join(' | ')} |`);
console.log(
  `| action MSE vs expert | ${[0, 1, 2, 3, 5, 10, 20, 30].map((t) => (count[t]! ? (sum[t]! / count[t]!).toFixed(3) : '-')).join(' | ')} |`,
);
