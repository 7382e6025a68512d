// Diagnostic for docs/results.md (the align-closes-the-gap issue): the oracle slot changes the
// Action Expert's action loss ~20x and the Alignment Expert's losses by <2% (flow-time.ts). Both
// experts read the same W1/b1 through the same TTT module; does the oracle's change of W1/b1
// reach the alignment tokens at all? At every TTT layer and for each stream's tokens (the action
// stream on held-out target demos, the alignment stream on held-out target play):
//   - the relative change of what the layer adds, LN(Zbar), between the mean and the oracle slot;
//   - the first-order visibility of the update: E||XQ dW1 + db1||^2 / E||XQ W1 + b1||^2 over the
//     stream's query tokens XQ (dW1, db1 = oracle - mean);
//   (and the same for the slot align finds from the mean on play);
//   - the overlap of the two streams' query subspaces (the top directions holding 90% of each
//     stream's XQ energy): mean squared cosine of the principal angles, 1 = the same subspace.
//   pnpm --filter @selfalign/experiments probe slot-visibility.ts CKPT [--targets sign,offset,links]
//     [--play 10] [--oracle-steps 200] [--seed 0]
import { align, evaluateLosses, loadCheckpoint } from '@selfalign/align';
import { featureExtractor } from '@selfalign/cli/shared';
import { initBackend, layerNorm, tf } from '@selfalign/core';
import type { TrainBatch } from '@selfalign/experts';
import { slotVector, sourceSlotsOf, writeSlotVector } from '@selfalign/harness';
import { TttLinear } from '@selfalign/ttt';
import { arg } from './args.js';
import { setupTarget } from './target.js';

const targets = arg('--targets', 'sign,offset,links').split(',');
const nPlay = Number(arg('--play', '10'));
const oracleSteps = Number(arg('--oracle-steps', '200'));
const seed = Number(arg('--seed', '0'));

/** What one innerRead saw: per layer, query tokens [N, Ht, d] and LN(Zbar) [N, Ht, d] (real tokens). */
interface Seen {
  xq: Float32Array[];
  read: Float32Array[];
}
let capture: Map<string, Seen> | undefined;
const original = TttLinear.prototype.innerRead;
TttLinear.prototype.innerRead = function (this: TttLinear, x, options = {}) {
  const r = original.call(this, x, options);
  if (capture) {
    const [b, t] = x.shape as [number, number, number];
    const { heads: Ht } = this.config;
    const d = this.d;
    const real = options.tokenMask ? options.tokenMask.dataSync() : new Uint8Array(b * t).fill(1);
    const [xq, ln] = tf.tidy(() => [
      tf.transpose(r.XQ, [0, 2, 1, 3]).dataSync(),
      tf.transpose(layerNorm(r.Zbar, r.gamma, r.beta), [0, 2, 1, 3]).dataSync(),
    ]) as [Float32Array, Float32Array];
    const seen = capture.get(this.prefix) ?? { xq: [], read: [] };
    for (let i = 0; i < b * t; i++) {
      if (!real[i]) continue;
      seen.xq.push(xq.slice(i * Ht * d, (i + 1) * Ht * d));
      seen.read.push(ln.slice(i * Ht * d, (i + 1) * Ht * d));
    }
    capture.set(this.prefix, seen);
  }
  return r;
};

await initBackend('wasm');
const loaded = await loadCheckpoint(process.argv[2]!);
const policy = loaded.policy;
const sources = sourceSlotsOf(loaded.info);
const extractor = await featureExtractor('default', process.cwd(), policy.config.featureDim);
const layers = policy.ttt.flatMap((m) => (m ? [m] : []));

function seenBy(batches: readonly TrainBatch[], objective: 'action' | 'alignment') {
  capture = new Map();
  const l = evaluateLosses(policy, batches, { objective, seed: 5 });
  const out = capture;
  capture = undefined;
  return { seen: out, loss: objective === 'action' ? l.action : l.total };
}

/** The top-k orthonormal directions holding `share` of the energy of rows (Gram + Jacobi). */
function topSubspace(rows: Float32Array[], off: number, d: number, share: number): number[][] {
  const C = Array.from({ length: d }, () => new Float64Array(d));
  for (const r of rows)
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) C[i]![j]! += r[off + i]! * r[off + j]!;
  const { values, vectors } = jacobi(C.map((row) => Array.from(row)));
  const order = values.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]);
  const total = values.reduce((a, v) => a + Math.max(0, v), 0);
  const picked: number[][] = [];
  let acc = 0;
  for (const [v, i] of order) {
    picked.push(vectors.map((row) => row[i]!));
    acc += Math.max(0, v);
    if (acc >= share * total) break;
  }
  return picked;
}

/** Eigen-decomposition of a symmetric matrix (cyclic Jacobi; d = 32 here). */
function jacobi(A: number[][]): { values: number[]; vectors: number[][] } {
  const n = A.length;
  const V: number[][] = Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)),
  );
  for (let sweep = 0; sweep < 60; sweep++) {
    let offDiag = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) offDiag += A[p]![q]! ** 2;
    if (offDiag < 1e-18) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = A[p]![q]!;
        if (Math.abs(apq) < 1e-30) continue;
        const theta = (A[q]![q]! - A[p]![p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k]![p]!;
          const akq = A[k]![q]!;
          A[k]![p] = c * akp - s * akq;
          A[k]![q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p]![k]!;
          const aqk = A[q]![k]!;
          A[p]![k] = c * apk - s * aqk;
          A[q]![k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k]![p]!;
          const vkq = V[k]![q]!;
          V[k]![p] = c * vkp - s * vkq;
          V[k]![q] = s * vkp + c * vkq;
        }
      }
  }
  return { values: A.map((row, i) => row[i]!), vectors: V };
}

