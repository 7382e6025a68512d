// SigLIP-like vision tower: patch embedding as reshape + linear (the conv filter gradient is
// missing on wasm, CONVENTIONS.md), learned positions, pre-LN ViT blocks, a final LayerNorm
// and a projection to the VLM width. [B,C,I,I,3] uint8 values -> [B, C*(Np+K), Dvlm].
//
// Optional keypoint tokens (`keypoints: K > 0`): a spatial soft-argmax over the patch tokens
// (Levine et al. 2016; the spatial softmax of Diffusion Policy's image encoder): K heatmaps, each
// a softmax over the Np patches, plus a learned offset inside each patch (at most half a patch),
// give K expected image positions (u, v) in [-1, 1]; each becomes one token (a linear map of its
// position plus a per-keypoint embedding) after the patch tokens of its camera. Why: attention
// values carry no RoPE position, and the learned position embeddings start at 0.02, so a reader
// of the patch tokens learns *where* something is only very slowly (measured in
// docs/results.md: a ViT + attention-pooling probe did not locate the reach target in 250 steps;
// the same tower with a soft-argmax readout located it to 6 cm in 100).
import {
  attention,
  geluTanh,
  layerNorm,
  linear,
  type ParamTree,
  type Rng,
  randomNormal,
  tf,
} from '@selfalign/core';
import type { VisionConfig } from './config.js';

export function addVisionParams(
  tree: ParamTree,
  c: VisionConfig,
  outWidth: number,
  rng: Rng,
): void {
  const n = (c.imageSize / c.patch) ** 2;
  const pdim = c.patch * c.patch * 3;
  const dense = (path: string, din: number, dout: number) => {
    tree.add(`${path}/w`, randomNormal(rng, [din, dout], 1 / Math.sqrt(din)));
    tree.add(`${path}/b`, tf.zeros([dout]));
  };
  dense('vision/patch', pdim, c.width);
  tree.add('vision/pos', randomNormal(rng, [n, c.width], 0.02));
  for (let i = 0; i < c.depth; i++) {
    const p = `vision/blocks/${i}`;
    for (const ln of ['ln1', 'ln2']) {
      tree.add(`${p}/${ln}/gamma`, tf.ones([c.width]));
      tree.add(`${p}/${ln}/beta`, tf.zeros([c.width]));
    }
    for (const proj of ['q', 'k', 'v', 'o']) dense(`${p}/${proj}`, c.width, c.width);
    dense(`${p}/fc1`, c.width, c.mlp);
    dense(`${p}/fc2`, c.mlp, c.width);
  }
  tree.add('vision/ln_post/gamma', tf.ones([c.width]));
  tree.add('vision/ln_post/beta', tf.zeros([c.width]));
  dense('vision/proj', c.width, outWidth);
  const k = c.keypoints ?? 0;
  if (k > 0) {
    tree.add('vision/keypoints/logit', randomNormal(rng, [c.width, k], 1 / Math.sqrt(c.width)));
    tree.add('vision/keypoints/offset', randomNormal(rng, [c.width, 2 * k], 0.02));
    tree.add('vision/keypoints/pos', randomNormal(rng, [2, outWidth], 1));
    tree.add('vision/keypoints/embed', randomNormal(rng, [k, outWidth], 0.02));
  }
}

/** Patch centres (u, v) in [-1, 1] (u to the right, v down), row-major: [g*g, 2]. */
function patchCentres(g: number): tf.Tensor2D {
  const uv = new Float32Array(g * g * 2);
  for (let i = 0; i < g * g; i++) {
    uv[2 * i] = (((i % g) + 0.5) / g) * 2 - 1;
    uv[2 * i + 1] = ((Math.floor(i / g) + 0.5) / g) * 2 - 1;
  }
  return tf.tensor2d(uv, [g * g, 2]);
}

/**
 * Spatial soft-argmax: K expected positions from the final patch tokens.
 * @param x [N, Np, W] (after ln_post)
 * @returns [N, K, 2] positions (u, v) in [-1, 1]
 */
