import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, Rng, tf } from '@selfalign/core';
import { createPolicy, type Policy, randomBatch, type TrainBatch, tiny } from '@selfalign/experts';
import { beforeAll, describe, expect, it } from 'vitest';
import { disposePretrain, pretrain } from './pretrain.js';
import { SlotCode, symmetricEigen } from './slot-code.js';

let dir: string;
beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'selfalign-slotcode-'));
});

/** Every TTT layer's slot e as one flat vector (W1 then b1 per layer). */
const slotVector = (p: Policy, e: number): number[] =>
  p.ttt.flatMap((m) =>
    m === undefined
      ? []
      : (['W1', 'b1'] as const).flatMap((k) => {
          const v = p.params.get(m.paths[k]);
          const n = v.size / v.shape[0]!;
          return Array.from((v.dataSync() as Float32Array).slice(e * n, (e + 1) * n));
        }),
  );

/** Singular values of the source slots around their mean (via the Gram matrix). */
const spectrum = (p: Policy, sources: number[]): number[] => {
  const X = sources.map((e) => slotVector(p, e));
  const mean = X[0]!.map((_, j) => X.reduce((s, r) => s + r[j]!, 0) / X.length);
  const C = X.map((r) => r.map((x, j) => x - mean[j]!));
  const n = C.length;
  const G = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) G[i * n + j] = C[i]!.reduce((s, x, k) => s + x * C[j]![k]!, 0);
  return symmetricEigen(G, n).values.map((v) => Math.sqrt(Math.max(0, v)));
};

const batches =
  (p: Policy) =>
  (step: number): TrainBatch =>
    randomBatch(p, 4, new Rng(2000 + step), { slots: [0, 1, 2, 0], isDemo: [1, 1, 0, 1] });

