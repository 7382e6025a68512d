import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@selfalign/core';
import onnxProto from 'onnx-proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultEncoderModel } from './encoder.js';
import { defaultEncoderTf } from './encoder-tf.js';
import { DataError } from './errors.js';
import {
  addFeatures,
  defaultFeatureExtractor,
  IMAGENET_MEAN,
  IMAGENET_STD,
  OnnxFeatureExtractor,
  preprocess,
} from './features.js';
import { readEpisodes, validateFile } from './reader.js';
import type { DatasetMeta } from './schema.js';
import { writeEpisodes } from './writer.js';

const { onnx } = onnxProto;

/** A second, hand-built graph: image [N,3,32,32] -> mean over H, W -> mean_rgb [N,3]. */
function meanRgbModel(): Uint8Array {
  const vi = (name: string, dims: (number | string)[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: {
        tensorType: {
          elemType: 1,
          shape: {
            dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
          },
        },
      },
    });
  const graph = onnx.GraphProto.create({
    name: 'mean_rgb',
    node: [
      onnx.NodeProto.create({
        opType: 'ReduceMean',
        input: ['image'],
        output: ['mean_rgb'],
        attribute: [
          onnx.AttributeProto.create({
            name: 'axes',
            type: onnx.AttributeProto.AttributeType.INTS,
            ints: [2, 3],
          }),
          onnx.AttributeProto.create({
            name: 'keepdims',
            type: onnx.AttributeProto.AttributeType.INT,
            i: 0,
          }),
        ],
      }),
    ],
    input: [vi('image', ['N', 3, 32, 32])],
    output: [vi('mean_rgb', ['N', 3])],
  });
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph }),
  ).finish();
}

const solid = (n: number, side: number, rgb: [number, number, number]) => {
  const out = new Uint8Array(n * side * side * 3);
  for (let i = 0; i < out.length; i++) out[i] = rgb[i % 3]!;
  return out;
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'selfalign-features-'));
});

describe('the generated default encoder', () => {
  it('is deterministic: same options, same bytes; another seed, other bytes', () => {
    const a = defaultEncoderModel();
    expect(Buffer.from(defaultEncoderModel()).equals(Buffer.from(a))).toBe(true);
    expect(Buffer.from(defaultEncoderModel({ seed: 1 })).equals(Buffer.from(a))).toBe(false);
    expect(() => defaultEncoderModel({ imageSize: 60 })).toThrow(/multiple of the patch/);
  });

  it('runs on onnxruntime: reads its input size, gives F = 64 layer-normalised features that tell frames apart', async () => {
    const x = await defaultFeatureExtractor({ batchSize: 3 });
    expect(x.inputSize).toEqual([64, 64]);
    expect(x.inputName).toBe('pixel_values');
    expect(x.dim).toBe(64);
    const frames = new Uint8Array([
      ...solid(2, 64, [200, 40, 40]),
      ...solid(2, 64, [40, 40, 200]),
      ...solid(1, 64, [200, 40, 40]),
    ]);
    const f = await x.extract(frames, 5, 64, 64);
    expect(f.length).toBe(5 * 64);
    const row = (i: number) => Array.from(f.subarray(i * 64, (i + 1) * 64));
    const mean = row(0).reduce((a, v) => a + v, 0) / 64;
    expect(Math.abs(mean)).toBeLessThan(1e-4);
    expect(row(0)).toEqual(row(4)); // same frame, other sub-batch: same features
    expect(row(0)).not.toEqual(row(2));
    // frames of another size are resized to 64
    const small = await x.extract(solid(1, 32, [200, 40, 40]), 1, 32, 32);
    row(0).forEach((v, i) => expect(small[i]).toBeCloseTo(v, 4));
    await x.dispose();
  });
});

describe('the TensorFlow.js port of the default encoder', () => {
  it('matches the ONNX graph to 1e-4, at 64 px and resizing 16 px frames', async () => {
    await initBackend('wasm');
    const onnxX = await defaultFeatureExtractor();
    const tfX = defaultEncoderTf();
    for (const side of [64, 16]) {
      const frames = Uint8Array.from(
        { length: 3 * side * side * 3 },
        (_, i) => (i * 2654435761) >>> 24,
      );
      const want = await onnxX.extract(frames, 3, side, side);
      const got = tfX
        .encode(tf.tensor(Int32Array.from(frames), [3, side, side, 3], 'int32'))
        .dataSync();
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i]! - got[i]!));
      expect(worst, `${side} px`).toBeLessThan(1e-4);
    }
    tfX.dispose();
    await onnxX.dispose();
  });
});

