// The default encoder in TensorFlow.js (`@selfalign/data/browser`), for places without
// onnxruntime-node such as the browser. Same seeded weights and the same arithmetic as the ONNX
// graph (a test holds the two to 1e-4): frames resized bilinearly with half-pixel centres to the
// encoder size, ImageNet-normalised, patch conv as reshape + matmul, Relu, Flatten in NCHW
// order, Gemm, LayerNorm (eps 1e-5).
import { layerNorm, linear, tf } from '@selfalign/core';
import { DEFAULT_ENCODER, defaultEncoderWeights, type EncoderOptions } from './encoder-weights.js';

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

export interface TfEncoder {
  readonly dim: number;
  /**
   * @param images [B, H, W, 3], values 0..255
   * @returns [B, F]
   */
  encode(images: tf.Tensor): tf.Tensor2D;
  dispose(): void;
}

export function defaultEncoderTf(options: EncoderOptions = {}): TfEncoder {
  const w = defaultEncoderWeights(options);
  const { imageSize: s, patch: p, channels: c, dim: f } = w;
  const g = s / p;
  // [C, 3, p, p] -> [3*p*p, C] (the patch vector is ordered channel, row, column)
  const conv = tf.tidy(() => tf.transpose(tf.reshape(tf.tensor(w.convW), [c, 3 * p * p])));
  const proj = tf.tensor2d(w.projW, [c * g * g, f]);
  const mean = tf.tensor1d(MEAN);
  const std = tf.tensor1d(STD);
  return {
    dim: f,
    encode: (images) =>
      tf.tidy(() => {
        const b = images.shape[0]!;
        let x = tf.cast(images, 'float32') as tf.Tensor4D;
        if (x.shape[1] !== s || x.shape[2] !== s)
          x = tf.image.resizeBilinear(x, [s, s], false, true);
        x = tf.div(tf.sub(tf.div(x, 255), mean), std) as tf.Tensor4D; // [B,S,S,3]
        // [B,S,S,3] -> [B,g,p,g,p,3] -> [B,g,g,3,p,p] -> [B*g*g, 3*p*p]
        const patches = tf.reshape(
          tf.transpose(tf.reshape(x, [b, g, p, g, p, 3]), [0, 1, 3, 5, 2, 4]),
          [b * g * g, 3 * p * p],
        );
        const act = tf.relu(linear(patches, conv)); // [B*g*g, C]
        // ONNX Flatten of NCHW: [B, C, g, g] -> [B, C*g*g]
        const flat = tf.reshape(tf.transpose(tf.reshape(act, [b, g, g, c]), [0, 3, 1, 2]), [
          b,
          c * g * g,
        ]);
        return layerNorm(linear(flat, proj), tf.scalar(1), tf.scalar(0), 1e-5) as tf.Tensor2D;
      }),
    dispose: () => tf.dispose([conv, proj, mean, std]),
  };
}

export { DEFAULT_ENCODER };