describe('slot code', () => {
  it('symmetricEigen: A v = lambda v, eigenvalues sorted, vectors orthonormal', () => {
    const rng = new Rng(3);
    const n = 7;
    const B = Array.from({ length: n * n }, () => rng.normal());
    const A = new Float64Array(n * n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++)
        for (let k = 0; k < n; k++) A[i * n + j] = A[i * n + j]! + B[i * n + k]! * B[j * n + k]!;
    const { values, vectors } = symmetricEigen(A, n);
    for (let i = 1; i < n; i++) expect(values[i]!).toBeLessThanOrEqual(values[i - 1]!);
    vectors.forEach((v, i) => {
      for (let r = 0; r < n; r++) {
        const av = v.reduce((s, x, k) => s + A[r * n + k]! * x, 0);
        expect(av).toBeCloseTo(values[i]! * v[r]!, 8);
      }
      vectors.forEach((w, j) =>
        expect(v.reduce((s, x, k) => s + x * w[k]!, 0)).toBeCloseTo(i === j ? 1 : 0, 10),
      );
    });
  });

  it('starts from the top principal directions: rank-D slots are kept, others projected, other slots untouched', () => {
    const p = createPolicy(tiny, 5);
    const before3 = slotVector(p, 3);
    const full = spectrum(p, [0, 1, 2]);
    expect(full[1]!).toBeGreaterThan(1e-3); // random slots: rank 2 around their mean
    const code = new SlotCode(p, [0, 1, 2], 1);
    expect(spectrum(p, [0, 1, 2])[1]!).toBeLessThan(1e-4 * full[0]!);
    expect(spectrum(p, [0, 1, 2])[0]!).toBeCloseTo(full[0]!, 3);
    expect(slotVector(p, 3)).toEqual(before3);
    code.dispose();
    // slots already in a rank-2 space come back as they were
    const kept = [0, 1, 2].map((e) => slotVector(p, e));
    const again = new SlotCode(p, [0, 1, 2], 2);
    [0, 1, 2].forEach((e) =>
      slotVector(p, e).forEach((x, j) => expect(x).toBeCloseTo(kept[e]![j]!, 5)),
    );
    again.dispose();
    p.dispose();
  });

  it('maps slot gradients to the code by the chain rule', () => {
    const p = createPolicy(tiny, 6);
    const code = new SlotCode(p, [0, 2, 3], 2);
    const modules = p.ttt.filter((m) => m !== undefined);
    // f = sum over layers of <R_l, W1_l> + <Q_l, b1_l>: its slot gradients are R and Q
    const rng = new Rng(9);
    const rand = (shape: number[]) =>
      tf.tensor(
        Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
        shape,
      );
    const grads: tf.NamedTensorMap = {};
    const f = () =>
      tf.addN(
        modules.flatMap((m) =>
          (['W1', 'b1'] as const).map((k) => {
            const v = p.params.get(m.paths[k]);
            return tf.sum(tf.mul(v, grads[`w/${v.name}`]!));
          }),
        ),
      );
    for (const m of modules)
      for (const k of ['W1', 'b1'] as const) {
        const v = p.params.get(m.paths[k]);
        grads[`w/${v.name}`] = rand(v.shape);
        grads[v.name] = grads[`w/${v.name}`]!.clone();
      }
    const tangent = code.params().map(([, v]) => rand(v.shape));
    const mapped: tf.NamedTensorMap = Object.fromEntries(
      modules.flatMap((m) =>
        (['W1', 'b1'] as const).map((k) => {
          const v = p.params.get(m.paths[k]);
          return [v.name, grads[v.name]!];
        }),
      ),
    );
    code.mapGradients(mapped);
    const directional = code
      .params()
      .reduce((s, [, v], i) => s + tf.sum(tf.mul(mapped[v.name]!, tangent[i]!)).dataSync()[0]!, 0);
    // finite difference of f along the tangent of (z, H, M), through write()
    const eps = 1e-2;
    const at = (sign: number) => {
      const saved = code.params().map(([, v]) => v.clone());
      code.params().forEach(([, v], i) => v.assign(tf.add(v, tf.mul(tangent[i]!, sign * eps))));
      code.write();
      const value = f().dataSync()[0]!;
      code.params().forEach(([, v], i) => v.assign(saved[i]!));
      tf.dispose(saved);
      return value;
    };
    const fd = (at(1) - at(-1)) / (2 * eps);
    expect(Math.abs(fd - directional) / Math.abs(directional)).toBeLessThan(2e-3);
    tf.dispose([...Object.values(grads), ...Object.values(mapped), ...tangent]);
    code.dispose();
    p.dispose();
  });

  it('pretrains the code: source slots stay rank D, other slots do not move, memory flat, resume exact', async () => {
    const run = async (until: number, resume = false, path = join(dir, 'code.safetensors')) => {
      const p = createPolicy(tiny, 7);
      const r = await pretrain(p, batches(p), {
        steps: 4,
        until,
        lr: 1e-2,
        warmup: 0,
        slotCode: { rank: 1, sources: [0, 1, 2] },
        checkpoint: { path, every: 2 },
        ...(resume ? { resume: path } : {}),
      });
      return { p, r };
    };
    const start = createPolicy(tiny, 7);
    const free3 = slotVector(start, 3);
    const first = slotVector(start, 0);
    start.dispose();
    const { p, r } = await run(4);
    expect(r.losses.every(Number.isFinite)).toBe(true);
    const s = spectrum(p, [0, 1, 2]);
    expect(s[1]!).toBeLessThan(1e-4 * s[0]!);
    expect(slotVector(p, 3)).toEqual(free3);
    expect(slotVector(p, 0)).not.toEqual(first);
    const whole = [0, 1, 2].map((e) => slotVector(p, e));
    disposePretrain(r);
    p.dispose();

    // two steps, then resume for two more: the same slots
    const half = join(dir, 'half.safetensors');
    const a = await run(2, false, half);
    disposePretrain(a.r);
    a.p.dispose();
    const b = await run(4, true, half);
    [0, 1, 2].forEach((e) =>
      slotVector(b.p, e).forEach((x, j) => expect(x).toBeCloseTo(whole[e]![j]!, 5)),
    );
    disposePretrain(b.r);
    b.p.dispose();

    // the live tensor count after a step equals the count after another
    const q = createPolicy(tiny, 8);
    const counts: number[] = [];
    const rq = await pretrain(q, batches(q), {
      steps: 4,
      slotCode: { rank: 2, sources: [0, 1, 2] },
      onStep: () => counts.push(tf.memory().numTensors),
    });
    expect(counts[3]).toBe(counts[1]);
    disposePretrain(rq);
    q.dispose();
  });
});
