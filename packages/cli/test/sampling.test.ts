// pretrain --data-weights: each data file's share of the batch rows follows its weight.
import { Rng } from '@selfalign/core';
import { describe, expect, it } from 'vitest';
import { drawRows, weightedRows } from '../src/shared.js';

describe('weightedRows', () => {
  // three files of 100, 10 and 890 rows
  const groupOf = [
    ...Array<number>(100).fill(0),
    ...Array<number>(10).fill(1),
    ...Array<number>(890).fill(2),
  ];

  it('gives each file its weight share of the rows, uniform within the file', () => {
    const draw = weightedRows(groupOf, [1, 3, 0]);
    const rows = draw(40_000, new Rng(1));
    const share = [0, 0, 0];
    const hits = new Array<number>(groupOf.length).fill(0);
    for (const r of rows) {
      share[groupOf[r]!]! += 1 / rows.length;
      hits[r]! += 1;
    }
    // binomial sd of a 0.25 share over 40k draws: 0.0022
    expect(share[0]).toBeCloseTo(0.25, 1);
    expect(Math.abs(share[0]! - 0.25)).toBeLessThan(0.01);
    expect(Math.abs(share[1]! - 0.75)).toBeLessThan(0.01);
    expect(share[2]).toBe(0);
    // the 10 rows of file 1 each get ~3,000 draws, the 100 of file 0 ~100
    for (let i = 100; i < 110; i++) expect(Math.abs(hits[i]! - 3000)).toBeLessThan(300);
    const f0 = hits.slice(0, 100);
    expect(Math.min(...f0)).toBeGreaterThan(50);
    expect(Math.max(...f0)).toBeLessThan(160);
  });

  it('is seeded: the same rng state draws the same rows', () => {
    const draw = weightedRows(groupOf, [1, 1, 1]);
    expect(draw(64, new Rng(7))).toEqual(draw(64, new Rng(7)));
    expect(draw(64, new Rng(7))).not.toEqual(draw(64, new Rng(8)));
  });

  it('weights in proportion to the file sizes match the unweighted share', () => {
    const draw = weightedRows(groupOf, [100, 10, 890]);
    const a = draw(20_000, new Rng(3)).filter((r) => groupOf[r] === 2).length;
    const rng = new Rng(3);
    const plain = Array.from({ length: 20 }, () => drawRows(groupOf.length, 1000, rng)).flat();
    const b = plain.filter((r) => groupOf[r] === 2).length;
    expect(Math.abs(a - b) / 20_000).toBeLessThan(0.015);
  });

  it('refuses a positive weight on a file without rows, and bad weights', () => {
    expect(() => weightedRows([0, 0, 2], [1, 1, 1], ['a', 'b', 'c'])).toThrow(
      /data weight 1 for b, which has no rows/,
    );
    expect(() => weightedRows([0, 0, 2], [1, 0, 1])).not.toThrow();
    expect(() => weightedRows([0, 1], [0, 0])).toThrow(/every weight is 0/);
    expect(() => weightedRows([0, 1], [1, -1])).toThrow(/not a number >= 0/);
  });
});
