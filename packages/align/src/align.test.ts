import { initBackend, Rng, randomNormal, tf } from '@selfalign/core';
import {
  computeLoss,
  createPolicy,
  disposeBatch,
  type Policy,
  randomBatch,
  type TrainBatch,
  tiny,
} from '@selfalign/experts';
import { TTT_FAST_WEIGHTS } from '@selfalign/ttt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { align, defaultAlignWeights, evaluateLosses, onSlot } from './align.js';
import { SlotParam } from './slot-param.js';

beforeAll(() => initBackend('wasm'));

const values = (p: Policy) => new Map(p.params.select().map(([k, v]) => [k, v.dataSync().slice()]));
const slotOf = (p: Policy, path: string, s: number) =>
  Array.from(tf.slice(p.params.get(path), [s], [1]).dataSync());

function setup(seed = 1) {
  const policy = createPolicy(tiny, seed);
  const rng = new Rng(seed + 10);
  const play: TrainBatch[] = [0, 1].map(() =>
    randomBatch(policy, 4, rng, { isDemo: [0, 0, 0, 0] }),
  );
  const heldOut = [randomBatch(policy, 4, rng, { isDemo: [0, 0, 0, 0] })];
  return { policy, play, heldOut, dispose: () => [...play, ...heldOut].forEach(disposeBatch) };
}

describe('align: DESIGN section 7 items 8 and 9', () => {
  let s: ReturnType<typeof setup>;
  beforeAll(() => {
    s = setup();
  });
  afterAll(() => {
    s.dispose();
    s.policy.dispose();
  });

  it('8: only W1/b1 of the slot change, the training flag stays, the Action Expert is never called, the alignment loss falls', async () => {
    const { policy, play } = s;
    policy.training = false;
    const before = values(policy);
    const calls = { ...policy.calls };
    const r = await align(policy, play, { slot: 2, lr: 1e-2, maxSteps: 30 });
    expect(policy.training).toBe(false);
    expect(policy.calls.action).toBe(calls.action);
    expect(policy.calls.alignment).toBeGreaterThan(calls.alignment);
    const after = values(policy);
    const fast = new Set(policy.params.select(TTT_FAST_WEIGHTS).map(([p]) => p));
    for (const [path, v] of before) {
      if (!fast.has(path)) {
        expect(after.get(path), path).toEqual(v);
        continue;
      }
      const per = v.length / tiny.ttt.slots;
      for (let k = 0; k < tiny.ttt.slots; k++) {
        const same = Array.from(after.get(path)!.subarray(k * per, (k + 1) * per)).every(
          (x, i) => x === v[k * per + i],
        );
        expect(same, `${path} slot ${k}`).toBe(k !== 2);
      }
    }
    expect(r.stopReason).toBe('maxSteps');
    expect(r.steps).toBe(30);
    expect(r.after.total).toBeLessThan(r.before.total);
    expect(r.after.action).toBe(0);
    r.state.dispose();
  });

  it('9: the same noise gives different actions after align and the original ones after restoring W1/b1', async () => {
    const { policy, play } = s;
    const obs = { ...play[0]!, slot: tf.fill([4], 3, 'int32') };
    const noise = randomNormal(new Rng(3), [4, tiny.actionHorizon, tiny.actionDim]);
    const snap = policy.params.snapshot(TTT_FAST_WEIGHTS);
    const a0 = policy.sampleActions(obs, { noise });
    const r = await align(policy, play, { slot: 3, lr: 1e-2, maxSteps: 10 });
    const a1 = policy.sampleActions(obs, { noise });
    expect(tf.max(tf.abs(tf.sub(a0, a1))).dataSync()[0]).toBeGreaterThan(1e-4);
    policy.params.restore(snap);
    const a2 = policy.sampleActions(obs, { noise });
    expect(Array.from(a2.dataSync())).toEqual(Array.from(a0.dataSync()));
    r.state.dispose();
  });
});

