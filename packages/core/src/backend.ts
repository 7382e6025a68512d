// The one place that picks a TensorFlow.js backend. Nothing else in selfalign imports a
// backend package. `auto` tries the native TensorFlow bindings (GPU, then CPU) when they
// load, then WebAssembly (SIMD), then the pure-JS cpu backend, and reports what it chose and
// why the others were passed over. An explicit choice that cannot load is an error.
import {
  installFastKernels,
  type KernelSet,
  kernelChoiceFromEnv,
  uninstallFastKernels,
} from './kernels/fast-kernels.js';
import { tf } from './tf.js';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendChoice = 'auto' | BackendName;

export interface BackendInfo {
  /** What selfalign calls it. */
  name: BackendName;
  /** What tfjs calls it (`tensorflow` for both native bindings). */
  tfName: string;
  /** Backends tried before this one and why each was passed over. */
  skipped: { name: BackendName; reason: string }[];
  /** Which kernels run (wasm only: `fast` = selfalign's SIMD kernels, see kernels/). */
  kernels: KernelSet;
  /** Why the stock kernels run although `fast` was asked for (wasm only). */
  kernelsReason?: string;
}

export interface BackendOptions {
  /**
   * Where the browser fetches tfjs-backend-wasm's .wasm files: a URL prefix, or a map from file
   * name (`tfjs-backend-wasm-simd.wasm`, ...) to URL (what a bundler's `?url` imports give).
   */
  wasmPaths?: string | Record<string, string>;
  /** wasm kernels: `fast` (default; `SELFALIGN_KERNELS` overrides it) or tfjs's `stock` ones. */
  kernels?: KernelSet;
}

export class BackendError extends Error {
  override name = 'BackendError';
}

const ORDER: BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
const NATIVE_PACKAGE: Partial<Record<BackendName, string>> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

let current: BackendInfo | undefined;

/** Reads `SELFALIGN_BACKEND` (auto | tensorflow-gpu | tensorflow | wasm | cpu). */
export function backendChoiceFromEnv(
  env: Record<string, string | undefined> = globalThis.process?.env ?? {},
): BackendChoice {
  const raw = env['SELFALIGN_BACKEND'];
  if (raw === undefined || raw === '') return 'auto';
  if (raw === 'auto' || (ORDER as string[]).includes(raw)) return raw as BackendChoice;
  throw new BackendError(
    `SELFALIGN_BACKEND=${raw} is not a backend; use one of auto, ${ORDER.join(', ')}`,
  );
}

let wasmVersion = '';

async function load(name: BackendName, options: BackendOptions): Promise<string> {
  const pkg = NATIVE_PACKAGE[name];
  if (pkg !== undefined) {
    if (typeof process === 'undefined' || !process.versions?.node) {
      throw new Error('native TensorFlow bindings exist only in Node.js');
    }
    await assertNativeBinding(pkg);
    // A variable specifier keeps bundlers from resolving the optional native packages.
    await import(/* @vite-ignore */ pkg);
    return 'tensorflow';
  }
  if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (options.wasmPaths !== undefined) wasm.setWasmPaths(options.wasmPaths as string);
    wasmVersion = wasm.version_wasm;
    return 'wasm';
  }
  await import('@tensorflow/tfjs-backend-cpu');
  return 'cpu';
}

/**
 * Fails fast, before importing, when a tfjs-node package lacks its native binding (its install
 * script downloads libtensorflow from outside the npm registry, so it often has not run).
 * Importing such a package registers its kernels and then throws, which makes the next
 * attempt print a warning per kernel.
 */
async function assertNativeBinding(pkg: string): Promise<void> {
  const [{ createRequire }, { existsSync, readdirSync }, { dirname, join }] = await Promise.all([
    import('node:module'),
    import('node:fs'),
    import('node:path'),
  ]);
  let dir: string;
  try {
    dir = dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
  } catch {
    throw new Error(`${pkg} is not installed`);
  }
  const lib = join(dir, 'lib');
  const found =
    existsSync(lib) && readdirSync(lib).some((d) => existsSync(join(lib, d, 'tfjs_binding.node')));
  if (!found) {
    throw new Error(
      `${pkg} has no native binding (its install script, which downloads libtensorflow, did not run)`,
    );
  }
}

/**
 * Selects the tfjs backend for this process (idempotent for the same choice).
 * @throws BackendError when an explicit choice cannot load, or when nothing can.
 */
export async function initBackend(
  choice: BackendChoice = 'auto',
  options: BackendOptions = {},
): Promise<BackendInfo> {
  if (current !== undefined && (choice === 'auto' || choice === current.name)) return current;
  const candidates = choice === 'auto' ? ORDER : [choice];
  const skipped: BackendInfo['skipped'] = [];
  for (const name of candidates) {
    try {
      const tfName = await load(name, options);
      if (!(await tf.setBackend(tfName))) throw new Error(`tf.setBackend('${tfName}') failed`);
      await tf.ready();
      current = { name, tfName, skipped, kernels: 'stock' };
      if (name === 'wasm') {
        const wanted = options.kernels ?? kernelChoiceFromEnv();
        const reason = wanted === 'fast' ? await installFastKernels(wasmVersion) : undefined;
        current.kernels = wanted === 'fast' && reason === undefined ? 'fast' : 'stock';
        if (reason !== undefined) current.kernelsReason = reason;
      }
      return current;
    } catch (err) {
      const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
      skipped.push({ name, reason });
    }
  }
  const detail = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  throw new BackendError(
    choice === 'auto'
      ? `no TensorFlow.js backend could load (${detail})`
      : `backend '${choice}' could not load: ${detail}`,
  );
}

/**
 * Switches the wasm kernel set of the running backend (benchmarks and tests compare them side
 * by side). @returns why the fast kernels stay off, if they do
 */
export async function setKernels(kernels: KernelSet): Promise<string | undefined> {
  if (current?.name !== 'wasm') return 'the fast kernels exist for the wasm backend only';
  if (kernels === 'stock') {
    uninstallFastKernels();
    current.kernels = 'stock';
    return undefined;
  }
  const reason = await installFastKernels(wasmVersion);
  current.kernels = reason === undefined ? 'fast' : 'stock';
  return reason;
}

/** The backend chosen by `initBackend`, if any. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}
