// The Alignment Expert's suffix (DESIGN 3.4): three self-supervised flow-matching tasks that
// share one t per sample and draw independent noise.
//   perception  1 token       noisy state s_t (time-fused)                        ar [1]
//   dynamics    Ha + 1 tokens clean actions a, then noisy next-obs features f_t   ar [1, 0...]
//   inverse     1 + Ha tokens clean next-obs features f, then noisy actions a_t   ar [1, 0...]
// Heads: perception Linear(D, Ds) on its token, dynamics Linear(D, F) on the noisy feature
// token, inverse Linear(D, A) on the last Ha tokens. Action tokens past the episode end are
// padding (they neither attend nor are attended).
import { linear, type MaskSegment, tf } from '@selfalign/core';
import { fuseTime } from './action-suffix.js';
import type { Policy } from './policy.js';

export interface AlignmentInputs {
  /** [B, Ds] noisy state */
  stateT: tf.Tensor;
  /** [B, Ha, A] clean actions */
  actions: tf.Tensor;
  /** [B, F] noisy next-observation features */
  featuresT: tf.Tensor;
  /** [B, F] clean next-observation features */
  features: tf.Tensor;
  /** [B, Ha, A] noisy actions */
  actionsT: tf.Tensor;
  /** [B] */
  t: tf.Tensor;
  /** bool [B, Ha]: chunk steps inside the episode */
  chunkMask: tf.Tensor;
}

export interface AlignmentTokens {
  /** [B, 1 + (Ha + 1) + (1 + Ha), D] */
  x: tf.Tensor;
  /** bool [B, S] */
  mask: tf.Tensor;
  segments: MaskSegment[];
}

export function embedAlignmentSuffix(policy: Policy, inp: AlignmentInputs): AlignmentTokens {
  return tf.tidy(() => {
    const P = (name: string) => policy.params.get(`alignment/${name}`);
    const lin = (x: tf.Tensor, name: string) => linear(x, P(`${name}/w`), P(`${name}/b`));
    const b = inp.stateT.shape[0]!;
    const ha = inp.actions.shape[1]!;
    const chunk = tf.cast(inp.chunkMask, 'bool');
    const one = tf.ones([b, 1], 'bool');
    const perception = fuseTime(
      policy,
      'alignment',
      tf.expandDims(lin(inp.stateT, 'state_in'), 1),
      inp.t,
    );
    const dynActions = lin(inp.actions, 'dyn_action_in');
    const dynFeature = fuseTime(
      policy,
      'alignment',
      tf.expandDims(lin(inp.featuresT, 'dyn_feature_in'), 1),
      inp.t,
    );
    const invFeature = tf.expandDims(lin(inp.features, 'inv_feature_in'), 1);
    const invActions = fuseTime(policy, 'alignment', lin(inp.actionsT, 'inv_action_in'), inp.t);
    const block = [1, ...new Array(ha).fill(0)];
    const segments: MaskSegment[] = [
      { name: 'perception', inputMask: one, ar: [1] },
      { name: 'dynamics', inputMask: tf.concat([chunk, one], 1), ar: block },
      { name: 'inverse', inputMask: tf.concat([one, chunk], 1), ar: block },
    ];
    return {
      x: tf.concat([perception, dynActions, dynFeature, invFeature, invActions], 1),
      mask: tf.concat(
        segments.map((s) => s.inputMask),
        1,
      ),
      segments,
    } as unknown as tf.TensorContainer;
  }) as unknown as AlignmentTokens;
}

export interface AlignmentPredictions {
  /** [B, Ds] */
  perception: tf.Tensor;
  /** [B, F] */
  dynamics: tf.Tensor;
  /** [B, Ha, A] */
  inverse: tf.Tensor;
}

/** The three heads on the alignment stream's output [B, S, D]. */
export function alignmentHeads(policy: Policy, out: tf.Tensor): AlignmentPredictions {
  return tf.tidy(() => {
    const ha = policy.config.actionHorizon;
    const P = (name: string) => policy.params.get(`alignment/${name}`);
    const lin = (x: tf.Tensor, name: string) => linear(x, P(`${name}/w`), P(`${name}/b`));
    const token = (i: number) => tf.squeeze(tf.slice(out, [0, i, 0], [-1, 1, -1]), [1]);
    return {
      perception: lin(token(0), 'perception_head'),
      dynamics: lin(token(1 + ha), 'dynamics_head'),
      inverse: lin(tf.slice(out, [0, out.shape[1]! - ha, 0], [-1, ha, -1]), 'inverse_head'),
    } as unknown as tf.TensorContainer;
  }) as unknown as AlignmentPredictions;
}
