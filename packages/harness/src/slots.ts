// Embodiment slots: which ones a checkpoint's source robots hold, the first free one (where a
// new robot is aligned), the no-adaptation starting point (the mean of the source slots), and
// the label-free pick among the source slots (the nearest by align's objective on play).
import { type AlignWeights, defaultAlignWeights, evaluateLosses } from '@selfalign/align/browser';
import { tf } from '@selfalign/core';
import type { Policy, TrainBatch } from '@selfalign/experts';
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

/** Slot `to` := slot `from` (W1/b1 at every TTT layer). */
export function copySlot(policy: Policy, from: number, to: number): void {
  for (const [, v] of policy.params.select(TTT_FAST_WEIGHTS as string[]))
    writeSlot(
      v,
      to,
      tf.tidy(() => tf.squeeze(tf.slice(v, [from], [1]), [0])),
    );
}

/**
 * The label-free pick among the source slots for a new robot: each source slot is copied into
 * `slot` in turn and scored by align's objective (the alignment losses under `weights`, the
 * policy's default when absent) on `batches` of the robot's play (the first `maxBatches`,
 * default 8; `flowTime` scores every row at that flow time instead of drawn ones, 1: the
 * regression error without the noise floor; `objective` 'action' scores the action loss instead,
 * for batches that carry actions a slot should explain); `slot` is left holding the lowest.
 * @returns that source slot and every slot's score, in source order
 */
export function nearestSourceSlot(
  policy: Policy,
  batches: readonly TrainBatch[],
  sourceSlots: readonly number[],
  slot: number,
  opts: {
    weights?: Partial<AlignWeights>;
    seed?: number;
    maxBatches?: number;
    flowTime?: number;
    objective?: 'alignment' | 'action';
  } = {},
): { nearest: number; scores: { slot: number; loss: number }[] } {
  if (sourceSlots.length === 0) throw new Error('nearestSourceSlot: no source slots');
  if (batches.length === 0) throw new Error('nearestSourceSlot: no play batches');
  const weights = opts.weights ?? defaultAlignWeights(policy.config);
  const used = batches.slice(0, opts.maxBatches ?? 8);
  const scores = sourceSlots.map((k) => {
    copySlot(policy, k, slot);
    const l = evaluateLosses(policy, used, {
      seed: opts.seed ?? 0,
      weights,
      ...(opts.objective ? { objective: opts.objective } : {}),
      ...(opts.flowTime !== undefined ? { flowTime: opts.flowTime } : {}),
    });
    return { slot: k, loss: l.total };
  });
  const nearest = scores.reduce((a, b) => (b.loss < a.loss ? b : a)).slot;
  copySlot(policy, nearest, slot);
  return { nearest, scores };
}

/** The `k` slots of `scores` with the lowest loss, lowest first (what a hull slot mixes). */
export function lowestScored(
  scores: readonly { slot: number; loss: number }[],
  k: number,
): number[] {
  return [...scores]
    .sort((a, b) => a.loss - b.loss)
    .slice(0, k)
    .map((x) => x.slot);
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
