// Fast kernels for tfjs-backend-wasm, registered in place of the stock ones. Stock 4.22 runs
// BatchMatMul through XNNPACK only for batch 1 without transposes; every batched or transposed
// product (attention, the TTT inner step, every matmul gradient) falls to a scalar loop at
// 1.4-2.3 GFLOP/s. `bmm` (kernels/bmm.c, wasm SIMD) covers every variant on tfjs's own memory.
// Identity shares its input's buffer (as Reshape does) instead of copying it; GatherV2 on axis 0
// copies whole rows; Slice (on one axis), SplitV and Concat copy strided rows in wasm instead of
// reading the whole input out of the heap or calling subarray/set per row; Sum over leading axes
// adds rows without the stock transpose (kernels/ops.c). `fusedAdamW` and `sumSquares` give the
// optimiser one pass per parameter. The stock kernels
// stay one call away (`SELFALIGN_KERNELS=stock` or `initBackend(..., { kernels: 'stock' })`),
// and any tfjs other than the pinned version keeps them with a reason.
import { tf } from '../tf.js';
import { KERNELS_WASM_BASE64 } from './kernels-wasm.js';

/** The tfjs-backend-wasm version whose internals (dataIdMap, memoryOffset, _malloc) we use. */
export const PINNED_TFJS_WASM = '4.22.0';

export type KernelSet = 'fast' | 'stock';

interface WasmData {
  memoryOffset: number;
}
/** The parts of tfjs-backend-wasm's BackendWasm the kernels use (pinned version). */
interface WasmBackend {
  dataIdMap: { get(dataId: object): WasmData };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  incRef(dataId: object): void;
  wasm: {
    HEAPU8: Uint8Array;
    HEAP32: Int32Array;
    _malloc(bytes: number): number;
    _free(ptr: number): void;
    asm?: { memory?: WebAssembly.Memory };
  };
}
type BmmFn = (...args: number[]) => void;

/** The module's exports (kernels/bmm.c, kernels/ops.c). */
interface KernelExports {
  bmm: BmmFn;
  copy_rows(src: number, dst: number, rows: number, len: number, ss: number, ds: number): void;
  col_sum(x: number, out: number, rows: number, len: number): void;
  sum_squares(x: number, n: number): number;
  adamw(...args: number[]): void;
}

interface Installed {
  stock: Map<string, tf.KernelConfig>;
  exports: KernelExports;
}
let installed: Installed | undefined;

/** Whether the fast kernels are registered now. */
export function fastKernelsActive(): boolean {
  return installed !== undefined;
}

/** Reads `SELFALIGN_KERNELS` (fast | stock; default fast). */
export function kernelChoiceFromEnv(
  env: Record<string, string | undefined> = globalThis.process?.env ?? {},
): KernelSet {
  const raw = env['SELFALIGN_KERNELS'];
  if (raw === undefined || raw === '' || raw === 'fast') return 'fast';
  if (raw === 'stock') return 'stock';
  throw new Error(`SELFALIGN_KERNELS=${raw} is not a kernel set; use fast or stock`);
}

function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function offset(backend: WasmBackend, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset;
}

