import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint, SlotParam } from '@selfalign/align';
import { initBackend, Rng, tf } from '@selfalign/core';
import {
  computeLoss,
  createPolicy,
  disposeBatch,
  type Policy,
  randomBatch,
  tiny,
} from '@selfalign/experts';
import { beforeAll, describe, expect, it } from 'vitest';
import { ALIGN_AWARE_START, type AlignAwareBatch, alignAwareGradients } from './align-aware.js';
import { drawStep } from './draws.js';
import { isPrefixParam } from './prefix-params.js';
import { disposePretrain, pretrain } from './pretrain.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const SLOT = 2;
const SOURCES = [0, 1, 2, 3];
const metaBatch = (p: Policy, seed: number): AlignAwareBatch => ({
  slot: SLOT,
  play: randomBatch(p, 3, new Rng(seed), { slots: [SLOT, SLOT, SLOT], isDemo: [0, 0, 0] }),
  demo: randomBatch(p, 3, new Rng(seed + 1), { slots: [SLOT, SLOT, SLOT], isDemo: [1, 1, 1] }),
});

/**
 * The meta objective itself, written out plainly: one SGD align step of rate alpha from the
 * mean of the other sources on the play rows, then w x the action loss on the demo rows, with the
 * draws alignAwareGradients takes from an Rng of the same seed.
 */
function metaObjective(
  p: Policy,
  mb: AlignAwareBatch,
  alpha: number,
  w: number,
  seed: number,
  kind: 'free' | 'span' = 'free',
) {
  const rng = new Rng(seed);
  const pd = drawStep(rng, p, mb.play.state.shape[0]!);
  const dd = drawStep(rng, p, mb.demo.state.shape[0]!);
  const param = new SlotParam(p, {
    kind,
    slot: SLOT,
    init: 'mean',
    basis: SOURCES.filter((k) => k !== SLOT),
  });
  try {
    const vars = param.tree.select().map(([, v]) => v);
    const { value, grads } = tf.variableGrads(
      () =>
        computeLoss(p, mb.play, {
          streams: ['alignment'],
          weights: { action: 0, ttt: 0, keypoints: 0 },
          time: pd.time,
          noise: pd.noise,
          fastWeights: param.fastWeights(),
        }).total,
      vars,
    );
    value.dispose();
    for (const v of vars) tf.tidy(() => v.assign(tf.sub(v, tf.mul(grads[v.name]!, alpha))));
    tf.dispose(Object.values(grads));
    return tf.tidy(
      () =>
        computeLoss(p, mb.demo, {
          streams: ['action'],
          weights: { perception: 0, dynamics: 0, inverseDynamics: 0, ttt: 0, keypoints: 0 },
          time: dd.time,
          noise: dd.noise,
          fastWeights: param.fastWeights(),
        }).action.dataSync()[0]! * w,
    );
  } finally {
    param.dispose();
    tf.dispose([pd.time, ...Object.values(pd.noise), dd.time, ...Object.values(dd.noise)]);
  }
}

