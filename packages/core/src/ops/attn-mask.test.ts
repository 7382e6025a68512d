import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, setKernels } from '../backend.js';
import { tf } from '../tf.js';
import { composeAttnMask, makeAttnMask } from './attn-mask.js';

beforeAll(() => initBackend('wasm'));

const asRows = (m: tf.Tensor) =>
  (m.arraySync() as unknown as boolean[][][])[0]!.map((r) => r.map(Number));
const allReal = (n: number) => tf.ones([1, n], 'bool');

describe('makeAttnMask (pi0 docstring examples)', () => {
  it('[1 1 1 1 1 1] is causal', () => {
    const m = asRows(makeAttnMask(allReal(6), [1, 1, 1, 1, 1, 1]));
    for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) expect(m[i]![j]).toBe(j <= i ? 1 : 0);
  });

  it('[0 0 0 1 1 1] is prefix-LM', () => {
    const m = asRows(makeAttnMask(allReal(6), [0, 0, 0, 1, 1, 1]));
    expect(m).toEqual([
      [1, 1, 1, 0, 0, 0],
      [1, 1, 1, 0, 0, 0],
      [1, 1, 1, 0, 0, 0],
      [1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 1, 0],
      [1, 1, 1, 1, 1, 1],
    ]);
  });

  it('[1 0 1 0 1 0 0 1 0 0] is four causal blocks', () => {
    const ar = [1, 0, 1, 0, 1, 0, 0, 1, 0, 0];
    const block = [0, 0, 1, 1, 2, 2, 2, 3, 3, 3];
    const m = asRows(makeAttnMask(allReal(10), ar));
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < 10; j++) expect(m[i]![j]).toBe(block[j]! <= block[i]! ? 1 : 0);
    }
  });

  it('padding tokens neither attend nor are attended', () => {
    const input = tf.tensor2d([[1, 1, 0, 1]], [1, 4], 'bool');
    const m = asRows(makeAttnMask(input, [0, 0, 0, 1]));
    expect(m.map((r) => r[2])).toEqual([0, 0, 0, 0]);
    expect(m[2]).toEqual([0, 0, 0, 0]);
    expect(m[3]).toEqual([1, 1, 0, 1]);
  });
});

describe('composeAttnMask', () => {
  it('reproduces the DESIGN 3.5 table block by block', () => {
    const seg = (name: string, ar: number[]) => ({ name, inputMask: allReal(ar.length), ar });
    const segments = [
      seg('prefix', [0, 0, 0]),
      seg('action', [1, 1, 0, 0]),
      seg('perception', [1]),
      seg('dynamics', [1, 0, 0]),
      seg('inverse', [1, 0, 0]),
    ];
    const sees: Record<string, string[]> = {
      prefix: ['prefix'],
      action: ['prefix', 'action'],
      perception: ['prefix', 'perception'],
      dynamics: ['prefix', 'perception', 'dynamics'],
      inverse: ['prefix', 'perception', 'inverse'],
    };
    const m = asRows(composeAttnMask(segments, (q, k) => sees[q]!.includes(k)));
    const owner = segments.flatMap((s) => s.ar.map(() => s.name));
    for (let i = 0; i < owner.length; i++) {
      for (let j = 0; j < owner.length; j++) {
        const q = owner[i]!;
        const k = owner[j]!;
        let want = sees[q]!.includes(k);
        // inside the action suffix pi0's rule: the state token (ar 1) does not see actions
        if (q === 'action' && k === 'action') want = !(i === 3 && j > 3);
        expect(m[i]![j], `${q}[${i}] -> ${k}[${j}]`).toBe(want ? 1 : 0);
      }
    }
  });

  it('the host-built mask (fast kernels) equals the backend-built one (stock), padding and all', async () => {
    const b = 3;
    const pad = (lens: number[], n: number) =>
      tf.tensor2d(
        lens.flatMap((l) => Array.from({ length: n }, (_, j) => (j < l ? 1 : 0))),
        [b, n],
        'bool',
      );
    const segments = [
      { name: 'prefix', inputMask: pad([5, 3, 4], 5), ar: [0, 0, 0, 0, 0] },
      { name: 'action', inputMask: pad([3, 3, 1], 3), ar: [1, 1, 0] },
      { name: 'inverse', inputMask: pad([2, 1, 2], 2), ar: [1, 0] },
    ];
    const allow = (q: string, k: string) => k === 'prefix' || q === k;
    expect(await setKernels('fast')).toBeUndefined();
    const fast = composeAttnMask(segments, allow).arraySync();
    await setKernels('stock');
    const stock = composeAttnMask(segments, allow).arraySync();
    await setKernels('fast');
    expect(fast).toEqual(stock);
    // padded rows attend to nothing; real rows see only what pi0's rule and the table allow
    expect((fast[1]![4] as unknown as boolean[]).some(Boolean)).toBe(false);
  });
});
