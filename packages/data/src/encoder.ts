// The embedded default feature encoder: a small ONNX graph that selfalign writes itself, so
// nothing is downloaded. It is a deterministic random-feature encoder, not a trained DINOv2:
//   pixel_values [B,3,S,S] (ImageNet-normalised) -> Conv(k=p, stride=p) -> Relu -> Flatten
//   -> Gemm -> LayerNormalization -> features [B,F]
// Its weights come from a seeded generator, so the same (size, dim, seed) gives the same bytes
// everywhere. The random projection of the patch grid keeps where things are in the image,
// which is what the dynamics task needs from next-observation features.
import onnxProto from 'onnx-proto';
import { defaultEncoderWeights, type EncoderOptions } from './encoder-weights.js';

const { onnx } = onnxProto;

const FLOAT = onnx.TensorProto.DataType.FLOAT;

function tensor(name: string, dims: number[], data: Float32Array) {
  return onnx.TensorProto.create({
    name,
    dataType: FLOAT,
    dims,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

function valueInfo(name: string, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: {
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  });
}

/** The default encoder as ONNX model bytes (deterministic). */
export function defaultEncoderModel(options: EncoderOptions = {}): Uint8Array {
  const w = defaultEncoderWeights(options);
  const { imageSize: s, patch: p, channels: c, dim: f, seed } = w;
  const g = s / p;
  const node = (
    opType: string,
    input: string[],
    output: string[],
    attrs: Record<string, number | number[]> = {},
  ) =>
    onnx.NodeProto.create({
      opType,
      input,
      output,
      attribute: Object.entries(attrs).map(([name, v]) =>
        Array.isArray(v)
          ? onnx.AttributeProto.create({
              name,
              type: onnx.AttributeProto.AttributeType.INTS,
              ints: v,
            })
          : Number.isInteger(v)
            ? onnx.AttributeProto.create({
                name,
                type: onnx.AttributeProto.AttributeType.INT,
                i: v,
              })
            : onnx.AttributeProto.create({
                name,
                type: onnx.AttributeProto.AttributeType.FLOAT,
                f: v,
              }),
      ),
    });
  const graph = onnx.GraphProto.create({
    name: 'selfalign_default_encoder',
    node: [
      node('Conv', ['pixel_values', 'conv_w', 'conv_b'], ['patches'], {
        kernel_shape: [p, p],
        strides: [p, p],
      }),
      node('Relu', ['patches'], ['act']),
      node('Flatten', ['act'], ['flat'], { axis: 1 }),
      node('Gemm', ['flat', 'proj_w', 'proj_b'], ['proj']),
      node('LayerNormalization', ['proj', 'ln_scale', 'ln_bias'], ['features'], {
        axis: -1,
        epsilon: 1e-5,
      }),
    ],
    initializer: [
      tensor('conv_w', [c, 3, p, p], w.convW),
      tensor('conv_b', [c], new Float32Array(c)),
      tensor('proj_w', [c * g * g, f], w.projW),
      tensor('proj_b', [f], new Float32Array(f)),
      tensor('ln_scale', [f], new Float32Array(f).fill(1)),
      tensor('ln_bias', [f], new Float32Array(f)),
    ],
    input: [valueInfo('pixel_values', ['batch', 3, s, s])],
    output: [valueInfo('features', ['batch', f])],
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'selfalign',
    producerVersion: '1',
    docString: `deterministic random-feature image encoder (size ${s}, patch ${p}, channels ${c}, dim ${f}, seed ${seed})`,
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}
