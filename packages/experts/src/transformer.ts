// The joint multi-expert transformer (mirrors openpi gemma.py with several "configs"): every
// stream (VLM prefix, action suffix, alignment suffix) projects its own tokens with its own
// expert's weights, one attention runs over the concatenation (plus a read-only prefix K/V
// cache), and the output is split back per expert for its out projection, TTT branch and MLP:
//   h   = x + o(Attn(RMSNorm(x)))
//   h   = h + tanh(alpha) TTT(o(...))        Action/Alignment layers with TTT; the module is shared
//   out = h + GeGLU(RMSNorm(h))
// The TTT inner step of a stream uses that stream's own block of the attention mask.
import { applyRope, attention, gegluMlp, linear, rmsNorm, ropeTables, tf } from '@selfalign/core';
import type { Policy } from './policy.js';

export type ExpertName = 'vlm' | 'action' | 'alignment';

export interface Stream {
  expert: ExpertName;
  /** [B, T, D_expert] */
  x: tf.Tensor;
  /** bool [B, T] */
  tokenMask: tf.Tensor;
}

/** One layer's keys (RoPE applied) and values: [B, P, Hkv, Dh] each. */
export interface LayerKV {
  k: tf.Tensor;
  v: tf.Tensor;
}

export interface TransformerOptions {
  /** bool [B, N, Ncache + N]: N = all stream tokens, keys are [cache, streams]. */
  mask: tf.Tensor;
  /** [B, N] RoPE positions of the stream tokens. */
  positions: tf.Tensor;
  /** Read-only K/V of earlier tokens (the prefix), one entry per layer. */
  cache?: readonly LayerKV[];
  /** Return every layer's K/V of the stream tokens (for a prefix cache). */
  captureKV?: boolean;
  /** int32 [B] embodiment slot per sample (default 0). */
  slot?: tf.Tensor;
  /** Also return L_ttt averaged over every TTT call. */
  withTttLoss?: boolean;
  /** Experts whose TTT calls pass no gradient to W1/b1. */
  stopSlotGradient?: readonly ExpertName[];
  /** Per layer position: W1/b1 to use instead of the TTT module's own (see TttForwardOptions). */
  fastWeights?: ReadonlyMap<number, { W1: tf.Tensor; b1: tf.Tensor }>;
}

export interface TransformerOutput {
  /** Per stream, after the expert's final RMSNorm: [B, T, D_expert]. */
  outputs: tf.Tensor[];
  kv?: LayerKV[];
  tttLoss?: tf.Scalar;
}

export function runTransformer(
  policy: Policy,
  streams: readonly Stream[],
  opts: TransformerOptions,
): TransformerOutput {
  const c = policy.config;
  const { heads: H, kvHeads: Hkv, headDim: Dh } = c;
  const lens = streams.map((s) => s.x.shape[1]!);
  const b = streams[0]!.x.shape[0]!;
  const cacheLen = opts.cache?.[0]?.k.shape[1] ?? 0;
  for (const s of streams) policy.calls[s.expert] += 1;
  return tf.tidy(() => {
    const P = (e: ExpertName, l: number, n: string) => policy.params.get(`${e}/layers/${l}/${n}`);
    // Each stream's own block of the mask drives its TTT inner step.
    const offsets = lens.map((_, i) => lens.slice(0, i).reduce((a, n) => a + n, 0));
    const innerMasks = streams.map((s, i) =>
      s.expert === 'vlm'
        ? undefined
        : tf.slice(opts.mask, [0, offsets[i]!, cacheLen + offsets[i]!], [b, lens[i]!, lens[i]!]),
    );
    let xs = streams.map((s) => s.x);
    const rope = ropeTables(opts.positions, Dh); // one set of angles for every layer
    const kv: LayerKV[] = [];
    const tttLosses: tf.Scalar[] = [];
    for (let l = 0; l < c.depth; l++) {
      const normed = streams.map((s, i) => rmsNorm(xs[i]!, P(s.expert, l, 'attn_norm')));
      const proj = (name: string, heads: number) =>
        tf.concat(
          streams.map((s, i) =>
            tf.reshape(linear(normed[i]!, P(s.expert, l, `attn/${name}`)), [
              b,
              lens[i]!,
              heads,
              Dh,
            ]),
          ),
          1,
        );
      const q = applyRope(proj('q', H), rope);
      const k = applyRope(proj('k', Hkv), rope);
      const v = proj('v', Hkv);
      if (opts.captureKV) kv.push({ k, v });
      const att = attention(q, k, v, opts.mask, opts.cache?.[l]); // [B,N,H,Dh]
      // tfjs's SplitV gradient fails for a single piece (align's one-stream forward)
      const parts = lens.length === 1 ? [att] : tf.split(att, lens, 1);
      xs = streams.map((s, i) => {
        const a = linear(tf.reshape(parts[i]!, [b, lens[i]!, H * Dh]), P(s.expert, l, 'attn/o'));
        let h = tf.add(xs[i]!, a);
        const ttt = s.expert === 'vlm' ? undefined : policy.ttt[l];
        if (ttt !== undefined) {
          const r = ttt.forward(a, {
            ...(opts.slot ? { slot: opts.slot } : {}),
            innerMask: innerMasks[i]!,
            tokenMask: s.tokenMask,
            withLoss: opts.withTttLoss ?? false,
            stopSlotGradient: opts.stopSlotGradient?.includes(s.expert) ?? false,
            ...(opts.fastWeights?.has(l) ? { fastWeights: opts.fastWeights.get(l)! } : {}),
          });
          h = tf.add(h, r.out);
          if (r.loss) tttLosses.push(r.loss);
        }
        const m = rmsNorm(h, P(s.expert, l, 'mlp_norm'));
        return tf.add(
          h,
          gegluMlp(m, {
            gate: P(s.expert, l, 'mlp/gate'),
            up: P(s.expert, l, 'mlp/up'),
            down: P(s.expert, l, 'mlp/down'),
          }),
        );
      });
    }
    // the prefix stream's output is never read (only its K/V): no final norm for it
    const outputs = streams.map((s, i) =>
      s.expert === 'vlm' ? xs[i]! : rmsNorm(xs[i]!, policy.params.get(`${s.expert}/final_norm`)),
    );
    const out: TransformerOutput = { outputs };
    if (opts.captureKV) out.kv = kv;
    if (opts.withTttLoss) {
      out.tttLoss = (
        tttLosses.length > 0 ? tf.mean(tf.stack(tttLosses)) : tf.scalar(0)
      ) as tf.Scalar;
    }
    return out as unknown as tf.TensorContainer;
  }) as unknown as TransformerOutput;
}
