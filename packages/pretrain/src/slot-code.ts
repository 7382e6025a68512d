// A low-rank embodiment code for the source slots (the align-closes-the-gap issue, docs/results.md
// 2b: free slots give the alignment heads a lookup of the robots pretraining fitted, not a map).
// With `slotRank` D the source robots' TTT fast weights are no longer free: every source e has a
// code z_e of D numbers, shared by all TTT layers, and each layer l generates its slot from it:
//   slot_e(l) = M_l + z_e H_l          z [S, D], H_l [D, P_l], M_l [P_l]
// where a slot at layer l is W1 [Ht,d,d] and b1 [Ht,1,d] flattened into P_l numbers. Nearby
// codes give nearby slots, so the Action Expert and the alignment heads must read a robot from a
// D-dimensional code they share; the trained source slots lie in one D-dimensional affine space,
// which the `span` slot parametrisation of align searches with no change.
//
// Training stays on the policy's own W1/b1 (every forward, data-parallel replica and checkpoint
// works unchanged): after the backward pass the slot gradients are mapped to the code (chain
// rule: dz = G H^T summed over layers, dH = z^T G, dM = sum_e G), the optimiser steps z, H and M,
// and `write` puts M + z H back into the source rows of W1/b1. Other slots do not train.

import { type HostTensor, ParamTree, symmetricEigen, tf } from '@selfalign/core';
import type { Policy } from '@selfalign/experts';

interface CodeLayer {
  W1: tf.Variable;
  b1: tf.Variable;
  /** Ht*d*d and Ht*d */
  nW: number;
  nB: number;
  H: string;
  M: string;
}

/** The prefix of every code tensor's path (optimiser moments and checkpoint entries). */
export const SLOT_CODE_PREFIX = 'slotcode/';

/** Moved to `@selfalign/core` (align's span prior uses it too); re-exported here as before. */
export { symmetricEigen };

/** Rows `src` of a layer's W1 [E,...] and b1 [E,...] (or of their gradients) as one [S, P] matrix. */
function sourceRows(W: tf.Tensor, b: tf.Tensor, src: tf.Tensor1D): tf.Tensor2D {
  return tf.tidy(() => {
    const S = src.shape[0];
    return tf.concat(
      [tf.reshape(tf.gather(W, src), [S, -1]), tf.reshape(tf.gather(b, src), [S, -1])],
      1,
    ) as tf.Tensor2D;
  });
}

/** Every TTT layer's source rows, centred on their mean over the sources: [S, P_l] each. */
function centredSourceRows(policy: Policy, src: tf.Tensor1D): tf.Tensor2D[] {
  return policy.ttt.flatMap((m) =>
    m === undefined
      ? []
      : [
          tf.tidy(() => {
            const X = sourceRows(policy.params.get(m.paths.W1), policy.params.get(m.paths.b1), src);
            return tf.sub(X, tf.mean(X, 0)) as tf.Tensor2D;
          }),
        ],
  );
}

/** The Gram matrix of centred rows summed over layers, as float64 (for `symmetricEigen`). */
function gram(centred: readonly tf.Tensor2D[]): Float64Array {
  const G = tf.tidy(() => tf.addN(centred.map((X) => tf.matMul(X, X, false, true))));
  const out = Float64Array.from(G.dataSync());
  G.dispose();
  return out;
}

/**
 * Singular values of a policy's source slots around their mean (every TTT layer's W1/b1 as one
 * vector per source), largest first: how many directions the slots spread over.
 */
export function slotSpectrum(policy: Policy, sources: readonly number[]): number[] {
  const src = tf.tensor1d(Int32Array.from(sources), 'int32');
  const centred = centredSourceRows(policy, src);
  const { values } = symmetricEigen(gram(centred), sources.length);
  tf.dispose([src, ...centred]);
  return values.map((v) => Math.sqrt(Math.max(0, v)));
}

export class SlotCode {
  /** `slotcode/z` [S,D], `slotcode/<layer>/H` [D,P], `slotcode/<layer>/M` [P]. */
  readonly tree = new ParamTree();
  private readonly layers: CodeLayer[];
  private readonly src: tf.Tensor1D;
  /** Row e of [W1 rows; generated rows] that slot e takes (what `write` gathers). */
  private readonly pick: tf.Tensor1D;

  /**
   * @param sources the source slots the code generates (in this order: row e of z is slot sources[e])
   * @param rank D
   * @param saved code tensors from a checkpoint (`slotcode/...` paths) to resume exactly;
   *   otherwise the code starts from the current source slots' principal components (their
   *   projection onto the top D directions: exact when they already lie in a D-dimensional space)
   */
  constructor(
    readonly policy: Policy,
    readonly sources: readonly number[],
    readonly rank: number,
    saved?: ReadonlyMap<string, HostTensor>,
  ) {
    const E = policy.config.ttt.slots;
    const S = sources.length;
    if (!Number.isInteger(rank) || rank < 1)
      throw new RangeError(`slot rank must be a positive integer, got ${rank}`);
    if (rank >= S)
      throw new RangeError(
        `slot rank ${rank} does not constrain ${S} source slots: give a rank below ${S}`,
      );
    if (
      new Set(sources).size !== S ||
      sources.some((s) => !(Number.isInteger(s) && s >= 0 && s < E))
    )
      throw new RangeError(
        `source slots [${sources.join(', ')}] must be distinct slots below ${E}`,
      );
    this.src = tf.tensor1d(Int32Array.from(sources), 'int32');
    const pick = new Int32Array(E).map((_, e) => e);
    sources.forEach((s, i) => {
      pick[s] = E + i;
    });
    this.pick = tf.tensor1d(pick, 'int32');
    this.layers = policy.ttt.flatMap((m, layer) => {
      if (m === undefined) return [];
      const W1 = policy.params.get(m.paths.W1);
      const b1 = policy.params.get(m.paths.b1);
      return [
        {
          W1,
          b1,
          nW: W1.size / E,
          nB: b1.size / E,
          H: `${SLOT_CODE_PREFIX}${layer}/H`,
          M: `${SLOT_CODE_PREFIX}${layer}/M`,
        },
      ];
    });
    if (this.layers.length === 0)
      throw new Error('the policy has no TTT layer to give a slot code');
    if (saved) this.restore(saved);
    else this.fromSlots();
  }