function makeBatchMatMul(bmm: BmmFn, stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmBackend;
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const ra = a.shape.length;
    const rb = b.shape.length;
    const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
    // General outer broadcasting ([2,1] x [1,3]) and other dtypes stay with the stock kernel.
    if (
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      (batchA !== batchB && batchA !== 1 && batchB !== 1)
    ) {
      return stock.kernelFunc(args);
    }
    const m = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
    const k = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
    const kb = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
    const n = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
    if (k !== kb) {
      throw new Error(
        `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ` +
          `${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
      );
    }
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(
      a.shape.slice(0, -2),
      b.shape.slice(0, -2),
    );
    const batch = Math.max(batchA, batchB);
    const out = backend.makeOutput([...outer, m, n], 'float32');
    if (batch * m * n === 0) return out;
    const scratch = backend.wasm._malloc(
      Math.max(1, (32 * Math.ceil(n / 8) + 16 * Math.ceil(m / 4)) * k),
    );
    try {
      bmm(
        offset(backend, a),
        offset(backend, b),
        offset(backend, out),
        batch,
        m,
        n,
        k,
        transposeA ? 1 : 0,
        transposeB ? 1 : 0,
        batchA === 1 ? 0 : m * k,
        batchB === 1 ? 0 : k * n,
        scratch,
      );
    } finally {
      backend.wasm._free(scratch);
    }
    return out;
  };
}

const identity: tf.KernelFunc = (args) => {
  const x = args.inputs['x'] as tf.TensorInfo;
  (args.backend as unknown as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

/** GatherV2 along axis 0 without batch dims (embedding rows, slot rows): one copy per row. */
function makeGather(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmBackend;
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
    const rank = x.shape.length;
    if (
      rank === 0 ||
      (axis !== 0 && axis !== -rank) ||
      (batchDims ?? 0) !== 0 ||
      !(x.dtype === 'float32' || x.dtype === 'int32') ||
      indices.dtype !== 'int32'
    ) {
      return stock.kernelFunc(args);
    }
    const rows = x.shape[0]!;
    const rowBytes = 4 * tf.util.sizeFromShape(x.shape.slice(1));
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    const count = tf.util.sizeFromShape(indices.shape);
    const xAt = offset(backend, x);
    const outAt = offset(backend, out);
    // memory offsets are unsigned and pass 2 GiB on large runs: >>> keeps them positive
    const idx = backend.wasm.HEAP32.subarray(
      offset(backend, indices) >>> 2,
      (offset(backend, indices) >>> 2) + count,
    );
    const heap = backend.wasm.HEAPU8;
    for (let i = 0; i < count; i++) {
      const r = idx[i]!;
      if (r < 0 || r >= rows) throw new Error(`GatherV2: index ${r} is not in [0, ${rows})`);
      heap.copyWithin(outAt + i * rowBytes, xAt + r * rowBytes, xAt + (r + 1) * rowBytes);
    }
    return out;
  };
}

/** 4-byte dtypes the copy kernels move bit for bit. */
function word(dtype: tf.DataType): boolean {
  return dtype === 'float32' || dtype === 'int32';
}

/**
 * Slices on one axis (every other axis whole), the only kind SplitV and the model's slices make:
 * `outer` rows of `len` words at stride `stride`. Undefined when the slice is another kind.
 */
function oneAxisSlice(
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
): { outer: number; len: number; stride: number; start: number } | undefined {
  let axis = -1;
  for (let d = 0; d < shape.length; d++) {
    if (begin[d] === 0 && size[d] === shape[d]) continue;
    if (axis >= 0) return undefined;
    axis = d;
  }
  if (axis < 0) axis = 0;
  const inner = tf.util.sizeFromShape(shape.slice(axis + 1));
  return {
    outer: tf.util.sizeFromShape(shape.slice(0, axis)),
    len: size[axis]! * inner,
    stride: shape[axis]! * inner,
    start: begin[axis]! * inner,
  };
}

function sliceInto(
  k: KernelExports,
  backend: WasmBackend,
  x: tf.TensorInfo,
  begin: readonly number[],
  size: readonly number[],
): tf.TensorInfo | undefined {
  const plan = oneAxisSlice(x.shape, begin, size);
  if (plan === undefined) return undefined;
  const out = backend.makeOutput([...size], x.dtype);
  if (plan.outer * plan.len === 0) return out;
  k.copy_rows(
    offset(backend, x) + 4 * plan.start,
    offset(backend, out),
    plan.outer,
    plan.len,
    plan.stride,
    plan.len,
  );
  return out;
}

function makeSlice(k: KernelExports, stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const x = args.inputs['x'] as tf.TensorInfo;
    if (!word(x.dtype) || x.shape.length === 0) return stock.kernelFunc(args);
    const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
    const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    const backend = args.backend as unknown as WasmBackend;
    return sliceInto(k, backend, x, b!, s!) ?? stock.kernelFunc(args);
  };
}

function makeSplitV(k: KernelExports, stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const x = args.inputs['x'] as tf.TensorInfo;
    if (!word(x.dtype)) return stock.kernelFunc(args);
    const { numOrSizeSplits, axis } = args.attrs as {
      numOrSizeSplits: number | number[];
      axis: number;
    };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
    const backend = args.backend as unknown as WasmBackend;
    const begin = x.shape.map(() => 0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[ax] = s;
      const out = sliceInto(k, backend, x, begin, size)!;
      begin[ax]! += s;
      return out;
    });
  };
}

function makeConcat(k: KernelExports, stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    if (inputs.length === 0 || !inputs.every((t) => t.dtype === inputs[0]!.dtype && word(t.dtype)))
      return stock.kernelFunc(args);
    const axis = tf.util.parseAxisParam(
      (args.attrs as { axis: number }).axis,
      inputs[0]!.shape,
    )[0]!;
    const shapes = inputs.map((t) => t.shape);
    tf.backend_util.assertParamsConsistent(shapes, axis);
    const outShape = tf.backend_util.computeOutShape(shapes, axis);
    const present = inputs.filter((t) => tf.util.sizeFromShape(t.shape) > 0);
    if (present.length === 1) return identity({ ...args, inputs: { x: present[0]! } });
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput(outShape, inputs[0]!.dtype);
    const outer = tf.util.sizeFromShape(outShape.slice(0, axis));
    const total = tf.util.sizeFromShape(outShape.slice(axis));
    if (outer * total === 0) return out;
    let at = 0;
    for (const t of present) {
      const len = tf.util.sizeFromShape(t.shape.slice(axis));
      k.copy_rows(offset(backend, t), offset(backend, out) + 4 * at, outer, len, len, total);
      at += len;
    }
    return out;
  };
}

/** Sum of float32 over a leading block of axes (bias and broadcast gradients): rows added in wasm. */
function makeSum(k: KernelExports, stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const x = args.inputs['x'] as tf.TensorInfo;
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    if (x.dtype !== 'float32' || x.shape.length === 0) return stock.kernelFunc(args);
    const axes = [...new Set(tf.util.parseAxisParam(axis, x.shape))].sort((a, b) => a - b);
    const lead = axes.length;
    // only a block [0, lead) that leaves axes behind; trailing reductions need no transpose
    if (lead === 0 || lead === x.shape.length || axes.some((a, i) => a !== i))
      return stock.kernelFunc(args);
    const rest = x.shape.slice(lead);
    const shape = keepDims ? [...x.shape.slice(0, lead).map(() => 1), ...rest] : rest;
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput(shape, 'float32');
    const len = tf.util.sizeFromShape(rest);
    if (len === 0) return out;
    k.col_sum(
      offset(backend, x),
      offset(backend, out),
      tf.util.sizeFromShape(x.shape.slice(0, lead)),
      len,
    );
    return out;
  };
}

const ADAMW = 'SelfalignAdamW';

export interface AdamWAttrs {
  clip: number;
  beta1: number;
  beta2: number;
  /** Bias corrections 1 - beta1^t, 1 - beta2^t. */
  c1: number;
  c2: number;
  eps: number;
  weightDecay: number;
  rate: number;
}

function makeAdamW(k: KernelExports): tf.KernelFunc {
  return (args) => {
    const { p, g, m, v } = args.inputs as Record<'p' | 'g' | 'm' | 'v', tf.TensorInfo>;
    const a = args.attrs as unknown as AdamWAttrs;
    const backend = args.backend as unknown as WasmBackend;
    const n = tf.util.sizeFromShape(p.shape);
    const outs = [p, m, v].map((t) => backend.makeOutput([...t.shape], 'float32'));
    k.adamw(
      offset(backend, p),
      offset(backend, g),
      offset(backend, m),
      offset(backend, v),
      ...outs.map((o) => offset(backend, o)),
      n,
      a.clip,
      a.beta1,
      1 - a.beta1,
      a.beta2,
      1 - a.beta2,
      a.c1,
      a.c2,
      a.eps,
      a.weightDecay,
      a.rate,
    );
    return outs;
  };
}

/**
 * One AdamW step of a parameter in one wasm pass (the fast kernels only; undefined otherwise):
 * the new parameter, first and second moments, equal to optim.ts's element-wise form.
 */
export function fusedAdamW(
  p: tf.Tensor,
  g: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  attrs: AdamWAttrs,
): [tf.Tensor, tf.Tensor, tf.Tensor] | undefined {
  if (installed === undefined) return undefined;
  if ([p, g, m, v].some((t) => t.dtype !== 'float32' || t.size !== p.size))
    throw new Error(`fusedAdamW: p, g, m, v must be float32 of one size (${p.shape})`);
  return tf.engine().runKernel(ADAMW, { p, g, m, v }, attrs as unknown as tf.NamedAttrMap) as [
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
  ];
}

/** Sum of squares of a float32 tensor read in place (the fast kernels only; undefined otherwise). */
export function sumSquares(t: tf.Tensor): number | undefined {
  if (installed === undefined || t.dtype !== 'float32') return undefined;
  const backend = tf.backend() as unknown as WasmBackend;
  return installed.exports.sum_squares(offset(backend, t), t.size);
}

/**
 * Registers the fast kernels on the active wasm backend (idempotent).
 * @param wasmVersion tfjs-backend-wasm's `version_wasm`
 * @returns undefined when installed, else why the stock kernels stay.
 */
export async function installFastKernels(wasmVersion: string): Promise<string | undefined> {
  if (installed !== undefined) return undefined;
  if (tf.getBackend() !== 'wasm') return `backend is ${tf.getBackend()}, not wasm`;
  const coreVersion = tf.version_core;
  if (coreVersion !== PINNED_TFJS_WASM || wasmVersion !== PINNED_TFJS_WASM) {
    return `fast kernels are pinned to tfjs ${PINNED_TFJS_WASM} (found core ${coreVersion}, wasm ${wasmVersion})`;
  }
  const backend = tf.backend() as unknown as WasmBackend;
  const memory = backend.wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return 'tfjs-wasm memory is not reachable';
  if (typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer) {
    return 'tfjs-wasm runs its threaded build (shared memory); the fast kernels need the plain one';
  }
  let instance: WebAssembly.Instance;
  try {
    const module = await WebAssembly.compile(decodeBase64(KERNELS_WASM_BASE64) as BufferSource);
    instance = await WebAssembly.instantiate(module, { env: { memory } });
  } catch (err) {
    return `the kernel module did not instantiate (no WebAssembly SIMD?): ${(err as Error).message}`;
  }
  const k = instance.exports as unknown as KernelExports;
  const stock = new Map<string, tf.KernelConfig>();
  for (const name of ['BatchMatMul', 'Identity', 'GatherV2', 'Slice', 'SplitV', 'Concat', 'Sum']) {
    const config = tf.getKernel(name, 'wasm');
    if (config === undefined) return `tfjs-wasm has no ${name} kernel`;
    stock.set(name, config);
  }
  const replace = (name: string, kernelFunc: tf.KernelFunc) => {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc });
  };
  replace('BatchMatMul', makeBatchMatMul(k.bmm, stock.get('BatchMatMul')!));
  replace('Identity', identity);
  replace('GatherV2', makeGather(stock.get('GatherV2')!));
  replace('Slice', makeSlice(k, stock.get('Slice')!));
  replace('SplitV', makeSplitV(k, stock.get('SplitV')!));
  replace('Concat', makeConcat(k, stock.get('Concat')!));
  replace('Sum', makeSum(k, stock.get('Sum')!));
  if (tf.getKernel(ADAMW, 'wasm') === undefined)
    tf.registerKernel({ kernelName: ADAMW, backendName: 'wasm', kernelFunc: makeAdamW(k) });
  installed = { stock, exports: k };
  return undefined;
}

/** Puts the stock kernels back (for side-by-side benchmarks and tests). */
export function uninstallFastKernels(): void {
  if (installed === undefined) return;
  for (const [name, config] of installed.stock) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(config);
  }
  installed = undefined;
}
