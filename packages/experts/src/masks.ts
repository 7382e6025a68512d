// The attention mask and positions of DESIGN 3.5, one scheme for every mode. Rows attend to
// columns:
//   prefix      -> prefix
//   action      -> prefix, action (pi0's ar blocks inside: the state token does not see actions)
//   perception  -> prefix, perception
//   dynamics    -> prefix, perception, dynamics
//   inverse     -> prefix, perception, inverse
// Positions: prefix cumsum(pad) - 1; the action suffix and the alignment suffix each continue
// from the number of real prefix tokens (independent branches).
import { composeAttnMask, type MaskSegment, tf } from '@selfalign/core';

export type SegmentName = 'prefix' | 'action' | 'perception' | 'dynamics' | 'inverse';

export const SEES: Readonly<Record<SegmentName, readonly SegmentName[]>> = Object.freeze({
  prefix: ['prefix'],
  action: ['prefix', 'action'],
  perception: ['prefix', 'perception'],
  dynamics: ['prefix', 'perception', 'dynamics'],
  inverse: ['prefix', 'perception', 'inverse'],
});

export const allows = (q: string, k: string) =>
  (SEES[q as SegmentName] ?? []).includes(k as SegmentName);

/**
 * `allows` for a list of alignment tasks: each sees the prefix (unless `blind`), itself and its
 * `sees`.
 */
export function allowsFor(
  tasks: readonly { segment: string; sees: readonly string[]; blind?: boolean }[],
): (q: string, k: string) => boolean {
  const sees = new Map<string, readonly string[]>([
    ['prefix', ['prefix']],
    ['action', ['prefix', 'action']],
  ]);
  for (const t of tasks)
    sees.set(t.segment, [...(t.blind ? [] : ['prefix']), t.segment, ...t.sees]);
  return (q, k) => sees.get(q)?.includes(k) ?? false;
}

/**
 * Mask over [prefix, ...segments].
 * @param prefixMask bool [B, P]
 * @param queriesFromPrefix false when the prefix comes from a cache: rows start after it
 * @param visible which segment sees which (default the design's, `allows`)
 * @returns bool [B, Nq, P + Ns]
 */
export function buildMask(
  prefixMask: tf.Tensor,
  segments: readonly MaskSegment[],
  queriesFromPrefix: boolean,
  visible: (q: string, k: string) => boolean = allows,
): tf.Tensor {
  return tf.tidy(() => {
    const p = prefixMask.shape[1]!;
    const all = [{ name: 'prefix', inputMask: prefixMask, ar: new Array(p).fill(0) }, ...segments];
    const m = composeAttnMask(all, visible);
    return queriesFromPrefix ? m : tf.slice(m, [0, p, 0], [-1, -1, -1]);
  });
}

/** [B, P] prefix positions: cumsum(mask) - 1. */
export function prefixPositions(prefixMask: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.sub(tf.cumsum(tf.cast(prefixMask, 'int32'), 1), 1));
}

/** [B, S] positions of one suffix branch, continuing after the real prefix tokens. */
export function suffixPositions(prefixMask: tf.Tensor, suffixMask: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const start = tf.sum(tf.cast(prefixMask, 'int32'), 1, true); // [B,1]
    return tf.add(start, tf.sub(tf.cumsum(tf.cast(suffixMask, 'int32'), 1), 1));
  });
}
