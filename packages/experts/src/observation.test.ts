import { initBackend } from '@selfalign/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { tiny } from './config.js';
import { makeObservation } from './observation.js';
import { createPolicy } from './policy.js';

beforeAll(() => initBackend('wasm'));

const stats = (n: number) => ({
  mean: new Array(n).fill(0),
  std: new Array(n).fill(1),
  q01: new Array(n).fill(-1),
  q99: new Array(n).fill(1),
});
const host = (b: number, ds: number) => ({
  batch: b,
  images: new Uint8Array(b * tiny.vision.cameras * tiny.vision.imageSize ** 2 * 3),
  prompts: new Array(b).fill('reach'),
  state: Float32Array.from({ length: b * ds }, (_, i) => i),
  stateDims: ds,
});

describe('observations', () => {
  it("the state width is explicit, else the norm stats', else all a row has", () => {
    const all = createPolicy(tiny, 1);
    expect(all.stateDims).toBeUndefined();
    const o = makeObservation(all, host(2, 3));
    expect(o.state.shape).toEqual([2, 3]);
    const fromStats = createPolicy(tiny, { normStats: { state: stats(2), actions: stats(2) } });
    expect(fromStats.stateDims).toBe(2);
    const explicit = createPolicy(tiny, { stateDims: 2 });
    expect(explicit.stateDims).toBe(2);
    // the first N values of each row: rows [0,1,2] and [3,4,5] -> [0,1] and [3,4]
    const cut = makeObservation(explicit, host(2, 3));
    expect(Array.from(cut.state.dataSync())).toEqual([0, 1, 3, 4]);
    expect(() => createPolicy(tiny, { stateDims: tiny.stateDim + 1 })).toThrow(/stateDims must be/);
    expect(() =>
      createPolicy(tiny, { stateDims: 3, normStats: { state: stats(2), actions: stats(2) } }),
    ).toThrow(/norm stats cover 2/);
    for (const p of [all, fromStats, explicit]) p.dispose();
    for (const x of [o, cut]) for (const t of Object.values(x)) t.dispose();
  });

  it('host arrays of the wrong size are refused with what was expected', () => {
    const p = createPolicy(tiny, 1);
    expect(() => makeObservation(p, { ...host(2, 3), prompts: ['a'] })).toThrow(
      /1 prompts for a batch of 2/,
    );
    expect(() => makeObservation(p, { ...host(2, 3), state: new Float32Array(5) })).toThrow(
      /state holds 5 values, expected 6/,
    );
    p.dispose();
  });
});
