// The blind alignment tasks a config may add (stateDynamics, kinematics): their weights, their
// losses, and that the TTT slot is the only way the embodiment reaches them (they do not see the
// image). kinematics predicts the image features of the frame after the chunk from the joint
// state there, so what the arm looks like in a joint state (link lengths, encoder offsets)
// reaches it only through the slot.
import { initBackend, Rng, tf } from '@selfalign/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ALIGNMENT_TASKS,
  alignmentTasksOf,
  KINEMATICS,
  STATE_DYNAMICS,
} from './alignment-suffix.js';
import { disposeBatch, randomBatch } from './batch.js';
import { computeLoss, disposeLoss, lossDenominators, type TrainBatch } from './compute-loss.js';
import { tiny, validateConfig, withExtraAlignmentTasks } from './config.js';
import { allowsFor } from './masks.js';
import { createPolicy } from './policy.js';

beforeAll(() => initBackend('wasm'));

const cfg = withExtraAlignmentTasks(tiny, ['stateDynamics']);
const scalar = (t: tf.Tensor | undefined) => t!.dataSync()[0]!;

/** The stateDynamics (or `task`'s) and perception losses of `batch` with fixed draws. */
function losses(p: ReturnType<typeof createPolicy>, batch: TrainBatch, task = 'stateDynamics') {
  const t = computeLoss(p, batch, { rng: new Rng(7), streams: ['alignment'] });
  const out = { loss: scalar(t[task]), perception: scalar(t.perception) };
  disposeLoss(t);
  return out;
}

describe('the stateDynamics alignment task', () => {
  it('a config adds it after the three; the design weights stay as the plain config draws them', () => {
    expect(alignmentTasksOf(tiny)).toBe(ALIGNMENT_TASKS);
    expect(alignmentTasksOf(cfg).map((t) => t.name)).toEqual([
      'perception',
      'dynamics',
      'inverseDynamics',
      'stateDynamics',
    ]);
    expect(withExtraAlignmentTasks(cfg, [])).toEqual(tiny);
    expect(() => validateConfig({ ...tiny, extraAlignmentTasks: ['nope' as never] })).toThrow(
      /unknown alignment task 'nope'/,
    );
    const plain = createPolicy(tiny, 3);
    const extra = createPolicy(cfg, 3);
    const added = extra.params.paths().filter((p) => !plain.params.has(p));
    expect(added.sort()).toEqual(
      [
        'alignment/sdyn_action_in/b',
        'alignment/sdyn_action_in/w',
        'alignment/sdyn_next_in/b',
        'alignment/sdyn_next_in/w',
        'alignment/sdyn_state_in/b',
        'alignment/sdyn_state_in/w',
        'alignment/state_dynamics_head/b',
        'alignment/state_dynamics_head/w',
      ].sort(),
    );
    for (const path of plain.params.paths())
      expect(
        tf.equal(plain.params.get(path), extra.params.get(path)).all().dataSync()[0],
        path,
      ).toBe(1);
    plain.dispose();
    extra.dispose();
  });

  it('is a finite loss term of the total that needs the next state, and counts like perception', () => {
    const p = createPolicy(cfg, 3);
    const batch = randomBatch(p, 4, new Rng(1), { stateDims: 6, actionDims: 3 });
    expect(batch.nextState!.shape).toEqual([4, 6]);
    const t = computeLoss(p, batch, { rng: new Rng(2), weights: { stateDynamics: 3 } });
    const sum =
      scalar(t.action) +
      scalar(t.perception) +
      scalar(t.dynamics) +
      scalar(t.inverseDynamics) +
      3 * scalar(t['stateDynamics']);
    expect(scalar(t['stateDynamics'])).toBeGreaterThan(0);
    expect(scalar(t.total)).toBeCloseTo(sum, 4);
    expect(lossDenominators(p, batch)['stateDynamics']).toBe(4 * 6);
    disposeLoss(t);
    const { nextState, ...without } = batch;
    expect(() => computeLoss(p, without)).toThrow(
      /stateDynamics alignment task needs batch.nextState/,
    );
    const short = tf.zeros([4, 5]);
    expect(() => computeLoss(p, { ...without, nextState: short })).toThrow(
      /batch.nextState has 5 dims, the state 6/,
    );
    // extra columns of the next state (e.g. velocities the policy does not take) are dropped
    const wide = tf.concat([nextState!, tf.ones([4, 3])], 1);
    const a = losses(p, batch);
    const b = losses(p, { ...without, nextState: wide });
    expect(b.loss).toBeCloseTo(a.loss, 6);
    tf.dispose([short, wide, nextState!]);
    disposeBatch(without as TrainBatch);
    p.dispose();
  });

  it('does not see the image: only the slot carries the embodiment to it', () => {
    const allows = allowsFor(alignmentTasksOf(cfg));
    expect(allows('stateDynamics', 'prefix')).toBe(false);
    expect(allows('stateDynamics', 'perception')).toBe(false);
    expect(allows('stateDynamics', 'stateDynamics')).toBe(true);
    expect(allows('perception', 'stateDynamics')).toBe(false);
    expect(STATE_DYNAMICS.blind).toBe(true);
    const p = createPolicy(cfg, 3);
    // give the slots different fast weights (a fresh policy's are all alike)
    for (const m of p.tttModules()) {
      const w1 = p.params.get(m.paths.W1);
      w1.assign(tf.add(w1, tf.randomNormal(w1.shape, 0, 0.5, 'float32', 9)));
    }
    const batch = randomBatch(p, 3, new Rng(1), { stateDims: 6, actionDims: 3, slots: [0, 0, 0] });
    const base = losses(p, batch);
    const images = tf.sub(255, batch.images);
    const otherImage = losses(p, { ...batch, images });
    expect(otherImage.loss).toBeCloseTo(base.loss, 6);
    expect(Math.abs(otherImage.perception - base.perception)).toBeGreaterThan(1e-4);
    const slot = tf.tensor1d([1, 1, 1], 'int32');
    const otherSlot = losses(p, { ...batch, slot });
    expect(Math.abs(otherSlot.loss - base.loss)).toBeGreaterThan(1e-4);
    tf.dispose([images, slot]);
    disposeBatch(batch);
    p.dispose();
  });
});

