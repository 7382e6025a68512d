// Policy checkpoints as bytes (no file system, so it runs in the browser too): every parameter,
// the optimiser's moments, the step, the generator state and the normalisation stats in one
// safetensors file. Tensors are `params/<path>`, `opt/m/<path>`, `opt/v/<path>` (and `extra/<path>`:
// other training state, e.g. a slot code, or `extra/ema/<path>`: an exponential moving average of
// the weights, which a reader takes as the policy's weights unless asked for the raw ones); metadata carries
// the config (JSON), its fingerprint, norm stats, step counts and the Rng state, so a resumed run
// continues exactly. File I/O (atomic) is in checkpoint.ts.
import {
  CheckpointError,
  createOptimizer,
  type DecodedSafetensors,
  decodeSafetensors,
  encodeSafetensors,
  type HostTensor,
  momentVariable,
  type Optimizer,
  parseNormStatsJson,
  Rng,
  readTensors,
  roundToF16,
  tf,
  toNormStatsJson,
} from '@selfalign/core';
import { createPolicy, type NormMode, type Policy, type PolicyConfig } from '@selfalign/experts';
import { fingerprint } from '@selfalign/ttt';

export const CHECKPOINT_FORMAT = 'selfalign-checkpoint/1';

/** `extra/` prefix of the moving average of the weights that pretraining keeps (`--ema`). */
export const EMA_PREFIX = 'ema/';

/** Which weights a reader takes: the moving average when the file has one (default), or the raw ones. */
export type WeightsChoice = 'ema' | 'raw';

export interface TrainingState {
  opt?: Optimizer;
  step?: number;
  rng?: Rng;
  /** Free-form JSON-able notes (command line, data, duration). */
  info?: Record<string, unknown>;
  /** More training state by path, stored as `extra/<path>` (e.g. pretraining's slot code). */
  extra?: readonly (readonly [string, tf.Tensor])[];
}

const host = async (t: tf.Tensor): Promise<HostTensor> => ({
  shape: [...t.shape],
  data: (await t.data()) as Float32Array,
});

/** How a checkpoint stores its tensors: F32, or F16 (half the size) for weights that ship. */
export type CheckpointDtype = 'F32' | 'F16';

/**
 * Policy + training state as safetensors bytes. With `dtype: 'F16'` every tensor is stored as
 * IEEE half (a weights-only file: no optimiser state) and the data checksum is taken over the
 * values as they will read back, so the file verifies on load like any other.
 * @throws Error for F16 with optimiser state, or a weight beyond half's range
 */
export async function encodeCheckpoint(
  policy: Policy,
  state: TrainingState = {},
  opts: { dtype?: CheckpointDtype } = {},
): Promise<Uint8Array> {
  const dtype = opts.dtype ?? 'F32';
  if (dtype === 'F16' && state.opt)
    throw new Error('an F16 checkpoint holds weights only: leave out the optimiser state');
  const entries: [string, HostTensor][] = [];
  for (const [p, v] of policy.params.select()) entries.push([`params/${p}`, await host(v)]);
  if (state.opt) {
    for (const [p, m] of state.opt.m) entries.push([`opt/m/${p}`, await host(m)]);
    for (const [p, v] of state.opt.v) entries.push([`opt/v/${p}`, await host(v)]);
  }
  for (const [p, t] of state.extra ?? []) entries.push([`extra/${p}`, await host(t)]);
  const meta: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    config: JSON.stringify(policy.config),
    fingerprint: policy.fingerprint,
    norm_mode: policy.normMode,
    step: String(state.step ?? 0),
    opt_step: String(state.opt?.step ?? 0),
    info: JSON.stringify(state.info ?? {}),
    created_at: new Date().toISOString(),
  };
  if (policy.normStats) meta['norm_stats'] = toNormStatsJson(policy.normStats);
  if (policy.stateDims !== undefined) meta['state_dims'] = String(policy.stateDims);
  if (state.rng) meta['rng'] = JSON.stringify(state.rng.getState());
  if (dtype === 'F16')
    for (const [name, t] of entries) {
      const rounded = new Float32Array(t.data.length);
      try {
        for (let i = 0; i < rounded.length; i++) rounded[i] = roundToF16(t.data[i]!);
      } catch (e) {
        throw new Error(`tensor '${name}': ${(e as Error).message}`);
      }
      t.data = rounded;
    }
  meta['data_checksum'] = dataChecksum(
    meta,
    entries.map(([name, t]) => [name, t.data as Float32Array]),
  );
  return encodeSafetensors(entries, meta, { dtype });
}

/**
 * FNV-1a (32 bit) over the metadata (but this field), then every tensor's name and float bits,
 * in name order: stored as `data_checksum`, so a changed byte anywhere in a file that still
 * parses is caught on load.
 */
