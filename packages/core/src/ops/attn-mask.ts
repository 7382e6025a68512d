// Attention masks. `makeAttnMask` is pi0's rule (openpi pi0.py make_attn_mask): with
// c = cumsum(ar), token i attends to token j iff c[j] <= c[i] and both are real tokens.
// `composeAttnMask` concatenates named segments, applies that rule over the whole sequence
// and ANDs a segment-by-segment allow table on top: this is how DESIGN section 3.5 keeps the
// action suffix and the three alignment segments apart while they all read the prefix.
import { fastKernelsActive } from '../kernels/fast-kernels.js';
import { tf } from '../tf.js';

/**
 * @param inputMask bool [B, N] (true = real token)
 * @param arMask [N] or [B, N]; 1 starts a new causal block, 0 continues the previous one
 * @returns bool [B, N, N] (query row, key column)
 */
export function makeAttnMask(
  inputMask: tf.Tensor,
  arMask: tf.Tensor | readonly number[],
): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, n] = inputMask.shape as [number, number];
    const ar = Array.isArray(arMask)
      ? tf.tensor1d(arMask as number[], 'int32')
      : tf.cast(arMask as tf.Tensor, 'int32');
    if (ar.shape.at(-1) !== n) {
      throw new Error(`makeAttnMask: ar mask [${ar.shape}] does not match ${n} tokens`);
    }
    if (!fastKernelsActive()) {
      // the stock path, as it always was: float arithmetic on the backend
      const cum = tf.cumsum(tf.cast(tf.broadcastTo(ar, [b, n]), 'float32'), 1); // [B,N]
      const causal = tf.cast(tf.lessEqual(tf.expandDims(cum, 1), tf.expandDims(cum, 2)), 'float32');
      const real = tf.cast(inputMask, 'float32');
      const valid = tf.mul(tf.expandDims(real, 1), tf.expandDims(real, 2));
      return tf.cast(tf.mul(causal, valid), 'bool') as tf.Tensor3D;
    }
    // Built on the host: masks carry no gradient, and wasm's broadcast comparison over
    // [B,N,N] was the slowest single kernel of a training step (profiled).
    return hostAttnMask(inputMask.dataSync(), ar.dataSync(), ar.rank === 1, b, n);
  });
}

/**
 * pi0's rule on the host (the fast-kernel path): `real` [B*N] token flags, `ar` [N] (`shared`)
 * or [B*N], and optionally an [N*N] table of allowed (query, key) pairs ANDed on top.
 */
function hostAttnMask(
  real: ArrayLike<number | boolean>,
  ar: ArrayLike<number>,
  shared: boolean,
  b: number,
  n: number,
  table?: Uint8Array,
): tf.Tensor3D {
  const cum = new Float64Array(n);
  const out = new Uint8Array(b * n * n);
  for (let r = 0; r < b; r++) {
    let c = 0;
    for (let j = 0; j < n; j++) {
      c += Number(ar[shared ? j : r * n + j]!);
      cum[j] = c;
    }
    for (let i = 0; i < n; i++) {
      if (!real[r * n + i]) continue;
      const row = (r * n + i) * n;
      for (let j = 0; j < n; j++)
        out[row + j] =
          real[r * n + j] && cum[j]! <= cum[i]! && (table === undefined || table[i * n + j])
            ? 1
            : 0;
    }
  }
  return tf.tensor3d(out, [b, n, n], 'bool');
}

export interface MaskSegment {
  name: string;
  /** bool [B, n] */
  inputMask: tf.Tensor;
  /** [n] */
  ar: readonly number[];
}

/**
 * pi0's rule over the concatenated segments, ANDed with `allow(querySegment, keySegment)`.
 * @returns bool [B, N, N] with N the total length
 */
export function composeAttnMask(
  segments: readonly MaskSegment[],
  allow: (query: string, key: string) => boolean,
): tf.Tensor3D {
  return tf.tidy(() => {
    const input = tf.concat(
      segments.map((s) => tf.cast(s.inputMask, 'float32')),
      1,
    );
    const ar = segments.flatMap((s) => [...s.ar]);
    const n = ar.length;
    const table = new Uint8Array(n * n);
    let qi = 0;
    for (const q of segments) {
      const qn = q.ar.length;
      let ki = 0;
      for (const k of segments) {
        const kn = k.ar.length;
        if (allow(q.name, k.name)) {
          for (let r = qi; r < qi + qn; r++) table.fill(1, r * n + ki, r * n + ki + kn);
        }
        ki += kn;
      }
      qi += qn;
    }
    if (fastKernelsActive()) {
      // on the host in one pass (a broadcast int multiply over [B,N,N] cost ~16 ms a step)
      const b = input.shape[0]!;
      return hostAttnMask(input.dataSync(), ar, true, b, n, table);
    }
    const base = makeAttnMask(input, ar);
    const block = tf.tensor3d(table, [1, n, n], 'int32');
    return tf.cast(tf.mul(tf.cast(base, 'int32'), block), 'bool') as tf.Tensor3D;
  });
}