/** Mean squared cosine of the principal angles between two orthonormal bases (rows). */
function overlap(a: number[][], b: number[][]): number {
  // ||A B^T||_F^2 / min(ka, kb)
  let f = 0;
  for (const u of a)
    for (const v of b) {
      let dot = 0;
      for (let i = 0; i < u.length; i++) dot += u[i]! * v[i]!;
      f += dot * dot;
    }
  return f / Math.min(a.length, b.length);
}

const f3 = (x: number) => x.toFixed(3);
const lines: string[] = [];
for (const name of targets) {
  const t = await setupTarget(policy, name, sources, extractor, { play: nPlay, oracleSteps, seed });
  // the aligned slot: free, Adam 1e-3, the same steps, on the training play (diagnose's align)
  const r = await align(policy, t.play.train, {
    slot: t.slot,
    parametrisation: 'free',
    init: 'current',
    basis: [...sources],
    maxSteps: oracleSteps,
    lr: 1e-3,
    seed,
  });
  r.state.dispose();
  const aligned = slotVector(policy, t.slot);
  const streams = { action: t.demos.heldOut, alignment: t.play.heldOut } as const;
  const slots = { mean: t.mean, oracle: t.oracle, aligned } as const;
  const at: Record<string, Record<string, ReturnType<typeof seenBy>>> = {};
  const fast: Record<string, Map<string, { W1: number[][][]; b1: number[][][] }>> = {};
  for (const [label, vec] of Object.entries(slots)) {
    writeSlotVector(policy, t.slot, vec);
    at[label] = {
      action: seenBy(streams.action, 'action'),
      alignment: seenBy(streams.alignment, 'alignment'),
    };
    fast[label] = new Map(
      layers.map((m) => [
        m.prefix,
        {
          W1: (policy.params.get(m.paths.W1).arraySync() as number[][][][])[t.slot]!,
          b1: (policy.params.get(m.paths.b1).arraySync() as number[][][][])[t.slot]!,
        },
      ]),
    );
  }
  writeSlotVector(policy, t.slot, t.mean);
  const loss = (slot: string, s: 'action' | 'alignment') => f3(at[slot]![s]!.loss);
  lines.push(
    `\n### ${name}`,
    '',
    `held-out losses at the mean / oracle / aligned slot: action ${loss('mean', 'action')} / ${loss('oracle', 'action')} / ${loss('aligned', 'action')}, alignment total ${loss('mean', 'alignment')} / ${loss('oracle', 'alignment')} / ${loss('aligned', 'alignment')}`,
    '',
    '| TTT layer | update | change of LN(Zbar): action tokens | alignment tokens | first-order visibility: action | alignment | query-subspace overlap (90% energy; dims action/alignment per head) |',
    '|---|---|---|---|---|---|---|',
  );
  for (const m of layers) {
    const Ht = m.config.heads;
    const d = m.d;
    const base = fast['mean']!.get(m.prefix)!;
    // subspace overlap per head, averaged (at the mean slot)
    let ov = 0;
    const dims: string[] = [];
    for (let h = 0; h < Ht; h++) {
      const a = topSubspace(at['mean']!['action']!.seen.get(m.prefix)!.xq, h * d, d, 0.9);
      const b = topSubspace(at['mean']!['alignment']!.seen.get(m.prefix)!.xq, h * d, d, 0.9);
      ov += overlap(a, b) / Ht;
      dims.push(`${a.length}/${b.length}`);
    }
    for (const upd of ['oracle', 'aligned'] as const) {
      const to = fast[upd]!.get(m.prefix)!;
      const cells: string[] = [];
      const vis: string[] = [];
      for (const s of ['action', 'alignment'] as const) {
        const before = at['mean']![s]!.seen.get(m.prefix)!;
        const after = at[upd]![s]!.seen.get(m.prefix)!;
        let num = 0;
        let den = 0;
        for (let i = 0; i < before.read.length; i++)
          for (let k = 0; k < Ht * d; k++) {
            num += (after.read[i]![k]! - before.read[i]![k]!) ** 2;
            den += before.read[i]![k]! ** 2;
          }
        cells.push(f3(Math.sqrt(num / den)));
        // first order: the stream's queries (at the mean) through dW1, db1 against W1, b1
        let dn = 0;
        let z2 = 0;
        for (const row of before.xq)
          for (let h = 0; h < Ht; h++)
            for (let j = 0; j < d; j++) {
              let z = base.b1[h]![0]![j]!;
              let dz = to.b1[h]![0]![j]! - z;
              for (let i = 0; i < d; i++) {
                const x = row[h * d + i]!;
                z += x * base.W1[h]![i]![j]!;
                dz += x * (to.W1[h]![i]![j]! - base.W1[h]![i]![j]!);
              }
              dn += dz * dz;
              z2 += z * z;
            }
        vis.push(f3(dn / z2));
      }
      lines.push(
        `| ${m.prefix} | mean -> ${upd} | ${cells[0]} | ${cells[1]} | ${vis[0]} | ${vis[1]} | ${upd === 'oracle' ? `${f3(ov)} (${dims.join(', ')})` : ''} |`,
      );
    }
  }
  console.log(lines.slice(lines.findLastIndex((l) => l.startsWith('\n###'))).join('\n'));
}
await extractor.dispose();
policy.dispose();
