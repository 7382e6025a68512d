// Benchmark: one training step (forward + backward + Adam) of a pre-norm transformer block
// on the wasm backend, with tfjs's own matMul gradients ("plain") against selfalign's
// explicit-transpose custom gradients ("custom"). Both variants run interleaved in one
// process, so the ratio is comparable. Run: pnpm --filter @selfalign/core bench
import { cpus } from 'node:os';
import {
  attention,
  createOptimizer,
  geluTanh,
  initBackend,
  linear,
  optimizerStep,
  ParamTree,
  Rng,
  randomNormal,
  rmsNorm,
  tf,
} from '../src/index.js';

type Lin = (x: tf.Tensor, w: tf.Tensor) => tf.Tensor;
const plainLinear: Lin = (x, w) =>
  tf.reshape(tf.matMul(tf.reshape(x, [-1, w.shape[0]!]) as tf.Tensor2D, w as tf.Tensor2D), [
    ...x.shape.slice(0, -1),
    w.shape[1]!,
  ]);

function plainAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor) {
  const [b, t, h, dh] = q.shape as [number, number, number, number];
  const qh = tf.transpose(q, [0, 2, 1, 3]);
  const kh = tf.transpose(k, [0, 2, 1, 3]);
  const vh = tf.transpose(v, [0, 2, 1, 3]);
  const logits = tf.mul(
    tf.matMul(qh as tf.Tensor4D, kh as tf.Tensor4D, false, true),
    1 / Math.sqrt(dh),
  );
  const masked = tf.where(
    tf.broadcastTo(tf.expandDims(mask, 1), logits.shape),
    logits,
    tf.fill(logits.shape, -1e30),
  );
  const out = tf.matMul(tf.softmax(masked) as tf.Tensor4D, vh as tf.Tensor4D);
  return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [b, t, h * dh]);
}

function block(p: ParamTree, x: tf.Tensor, mask: tf.Tensor, custom: boolean, heads: number) {
  const lin: Lin = custom ? (a, w) => linear(a, w) : plainLinear;
  const [b, t, d] = x.shape as [number, number, number];
  const dh = d / heads;
  const h = rmsNorm(x, p.get('ln1'));
  const q = tf.reshape(lin(h, p.get('q')), [b, t, heads, dh]);
  const k = tf.reshape(lin(h, p.get('k')), [b, t, heads, dh]);
  const v = tf.reshape(lin(h, p.get('v')), [b, t, heads, dh]);
  const att = custom
    ? tf.reshape(attention(q, k, v, mask), [b, t, d])
    : plainAttention(q, k, v, mask);
  const x1 = tf.add(x, lin(att, p.get('o')));
  const h2 = rmsNorm(x1, p.get('ln2'));
  const mlp = lin(tf.mul(geluTanh(lin(h2, p.get('gate'))), lin(h2, p.get('up'))), p.get('down'));
  return tf.add(x1, mlp);
}

async function main() {
  // tfjs's own kernels: this benchmark is about the gradient formulation on the stock path (the
  // fast kernels run every transpose variant at full speed, see selfalign bench --train)
  const info = await initBackend('wasm', { kernels: 'stock' });
  const [B, T, D, M, H] = [8, 64, 256, 1024, 8];
  const rng = new Rng(0);
  const p = new ParamTree();
  for (const n of ['q', 'k', 'v', 'o']) p.add(n, randomNormal(rng, [D, D], 0.02));
  p.add('gate', randomNormal(rng, [D, M], 0.02));
  p.add('up', randomNormal(rng, [D, M], 0.02));
  p.add('down', randomNormal(rng, [M, D], 0.02));
  p.add('ln1', tf.zeros([D]));
  p.add('ln2', tf.zeros([D]));
  const x = randomNormal(rng, [B, T, D]);
  const target = randomNormal(rng, [B, T, D]);
  const mask = tf.ones([B, T, T], 'bool');
  const opt = { plain: createOptimizer({ lr: 1e-4 }), custom: createOptimizer({ lr: 1e-4 }) };
  const step = (custom: boolean) =>
    optimizerStep(
      custom ? opt.custom : opt.plain,
      p.select(),
      () => tf.mean(tf.square(tf.sub(block(p, x, mask, custom, H), target))) as tf.Scalar,
    );
  const times: Record<'plain' | 'custom', number[]> = { plain: [], custom: [] };
  for (let i = 0; i < 2; i++) {
    step(false); // warm up
    step(true);
  }
  for (let i = 0; i < 6; i++) {
    for (const custom of [false, true]) {
      const t0 = performance.now();
      step(custom);
      times[custom ? 'custom' : 'plain'].push(performance.now() - t0);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const plain = median(times.plain);
  const custom = median(times.custom);
  console.log(
    `backend: ${info.name}; machine: ${cpus()[0]?.model ?? '?'} x${cpus().length}, node ${process.version}`,
  );
  console.log(
    `block: B=${B} T=${T} D=${D} MLP=${M} H=${H}; ${p.count()} parameters; median of 6 steps`,
  );
  console.log(`| variant | ms / training step |`);
  console.log(`|---|---|`);
  console.log(`| plain tfjs matMul gradients | ${plain.toFixed(0)} |`);
  console.log(`| custom explicit-transpose gradients | ${custom.toFixed(0)} |`);
  console.log(`| ratio plain / custom | ${(plain / custom).toFixed(2)}x |`);
}

void main();
