// Embodiment slots: which ones a checkpoint's source robots hold, the first free one (where a
// new robot is aligned), and the no-adaptation starting point (the mean of the source slots).
import { tf } from '@selfalign/core';
import type { Policy } from '@selfalign/experts';
import { TTT_FAST_WEIGHTS, writeSlot } from '@selfalign/ttt';

/** The source slots recorded in a checkpoint's info (`slots`: embodiment name -> slot). */
export function sourceSlotsOf(info: Record<string, unknown>): number[] {
  return Object.values((info['slots'] ?? {}) as Record<string, number>);
}

/** The first slot that no source robot uses, or undefined when all are taken. */
export function firstFreeSlot(policy: Policy, used: Iterable<number>): number | undefined {
  const taken = new Set(used);
  return Array.from({ length: policy.config.ttt.slots }, (_, k) => k).find((k) => !taken.has(k));
}

/** The slot's W1/b1 = the mean of the source slots' (where align's `init: 'mean'` starts): no adaptation. */
export function fillWithSourceMean(
  policy: Policy,
  slot: number,
  sourceSlots: readonly number[],
): void {
  if (sourceSlots.length === 0) throw new Error('fillWithSourceMean: no source slots');
  for (const [, v] of policy.params.select(TTT_FAST_WEIGHTS as string[]))
    writeSlot(
      v,
      slot,
      tf.tidy(() => tf.mean(tf.gather(v, [...sourceSlots]), 0)),
    );
}
