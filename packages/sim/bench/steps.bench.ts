// Environment steps per second on one core: physics + rendering the camera image at 32, 64
// and 96 px, against physics alone, in one run. Run: pnpm --filter @selfalign/sim bench
import { cpus } from 'node:os';
import { ArmEnv, PRESETS } from '../src/index.js';

function measure(
  imageSize: number,
  render: boolean,
  task: 'reach' | 'push',
  steps = 20_000,
): number {
  const env = new ArmEnv(PRESETS.combo!, { imageSize, maxSteps: { reach: 1e9, push: 1e9 } }).reset(
    1,
    task,
  );
  const image = new Uint8Array(imageSize * imageSize * 3);
  const state = new Float32Array(9);
  const a = new Float64Array(3);
  let k = 0;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    if (render) env.render(image);
    env.observeState(state);
    a[0] = Math.sin(i * 0.1);
    a[1] = Math.cos(i * 0.07);
    a[2] = Math.sin(i * 0.13);
    env.step(a);
    k += image[(i * 7) % image.length]!;
  }
  const s = (performance.now() - t0) / 1000;
  if (k < 0) console.log(k);
  return steps / s;
}

console.log(`${cpus()[0]?.model ?? '?'}; node ${process.version}; one core (single thread)`);
console.log('| task | image | steps/s | relative to physics only |');
console.log('|---|---|---|---|');
for (const task of ['reach', 'push'] as const) {
  measure(64, true, task, 2000); // warm-up
  const physics = measure(64, false, task);
  console.log(`| ${task} | none (physics only) | ${physics.toFixed(0)} | 1.00 |`);
  for (const size of [32, 64, 96]) {
    const r = measure(size, true, task);
    console.log(`| ${task} | ${size} px | ${r.toFixed(0)} | ${(r / physics).toFixed(3)} |`);
  }
}
