// DESIGN 3.5 / section 7 item 7: the policy's mask table, entry by entry, and positions.
import { initBackend, tf } from '@selfalign/core';
import { beforeAll, expect, it } from 'vitest';
import { buildMask, prefixPositions, suffixPositions } from './masks.js';

beforeAll(() => initBackend('wasm'));

const TABLE: Record<string, string[]> = {
  prefix: ['prefix'],
  action: ['prefix', 'action'],
  perception: ['prefix', 'perception'],
  dynamics: ['prefix', 'perception', 'dynamics'],
  inverse: ['prefix', 'perception', 'inverse'],
};

it('the mask follows the DESIGN 3.5 table entry by entry, with pi0 blocks and padding', () => {
  const prefixMask = tf.tensor2d([[1, 1, 1, 0]], [1, 4], 'bool'); // last prefix token is padding
  const seg = (name: string, ar: number[], real?: number[]) => ({
    name,
    inputMask: tf.tensor2d([real ?? ar.map(() => 1)], [1, ar.length], 'bool'),
    ar,
  });
  const segments = [
    seg('action', [1, 1, 0, 0]),
    seg('perception', [1]),
    seg('dynamics', [1, 0, 0], [1, 0, 1]), // one padded action step
    seg('inverse', [1, 0, 0], [1, 1, 0]),
  ];
  const m = (buildMask(prefixMask, segments, true).arraySync() as unknown as boolean[][][])[0]!;
  const owner = [
    'prefix',
    'prefix',
    'prefix',
    'prefix',
    ...segments.flatMap((s) => s.ar.map(() => s.name)),
  ];
  const real = [1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0];
  for (let i = 0; i < owner.length; i++) {
    for (let j = 0; j < owner.length; j++) {
      let want = TABLE[owner[i]!]!.includes(owner[j]!) && real[i] === 1 && real[j] === 1;
      if (owner[i] === 'action' && owner[j] === 'action') want &&= !(i === 4 && j > 4); // state token
      expect(Boolean(m[i]![j]), `${owner[i]}[${i}] -> ${owner[j]}[${j}]`).toBe(want);
    }
  }
  // with a cached prefix, rows start after it and columns still cover it
  const cached = buildMask(prefixMask, segments, false);
  expect(cached.shape).toEqual([1, 11, 15]);
});

it('positions: prefix cumsum(pad) - 1; each suffix branch continues after the real prefix', () => {
  const prefixMask = tf.tensor2d(
    [
      [1, 1, 0, 1],
      [1, 0, 0, 0],
    ],
    [2, 4],
    'bool',
  );
  expect(prefixPositions(prefixMask).arraySync()).toEqual([
    [0, 1, 1, 2],
    [0, 0, 0, 0],
  ]);
  const suffix = tf.tensor2d(
    [
      [1, 1, 0, 1],
      [1, 1, 1, 1],
    ],
    [2, 4],
    'bool',
  );
  expect(suffixPositions(prefixMask, suffix).arraySync()).toEqual([
    [3, 4, 4, 5],
    [1, 2, 3, 4],
  ]);
});
