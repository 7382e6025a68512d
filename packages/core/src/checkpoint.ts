// Parameter trees <-> safetensors bytes. Saving reads values to the host; loading checks
// every tensor's presence and shape against the tree before assigning anything, so a bad
// file leaves the model as it was.

import type { ParamTree, PathFilter } from './params.js';
import {
  CheckpointError,
  type DecodedSafetensors,
  decodeSafetensors,
  encodeSafetensors,
  type HostTensor,
} from './safetensors.js';
import { tf } from './tf.js';

/** Encodes the selected parameters (all by default) with string metadata. */
export async function encodeParams(
  tree: ParamTree,
  metadata: Record<string, string> = {},
  filter: PathFilter = '**',
): Promise<Uint8Array> {
  const entries: [string, HostTensor][] = [];
  for (const [path, v] of tree.select(filter)) {
    entries.push([path, { shape: [...v.shape], data: (await v.data()) as Float32Array }]);
  }
  return encodeSafetensors(entries, metadata);
}

/** A tensor a loader wants from a file: its name there and the shape it must have. */
export interface WantedTensor {
  name: string;
  shape: readonly number[];
}

/**
 * The one validating read of tensors from a decoded safetensors file (parameters, checkpoints,
 * adapters): every wanted tensor must be present, of the wanted shape and finite; with
 * `allowed`, every tensor of the file must be one it accepts. Throws before the caller assigns
 * anything, so a bad file changes nothing.
 * @param where how errors name the file: 'file', 'checkpoint', 'adapter'
 * @throws CheckpointError naming the file and the tensor
 * @returns the host tensors, in the order of `wanted`
 */
export function readTensors(
  decoded: DecodedSafetensors,
  wanted: readonly WantedTensor[],
  file: string,
  opts: {
    where?: string;
    allowed?: { accepts: (name: string) => boolean; otherwise: string };
  } = {},
): HostTensor[] {
  const where = opts.where ?? 'file';
  const out = wanted.map(({ name, shape }) => {
    const t = decoded.tensors.get(name);
    if (t === undefined) throw new CheckpointError(`missing from the ${where}`, file, name);
    if (!tf.util.arraysEqual(t.shape, [...shape]))
      throw new CheckpointError(
        `shape [${t.shape}] in the ${where === 'checkpoint' ? 'file' : where}, [${shape}] in the model`,
        file,
        name,
      );
    if (t.data.some((x) => !Number.isFinite(x)))
      throw new CheckpointError('holds NaN or infinite values', file, name);
    return t;
  });
  if (opts.allowed)
    for (const name of decoded.tensors.keys())
      if (!opts.allowed.accepts(name))
        throw new CheckpointError(opts.allowed.otherwise, file, name);
  return out;
}

export interface LoadParamsOptions {
  /** Name used in errors. */
  file?: string;
  /** Which tree parameters the file must provide (all by default). */
  filter?: PathFilter;
  /** Reject tensors in the file that the tree does not select (default true). */
  strict?: boolean;
}

/**
 * Assigns parameters from safetensors bytes (or an already decoded file). All checks run
 * before the first assignment.
 * @throws CheckpointError naming the file and tensor for missing, unexpected or mis-shaped tensors
 * @returns the file's metadata
 */
export function loadParams(
  tree: ParamTree,
  source: Uint8Array | DecodedSafetensors,
  options: LoadParamsOptions = {},
): Record<string, string> {
  const file = options.file ?? '<buffer>';
  const decoded = source instanceof Uint8Array ? decodeSafetensors(source, file) : source;
  const wanted = tree.select(options.filter ?? '**');
  const paths = new Set(wanted.map(([p]) => p));
  const host = readTensors(
    decoded,
    wanted.map(([name, v]) => ({ name, shape: v.shape })),
    file,
    (options.strict ?? true)
      ? { allowed: { accepts: (n) => paths.has(n), otherwise: 'not a parameter of this model' } }
      : {},
  );
  wanted.forEach(([, v], i) => {
    const t = host[i]!;
    tf.tidy(() => v.assign(tf.tensor(t.data, t.shape, 'float32')));
  });
  return decoded.metadata;
}