export function keypointPositions(tree: ParamTree, c: VisionConfig, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [n, np] = x.shape as [number, number, number];
    const k = c.keypoints ?? 0;
    const g = Math.round(Math.sqrt(np));
    // [N, Np, K] -> softmax over the patches -> [N, K, Np]
    const logits = linear(x, tree.get('vision/keypoints/logit'));
    const att = tf.softmax(tf.transpose(logits, [0, 2, 1]));
    const centres = tf.matMul(tf.reshape(att, [n * k, np]), patchCentres(g)); // [N*K, 2]
    // offsets [N, Np, K, 2] within +-half a patch, averaged under each heatmap
    const off = tf.mul(
      tf.tanh(tf.reshape(linear(x, tree.get('vision/keypoints/offset')), [n, np, k, 2])),
      1 / g,
    );
    const meanOff = tf.sum(tf.mul(off, tf.expandDims(tf.transpose(att, [0, 2, 1]), 3)), 1);
    return tf.add(tf.reshape(centres, [n, k, 2]), meanOff);
  });
}

export interface ImageEncoding {
  /** [B, C*(Np+K), Dvlm] */
  tokens: tf.Tensor;
  /** [B, C, K, 2] keypoint positions (u, v) in [-1, 1], when the config has keypoints */
  keypoints?: tf.Tensor;
  /** [B*C, Np, W] the final patch tokens (after ln_post, before the projection), on request */
  patches?: tf.Tensor;
}

/**
 * @param images [B, C, I, I, 3], values 0..255 (int32 or float32)
 * @returns [B, C*(Np+K), Dvlm]
 */
export function embedImages(tree: ParamTree, c: VisionConfig, images: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const { tokens } = encodeImages(tree, c, images);
    return tokens;
  });
}

/**
 * The vision tower's tokens and, with `keypoints`, the keypoint positions they were made from;
 * with `opts.patches`, also the final patch tokens (for heads trained on a frozen tower).
 */
export function encodeImages(
  tree: ParamTree,
  c: VisionConfig,
  images: tf.Tensor,
  opts: { patches?: boolean } = {},
): ImageEncoding {
  return tf.tidy(() => {
    const [b, cams, side] = images.shape as [number, number, number, number, number];
    const g = side / c.patch;
    const np = g * g;
    const P = (name: string) => tree.get(`vision/${name}`);
    const x0 = tf.sub(tf.div(tf.cast(images, 'float32'), 127.5), 1); // [-1, 1]
    // [B*C, g, p, g, p, 3] -> [B*C, g, g, p, p, 3] -> [B*C, Np, p*p*3]
    const patches = tf.reshape(
      tf.transpose(tf.reshape(x0, [b * cams, g, c.patch, g, c.patch, 3]), [0, 1, 3, 2, 4, 5]),
      [b * cams, np, c.patch * c.patch * 3],
    );
    let x = tf.add(linear(patches, P('patch/w'), P('patch/b')), P('pos'));
    const dh = c.width / c.heads;
    const full = tf.ones([b * cams, np, np], 'bool');
    for (let i = 0; i < c.depth; i++) {
      const p = (n: string) => P(`blocks/${i}/${n}`);
      const h = layerNorm(x, p('ln1/gamma'), p('ln1/beta'));
      const split = (t: tf.Tensor) => tf.reshape(t, [b * cams, np, c.heads, dh]);
      const att = attention(
        split(linear(h, p('q/w'), p('q/b'))),
        split(linear(h, p('k/w'), p('k/b'))),
        split(linear(h, p('v/w'), p('v/b'))),
        full,
      );
      x = tf.add(x, linear(tf.reshape(att, [b * cams, np, c.width]), p('o/w'), p('o/b')));
      const h2 = layerNorm(x, p('ln2/gamma'), p('ln2/beta'));
      x = tf.add(x, linear(geluTanh(linear(h2, p('fc1/w'), p('fc1/b'))), p('fc2/w'), p('fc2/b')));
    }
    const xn = layerNorm(x, P('ln_post/gamma'), P('ln_post/beta'));
    let out = linear(xn, P('proj/w'), P('proj/b'));
    const k = c.keypoints ?? 0;
    const kept = opts.patches ? { patches: xn } : {};
    if (k === 0)
      return {
        tokens: tf.reshape(out, [b, cams * np, out.shape[2]!]),
        ...kept,
      } as unknown as tf.TensorContainer;
    const uv = keypointPositions(tree, c, xn); // [B*C, K, 2]
    const kp = tf.add(linear(uv, P('keypoints/pos')), P('keypoints/embed'));
    out = tf.concat([out, kp], 1);
    return {
      tokens: tf.reshape(out, [b, cams * (np + k), out.shape[2]!]),
      keypoints: tf.reshape(uv, [b, cams, k, 2]),
      ...kept,
    } as unknown as tf.TensorContainer;
  }) as unknown as ImageEncoding;
}
