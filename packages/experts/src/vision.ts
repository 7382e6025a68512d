// SigLIP-like vision tower: patch embedding as reshape + linear (the conv filter gradient is
// missing on wasm, CONVENTIONS.md), learned positions, pre-LN ViT blocks, a final LayerNorm
// and a projection to the VLM width. [B,C,I,I,3] uint8 values -> [B, C*(I/patch)^2, Dvlm].
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
}

/**
 * @param images [B, C, I, I, 3], values 0..255 (int32 or float32)
 * @returns [B, C*Np, Dvlm]
 */
export function embedImages(tree: ParamTree, c: VisionConfig, images: tf.Tensor): tf.Tensor {
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
    const out = linear(
      layerNorm(x, P('ln_post/gamma'), P('ln_post/beta')),
      P('proj/w'),
      P('proj/b'),
    );
    return tf.reshape(out, [b, cams * np, out.shape[2]!]);
  });
}
