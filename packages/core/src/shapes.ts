// The shape legend of DESIGN section 2 and the boundary check used by public entry points
// (computeLoss, sampleActions, the TTT forward, the data loader). Letters bind on first use,
// so `[B, Ha, A]` after `[B, P, D]` insists on the same B.

/** Shape letters used in every doc comment of selfalign. */
export const SHAPE_LEGEND = Object.freeze({
  B: 'batch',
  P: 'prefix tokens',
  S: 'suffix tokens',
  T: 'tokens of one stream',
  D: 'width of an expert',
  H: 'attention heads',
  Hkv: 'key/value heads',
  Dh: 'attention head dim',
  Ht: 'TTT heads',
  d: 'TTT head dim (= D / Ht)',
  Ha: 'action horizon',
  A: 'action dim (padded)',
  Ds: 'state dim (padded)',
  F: 'feature dim',
  E: 'embodiment slots',
  L: 'layers',
  I: 'image side',
  C: 'cameras',
});

/** A number (exact), a letter (bound on first use) or null (any size). */
export type Dim = number | string | null;

export class ShapeError extends Error {
  override name = 'ShapeError';
}

const fmt = (dims: readonly (Dim | number)[]) =>
  `[${dims.map((d) => (d === null ? '*' : String(d))).join(', ')}]`;

/**
 * Checks `x`'s shape against `expected`, binding letters into `bindings` (mutated and
 * returned so one check can feed the next).
 * @throws ShapeError naming `label`, the expected and actual shapes and the first bad dim.
 */
export function assertShape(
  x: { readonly shape: readonly number[] } | readonly number[],
  expected: readonly Dim[],
  label: string,
  bindings: Record<string, number> = {},
): Record<string, number> {
  const shape = Array.isArray(x) ? (x as readonly number[]) : (x as { shape: number[] }).shape;
  const resolved = expected.map((d) => (typeof d === 'string' && d in bindings ? bindings[d]! : d));
  if (shape.length !== expected.length) {
    throw new ShapeError(
      `${label}: expected rank ${expected.length} ${fmt(expected)} = ${fmt(resolved)}, got ${fmt(shape)}`,
    );
  }
  expected.forEach((d, i) => {
    const actual = shape[i]!;
    if (d === null) return;
    const want = typeof d === 'string' ? bindings[d] : d;
    if (want === undefined) {
      bindings[d as string] = actual;
    } else if (want !== actual) {
      const name = typeof d === 'string' ? ` '${d}'` : '';
      throw new ShapeError(
        `${label}: expected ${fmt(expected)} = ${fmt(resolved)}, got ${fmt(shape)} (dim ${i}${name})`,
      );
    }
  });
  return bindings;
}
