import { beforeAll, expect, it } from 'vitest';
import { initBackend } from '../backend.js';
import { tf } from '../tf.js';
import { posembSincos } from './posemb.js';

beforeAll(() => initBackend('wasm'));

it('posembSincos matches the closed form at t = 0, 0.5, 1', () => {
  const dim = 8;
  const out = posembSincos(tf.tensor1d([0, 0.5, 1]), dim).arraySync() as number[][];
  const half = dim / 2;
  [0, 0.5, 1].forEach((t, r) => {
    for (let i = 0; i < half; i++) {
      const period = 4e-3 * (4.0 / 4e-3) ** (i / (half - 1));
      expect(out[r]![i]).toBeCloseTo(Math.sin((2 * Math.PI * t) / period), 3);
      expect(out[r]![half + i]).toBeCloseTo(Math.cos((2 * Math.PI * t) / period), 3);
    }
  });
  // t = 0: sin part all 0, cos part all 1
  expect(out[0]).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
  // t = 0.5, slowest period 4.0: sin(pi / 4)
  expect(out[1]![3]).toBeCloseTo(Math.SQRT1_2, 5);
});

it('rejects odd widths', () => {
  expect(() => posembSincos(tf.tensor1d([0]), 7)).toThrow(/even/);
});
