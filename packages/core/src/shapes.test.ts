import { expect, it } from 'vitest';
import { assertShape, ShapeError } from './shapes.js';

it('assertShape binds letters and names the bad dim', () => {
  const b = assertShape([4, 10, 32], ['B', 'Ha', 'A'], 'actions');
  expect(b).toEqual({ B: 4, Ha: 10, A: 32 });
  expect(() => assertShape([5, 8], ['B', 'Ds'], 'state', b)).toThrow(ShapeError);
  expect(() => assertShape([5, 8], ['B', 'Ds'], 'state', b)).toThrow(
    "state: expected [B, Ds] = [4, Ds], got [5, 8] (dim 0 'B')",
  );
  expect(() => assertShape({ shape: [4, 8, 1] }, ['B', null], 'x')).toThrow(/rank 2/);
  expect(assertShape({ shape: [4, 8, 1] }, ['B', null, 1], 'x', {})).toEqual({ B: 4 });
});
