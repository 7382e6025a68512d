// safetensors, the checkpoint format of the PyTorch world: an 8-byte little-endian header
// length, a JSON header `{ name: { dtype, shape, data_offsets }, __metadata__?: {str: str} }`,
// then raw little-endian bytes. We write F32 (or F16, half the size, for weights that ship) and
// read F32, F16 and BF16 into Float32Array.
// Every malformed input is a CheckpointError that names the file and, where one is at fault,
// the tensor. Pure bytes in, bytes out: file I/O lives in ./node.ts.

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export interface DecodedSafetensors {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
  constructor(
    message: string,
    readonly file: string,
    readonly tensor?: string,
  ) {
    super(`${file}${tensor === undefined ? '' : ` [tensor '${tensor}']`}: ${message}`);
  }
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };
const MAX_HEADER = 100 * 1024 * 1024;

/**
 * Encodes tensors (insertion order) and string metadata, every tensor as F32 or, with
 * `dtype: 'F16'`, as IEEE half (round to nearest even; see {@link f32ToF16}).
 * @throws Error for a name/shape mismatch, or a value beyond half's range when writing F16
 */
export function encodeSafetensors(
  tensors: Iterable<[string, HostTensor]>,
  metadata: Record<string, string> = {},
  opts: { dtype?: 'F32' | 'F16' } = {},
): Uint8Array {
  const dtype = opts.dtype ?? 'F32';
  const size = BYTES[dtype];
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  const parts: [HostTensor, number][] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new Error('"__metadata__" is not a tensor name');
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new Error(
        `tensor '${name}': shape [${t.shape}] holds ${n} values, data has ${t.data.length}`,
      );
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + size * n] };
    parts.push([t, offset]);
    offset += size * n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + byteLength(json)) % 8)) % 8); // keep the data 8-byte aligned
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  const base = 8 + headerBytes.length;
  for (const [t, off] of parts) {
    if (dtype === 'F32')
      for (let i = 0; i < t.data.length; i++) view.setFloat32(base + off + 4 * i, t.data[i]!, true);
    else
      for (let i = 0; i < t.data.length; i++)
        view.setUint16(base + off + 2 * i, f32ToF16(t.data[i]!), true);
  }
  return out;
}

function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * float -> IEEE half bits, rounding to nearest even (subnormals kept, NaN kept).
 * @throws RangeError for a finite value whose magnitude rounds beyond half's largest, 65504
 */
export function f32ToF16(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  let h: number;
  let rem: number;
  let halfway: number;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: zero
    mant |= 0x800000;
    const shift = 14 - e;
    h = mant >>> shift;
    rem = mant & ((1 << shift) - 1);
    halfway = 1 << (shift - 1);
  } else {
    h = (e << 10) | (mant >>> 13);
    rem = mant & 0x1fff;
    halfway = 0x1000;
  }
  if (rem > halfway || (rem === halfway && h & 1)) h++; // a carry rolls into the exponent
  if (h >= 0x7c00) throw new RangeError(`${x} is beyond the range of a half float (65504)`);
  return sign | h;
}

/** The value `x` becomes when stored as half and read back (see {@link f32ToF16}). */
export function roundToF16(x: number): number {
  return f16ToF32(f32ToF16(x));
}

/** IEEE half -> float. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/**
 * Decodes a safetensors file.
 * @param file the name used in error messages
 * @throws CheckpointError for a truncated file, a header larger than the file, bad JSON,
 *   an unknown dtype, bad shapes, offsets out of range, or a dtype/shape/byte-count mismatch.
 */
export function decodeSafetensors(bytes: Uint8Array, file = '<buffer>'): DecodedSafetensors {
  if (bytes.length < 8) {
    throw new CheckpointError(
      `truncated: ${bytes.length} bytes, not even the 8-byte header length`,
      file,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > bytes.length - 8 || headerLen > MAX_HEADER) {
    throw new CheckpointError(
      `header of ${headerLen} bytes is larger than the file (${bytes.length} bytes): truncated or not safetensors`,
      file,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)),
    );
  } catch (err) {
    throw new CheckpointError(`bad JSON header (${(err as Error).message})`, file);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new CheckpointError('bad JSON header: not an object', file);
  }
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, HostTensor>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object') {
        throw new CheckpointError('__metadata__ is not an object of strings', file);
      }
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string')
          throw new CheckpointError(`__metadata__.${k} is not a string`, file);
        metadata[k] = v;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== 'object')
      throw new CheckpointError('entry is not an object', file, name);
    if (typeof e.dtype !== 'string' || !(e.dtype in BYTES)) {
      throw new CheckpointError(
        `unsupported dtype ${JSON.stringify(e.dtype)} (F32, F16, BF16 are read)`,
        file,
        name,
      );
    }
    const dtype = e.dtype as SafetensorsDtype;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new CheckpointError(`bad shape ${JSON.stringify(e.shape)}`, file, name);
    }
    const shape = e.shape as number[];
    const offsets = e.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      throw new CheckpointError(`bad data_offsets ${JSON.stringify(offsets)}`, file, name);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLen) {
      throw new CheckpointError(
        `data_offsets [${begin}, ${end}] out of range: the file holds ${dataLen} data bytes (truncated?)`,
        file,
        name,
      );
    }
    const n = shape.reduce((a, b) => a * b, 1);
    if (end - begin !== n * BYTES[dtype]) {
      throw new CheckpointError(
        `dtype/shape mismatch: ${dtype} [${shape}] needs ${n * BYTES[dtype]} bytes, offsets give ${end - begin}`,
        file,
        name,
      );
    }
    const data = new Float32Array(n);
    const at = dataStart + begin;
    if (dtype === 'F32') for (let i = 0; i < n; i++) data[i] = view.getFloat32(at + 4 * i, true);
    else if (dtype === 'F16')
      for (let i = 0; i < n; i++) data[i] = f16ToF32(view.getUint16(at + 2 * i, true));
    else {
      const tmp = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < n; i++) {
        tmp.setUint32(0, view.getUint16(at + 2 * i, true) << 16, true);
        data[i] = tmp.getFloat32(0, true);
      }
    }
    tensors.set(name, { shape, data });
  }
  return { tensors, metadata };
}
