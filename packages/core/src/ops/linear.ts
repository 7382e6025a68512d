// Dense layers whose gradients stay on the fast path of the wasm backend. tfjs's own matMul
// gradient calls matMul with transposeA/transposeB, which stock wasm runs at 0.6-2 GFLOP/s
// against ~28 for a plain matMul (CONVENTIONS.md); with the stock kernels the gradients here
// transpose explicitly first. The fast kernels (kernels/) run every transpose variant at full
// speed, so then the gradients pass transpose flags and no transposed copy is made.
// bench/linear-grad.bench.ts measures the difference on a transformer block.
import { fastKernelsActive } from '../kernels/fast-kernels.js';
import { tf } from '../tf.js';

/** Swaps the last two axes. */
export function transposeLast2(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  const n = perm.length;
  [perm[n - 2], perm[n - 1]] = [perm[n - 1]!, perm[n - 2]!];
  return tf.transpose(x, perm);
}

const matmul2d = tf.customGrad((x, w, save) => {
  (save as tf.GradSaveFunc)([x as tf.Tensor, w as tf.Tensor]);
  return {
    value: tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D),
    gradFunc: (dy, saved) => {
      const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
      if (fastKernelsActive()) {
        return [
          tf.matMul(dy as tf.Tensor2D, ws, false, true), // [N,Dout] @ [Din,Dout]^T
          tf.matMul(xs, dy as tf.Tensor2D, true, false), // [N,Din]^T @ [N,Dout]
        ];
      }
      return [
        tf.matMul(dy as tf.Tensor2D, tf.transpose(ws)), // [N,Dout] @ [Dout,Din]
        tf.matMul(tf.transpose(xs), dy as tf.Tensor2D), // [Din,N] @ [N,Dout]
      ];
    },
  };
}) as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

/**
 * `x @ w (+ b)` over the last axis.
 * @param x [..., Din]
 * @param w [Din, Dout]
 * @param b [Dout]
 * @returns [..., Dout]
 */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const din = w.shape[0]!;
    const dout = w.shape[1]!;
    if (x.shape[x.rank - 1] !== din) {
      throw new Error(`linear: input [${x.shape}] does not end in ${din} (weight [${w.shape}])`);
    }
    const y = matmul2d(tf.reshape(x, [-1, din]) as tf.Tensor2D, w as tf.Tensor2D);
    const out = tf.reshape(y, [...x.shape.slice(0, -1), dout]);
    return b === undefined ? out : tf.add(out, b);
  });
}

const bmmGrad = tf.customGrad((a, b, save) => {
  (save as tf.GradSaveFunc)([a as tf.Tensor, b as tf.Tensor]);
  return {
    value: tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D),
    gradFunc: (dy, saved) => {
      const [as, bs] = saved as [tf.Tensor3D, tf.Tensor3D];
      if (fastKernelsActive()) {
        return [
          tf.matMul(dy as tf.Tensor3D, bs, false, true),
          tf.matMul(as, dy as tf.Tensor3D, true, false),
        ];
      }
      return [
        tf.matMul(dy as tf.Tensor3D, transposeLast2(bs) as tf.Tensor3D),
        tf.matMul(transposeLast2(as) as tf.Tensor3D, dy as tf.Tensor3D),
      ];
    },
  };
}) as (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;

/**
 * Batched matMul `a @ b` with the same explicit-transpose gradient. Batch axes must match.
 * @param a [..., M, K]
 * @param b [..., K, N]
 * @returns [..., M, N]
 */
export function bmm(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const batch = a.shape.slice(0, -2);
    if (!tf.util.arraysEqual(batch, b.shape.slice(0, -2)) || a.shape.at(-1) !== b.shape.at(-2)) {
      throw new Error(`bmm: cannot multiply [${a.shape}] by [${b.shape}]`);
    }
    const [m, k] = a.shape.slice(-2) as [number, number];
    const n = b.shape.at(-1)!;
    const y = bmmGrad(
      tf.reshape(a, [-1, m, k]) as tf.Tensor3D,
      tf.reshape(b, [-1, k, n]) as tf.Tensor3D,
    );
    return tf.reshape(y, [...batch, m, n]);
  });
}
