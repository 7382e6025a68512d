// Token embedding lookup. tfjs's gather gradient needs UnsortedSegmentSum, which the wasm
// backend lacks; this gradient scatters rows with scatterND instead (duplicate ids add up).
import { tf } from '../tf.js';

/**
 * @param table [V, D]
 * @param ids int32 [...]
 * @returns [..., D]
 */
export function embed(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  if (ids.dtype !== 'int32') throw new Error(`embed: ids must be int32, got ${ids.dtype}`);
  const [vocab, width] = table.shape as [number, number];
  return tf.tidy(() => {
    const flat = tf.reshape(ids, [-1]) as tf.Tensor1D;
    // `save` keeps the ids alive for the backward pass (this tidy would dispose a capture).
    const lookup = tf.customGrad((tbl, save) => {
      (save as tf.GradSaveFunc)([flat]);
      return {
        value: tf.gather(tbl as tf.Tensor2D, flat),
        gradFunc: (dy, [ids]) =>
          tf.scatterND(tf.reshape(ids!, [-1, 1]), dy as tf.Tensor, [vocab, width]),
      };
    });
    return tf.reshape(lookup(table), [...ids.shape, width]);
  });
}
