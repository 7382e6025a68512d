// Fast kernels for tfjs-backend-wasm, registered in place of the stock ones. Stock 4.22 runs
// BatchMatMul through XNNPACK only for batch 1 without transposes; every batched or transposed
// product (attention, the TTT inner step, every matmul gradient) falls to a scalar loop at
// 1.4-2.3 GFLOP/s. `bmm` (kernels/bmm.c, wasm SIMD) covers every variant on tfjs's own memory.
// Identity shares its input's buffer (as Reshape does) instead of copying it; GatherV2 on axis 0
// copies whole rows. The stock kernels
// stay one call away (`SELFALIGN_KERNELS=stock` or `initBackend(..., { kernels: 'stock' })`),
// and any tfjs other than the pinned version keeps them with a reason.
import { tf } from '../tf.js';
import { BMM_WASM_BASE64 } from './bmm-wasm.js';

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

interface Installed {
  stock: Map<string, tf.KernelConfig>;
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
    const module = await WebAssembly.compile(decodeBase64(BMM_WASM_BASE64) as BufferSource);
    instance = await WebAssembly.instantiate(module, { env: { memory } });
  } catch (err) {
    return `the kernel module did not instantiate (no WebAssembly SIMD?): ${(err as Error).message}`;
  }
  const bmm = instance.exports['bmm'] as BmmFn;
  const stock = new Map<string, tf.KernelConfig>();
  for (const name of ['BatchMatMul', 'Identity', 'GatherV2']) {
    const config = tf.getKernel(name, 'wasm');
    if (config === undefined) return `tfjs-wasm has no ${name} kernel`;
    stock.set(name, config);
  }
  const replace = (name: string, kernelFunc: tf.KernelFunc) => {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc });
  };
  replace('BatchMatMul', makeBatchMatMul(bmm, stock.get('BatchMatMul')!));
  replace('Identity', identity);
  replace('GatherV2', makeGather(stock.get('GatherV2')!));
  installed = { stock };
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
