// The alignment tasks are a table: a toy fourth task, defined only here, joins the loss, the
// mask, the parameters and the denominators without touching the package.
import { initBackend, Rng, tf } from '@selfalign/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ALIGNMENT_TASKS, type AlignmentTask, addTaskParams } from './alignment-suffix.js';
import { disposeBatch, randomBatch } from './batch.js';
import { computeLoss, disposeLoss, lossDenominators } from './compute-loss.js';
import { tiny } from './config.js';
import { allowsFor } from './masks.js';
import { createPolicy } from './policy.js';

beforeAll(() => initBackend('wasm'));

/** Predict the chunk's first action from a noisy copy of it, seeing the prefix and perception. */
const FIRST_ACTION: AlignmentTask<'firstAction'> = {
  name: 'firstAction',
  segment: 'first_action',
  sees: ['perception'],
  noiseKey: 'firstAction',
  noiseShape: (c, b) => [b, c.actionDim],
  inputs: (c) => [['first_action_in', c.actionDim]],
  head: (c) => ['first_action_head', c.actionDim],
  target: (ctx) => ({
    x0: tf.squeeze(tf.slice(ctx.actions, [0, 0, 0], [-1, 1, -1]), [1]),
    mask: tf.expandDims(ctx.actionDims, 0),
  }),
  tokens: (_ctx, xt, lin) => ({
    x: tf.expandDims(lin(xt, 'first_action_in'), 1),
    inputMask: tf.ones([xt.shape[0]!, 1], 'bool'),
    ar: [1],
  }),
  readout: () => ({ start: 0, count: 1, squeeze: true }),
  count: (n) => n.rows * n.actionDims,
};
const TASKS = [...ALIGNMENT_TASKS, FIRST_ACTION];

describe('alignment tasks as a table', () => {
  it('a fourth task defined in a test trains alongside the three', () => {
    const p = createPolicy(tiny, 2);
    addTaskParams(p, p.config, FIRST_ACTION, 'inputs', new Rng(1));
    addTaskParams(p, p.config, FIRST_ACTION, 'head', new Rng(2));
    const batch = randomBatch(p, 3, new Rng(4), { actionDims: 2 });
    const three = computeLoss(p, batch, { rng: new Rng(5) });
    const four = computeLoss(p, batch, {
      rng: new Rng(5),
      tasks: TASKS,
      weights: { firstAction: 2 },
    });
    const v = (t: tf.Tensor | undefined) => t!.dataSync()[0]!;
    expect(v(four['firstAction'])).toBeGreaterThan(0);
    expect(three['firstAction']).toBeUndefined();
    // the design's three are still computed (the new tokens are masked from them, though the
    // TTT inner step sees the longer alignment stream, so their values may move a little)
    for (const k of ['perception', 'dynamics', 'inverseDynamics'] as const) {
      expect(Number.isFinite(v(four[k]))).toBe(true);
      expect(v(four[k])).toBeCloseTo(v(three[k]), 0);
    }
    const sum =
      v(four.action) +
      v(four.perception) +
      v(four.dynamics) +
      v(four.inverseDynamics) +
      2 * v(four['firstAction']);
    expect(v(four.total)).toBeCloseTo(sum, 4);
    // its head learns from it, and only when it runs
    const head = p.params.get('alignment/first_action_head/w');
    const withTask = tf.variableGrads(() => computeLoss(p, batch, { tasks: TASKS }).total, [head]);
    expect(tf.sum(tf.abs(withTask.grads[head.name]!)).dataSync()[0]).toBeGreaterThan(0);
    const without = tf.variableGrads(
      () => computeLoss(p, batch).total,
      [head, p.params.get('alignment/perception_head/w')],
    );
    expect(without.grads[head.name]).toBeUndefined();
    // data-parallel denominators count it too
    expect(lossDenominators(p, batch, TASKS)['firstAction']).toBe(3 * 2);
    tf.dispose([
      withTask.value,
      without.value,
      ...Object.values(withTask.grads),
      ...Object.values(without.grads),
    ]);
    disposeLoss(three);
    disposeLoss(four);
    disposeBatch(batch);
    p.dispose();
  });

  it('the mask follows the table: the new task sees the prefix, perception and itself only', () => {
    const allows = allowsFor(TASKS);
    expect(allows('first_action', 'prefix')).toBe(true);
    expect(allows('first_action', 'perception')).toBe(true);
    expect(allows('first_action', 'first_action')).toBe(true);
    expect(allows('first_action', 'inverse')).toBe(false);
    expect(allows('inverse', 'first_action')).toBe(false);
    expect(allows('action', 'first_action')).toBe(false);
    // the design's three derive the fixed table of DESIGN 3.5
    const design = allowsFor(ALIGNMENT_TASKS);
    expect(design('dynamics', 'perception')).toBe(true);
    expect(design('dynamics', 'inverse')).toBe(false);
    expect(design('perception', 'dynamics')).toBe(false);
  });

  it('a task named like another loss term is refused', () => {
    const p = createPolicy(tiny, 2);
    const batch = randomBatch(p, 2, new Rng(4));
    expect(() => computeLoss(p, batch, { tasks: [{ ...FIRST_ACTION, name: 'action' }] })).toThrow(
      /cannot be named 'action'/,
    );
    disposeBatch(batch);
    p.dispose();
  });
});
