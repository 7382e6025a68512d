// Adapter files: the W1/b1 of one embodiment slot of every TTT layer as a small safetensors
// file (`ttt/<layer>/W1` [Ht,d,d], `ttt/<layer>/b1` [Ht,1,d]) with metadata: a fingerprint of
// the model config, the slot name, the creation time and free-form stats. Switching robots
// is loading one of these into a slot. Loading checks the fingerprint and every shape before
// anything is written.
import {
  CheckpointError,
  type DecodedSafetensors,
  decodeSafetensors,
  encodeSafetensors,
  type HostTensor,
  type PathFilter,
  readTensors,
  tf,
} from '@selfalign/core';
import type { TttLinear } from './ttt-linear.js';

/** Path filter of every TTT fast weight (all slots): what align may train. */
export const TTT_FAST_WEIGHTS: PathFilter = ['ttt/*/W1', 'ttt/*/b1'];

export interface AdapterInfo {
  fingerprint: string;
  slotName: string;
  createdAt: string;
  stats: Record<string, unknown>;
}

/** Stable FNV-1a-based fingerprint of a JSON-able value (object keys sorted). */
export function fingerprint(value: unknown): string {
  const canon = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canon)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v as object)
              .sort()
              .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
          )
        : v;
  const text = JSON.stringify(canon(value));
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 16777619) >>> 0;
    h2 = Math.imul(h2 ^ c, 2246822519) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}

function checkSlot(modules: readonly TttLinear[], slot: number): void {
  const slots = modules[0]?.config.slots ?? 0;
  if (!Number.isInteger(slot) || slot < 0 || slot >= slots) {
    throw new RangeError(`slot ${slot} is out of range: the model has ${slots} slots`);
  }
}

/** Encodes slot `slot` of every module. */
export async function encodeAdapter(
  modules: readonly TttLinear[],
  slot: number,
  info: Omit<AdapterInfo, 'createdAt'> & { createdAt?: string },
): Promise<Uint8Array> {
  checkSlot(modules, slot);
  const entries: [string, HostTensor][] = [];
  for (const m of modules) {
    for (const name of ['W1', 'b1'] as const) {
      const v = m.tree.get(m.paths[name]);
      const part = tf.tidy(() => tf.squeeze(tf.slice(v, [slot], [1]), [0]));
      entries.push([
        m.paths[name],
        { shape: part.shape, data: (await part.data()) as Float32Array },
      ]);
      part.dispose();
    }
  }
  return encodeSafetensors(entries, {
    format: 'selfalign-adapter/1',
    fingerprint: info.fingerprint,
    slot_name: info.slotName,
    created_at: info.createdAt ?? new Date().toISOString(),
    stats: JSON.stringify(info.stats),
  });
}

/** Reads an adapter's metadata (and checks it is one). */
export function readAdapterInfo(decoded: DecodedSafetensors, file: string): AdapterInfo {
  const m = decoded.metadata;
  if (m['format'] !== 'selfalign-adapter/1') {
    throw new CheckpointError(
      `not a selfalign adapter (format ${JSON.stringify(m['format'])})`,
      file,
    );
  }
  let stats: Record<string, unknown> = {};
  try {
    stats = JSON.parse(m['stats'] ?? '{}');
  } catch {
    throw new CheckpointError('adapter stats are not JSON', file);
  }
  return {
    fingerprint: m['fingerprint'] ?? '',
    slotName: m['slot_name'] ?? '',
    createdAt: m['created_at'] ?? '',
    stats,
  };
}

/**
 * Writes an adapter into slot `slot` of every module.
 * @throws CheckpointError when the file is not an adapter, was made for another model
 *   (fingerprint), lacks a layer or has a tensor of the wrong shape; nothing is written then.
 */
export function loadAdapter(
  modules: readonly TttLinear[],
  source: Uint8Array | DecodedSafetensors,
  slot: number,
  expectedFingerprint: string,
  file = '<adapter>',
): AdapterInfo {
  checkSlot(modules, slot);
  const decoded = source instanceof Uint8Array ? decodeSafetensors(source, file) : source;
  const info = readAdapterInfo(decoded, file);
  if (info.fingerprint !== expectedFingerprint) {
    throw new CheckpointError(
      `adapter made for another model (fingerprint ${info.fingerprint}, this model ${expectedFingerprint})`,
      file,
    );
  }
  const vars = modules.flatMap((m) =>
    (['W1', 'b1'] as const).map((k) => [m.paths[k], m.tree.get(m.paths[k])] as const),
  );
  const expected = new Set(vars.map(([path]) => path));
  const host = readTensors(
    decoded,
    vars.map(([name, v]) => ({ name, shape: v.shape.slice(1) })),
    file,
    {
      where: 'adapter',
      allowed: {
        accepts: (n) => expected.has(n),
        otherwise: 'not a TTT fast weight of this model',
      },
    },
  );
  const updates = vars.map(([, v], i) => [v, host[i]!] as const);
  for (const [v, t] of updates) writeSlot(v, slot, tf.tensor(t.data, t.shape, 'float32'));
  return info;
}

/** Assigns `value` (shape of one slot) into slot `slot` of `v` [E, ...]; disposes `value`. */
export function writeSlot(v: tf.Variable, slot: number, value: tf.Tensor): void {
  tf.tidy(() => {
    const e = v.shape[0]!;
    const onehot = tf.reshape(tf.oneHot(tf.tensor1d([slot], 'int32'), e), [
      e,
      ...v.shape.slice(1).map(() => 1),
    ]);
    v.assign(tf.add(tf.mul(v, tf.sub(1, onehot)), tf.mul(tf.expandDims(value, 0), onehot)));
  });
  value.dispose();
}