  private fromSlots(): void {
    const S = this.sources.length;
    const D = this.rank;
    for (const l of this.layers)
      this.tree.add(
        l.M,
        tf.tidy(() => tf.mean(sourceRows(l.W1, l.b1, this.src), 0)),
      );
    const centred = centredSourceRows(this.policy, this.src);
    const { vectors } = symmetricEigen(gram(centred), S);
    // z = sqrt(S) U_D (unit RMS per code dimension over the sources), H_l = U_D^T X_l / sqrt(S)
    const U = tf.tensor2d(
      Float32Array.from({ length: S * D }, (_, i) => vectors[i % D]![Math.floor(i / D)]!),
      [S, D],
    );
    this.tree.add(`${SLOT_CODE_PREFIX}z`, tf.mul(U, Math.sqrt(S)));
    this.layers.forEach((l, i) => {
      this.tree.add(
        l.H,
        tf.tidy(() => tf.div(tf.matMul(U, centred[i]!, true, false), Math.sqrt(S))),
      );
    });
    tf.dispose([U, ...centred]);
    this.write();
  }

  private restore(saved: ReadonlyMap<string, HostTensor>): void {
    const S = this.sources.length;
    const want: [string, number[]][] = [
      [`${SLOT_CODE_PREFIX}z`, [S, this.rank]],
      ...this.layers.flatMap((l): [string, number[]][] => [
        [l.H, [this.rank, l.nW + l.nB]],
        [l.M, [l.nW + l.nB]],
      ]),
    ];
    for (const [path, shape] of want) {
      const t = saved.get(path);
      if (t === undefined || t.shape.join() !== shape.join())
        throw new Error(
          `the checkpoint's slot code has no ${path} of shape [${shape.join(', ')}]${t ? ` (it has [${t.shape.join(', ')}])` : ''}: was it trained with another --slot-rank or other robots?`,
        );
    }
    for (const [path, shape] of want)
      this.tree.add(path, tf.tensor(saved.get(path)!.data, shape, 'float32'));
    this.write();
  }

  /**
   * Replaces the W1/b1 gradients in `grads` (by variable name, as tf.variableGrads gives them)
   * by the gradients of z, H and M (under their variables' names). Disposes what it replaces.
   */
  mapGradients(grads: tf.NamedTensorMap): void {
    const z = this.tree.get(`${SLOT_CODE_PREFIX}z`);
    const dz: tf.Tensor[] = [];
    for (const l of this.layers) {
      const gW = grads[l.W1.name];
      const gB = grads[l.b1.name];
      if (gW === undefined || gB === undefined)
        throw new Error(
          'the slot code needs the gradients of every TTT W1/b1 (are they filtered out?)',
        );
      const H = this.tree.get(l.H);
      const M = this.tree.get(l.M);
      const G = sourceRows(gW, gB, this.src);
      dz.push(tf.matMul(G, H, false, true));
      grads[H.name] = tf.matMul(z, G, true, false);
      grads[M.name] = tf.sum(G, 0);
      G.dispose();
      tf.dispose([gW, gB]);
      delete grads[l.W1.name];
      delete grads[l.b1.name];
    }
    grads[z.name] = tf.addN(dz);
    tf.dispose(dz);
  }

  /** Writes M + z H into the source rows of every layer's W1/b1 (other slots untouched). */
  write(): void {
    const E = this.policy.config.ttt.slots;
    const z = this.tree.get(`${SLOT_CODE_PREFIX}z`);
    for (const l of this.layers) {
      tf.tidy(() => {
        const gen = tf.add(this.tree.get(l.M), tf.matMul(z, this.tree.get(l.H)));
        const [w, b] = tf.split(gen, [l.nW, l.nB], 1);
        for (const [v, part, n] of [
          [l.W1, w!, l.nW],
          [l.b1, b!, l.nB],
        ] as const) {
          const all = tf.concat([tf.reshape(v, [E, n]), part], 0);
          v.assign(tf.reshape(tf.gather(all, this.pick), v.shape));
        }
      });
    }
  }

  /** The code's trainables with their paths (what the optimiser steps besides the policy's). */
  params(): [string, tf.Variable][] {
    return this.tree.select('**');
  }

  dispose(): void {
    this.tree.dispose();
    tf.dispose([this.src, this.pick]);
  }
}