describe('OnnxFeatureExtractor on a hand-built graph with another input size', () => {
  it("resizes 64 px frames to the model's 32 px and normalises with ImageNet mean/std", async () => {
    const x = await OnnxFeatureExtractor.create(meanRgbModel(), { name: 'mean-rgb' });
    expect(x.inputSize).toEqual([32, 32]);
    expect(x.dim).toBe(3);
    const f = await x.extract(solid(2, 64, [255, 128, 0]), 2, 64, 64);
    const want = [255, 128, 0].map((v, c) => (v / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!);
    for (let i = 0; i < 2; i++) want.forEach((w, c) => expect(f[i * 3 + c]).toBeCloseTo(w, 5));
    await x.dispose();
  });

  it('bilinear resize keeps a half/half split at the boundary', () => {
    // 2x2 image, left column black, right column white, widened to 2x4 (half-pixel centres)
    const src = new Uint8Array([0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255]); // 2 rows x 2 cols
    const out = new Float32Array(3 * 2 * 4);
    preprocess(src, 2, 2, 2, 4, [0, 0, 0], [1, 1, 1], out, 0);
    expect(Array.from(out.subarray(0, 4), (v) => +v.toFixed(3))).toEqual([0, 0.25, 0.75, 1]);
  });

  it('missing, corrupt and unsuitable models are clear errors', async () => {
    await expect(OnnxFeatureExtractor.create(join(dir, 'none.onnx'))).rejects.toThrow(
      /none.onnx: ONNX model file not found/,
    );
    await writeFile(join(dir, 'junk.onnx'), 'not a model');
    await expect(OnnxFeatureExtractor.create(join(dir, 'junk.onnx'))).rejects.toThrow(
      /junk.onnx: onnxruntime cannot load this model/,
    );
    await expect(
      OnnxFeatureExtractor.create(meanRgbModel(), { outputName: 'logits' }),
    ).rejects.toThrow(/no output 'logits'; the model has mean_rgb/);
    const x = await OnnxFeatureExtractor.create(meanRgbModel());
    await expect(x.extract(new Uint8Array(10), 1, 4, 4)).rejects.toThrow(DataError);
    await x.dispose();
  });
});

describe('addFeatures', () => {
  it('streams a frame file into one with observation.features, in place too', async () => {
    const meta: DatasetMeta = {
      format: 'selfalign-frames/1',
      kind: 'play',
      fps: 10,
      imageShape: [64, 64, 3],
      stateDim: 2,
      actionDim: 2,
    };
    const ep = (i: number, n: number) => ({
      episodeIndex: i,
      task: 't',
      embodiment: 'e',
      length: n,
      images: solid(n, 64, [i * 60, 100, 30]),
      states: new Float32Array(n * 2),
      actions: new Float32Array(n * 2),
    });
    const src = join(dir, 'play.arrow');
    await writeEpisodes(src, meta, [ep(0, 3), ep(1, 4)]);
    const x = await defaultFeatureExtractor();
    let progress = 0;
    const out = join(dir, 'play-features.arrow');
    expect(await addFeatures(src, out, x, { onProgress: (r) => (progress = r) })).toEqual({
      rows: 7,
    });
    expect(progress).toBe(7);
    const v = await validateFile(out);
    expect(v.meta.featureDim).toBe(64);
    expect(v.meta.featureModel).toMatch(/selfalign-default-encoder/);
    const eps = [];
    for await (const e of readEpisodes(out)) eps.push(e);
    expect(Array.from(eps[0]!.features!.subarray(0, 64))).toEqual(
      Array.from(await x.extract(solid(1, 64, [0, 100, 30]), 1, 64, 64)),
    );
    await addFeatures(src, src, x);
    expect((await validateFile(src)).meta.featureDim).toBe(64);
    await x.dispose();
  });
});
