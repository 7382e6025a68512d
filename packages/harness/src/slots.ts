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

/** The TTT fast-weight variables, per TTT layer W1 then b1 (SlotParam's 'free' order). */
function fastVars(policy: Policy): tf.Variable[] {
  return policy.ttt.flatMap((m) =>
    m === undefined
      ? []
      : [
          policy.params.get(m.paths.W1) as tf.Variable,
          policy.params.get(m.paths.b1) as tf.Variable,
        ],
  );
}

/** W1/b1 of one slot at every TTT layer, flattened in SlotParam's 'free' order (host copy). */
export function slotVector(policy: Policy, slot: number): Float32Array {
  const v = tf.tidy(() =>
    tf.concat(fastVars(policy).map((w) => tf.reshape(tf.gather(w, [slot]), [-1]))),
  );
  const out = v.dataSync().slice() as Float32Array;
  v.dispose();
  return out;
}

/** Write a `slotVector` back into one slot. */
export function writeSlotVector(policy: Policy, slot: number, vec: Float32Array): void {
  const vars = fastVars(policy);
  const total = vars.reduce((n, v) => n + v.size / v.shape[0]!, 0);
  if (vec.length !== total)
    throw new RangeError(`writeSlotVector: ${vec.length} numbers for a slot of ${total}`);
  let o = 0;
  for (const v of vars) {
    const per = v.size / v.shape[0]!;
    writeSlot(v, slot, tf.tensor(vec.subarray(o, o + per), v.shape.slice(1))); // disposes it
    o += per;
  }
}