const both = withExtraAlignmentTasks(tiny, ['stateDynamics', 'kinematics']);

describe('the kinematics alignment task', () => {
  it('comes after the state-dynamics task and adds its own weights only', () => {
    expect(alignmentTasksOf(both).map((t) => t.name)).toEqual([
      'perception',
      'dynamics',
      'inverseDynamics',
      'stateDynamics',
      'kinematics',
    ]);
    const sdyn = createPolicy(withExtraAlignmentTasks(tiny, ['stateDynamics']), 3);
    const p = createPolicy(both, 3);
    const added = p.params.paths().filter((path) => !sdyn.params.has(path));
    expect(added.sort()).toEqual(
      [
        'alignment/kin_feature_in/b',
        'alignment/kin_feature_in/w',
        'alignment/kin_state_in/b',
        'alignment/kin_state_in/w',
        'alignment/kinematics_head/b',
        'alignment/kinematics_head/w',
      ].sort(),
    );
    sdyn.dispose();
    p.dispose();
  });

  it('is a finite loss term of the total over every feature, and needs the next state', () => {
    const p = createPolicy(withExtraAlignmentTasks(tiny, ['kinematics']), 3);
    const batch = randomBatch(p, 4, new Rng(1), { stateDims: 6, actionDims: 3 });
    expect(batch.nextState!.shape).toEqual([4, 6]);
    const t = computeLoss(p, batch, { rng: new Rng(2), weights: { kinematics: 2 } });
    const sum =
      scalar(t.action) +
      scalar(t.perception) +
      scalar(t.dynamics) +
      scalar(t.inverseDynamics) +
      2 * scalar(t['kinematics']);
    expect(scalar(t['kinematics'])).toBeGreaterThan(0);
    expect(Number.isFinite(scalar(t['kinematics']))).toBe(true);
    expect(scalar(t.total)).toBeCloseTo(sum, 4);
    expect(lossDenominators(p, batch)['kinematics']).toBe(4 * tiny.featureDim);
    disposeLoss(t);
    const { nextState, ...without } = batch;
    expect(() => computeLoss(p, without)).toThrow(
      /kinematics alignment task needs batch.nextState/,
    );
    tf.dispose(nextState!);
    disposeBatch(without as TrainBatch);
    p.dispose();
  });

  it('does not see the image; the slot, the joint state and its target move it', () => {
    const allows = allowsFor(alignmentTasksOf(both));
    expect(KINEMATICS.blind).toBe(true);
    expect(allows('kinematics', 'prefix')).toBe(false);
    expect(allows('kinematics', 'stateDynamics')).toBe(false);
    expect(allows('stateDynamics', 'kinematics')).toBe(false);
    expect(allows('perception', 'kinematics')).toBe(false);
    const p = createPolicy(both, 3);
    for (const m of p.tttModules()) {
      const w1 = p.params.get(m.paths.W1);
      w1.assign(tf.add(w1, tf.randomNormal(w1.shape, 0, 0.5, 'float32', 9)));
    }
    const batch = randomBatch(p, 3, new Rng(1), { stateDims: 6, actionDims: 3, slots: [0, 0, 0] });
    const base = losses(p, batch, 'kinematics');
    const images = tf.sub(255, batch.images);
    const otherImage = losses(p, { ...batch, images }, 'kinematics');
    expect(otherImage.loss).toBeCloseTo(base.loss, 6);
    expect(Math.abs(otherImage.perception - base.perception)).toBeGreaterThan(1e-4);
    const slot = tf.tensor1d([1, 1, 1], 'int32');
    const nextState = tf.neg(batch.nextState!);
    const nextFeatures = tf.add(batch.nextFeatures, 1);
    for (const changed of [{ slot }, { nextState }, { nextFeatures }])
      expect(
        Math.abs(losses(p, { ...batch, ...changed }, 'kinematics').loss - base.loss),
      ).toBeGreaterThan(1e-4);
    tf.dispose([images, slot, nextState, nextFeatures]);
    disposeBatch(batch);
    p.dispose();
  });
});