export function dataChecksum(
  metadata: Record<string, string>,
  tensors: Iterable<[string, Float32Array]>,
): string {
  let h = 0x811c9dc5;
  const text = (t: string) => {
    for (let i = 0; i < t.length; i++) h = Math.imul(h ^ t.charCodeAt(i), 0x01000193) >>> 0;
    h = Math.imul(h ^ 0xff, 0x01000193) >>> 0;
  };
  const byName = <T>(a: [string, T], b: [string, T]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  for (const [k, v] of Object.entries(metadata).sort(byName)) {
    if (k === 'data_checksum') continue;
    text(k);
    text(v);
  }
  for (const [name, data] of [...tensors].sort(byName)) {
    text(name);
    const u = new Uint32Array(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i]!, 0x01000193) >>> 0;
  }
  return `fnv1a32:${h.toString(16).padStart(8, '0')}`;
}

const NORM_MODES = ['zscore', 'quantile'] as const;

/**
 * Every metadata field of a checkpoint against its schema, and the data checksum when the file
 * has one. @returns notices (e.g. a file without a checksum, from elsewhere)
 * @throws CheckpointError naming the field and what is wrong with it
 */
export function validateCheckpointMetadata(
  d: DecodedSafetensors,
  file: string,
  config: PolicyConfig,
): string[] {
  const m = d.metadata;
  const notices: string[] = [];
  const bad = (field: string, why: string) =>
    new CheckpointError(`metadata '${field}' ${why}`, file);
  const count = (field: string) => {
    const v = m[field];
    if (v === undefined) return;
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)))
      throw bad(field, `must be a whole number, got ${JSON.stringify(v)}`);
  };
  count('step');
  count('opt_step');
  const mode = m['norm_mode'];
  if (mode !== undefined && !(NORM_MODES as readonly string[]).includes(mode))
    throw bad('norm_mode', `must be ${NORM_MODES.join(' or ')}, got ${JSON.stringify(mode)}`);
  let info: unknown = {};
  try {
    info = JSON.parse(m['info'] ?? '{}');
  } catch {
    throw bad('info', 'is not JSON');
  }
  if (typeof info !== 'object' || info === null || Array.isArray(info))
    throw bad('info', 'must be a JSON object');
  const slots = (info as Record<string, unknown>)['slots'];
  if (slots !== undefined) {
    if (typeof slots !== 'object' || slots === null || Array.isArray(slots))
      throw bad('info.slots', 'must map embodiment names to slots');
    for (const [name, k] of Object.entries(slots as Record<string, unknown>))
      if (!(Number.isInteger(k) && (k as number) >= 0 && (k as number) < config.ttt.slots))
        throw bad(
          'info.slots',
          `maps '${name}' to ${JSON.stringify(k)}, not a slot of this policy (0..${config.ttt.slots - 1})`,
        );
  }
  if (m['rng'] !== undefined) {
    let rng: unknown;
    try {
      rng = JSON.parse(m['rng']);
    } catch {
      throw bad('rng', 'is not JSON');
    }
    if (
      !Array.isArray(rng) ||
      rng.length < 4 ||
      !rng.every((v) => v === null || (typeof v === 'number' && Number.isFinite(v)))
    )
      throw bad('rng', 'is not a generator state (an array of numbers)');
  }
  const sum = m['data_checksum'];
  if (sum === undefined)
    notices.push(`${file}: no data checksum (a file from elsewhere?); tensors not verified`);
  else {
    const got = dataChecksum(
      m,
      [...d.tensors].map(([k, t]) => [k, t.data] as [string, Float32Array]),
    );
    if (got !== sum)
      throw new CheckpointError(
        `contents do not match the checksum (${got} vs ${sum}): the file is corrupt or was edited`,
        file,
      );
  }
  return notices;
}

export interface LoadedCheckpoint {
  policy: Policy;
  step: number;
  optStep: number;
  rng: Rng | undefined;
  info: Record<string, unknown>;
  /** Optimiser moments by parameter path (host copies). */
  moments: DecodedSafetensors;
  /** The `extra` training state by path (`TrainingState.extra`; empty when there is none). */
  extra: Map<string, HostTensor>;
  /** What the reader noticed but accepted (e.g. no data checksum). */
  notices: string[];
  /** The weights `policy` holds: `ema` where the file has a moving average and raw was not asked for. */
  weights: WeightsChoice;
}

