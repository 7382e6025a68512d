// The spread of a checkpoint's source slots: singular values of the source slots around their
// mean (all TTT layers' W1/b1 as one vector per robot) and the share of the variance in the top
// D directions. What the low-rank slot code (`pretrain --slot-rank D`) keeps of them.
// pnpm --filter @selfalign/experiments probe slot-spectrum.ts CKPT
import { loadCheckpoint } from '@selfalign/align';
import { initBackend, tf } from '@selfalign/core';
import { symmetricEigen } from '@selfalign/pretrain';

await initBackend('wasm');
const file = process.argv[2];
if (!file) throw new Error('usage: slot-spectrum.ts CKPT');
const loaded = await loadCheckpoint(file);
const p = loaded.policy;
const slots = Object.values((loaded.info['slots'] ?? {}) as Record<string, number>);
if (slots.length < 2) throw new Error(`${file}: no slot map with two or more source robots`);
const idx = tf.tensor1d(Int32Array.from(slots), 'int32');
const X = tf.tidy(() =>
  tf.concat(
    p.ttt.flatMap((m) =>
      m === undefined
        ? []
        : (['W1', 'b1'] as const).map((k) =>
            tf.reshape(tf.gather(p.params.get(m.paths[k]), idx), [slots.length, -1]),
          ),
    ),
    1,
  ),
);
const C = tf.sub(X, tf.mean(X, 0));
const G = tf.matMul(C, C, false, true);
const { values } = symmetricEigen(Float64Array.from(G.dataSync()), slots.length);
const total = values.reduce((s, v) => s + Math.max(0, v), 0);
let acc = 0;
console.log(`${file}: ${slots.length} source slots, ${X.shape[1]} numbers each`);
values.forEach((v, i) => {
  acc += Math.max(0, v);
  console.log(
    `  ${String(i + 1).padStart(2)}  sigma ${Math.sqrt(Math.max(0, v)).toFixed(3)}  cumulative variance ${((100 * acc) / total).toFixed(1)}%`,
  );
});
