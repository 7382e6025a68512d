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
  const wantedPaths = new Set(wanted.map(([p]) => p));
  for (const [path, v] of wanted) {
    const t = decoded.tensors.get(path);
    if (t === undefined) throw new CheckpointError('missing from the file', file, path);
    if (!tf.util.arraysEqual(t.shape, v.shape)) {
      throw new CheckpointError(
        `shape [${t.shape}] in the file, [${v.shape}] in the model`,
        file,
        path,
      );
    }
    if (t.data.some((x) => !Number.isFinite(x))) {
      throw new CheckpointError('holds NaN or infinite values', file, path);
    }
  }
  if (options.strict ?? true) {
    for (const name of decoded.tensors.keys()) {
      if (!wantedPaths.has(name))
        throw new CheckpointError('not a parameter of this model', file, name);
    }
  }
  for (const [path, v] of wanted) {
    const t = decoded.tensors.get(path)!;
    tf.tidy(() => v.assign(tf.tensor(t.data, t.shape, 'float32')));
  }
  return decoded.metadata;
}