function parseConfig(d: DecodedSafetensors, file: string): PolicyConfig {
  const m = d.metadata;
  if (m['format'] !== CHECKPOINT_FORMAT)
    throw new CheckpointError(
      `not a selfalign checkpoint (format ${JSON.stringify(m['format'])})`,
      file,
    );
  let config: PolicyConfig;
  try {
    config = JSON.parse(m['config'] ?? '');
  } catch {
    throw new CheckpointError('config metadata is not JSON', file);
  }
  if (fingerprint(config) !== m['fingerprint'])
    throw new CheckpointError('config does not match its fingerprint (edited or corrupt)', file);
  return config;
}

/** A new policy (and the state to resume from) from checkpoint bytes or a decoded file. */
export function decodeCheckpoint(
  source: Uint8Array | DecodedSafetensors,
  file = '<checkpoint>',
  opts: { weights?: WeightsChoice } = {},
): LoadedCheckpoint {
  const d = source instanceof Uint8Array ? decodeSafetensors(source, file) : source;
  const config = parseConfig(d, file);
  const notices = validateCheckpointMetadata(d, file, config);
  const m = d.metadata;
  const normStats = m['norm_stats'] ? parseNormStatsJson(m['norm_stats'], file) : undefined;
  // written since 2026-11-30; older checkpoints take as many values as their norm stats cover
  const stateDims = m['state_dims'] === undefined ? undefined : Number(m['state_dims']);
  if (
    stateDims !== undefined &&
    !(
      Number.isInteger(stateDims) &&
      stateDims >= 1 &&
      stateDims <= config.stateDim &&
      (normStats === undefined || normStats.state.mean.length === stateDims)
    )
  )
    throw new CheckpointError(
      `state_dims ${JSON.stringify(m['state_dims'])} is not a state width of this policy (1..${config.stateDim}${normStats ? `, ${normStats.state.mean.length} by its norm stats` : ''})`,
      file,
    );
  const policy = createPolicy(config, {
    ...(normStats ? { normStats } : {}),
    ...(stateDims !== undefined ? { stateDims } : {}),
    normMode: (m['norm_mode'] ?? 'zscore') as NormMode,
  });
  let rng: Rng | undefined;
  const ema = opts.weights !== 'raw' && hasEma(d);
  try {
    restoreParams(policy, d, file);
    if (ema) restoreParams(policy, d, file, `extra/${EMA_PREFIX}`);
    // JSON has no NaN: an absent Box-Muller spare is stored as null
    rng = m['rng']
      ? Rng.fromState((JSON.parse(m['rng']) as (number | null)[]).map((v) => v ?? Number.NaN))
      : undefined;
  } catch (err) {
    policy.dispose();
    if (err instanceof CheckpointError) throw err;
    throw new CheckpointError('rng metadata is not a generator state', file);
  }
  return {
    policy,
    step: Number(m['step'] ?? 0),
    optStep: Number(m['opt_step'] ?? 0),
    rng,
    info: JSON.parse(m['info'] ?? '{}'),
    moments: d,
    extra: new Map(
      [...d.tensors].filter(([k]) => k.startsWith('extra/')).map(([k, t]) => [k.slice(6), t]),
    ),
    notices,
    weights: ema ? 'ema' : 'raw',
  };
}

function hasEma(d: DecodedSafetensors): boolean {
  for (const k of d.tensors.keys()) if (k.startsWith(`extra/${EMA_PREFIX}`)) return true;
  return false;
}

/**
 * Assigns `params/<path>` tensors of a decoded checkpoint; every check before any write. With
 * another `prefix` (the moving average's), the parameters the file holds under it, at least one.
 */
export function restoreParams(
  policy: Policy,
  d: DecodedSafetensors,
  file: string,
  prefix = 'params/',
): void {
  const all = policy.params.select();
  const want = prefix === 'params/' ? all : all.filter(([p]) => d.tensors.has(`${prefix}${p}`));
  const host = readTensors(
    d,
    want.map(([p, v]) => ({ name: `${prefix}${p}`, shape: v.shape })),
    file,
    { where: 'checkpoint' },
  );
  want.forEach(([, v], i) => {
    const t = host[i]!;
    tf.tidy(() => v.assign(tf.tensor(t.data, t.shape, 'float32')));
  });
}

/** An optimiser with the checkpoint's moments and step (same hyper-parameters as `options`). */
export function restoreOptimizer(
  loaded: LoadedCheckpoint,
  options: Parameters<typeof createOptimizer>[0],
): Optimizer {
  const opt = createOptimizer(options);
  opt.step = loaded.optStep;
  for (const [name, t] of loaded.moments.tensors) {
    const which = name.startsWith('opt/m/') ? opt.m : name.startsWith('opt/v/') ? opt.v : undefined;
    if (which) which.set(name.slice(6), momentVariable(tf.tensor(t.data, t.shape, 'float32')));
  }
  return opt;
}
