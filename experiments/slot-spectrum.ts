// The spread of a checkpoint's source slots: singular values of the source slots around their
// mean (all TTT layers' W1/b1 as one vector per robot) and the share of the variance in the top
// D directions. What the low-rank slot code (`pretrain --slot-rank D`) keeps of them.
// pnpm --filter @selfalign/experiments probe slot-spectrum.ts CKPT
import { loadCheckpoint } from '@selfalign/align';
import { initBackend } from '@selfalign/core';
import { slotSpectrum } from '@selfalign/pretrain';

await initBackend('wasm');
const file = process.argv[2];
if (!file) throw new Error('usage: slot-spectrum.ts CKPT');
const loaded = await loadCheckpoint(file);
const slots = Object.values((loaded.info['slots'] ?? {}) as Record<string, number>);
if (slots.length < 2) throw new Error(`${file}: no slot map with two or more source robots`);
const sigma = slotSpectrum(loaded.policy, slots);
const total = sigma.reduce((s, x) => s + x * x, 0);
let acc = 0;
console.log(`${file}: ${slots.length} source slots`);
sigma.forEach((x, i) => {
  acc += x * x;
  console.log(
    `  ${String(i + 1).padStart(2)}  sigma ${x.toFixed(3)}  cumulative variance ${((100 * acc) / total).toFixed(1)}%`,
  );
});