describe('align-aware pretraining', () => {
  it.each(['free', 'span'] as const)(
    'its gradient is the derivative of the action loss after a %s align step (finite differences through the inner step)',
    (kind) => {
      const p = createPolicy(tiny, 3);
      const mb = metaBatch(p, 40);
      const alpha = 2;
      const w = 1.5;
      // everything but the slot tables (the start s0 is their mean, held fixed by the term)
      const params = p.params.select((path) => !/\/(W1|b1)$/.test(path));
      const { grads, terms } = alignAwareGradients(
        p,
        params,
        mb,
        { batch: () => undefined, weight: w, innerLr: alpha, sources: SOURCES, innerParam: kind },
        new Rng(7),
      );
      expect(terms.alignAfter).toBeLessThan(terms.alignBefore);
      expect(metaObjective(p, mb, alpha, w, 7, kind) / w).toBeCloseTo(terms.after, 4);
      // both halves reach the alignment heads: they only see the term through the inner step
      const heads = params.filter(([path]) => path.includes('align')).map(([, v]) => v.name);
      expect(heads.length).toBeGreaterThan(0);
      expect(heads.some((n) => grads[n] !== undefined)).toBe(true);
      // directional derivative along a random direction of unit length
      const rng = new Rng(11);
      const dirs = params.map(([, v]) => tf.randomNormal(v.shape, 0, 1, 'float32', rng.int(1e9)));
      const norm = Math.sqrt(dirs.reduce((a, d) => a + tf.sum(tf.square(d)).dataSync()[0]!, 0));
      const predicted = params.reduce(
        (a, [, v], i) =>
          a + (grads[v.name] ? tf.sum(tf.mul(grads[v.name]!, dirs[i]!)).dataSync()[0]! / norm : 0),
        0,
      );
      const orig = params.map(([, v]) => tf.clone(v));
      const moved = (delta: number) => {
        params.forEach(([, v], i) =>
          tf.tidy(() => v.assign(tf.add(orig[i]!, tf.mul(dirs[i]!, delta / norm)))),
        );
        return metaObjective(p, mb, alpha, w, 7, kind);
      };
      const delta = 2e-2;
      const measured = (moved(delta) - moved(-delta)) / (2 * delta);
      moved(0);
      expect(Math.abs(predicted)).toBeGreaterThan(1e-3);
      expect(Math.abs(measured - predicted)).toBeLessThan(0.1 * Math.abs(measured));
      tf.dispose([...dirs, ...orig, ...Object.values(grads)]);
      disposeBatch(mb.play);
      disposeBatch(mb.demo);
      p.dispose();
    },
  );

  it('with the prefix out of theta (frozenPrefix) it reuses one prefix pass and gives the same gradients', () => {
    const p = createPolicy(tiny, 8);
    const mb = metaBatch(p, 80);
    const opts = { batch: () => undefined, weight: 1, innerLr: 1, innerSteps: 2, sources: SOURCES };
    const all = p.params.select();
    const experts = all.filter(([path]) => !isPrefixParam(path));
    expect(experts.length).toBeLessThan(all.length);
    const full = alignAwareGradients(p, all, mb, opts, new Rng(3));
    const prefix = new Set(p.params.select(isPrefixParam).map(([, v]) => v.name));
    const frozen = alignAwareGradients(p, experts, mb, opts, new Rng(3));
    expect(Object.keys(frozen.grads).filter((n) => prefix.has(n))).toEqual([]);
    expect(frozen.terms.after).toBeCloseTo(full.terms.after, 5);
    let compared = 0;
    for (const [, v] of experts) {
      const a = full.grads[v.name];
      const b = frozen.grads[v.name];
      expect(b === undefined, v.name).toBe(a === undefined);
      if (!a || !b) continue;
      const scale = Math.max(
        1e-6,
        tf.tidy(() => tf.max(tf.abs(a)).dataSync()[0]!),
      );
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
      expect(diff / scale, v.name).toBeLessThan(1e-3);
      compared++;
    }
    expect(compared).toBeGreaterThan(10);
    tf.dispose([...Object.values(full.grads), ...Object.values(frozen.grads)]);
    disposeBatch(mb.play);
    disposeBatch(mb.demo);
    p.dispose();
  });

  it('a learned start: the inner steps begin there and it takes the outer gradient at s_K', () => {
    const p = createPolicy(tiny, 9);
    const mb = metaBatch(p, 85);
    const basis = SOURCES.filter((k) => k !== SLOT);
    const shapeOf = new SlotParam(p, { kind: 'span', slot: SLOT, init: 'mean', basis });
    const start = shapeOf.tree
      .select()
      .map(([, v]) => tf.variable(tf.randomNormal(v.shape, 0, 0.5, 'float32', 3)));
    shapeOf.dispose();
    const opts = { batch: () => undefined, weight: 1, innerLr: 1, sources: SOURCES };
    const params = p.params.select((path) => !/\/(W1|b1)$/.test(path));
    const atMean = alignAwareGradients(p, params, mb, { ...opts, innerParam: 'span' }, new Rng(4));
    const learned = alignAwareGradients(
      p,
      params,
      mb,
      { ...opts, innerParam: 'span', start },
      new Rng(4),
    );
    // the steps begin at the start, not at the mean
    expect(learned.terms.before).not.toBeCloseTo(atMean.terms.before, 4);
    for (const v of start) {
      const g = learned.grads[v.name];
      expect(g?.shape).toEqual(v.shape);
      expect(tf.tidy(() => tf.norm(g!).dataSync()[0]!)).toBeGreaterThan(0);
      expect(atMean.grads[v.name]).toBeUndefined();
    }
    // startScale k: the start is k x the variables, and their gradient is k x the start's
    const k = 4;
    const shrunk = start.map((v) => tf.variable(tf.div(v, k)));
    const scaled = alignAwareGradients(
      p,
      params,
      mb,
      { ...opts, innerParam: 'span', start: shrunk, startScale: k },
      new Rng(4),
    );
    expect(scaled.terms.before).toBeCloseTo(learned.terms.before, 4);
    const g0 = learned.grads[start[0]!.name]!;
    const gk = scaled.grads[shrunk[0]!.name]!;
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(gk, tf.mul(g0, k)))).dataSync()[0]!)).toBeLessThan(
      1e-3 * tf.tidy(() => tf.max(tf.abs(gk)).dataSync()[0]!) + 1e-6,
    );
    tf.dispose([...Object.values(scaled.grads), ...shrunk]);
    // a start of another shape is refused
    const wrong = [tf.variable(tf.zeros([2]))];
    expect(() =>
      alignAwareGradients(p, params, mb, { ...opts, innerParam: 'span', start: wrong }, new Rng(4)),
    ).toThrow(/learned start has shapes/);
    tf.dispose([
      ...Object.values(atMean.grads),
      ...Object.values(learned.grads),
      ...start,
      ...wrong,
    ]);
    disposeBatch(mb.play);
    disposeBatch(mb.demo);
    p.dispose();
  });

  it('pretrain trains the learned start, keeps it in the checkpoint and resumes it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'selfalign-aa-start-'));
    const path = join(dir, 'start.safetensors');
    const basis = SOURCES.filter((k) => k !== SLOT);
    const startOf = (p: Policy) => {
      const shapeOf = new SlotParam(p, { kind: 'span', slot: SLOT, init: 'mean', basis });
      const vars = shapeOf.tree.select().map(([, v]) => tf.variable(tf.zerosLike(v)));
      shapeOf.dispose();
      return vars;
    };
    const run = async (p: Policy, start: tf.Variable[], o: { until?: number; resume?: string }) =>
      pretrain(
        p,
        (s) => randomBatch(p, 4, new Rng(980 + s), { slots: SOURCES, isDemo: [1, 1, 0, 0] }),
        {
          steps: 4,
          lr: 0.05,
          seed: 2,
          ...o,
          ...(o.resume ? {} : { checkpoint: { path, every: 2 } }),
          alignAware: {
            batch: (s) => metaBatch(p, 120 + s),
            weight: 1,
            innerLr: 1,
            sources: SOURCES,
            innerParam: 'span',
            start,
          },
        },
      );
    const a = createPolicy(tiny, 11);
    const sa = startOf(a);
    disposePretrain(await run(a, sa, {}));
    const moved = sa.map((v) => v.dataSync().slice());
    expect(moved.some((m) => m.some((x) => x !== 0))).toBe(true);
    // interrupted at step 2 and resumed: the same start as the uninterrupted run
    const b = createPolicy(tiny, 11);
    const sb = startOf(b);
    disposePretrain(await run(b, sb, { until: 2 }));
    const saved = (await loadCheckpoint(path)).extra;
    expect(saved.has(`${ALIGN_AWARE_START}0`)).toBe(true);
    const c = createPolicy(tiny, 12);
    const sc = startOf(c);
    disposePretrain(await run(c, sc, { resume: path }));
    sc.forEach((v, i) => {
      const want = moved[i]!;
      const got = v.dataSync();
      for (let j = 0; j < want.length; j++) expect(got[j]).toBeCloseTo(want[j]!, 4);
    });
    tf.dispose([...sa, ...sb, ...sc]);
    for (const p of [a, b, c]) p.dispose();
  });

  it('leaves the parameters and the live tensor count as they were', () => {
    const p = createPolicy(tiny, 4);
    const mb = metaBatch(p, 50);
    const before = new Map(p.params.select().map(([k, v]) => [k, v.dataSync().slice()]));
    const opts = { batch: () => undefined, weight: 1, innerLr: 1, innerSteps: 2, sources: SOURCES };
    const once = () => {
      const r = alignAwareGradients(p, p.params.select(), mb, opts, new Rng(1));
      tf.dispose(Object.values(r.grads));
    };
    once();
    const live = tf.memory().numTensors;
    once();
    expect(tf.memory().numTensors).toBe(live);
    for (const [k, v] of p.params.select()) expect(v.dataSync()).toEqual(before.get(k));
    disposeBatch(mb.play);
    disposeBatch(mb.demo);
    p.dispose();
  });

  it('refuses rows on another slot and a single source', () => {
    const p = createPolicy(tiny, 5);
    const mb = metaBatch(p, 60);
    const bad = { ...mb, slot: 1 };
    const opts = { batch: () => undefined, weight: 1, innerLr: 1, sources: SOURCES };
    expect(() => alignAwareGradients(p, p.params.select(), bad, opts, new Rng(1))).toThrow(
      /every play row must be on slot 1/,
    );
    expect(() =>
      alignAwareGradients(p, p.params.select(), mb, { ...opts, sources: [SLOT] }, new Rng(1)),
    ).toThrow(/at least two source slots/);
    disposeBatch(mb.play);
    disposeBatch(mb.demo);
    p.dispose();
  });

  it('pretrain takes the term on the steps it is given, logs it, and refuses worker threads', async () => {
    const p = createPolicy(tiny, 6);
    const seen: Record<string, number>[] = [];
    const r = await pretrain(
      p,
      (s) => randomBatch(p, 4, new Rng(900 + s), { slots: SOURCES, isDemo: [1, 1, 0, 0] }),
      {
        steps: 3,
        alignAware: {
          batch: (s) => (s === 1 ? undefined : metaBatch(p, 70 + s)),
          weight: 1,
          innerLr: 1,
          sources: SOURCES,
        },
        onStep: (_, __, t) => seen.push({ ...t }),
      },
    );
    expect(seen.map((t) => 'meta/after' in t)).toEqual([true, false, true]);
    expect(seen[0]!['meta/before']).toBeGreaterThan(0);
    disposePretrain(r);
    // with the prefix frozen the term still runs, and the prefix stays where it was
    const prefixBefore = p.params.select(isPrefixParam).map(([k, v]) => [k, v.dataSync().slice()]);
    const frozen = await pretrain(
      p,
      (s) => randomBatch(p, 4, new Rng(950 + s), { slots: SOURCES, isDemo: [1, 1, 0, 0] }),
      {
        steps: 2,
        frozenPrefix: true,
        alignAware: { batch: (s) => metaBatch(p, 90 + s), weight: 1, innerLr: 1, sources: SOURCES },
      },
    );
    expect(frozen.step).toBe(2);
    for (const [k, v] of prefixBefore)
      expect(p.params.get(k as string).dataSync(), k as string).toEqual(v);
    disposePretrain(frozen);
    await expect(
      pretrain(p, () => randomBatch(p, 2, new Rng(1)), {
        steps: 1,
        workers: 2,
        alignAware: { batch: () => undefined, weight: 1, innerLr: 1, sources: SOURCES },
      }),
    ).rejects.toThrow(/one thread/);
    p.dispose();
  });
});
