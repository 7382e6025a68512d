// Benchmark of the policy verbs on the wasm backend: computeLoss forward + backward (gradients
// of every parameter) and sampleActions (10 Euler steps, prefix cached), for tiny and small at
// batch 1 and 32, plus parameter counts per part (`--counts` prints only those).
// Run: pnpm --filter @selfalign/experts bench
import { cpus } from 'node:os';
import { initBackend, Rng, tf } from '@selfalign/core';
import { TTT_FAST_WEIGHTS } from '@selfalign/ttt';
import {
  createPolicy,
  disposeBatch,
  type PolicyConfig,
  randomBatch,
  small,
  tiny,
} from '../src/index.js';

function counts(config: PolicyConfig) {
  const p = createPolicy(config, 0);
  const total = p.params.count();
  const part = (f: string | string[]) => p.params.count(f);
  const fast = part(TTT_FAST_WEIGHTS as string[]);
  const perSlot = fast / config.ttt.slots;
  const row = {
    config: config.name,
    total,
    vision: part('vision/**'),
    vlm: part('vlm/**'),
    action: part('action/**'),
    alignment: part('alignment/**'),
    tttOther: part('ttt/**') - fast,
    fast,
    perSlot,
    adapterBytes: perSlot * 4,
  };
  p.dispose();
  return row;
}

function time(fn: () => void, reps: number): number {
  fn(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  return (performance.now() - t0) / reps;
}

async function main() {
  const info = await initBackend('wasm');
  console.log(
    `backend: ${info.name}; ${cpus()[0]?.model ?? '?'} x${cpus().length}; node ${process.version}`,
  );
  console.log(
    '\n| config | total | vision | VLM expert | Action expert | Alignment expert | TTT (q,k,v,o,norms,lr,gate) | W1/b1 (all slots) | W1/b1 per slot | adapter file (f32) | W1/b1 share |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const c of [tiny, small]) {
    const r = counts(c);
    console.log(
      `| ${r.config} | ${r.total} | ${r.vision} | ${r.vlm} | ${r.action} | ${r.alignment} | ${r.tttOther} | ${r.fast} (${c.ttt.slots} slots) | ${r.perSlot} | ${(r.adapterBytes / 1024).toFixed(1)} KiB | ${((100 * r.fast) / r.total).toFixed(1)}% (one slot ${((100 * r.perSlot) / r.total).toFixed(2)}%) |`,
    );
  }
  if (process.argv.includes('--counts')) return;
  console.log('\n| config | batch | computeLoss fwd+bwd (ms) | sampleActions, 10 steps (ms) |');
  console.log('|---|---|---|---|');
  for (const c of [tiny, small]) {
    const p = createPolicy(c, 0);
    const vars = p.params.select().map(([, v]) => v);
    for (const b of [1, 32]) {
      const batch = randomBatch(p, b, new Rng(b));
      const reps = c === tiny ? 5 : b === 1 ? 3 : 1;
      const train = time(() => {
        const { value, grads } = tf.variableGrads(() => {
          const { total, ...rest } = p.computeLoss(batch);
          tf.dispose(Object.values(rest));
          return total;
        }, vars);
        value.dispose();
        tf.dispose(Object.values(grads));
      }, reps);
      const sample = time(() => p.sampleActions(batch).dispose(), reps);
      console.log(`| ${c.name} | ${b} | ${train.toFixed(0)} | ${sample.toFixed(0)} |`);
      disposeBatch(batch);
    }
    p.dispose();
  }
}

void main();
