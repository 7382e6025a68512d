// The Action Expert's suffix (mirrors openpi pi0.py embed_suffix): a state token
// state_proj(state) with ar 1, then Ha action tokens action_in(x_t) fused with
// posemb_sincos(t, D, 4e-3, 4.0) through time_in -> swish -> time_out, ar [1, 0, ..., 0].
// The velocity v_t is action_out on the last Ha outputs.
import { linear, posembSincos, tf } from '@selfalign/core';
import type { Policy } from './policy.js';

/**
 * concat(tokens, posemb(t)) -> time_in -> swish -> time_out, for the expert `prefix`.
 * @param tokens [B, T, D]
 * @param t [B]
 */
export function fuseTime(
  policy: Policy,
  prefix: string,
  tokens: tf.Tensor,
  t: tf.Tensor,
): tf.Tensor {
  return tf.tidy(() => {
    const [, n, d] = tokens.shape as [number, number, number];
    const emb = tf.tile(tf.expandDims(posembSincos(t, d), 1), [1, n, 1]); // [B,T,D]
    const P = (name: string) => policy.params.get(`${prefix}/${name}`);
    const h = linear(tf.concat([tokens, emb], 2), P('time_in/w'), P('time_in/b'));
    return linear(tf.mul(h, tf.sigmoid(h)), P('time_out/w'), P('time_out/b'));
  });
}

export interface SuffixTokens {
  /** [B, S, D] */
  x: tf.Tensor;
  /** bool [B, S] */
  mask: tf.Tensor;
  /** [S] */
  ar: number[];
}

/**
 * The state token's input: the state, then (with `vision.keypointsToState` = N) the first N
 * keypoint positions of camera 0.
 * @param state [B, Ds] normalised, padded
 * @param keypoints [B, C, K, 2] from the prefix (required when N > 0)
 */
export function actionStateInput(
  policy: Policy,
  state: tf.Tensor,
  keypoints: tf.Tensor | undefined,
): tf.Tensor {
  const n = policy.config.vision.keypointsToState ?? 0;
  if (n === 0) return state;
  if (keypoints === undefined)
    throw new Error('the Action Expert reads keypoints, but the prefix gave none');
  return tf.tidy(() => {
    const b = state.shape[0]!;
    const kp = tf.reshape(tf.slice(keypoints, [0, 0, 0, 0], [b, 1, n, 2]), [b, 2 * n]);
    return tf.concat([state, kp], 1);
  });
}

/**
 * @param state [B, Ds (+ 2N)] normalised, padded (see `actionStateInput`)
 * @param xt [B, Ha, A] noisy actions
 * @param t [B]
 */
export function embedActionSuffix(
  policy: Policy,
  state: tf.Tensor,
  xt: tf.Tensor,
  t: tf.Tensor,
): SuffixTokens {
  return tf.tidy(() => {
    const P = (name: string) => policy.params.get(`action/${name}`);
    const b = state.shape[0]!;
    const ha = xt.shape[1]!;
    const stateTok = tf.expandDims(linear(state, P('state_proj/w'), P('state_proj/b')), 1);
    const actTok = fuseTime(policy, 'action', linear(xt, P('action_in/w'), P('action_in/b')), t);
    return {
      x: tf.concat([stateTok, actTok], 1),
      mask: tf.ones([b, 1 + ha], 'bool'),
      ar: [1, 1, ...new Array(ha - 1).fill(0)],
    };
  });
}

/** v_t [B, Ha, A] from the action stream's output [B, 1 + Ha, D]. */
export function actionVelocity(policy: Policy, out: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const ha = policy.config.actionHorizon;
    const last = tf.slice(out, [0, out.shape[1]! - ha, 0], [-1, ha, -1]);
    return linear(
      last,
      policy.params.get('action/action_out/w'),
      policy.params.get('action/action_out/b'),
    );
  });
}
