import { evaluateLosses, onSlot } from '@selfalign/align';
import { initBackend, Rng, tf } from '@selfalign/core';
import { createPolicy, disposeBatch, getConfig, randomBatch } from '@selfalign/experts';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  copySlot,
  fillWithSourceMean,
  nearestSourceSlot,
  slotVector,
  writeSlotVector,
} from './slots.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('slot vectors', () => {
  it('copy one slot into another exactly, leave the rest, and refuse a wrong length', () => {
    const policy = createPolicy(getConfig('tiny'), { seed: 3 });
    const before = tf.memory().numTensors;
    const s0 = slotVector(policy, 0);
    const s1 = slotVector(policy, 1);
    // every TTT layer's W1 and b1 of one slot: tiny has 2 layers of 2 x (16x16 + 16)
    expect(s0.length).toBe(2 * 2 * (16 * 16 + 16));
    writeSlotVector(policy, 3, s0);
    expect(slotVector(policy, 3)).toEqual(s0);
    expect(slotVector(policy, 1)).toEqual(s1);
    fillWithSourceMean(policy, 2, [0, 1]);
    const mean = slotVector(policy, 2);
    for (const i of [0, 17, s0.length - 1]) expect(mean[i]).toBeCloseTo((s0[i]! + s1[i]!) / 2, 6);
    expect(() => writeSlotVector(policy, 3, s0.subarray(1))).toThrow(/numbers for a slot of/);
    expect(tf.memory().numTensors).toBe(before);
    policy.dispose();
  });
});

describe('the nearest source slot', () => {
  it("scores every source slot by align's objective on the play, leaves the lowest in the slot", () => {
    const policy = createPolicy(getConfig('tiny'), { seed: 4 });
    const rng = new Rng(9);
    // play rows on slot 3, the new robot's
    const drawn = [0, 1].map(() => randomBatch(policy, 4, rng, { isDemo: [0, 0, 0, 0] }));
    const play = drawn.map((b) => onSlot(b, 3));
    // slot 2 made far from the others: it cannot be the nearest of a random play batch
    const far = slotVector(policy, 2).map((x) => x * 40);
    writeSlotVector(policy, 2, far);
    const before = tf.memory().numTensors;
    const weights = { perception: 1, dynamics: 0, inverseDynamics: 1 };
    const r = nearestSourceSlot(policy, play, [0, 1, 2], 3, { weights, seed: 3 });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.scores.map((x) => x.slot)).toEqual([0, 1, 2]);
    const lowest = r.scores.reduce((a, b) => (b.loss < a.loss ? b : a));
    expect(r.nearest).toBe(lowest.slot);
    expect(r.nearest).not.toBe(2);
    expect(slotVector(policy, 3)).toEqual(slotVector(policy, r.nearest));
    // each score is the objective with that slot copied in, same seed and weights
    copySlot(policy, 1, 3);
    expect(evaluateLosses(policy, play, { seed: 3, weights }).total).toBe(r.scores[1]!.loss);
    // scored on the first maxBatches batches, every row at one flow time
    const t1 = nearestSourceSlot(policy, play, [0, 1, 2], 3, {
      weights,
      seed: 3,
      maxBatches: 1,
      flowTime: 1,
    });
    copySlot(policy, 0, 3);
    expect(t1.scores[0]!.loss).toBe(
      evaluateLosses(policy, play.slice(0, 1), { seed: 3, weights, flowTime: 1 }).total,
    );
    expect(t1.scores[0]!.loss).not.toBe(r.scores[0]!.loss);
    expect(() => nearestSourceSlot(policy, play, [], 3)).toThrow(/no source slots/);
    for (const b of play) b.slot?.dispose();
    drawn.forEach(disposeBatch);
    policy.dispose();
  });
});