describe('align: stopping, weights, guards, continuation', () => {
  let s: ReturnType<typeof setup>;
  beforeAll(() => {
    s = setup(2);
  });
  afterAll(() => {
    s.dispose();
    s.policy.dispose();
  });

  it('stops on a smoothed loss under the threshold', async () => {
    const r = await align(s.policy, s.play, { lossThreshold: 1e9, maxSteps: 50 });
    expect(r.stopReason).toBe('threshold');
    expect(r.steps).toBe(1);
    r.state.dispose();
  });

  it('stops when the held-out loss stops improving and keeps the best slot', async () => {
    const r = await align(s.policy, s.play, {
      slot: 1,
      lr: 0.3,
      maxSteps: 200,
      heldOut: s.heldOut,
      evalEvery: 1,
      patience: 2,
    });
    expect(r.stopReason).toBe('heldOut');
    expect(r.steps).toBeLessThan(200);
    const best = Math.min(...r.heldOutLosses);
    expect(r.after.total).toBeCloseTo(best, 4);
    r.state.dispose();
  });

  it('a fixed flow time is the time of every row: the same losses as computeLoss at that t', async () => {
    const b = onSlot(s.play[0]!, 0);
    const time = tf.fill([4], 0.8);
    const want = computeLoss(s.policy, b, { streams: ['alignment'], rng: new Rng(4), time });
    const got = evaluateLosses(s.policy, [b], { flowTime: 0.8, seed: 4 });
    expect(got.perception).toBeCloseTo(want.perception.dataSync()[0]!, 6);
    expect(got.inverseDynamics).toBeCloseTo(want.inverseDynamics.dataSync()[0]!, 6);
    // a drawn t gives other losses
    const drawn = evaluateLosses(s.policy, [b], { seed: 4 });
    expect(drawn.perception).not.toBeCloseTo(got.perception, 4);
    tf.dispose([time, b.slot, ...(Object.values(want) as tf.Tensor[])]);
    // align at a fixed t: the loss falls and no tensor is left behind
    const before = tf.memory().numTensors;
    const r = await align(s.policy, s.play, { slot: 2, lr: 1e-2, maxSteps: 20, flowTime: 1 });
    expect(r.losses.at(-1)!).toBeLessThan(r.losses[0]!);
    r.state.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(align(s.policy, s.play, { flowTime: 0 })).rejects.toThrow(/flowTime must be in/);
    expect(() => evaluateLosses(s.policy, [b], { flowTime: 1.5 })).toThrow(/flowTime must be in/);
  });

  it('a zero weight removes that task: with every weight 0 the slot does not move', async () => {
    const before = slotOf(s.policy, 'ttt/0/W1', 0);
    const r = await align(s.policy, s.play, {
      slot: 0,
      lr: 1e-2,
      maxSteps: 3,
      lossWeights: { perception: 0, dynamics: 0, inverseDynamics: 0 },
    });
    expect(r.losses).toEqual([0, 0, 0]);
    expect(slotOf(s.policy, 'ttt/0/W1', 0)).toEqual(before);
    r.state.dispose();
  });

  it("L_ttt alone (every task weight 0, ttt 1) moves the slot to the play's tokens: it is reported before and after and falls", async () => {
    const r = await align(s.policy, s.play, {
      slot: 3,
      lr: 1e-2,
      maxSteps: 10,
      lossWeights: { perception: 0, dynamics: 0, inverseDynamics: 0, ttt: 1 },
    });
    expect(r.before.ttt).toBeGreaterThan(0);
    expect(r.after.ttt!).toBeLessThan(r.before.ttt!);
    // the objective is L_ttt and nothing else
    expect(r.after.total).toBeCloseTo(r.after.ttt!, 6);
    expect(r.losses.at(-1)!).toBeLessThan(r.losses[0]!);
    r.state.dispose();
    // without its weight it is not reported
    expect(evaluateLosses(s.policy, s.play, { seed: 1 }).ttt).toBeUndefined();
  });

  it('the default weights: the three design tasks, or the state-dynamics task alone for a policy that has it (kinematics 0)', () => {
    expect(defaultAlignWeights(tiny)).toEqual({ perception: 1, dynamics: 1, inverseDynamics: 1 });
    expect(defaultAlignWeights({ ...tiny, extraAlignmentTasks: ['stateDynamics'] })).toEqual({
      perception: 0,
      dynamics: 0,
      inverseDynamics: 0,
      stateDynamics: 1,
    });
    const both = { ...tiny, extraAlignmentTasks: ['stateDynamics', 'kinematics'] as const };
    expect(defaultAlignWeights(both)).toEqual({
      perception: 0,
      dynamics: 0,
      inverseDynamics: 0,
      stateDynamics: 1,
      kinematics: 0,
    });
    expect(defaultAlignWeights({ ...tiny, extraAlignmentTasks: ['kinematics'] })).toEqual({
      perception: 1,
      dynamics: 1,
      inverseDynamics: 1,
      kinematics: 0,
    });
  });

  it("a zero weight removes exactly that task's gradient: g(0,1,1) = g(1,1,1) - g(1,0,0)", () => {
    const param = new SlotParam(s.policy, { kind: 'free', slot: 1 });
    const vars = param.tree.select().map(([, v]) => v);
    const batch = onSlot(s.play[0]!, 1);
    const grad = (perception: number, dynamics: number, inverseDynamics: number) => {
      const { value, grads } = tf.variableGrads(() => {
        const t = computeLoss(s.policy, batch, {
          streams: ['alignment'],
          rng: new Rng(4),
          weights: { perception, dynamics, inverseDynamics },
          fastWeights: param.fastWeights(),
        });
        const { total, ...rest } = t;
        tf.dispose(Object.values(rest) as tf.Tensor[]);
        return total;
      }, vars);
      value.dispose();
      return tf.concat(vars.map((v) => tf.reshape(grads[v.name]!, [-1])));
    };
    const noPerception = grad(0, 1, 1);
    const want = tf.sub(grad(1, 1, 1), grad(1, 0, 0));
    const scale = tf.max(tf.abs(want)).dataSync()[0]!;
    expect(scale).toBeGreaterThan(0);
    expect(tf.max(tf.abs(tf.sub(noPerception, want))).dataSync()[0]!).toBeLessThan(1e-4 * scale);
    expect(tf.max(tf.abs(tf.sub(noPerception, grad(1, 1, 1)))).dataSync()[0]!).toBeGreaterThan(
      1e-3 * scale,
    );
    param.dispose();
    batch.slot!.dispose();
  });

  it('a non-finite loss stops align and restores the last good slot', async () => {
    const bad = { ...s.play[0]!, nextFeatures: tf.fill(s.play[0]!.nextFeatures.shape, Number.NaN) };
    const before = slotOf(s.policy, 'ttt/1/W1', 2);
    const r = await align(s.policy, [bad], { slot: 2, lr: 1e-2, maxSteps: 5 });
    expect(r.stopReason).toBe('nonFinite');
    expect(r.steps).toBe(0);
    expect(slotOf(s.policy, 'ttt/1/W1', 2)).toEqual(before);
    r.state.dispose();
  });

  it('a second call continues: 5 + 5 steps equal 10 steps', async () => {
    const a = setup(5);
    const b = setup(5);
    const r1 = await align(a.policy, a.play, { slot: 1, lr: 1e-2, maxSteps: 5 });
    const r2 = await align(a.policy, a.play, { maxSteps: 5, state: r1.state });
    expect(r2.state.step).toBe(10);
    expect(r2.state.opt.step).toBe(10);
    const r3 = await align(b.policy, b.play, { slot: 1, lr: 1e-2, maxSteps: 10 });
    expect([...r1.losses, ...r2.losses]).toEqual(r3.losses);
    expect(slotOf(a.policy, 'ttt/0/W1', 1)).toEqual(slotOf(b.policy, 'ttt/0/W1', 1));
    r2.state.dispose();
    r3.state.dispose();
    for (const x of [a, b]) {
      x.dispose();
      x.policy.dispose();
    }
  });

  it('iterate averaging commits the mean of the iterates from averageFrom on, and no tensor is left', async () => {
    const a = setup(6);
    const b = setup(6);
    const opts = { slot: 1, parametrisation: 'span' as const, basis: [0, 2], lr: 5e-2 };
    // the iterates after steps 3..6, one call per step (continuation is the same run)
    const coefs: number[][] = [];
    let st = (await align(a.policy, a.play, { ...opts, maxSteps: 2 })).state;
    for (let k = 0; k < 4; k++) {
      st = (await align(a.policy, a.play, { maxSteps: 1, state: st })).state;
      coefs.push(Array.from(st.param.tree.get('coef').dataSync()));
    }
    st.dispose();
    const live = tf.memory().numTensors;
    const avg = await align(b.policy, b.play, { ...opts, maxSteps: 6, averageFrom: 2 });
    const got = Array.from(avg.state.param.tree.get('coef').dataSync());
    const want = coefs[0]!.map((_, j) => coefs.reduce((t, c) => t + c[j]!, 0) / coefs.length);
    got.forEach((g, j) => expect(g).toBeCloseTo(want[j]!, 6));
    expect(got).not.toEqual(coefs.at(-1));
    avg.state.dispose();
    expect(tf.memory().numTensors).toBe(live);
    // averaging only the last iterate is no averaging
    const last = await align(b.policy, b.play, { ...opts, maxSteps: 6, averageFrom: 5 });
    expect(Array.from(last.state.param.tree.get('coef').dataSync())).toEqual(coefs.at(-1));
    last.state.dispose();
    await expect(align(b.policy, b.play, { ...opts, averageFrom: -1 })).rejects.toThrow(
      /averageFrom must be a step >= 0/,
    );
    for (const x of [a, b]) {
      x.dispose();
      x.policy.dispose();
    }
  });
});

