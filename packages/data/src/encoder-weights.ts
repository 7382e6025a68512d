// The default encoder's architecture and seeded weights, with no ONNX dependency: the one
// source for the ONNX graph (encoder.ts) and the TensorFlow.js forward (encoder-tf.ts).
import { Rng } from '@selfalign/core/rng';

export interface EncoderOptions {
  /** S: input side (pixels). */
  imageSize?: number;
  /** Patch size (S must be a multiple). */
  patch?: number;
  /** Conv channels. */
  channels?: number;
  /** F: feature dim. */
  dim?: number;
  seed?: number;
}

export const DEFAULT_ENCODER = Object.freeze({
  imageSize: 64,
  patch: 8,
  channels: 16,
  dim: 64,
  seed: 0,
});

const normals = (rng: Rng, n: number, std: number) =>
  Float32Array.from({ length: n }, () => rng.normal() * std);

export interface EncoderWeights {
  imageSize: number;
  patch: number;
  channels: number;
  dim: number;
  seed: number;
  /** [C, 3, p, p] (ONNX Conv layout) */
  convW: Float32Array;
  /** [C*g*g, F] */
  projW: Float32Array;
}

/** The encoder's seeded weights: the one source for the ONNX graph and encoder-tf.ts. */
export function defaultEncoderWeights(options: EncoderOptions = {}): EncoderWeights {
  const { imageSize: s, patch: p, channels: c, dim: f, seed } = { ...DEFAULT_ENCODER, ...options };
  if (s % p !== 0) {
    throw new RangeError(`encoder image size ${s} is not a multiple of the patch ${p}`);
  }
  const g = s / p;
  const rng = new Rng(seed);
  const convW = normals(rng, c * 3 * p * p, 1 / Math.sqrt(3 * p * p));
  const projW = normals(rng, c * g * g * f, 1 / Math.sqrt(c * g * g));
  return { imageSize: s, patch: p, channels: c, dim: f, seed, convW, projW };
}
