// Next-observation features. A FeatureExtractor turns uint8 frames into [B, F] vectors; the
// ONNX implementation runs any image model on onnxruntime-node: it reads the model's input
// name and size, resizes frames bilinearly (half-pixel centres) to that size, normalises them
// (ImageNet mean/std by default, as DINOv2 expects), runs them in batches and returns the
// chosen output (rank-3 outputs such as a ViT's last_hidden_state give the CLS token or the
// token mean). `addFeatures` streams a frame file into a new one with observation.features.
import { readFile, stat } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { defaultEncoderModel } from './encoder.js';
import { DEFAULT_ENCODER } from './encoder-weights.js';
import { DataError } from './errors.js';
import { openFrames, type ReadOptions } from './reader.js';
import { FrameWriter } from './writer.js';

export interface FeatureExtractor {
  /** F */
  readonly dim: number;
  /** Human-readable origin, stored in the data file's metadata. */
  readonly name: string;
  /**
   * @param images uint8 [count * height * width * 3], row-major HWC
   * @returns float32 [count * F]
   */
  extract(images: Uint8Array, count: number, height: number, width: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

export interface OnnxExtractorOptions {
  /** Per-channel mean/std applied to pixels scaled to [0, 1] (default ImageNet). */
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
  /** Frames per run (default 32). */
  batchSize?: number;
  /** Input / output names (default: the model's first). */
  inputName?: string;
  outputName?: string;
  /** Input side for models whose input size is dynamic. */
  inputSize?: number;
  /** Rank-3 outputs [B, T, F]: token 0 ('cls', default) or the mean over tokens. */
  pool?: 'cls' | 'mean';
  /** onnxruntime intra-op threads (default: its own choice). */
  threads?: number;
  /** Name stored with the features (default: the file name, or "selfalign-default-encoder"). */
  name?: string;
}

/** Bilinear resize of one HWC uint8 image to [3, H, W] float32, normalised, written at `out[offset]`. */
export function preprocess(
  src: Uint8Array,
  srcH: number,
  srcW: number,
  dstH: number,
  dstW: number,
  mean: readonly number[],
  std: readonly number[],
  out: Float32Array,
  offset: number,
): void {
  const plane = dstH * dstW;
  const sy = srcH / dstH;
  const sx = srcW / dstW;
  for (let y = 0; y < dstH; y++) {
    const fy = Math.min(srcH - 1, Math.max(0, (y + 0.5) * sy - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(srcH - 1, y0 + 1);
    const wy = fy - y0;
    for (let x = 0; x < dstW; x++) {
      const fx = Math.min(srcW - 1, Math.max(0, (x + 0.5) * sx - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(srcW - 1, x0 + 1);
      const wx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const p = (yy: number, xx: number) => src[(yy * srcW + xx) * 3 + c]!;
        const v =
          (p(y0, x0) * (1 - wx) + p(y0, x1) * wx) * (1 - wy) +
          (p(y1, x0) * (1 - wx) + p(y1, x1) * wx) * wy;
        out[offset + c * plane + y * dstW + x] = (v / 255 - mean[c]!) / std[c]!;
      }
    }
  }
}

export class OnnxFeatureExtractor implements FeatureExtractor {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly name: string,
    readonly dim: number,
    readonly inputName: string,
    readonly outputName: string,
    /** [H, W] of the model input */
    readonly inputSize: [number, number],
    private readonly opts: OnnxExtractorOptions,
  ) {}

  /**
   * Loads a model from a file path or bytes.
   * @throws DataError for a missing file, a model onnxruntime cannot load, or an input that is
   *   not [B, 3, H, W]
   */
  static async create(
    model: string | Uint8Array,
    opts: OnnxExtractorOptions = {},
  ): Promise<OnnxFeatureExtractor> {
    const label = typeof model === 'string' ? model : (opts.name ?? '<model bytes>');
    let bytes: Uint8Array;
    if (typeof model === 'string') {
      try {
        if ((await stat(model)).isDirectory())
          throw new DataError('is a folder, not an ONNX model file', model);
        bytes = new Uint8Array(await readFile(model));
      } catch (err) {
        if (err instanceof DataError) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        throw new DataError(
          code === 'ENOENT' ? 'ONNX model file not found' : (err as Error).message,
          model,
        );
      }
    } else {
      bytes = model;
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, {
        ...(opts.threads !== undefined ? { intraOpNumThreads: opts.threads } : {}),
        graphOptimizationLevel: 'all',
      });
    } catch (err) {
      throw new DataError(
        `onnxruntime cannot load this model (${(err as Error).message.split('\n')[0]})`,
        label,
      );
    }
    const inputName = opts.inputName ?? session.inputNames[0];
    const outputName = opts.outputName ?? session.outputNames[0];
    if (inputName === undefined || !session.inputNames.includes(inputName)) {
      throw new DataError(
        `no input '${opts.inputName}'; the model has ${session.inputNames.join(', ')}`,
        label,
      );
    }
    if (outputName === undefined || !session.outputNames.includes(outputName)) {
      throw new DataError(
        `no output '${opts.outputName}'; the model has ${session.outputNames.join(', ')}`,
        label,
      );
    }
    const meta = session.inputMetadata.find((m) => m.name === inputName);
    const shape = meta && 'shape' in meta ? (meta.shape as (number | string)[]) : [];
    if (shape.length !== 4 || (typeof shape[1] === 'number' && shape[1] !== 3)) {
      throw new DataError(
        `input '${inputName}' has shape [${shape}], expected [B, 3, H, W]`,
        label,
      );
    }
    const h = typeof shape[2] === 'number' ? shape[2] : opts.inputSize;
    const w = typeof shape[3] === 'number' ? shape[3] : opts.inputSize;
    if (h === undefined || w === undefined) {
      throw new DataError(
        `input '${inputName}' has a dynamic size [${shape}]: pass inputSize`,
        label,
      );
    }
    // one dry run on a black frame tells the feature dim
    const probe = new ort.Tensor('float32', new Float32Array(3 * h * w), [1, 3, h, w]);
    let outShape: readonly number[];
    try {
      const out = await session.run({ [inputName]: probe });
      outShape = out[outputName]!.dims;
    } catch (err) {
      throw new DataError(`a test run failed (${(err as Error).message.split('\n')[0]})`, label);
    }
    if (outShape.length !== 2 && outShape.length !== 3) {
      throw new DataError(
        `output '${outputName}' has shape [${outShape}], expected [B, F] or [B, T, F]`,
        label,
      );
    }
    const name = opts.name ?? (typeof model === 'string' ? model : 'selfalign-default-encoder');
    return new OnnxFeatureExtractor(
      session,
      name,
      outShape.at(-1)!,
      inputName,
      outputName,
      [h, w],
      opts,
    );
  }

  async extract(
    images: Uint8Array,
    count: number,
    height: number,
    width: number,
  ): Promise<Float32Array> {
    const per = height * width * 3;
    if (images.length !== count * per) {
      throw new DataError(
        `${images.length} bytes for ${count} frames of ${height}x${width}x3`,
        this.name,
      );
    }
    const [h, w] = this.inputSize;
    const mean = this.opts.mean ?? IMAGENET_MEAN;
    const std = this.opts.std ?? IMAGENET_STD;
    const bs = this.opts.batchSize ?? 32;
    const out = new Float32Array(count * this.dim);
    for (let start = 0; start < count; start += bs) {
      const n = Math.min(bs, count - start);
      const input = new Float32Array(n * 3 * h * w);
      for (let i = 0; i < n; i++) {
        preprocess(
          images.subarray((start + i) * per, (start + i + 1) * per),
          height,
          width,
          h,
          w,
          mean,
          std,
          input,
          i * 3 * h * w,
        );
      }
      const result = await this.session.run({
        [this.inputName]: new ort.Tensor('float32', input, [n, 3, h, w]),
      });
      const y = result[this.outputName]!;
      const data = y.data as Float32Array;
      if (y.dims.length === 2) {
        out.set(data.subarray(0, n * this.dim), start * this.dim);
      } else {
        const tokens = y.dims[1]!;
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < this.dim; j++) {
            let v = 0;
            if ((this.opts.pool ?? 'cls') === 'cls') v = data[i * tokens * this.dim + j]!;
            else {
              for (let t = 0; t < tokens; t++) v += data[(i * tokens + t) * this.dim + j]!;
              v /= tokens;
            }
            out[(start + i) * this.dim + j] = v;
          }
        }
      }
      for (const t of Object.values(result)) t.dispose?.();
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/** The embedded default extractor (the generated encoder, 64 px in, 64 features out). */
export async function defaultFeatureExtractor(
  opts: OnnxExtractorOptions = {},
): Promise<OnnxFeatureExtractor> {
  return OnnxFeatureExtractor.create(defaultEncoderModel(), {
    name: `selfalign-default-encoder(size=${DEFAULT_ENCODER.imageSize},dim=${DEFAULT_ENCODER.dim},seed=${DEFAULT_ENCODER.seed})`,
    ...opts,
  });
}

/**
 * Streams `inPath` into `outPath` with an observation.features column from `extractor`
 * (atomic; `outPath` may equal `inPath`).
 */
export async function addFeatures(
  inPath: string,
  outPath: string,
  extractor: FeatureExtractor,
  opts: ReadOptions & { onProgress?: (rows: number) => void } = {},
): Promise<{ rows: number }> {
  const { meta, batches } = await openFrames(inPath, opts);
  const [h, w] = meta.imageShape;
  const writer = await FrameWriter.open(outPath, {
    ...meta,
    featureDim: extractor.dim,
    featureModel: extractor.name,
  });
  try {
    for await (const b of batches) {
      const features = await extractor.extract(b.images, b.length, h, w);
      writer.write({ ...b, features });
      opts.onProgress?.(writer.rows);
    }
    return { rows: (await writer.close()).rows };
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