describe('slot parametrisations', () => {
  let s: ReturnType<typeof setup>;
  beforeAll(() => {
    s = setup(3);
  });
  afterAll(() => {
    s.dispose();
    s.policy.dispose();
  });

  it('initialise from the mean of the basis or from another slot (span: a basis slot)', () => {
    const mean = new SlotParam(s.policy, { kind: 'free', slot: 3, init: 'mean', basis: [0, 1] });
    const want = tf.mean(tf.slice(s.policy.params.get('ttt/0/W1'), [0], [2]), 0);
    expect(tf.max(tf.abs(tf.sub(mean.slotWeights(0).W1, want))).dataSync()[0]).toBeLessThan(1e-7);
    const copy = new SlotParam(s.policy, { kind: 'free', slot: 3, init: 1 });
    expect(Array.from(copy.slotWeights(1).W1.dataSync())).toEqual(slotOf(s.policy, 'ttt/1/W1', 1));
    // span from a basis slot: that slot exactly (its coefficient 1), not from outside the span
    const fromSlot = new SlotParam(s.policy, { kind: 'span', slot: 3, init: 2, basis: [0, 1, 2] });
    expect(Array.from(fromSlot.tree.get('coef').dataSync())).toEqual([0, 0, 1]);
    const d = tf.sub(
      fromSlot.slotWeights(1).W1,
      tf.slice(s.policy.params.get('ttt/1/W1'), [2], [1]),
    );
    expect(tf.max(tf.abs(d)).dataSync()[0]).toBeLessThan(1e-6);
    for (const init of ['current', 3] as const)
      expect(
        () => new SlotParam(s.policy, { kind: 'span', slot: 3, init, basis: [0, 1, 2] }),
      ).toThrow(/'span' starts at the mean of its basis or at one of its basis slots \(0, 1, 2\)/);
    mean.dispose();
    copy.dispose();
    fromSlot.dispose();
    expect(() => new SlotParam(s.policy, { kind: 'free', slot: 9 })).toThrow(
      /slot 9 is out of range/,
    );
  });

  it('span trains only its K coefficients and the slot stays in the span', async () => {
    const r = await align(s.policy, s.play, {
      slot: 3,
      parametrisation: 'span',
      basis: [0, 1, 2],
      maxSteps: 10,
    });
    expect(r.state.param.tree.paths()).toEqual(['coef']);
    const c = Array.from(r.state.param.tree.get('coef').dataSync());
    expect(c.some((x) => x !== 0)).toBe(true);
    // slot 3 == mean + sum_k c_k (slot_k - mean), from the policy's own values
    const W1 = s.policy.params.get('ttt/1/W1');
    const basis = [0, 1, 2].map((k) => tf.squeeze(tf.slice(W1, [k], [1]), [0]));
    const mean = tf.div(tf.addN(basis), 3);
    const want = tf.addN([mean, ...basis.map((b, k) => tf.mul(tf.sub(b, mean), c[k]!))]);
    const got = tf.squeeze(tf.slice(W1, [3], [1]), [0]);
    expect(tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]).toBeLessThan(1e-6);
    r.state.dispose();
  });

  it('hull trains the logits of a mixture of its basis slots: the slot is their softmax-weighted sum', async () => {
    // equal logits at the start: the basis mean; from a basis slot: that slot's weight e^4/(e^4+2)
    const start = new SlotParam(s.policy, { kind: 'hull', slot: 3, init: 2, basis: [0, 1, 2] });
    expect(Array.from(start.tree.get('logits').dataSync())).toEqual([0, 0, 4]);
    start.dispose();
    expect(
      () => new SlotParam(s.policy, { kind: 'hull', slot: 3, basis: [0, 1, 2], prior: 0.1 }),
    ).toThrow(/'hull' stays among its basis slots/);
    const r = await align(s.policy, s.play, {
      slot: 3,
      parametrisation: 'hull',
      init: 'mean',
      basis: [0, 2],
      maxSteps: 10,
    });
    expect(r.state.param.tree.paths()).toEqual(['logits']);
    const z = Array.from(r.state.param.tree.get('logits').dataSync());
    expect(z[0]).not.toBe(z[1]); // the weights moved off the equal mixture
    const w = [Math.exp(z[0]!), Math.exp(z[1]!)].map((e, _, a) => e / (a[0]! + a[1]!));
    for (const path of ['ttt/0/W1', 'ttt/1/b1']) {
      const v = s.policy.params.get(path);
      const want = tf.add(
        tf.mul(tf.slice(v, [0], [1]), w[0]!),
        tf.mul(tf.slice(v, [2], [1]), w[1]!),
      );
      const got = tf.slice(v, [3], [1]);
      expect(tf.max(tf.abs(tf.sub(got, want))).dataSync()[0], path).toBeLessThan(1e-5);
      tf.dispose([want, got]);
    }
    r.state.dispose();
  });

  it('bias trains b1 only: W1 stays at its start, b1 moves, other slots untouched', async () => {
    const W1before = slotOf(s.policy, 'ttt/0/W1', 0);
    const b1before = slotOf(s.policy, 'ttt/0/b1', 3);
    const other = slotOf(s.policy, 'ttt/0/b1', 1);
    const r = await align(s.policy, s.play, {
      slot: 3,
      parametrisation: 'bias',
      init: 0,
      basis: [0, 1, 2],
      maxSteps: 10,
      lr: 1e-2,
    });
    expect(r.state.param.tree.paths().every((p) => /^slot\/\d+\/b1$/.test(p))).toBe(true);
    // W1 of slot 3 is slot 0's (the init), b1 moved away from it, slot 1 is as it was
    expect(slotOf(s.policy, 'ttt/0/W1', 3)).toEqual(W1before);
    expect(slotOf(s.policy, 'ttt/0/b1', 3)).not.toEqual(b1before);
    expect(slotOf(s.policy, 'ttt/0/b1', 3)).not.toEqual(slotOf(s.policy, 'ttt/0/b1', 0));
    expect(slotOf(s.policy, 'ttt/0/b1', 1)).toEqual(other);
    expect(r.losses.at(-1)!).toBeLessThan(r.losses[0]!);
    r.state.dispose();
  });

  it('span+residual adds a free part under an L2 penalty', async () => {
    const r = await align(s.policy, s.play, {
      slot: 3,
      parametrisation: 'span+residual',
      residualL2: 10,
      maxSteps: 5,
    });
    expect(r.state.param.tree.paths()).toContain('residual/0/W1');
    expect(r.state.param.penalty().dataSync()[0]).toBeGreaterThan(0);
    r.state.dispose();
  });

  it('the span prior: d^2 is 0 at the mean and the span dimension at the basis slots; it holds align near the mean', async () => {
    // 3 slots in general position span a plane: each sits at d^2 = K * leverage = 2
    const at = (init: 'mean' | number) =>
      new SlotParam(s.policy, { kind: 'span', slot: 3, init, basis: [0, 1, 2], prior: 0.5 });
    for (const init of ['mean', 0, 1, 2] as const) {
      const p = at(init);
      const d2 = p.priorDistance2()!.dataSync()[0]!;
      expect(d2).toBeCloseTo(init === 'mean' ? 0 : 2, 4);
      expect(p.penalty().dataSync()[0]).toBeCloseTo(0.5 * d2, 5);
      p.dispose();
    }
    const run = (prior?: number) =>
      align(s.policy, s.play, {
        slot: 3,
        parametrisation: 'span',
        basis: [0, 1, 2],
        maxSteps: 20,
        lr: 0.2,
        ...(prior !== undefined ? { prior } : {}),
      });
    const free = await run();
    const held = await run(10);
    // the prior's own measure of the fitted coefficients: K ||c U||^2
    const measure = (r: typeof free) => {
      const probe = new SlotParam(s.policy, { kind: 'span', slot: 3, basis: [0, 1, 2], prior: 1 });
      probe.tree.get('coef').assign(r.state.param.tree.get('coef'));
      const v = probe.priorDistance2()!.dataSync()[0]!;
      probe.dispose();
      return v;
    };
    expect(measure(held)).toBeLessThan(0.5 * measure(free));
    expect(measure(free)).toBeGreaterThan(0);
    free.state.dispose();
    held.state.dispose();
    expect(() => new SlotParam(s.policy, { kind: 'free', slot: 3, prior: 1 })).toThrow(
      /the prior is on the span's code: 'free' has no span/,
    );
    expect(() => at(0).dispose()).not.toThrow();
    expect(
      () => new SlotParam(s.policy, { kind: 'span', slot: 3, basis: [0, 1], prior: -1 }),
    ).toThrow(/the span prior must be a number >= 0/);
  });

  it('200 align steps leave the live tensor count unchanged', async () => {
    const r = await align(s.policy, s.play, { slot: 2, maxSteps: 2 });
    const live = tf.memory().numTensors;
    const r2 = await align(s.policy, s.play, { maxSteps: 200, state: r.state });
    expect(r2.steps).toBe(200);
    expect(tf.memory().numTensors).toBe(live);
    r2.state.dispose();
  });
});
