import { initBackend, tf } from '@selfalign/core';
import { createPolicy, getConfig } from '@selfalign/experts';
import { beforeAll, describe, expect, it } from 'vitest';
import { fillWithSourceMean, slotVector, writeSlotVector } from './slots.js';

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
