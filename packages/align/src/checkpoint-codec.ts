// Policy checkpoints as bytes (no file system, so it runs in the browser too): every parameter,
// the optimiser's moments, the step, the generator state and the normalisation stats in one
// safetensors file. Tensors are `params/<path>`, `opt/m/<path>`, `opt/v/<path>`; metadata carries
// the config (JSON), its fingerprint, norm stats, step counts and the Rng state, so a resumed run
// continues exactly. File I/O (atomic) is in checkpoint.ts.
import {
  CheckpointError,
  createOptimizer,
  type DecodedSafetensors,
  decodeSafetensors,
  encodeSafetensors,
  type HostTensor,
  type Optimizer,
  parseNormStatsJson,
  Rng,
  tf,
  toNormStatsJson,
} from '@selfalign/core';
import { createPolicy, type NormMode, type Policy, type PolicyConfig } from '@selfalign/experts';
import { fingerprint } from '@selfalign/ttt';

export const CHECKPOINT_FORMAT = 'selfalign-checkpoint/1';

export interface TrainingState {
  opt?: Optimizer;
  step?: number;
  rng?: Rng;
  /** Free-form JSON-able notes (command line, data, duration). */
  info?: Record<string, unknown>;
}

const host = async (t: tf.Tensor): Promise<HostTensor> => ({
  shape: [...t.shape],
  data: (await t.data()) as Float32Array,
});

/** Policy + training state as safetensors bytes. */
export async function encodeCheckpoint(
  policy: Policy,
  state: TrainingState = {},
): Promise<Uint8Array> {
  const entries: [string, HostTensor][] = [];
  for (const [p, v] of policy.params.select()) entries.push([`params/${p}`, await host(v)]);
  if (state.opt) {
    for (const [p, m] of state.opt.m) entries.push([`opt/m/${p}`, await host(m)]);
    for (const [p, v] of state.opt.v) entries.push([`opt/v/${p}`, await host(v)]);
  }
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
  if (state.rng) meta['rng'] = JSON.stringify(state.rng.getState());
  return encodeSafetensors(entries, meta);
}

export interface LoadedCheckpoint {
  policy: Policy;
  step: number;
  optStep: number;
  rng: Rng | undefined;
  info: Record<string, unknown>;
  /** Optimiser moments by parameter path (host copies). */
  moments: DecodedSafetensors;
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
): LoadedCheckpoint {
  const d = source instanceof Uint8Array ? decodeSafetensors(source, file) : source;
  const config = parseConfig(d, file);
  const m = d.metadata;
  const normStats = m['norm_stats'] ? parseNormStatsJson(m['norm_stats'], file) : undefined;
  const policy = createPolicy(config, {
    ...(normStats ? { normStats } : {}),
    normMode: (m['norm_mode'] ?? 'zscore') as NormMode,
  });
  let rng: Rng | undefined;
  try {
    restoreParams(policy, d, file);
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
  };
}

/** Assigns `params/<path>` tensors of a decoded checkpoint; every check before any write. */
export function restoreParams(policy: Policy, d: DecodedSafetensors, file: string): void {
  const want = policy.params.select();
  for (const [p, v] of want) {
    const t = d.tensors.get(`params/${p}`);
    if (t === undefined)
      throw new CheckpointError('missing from the checkpoint', file, `params/${p}`);
    if (!tf.util.arraysEqual(t.shape, v.shape))
      throw new CheckpointError(
        `shape [${t.shape}] in the file, [${v.shape}] in the model`,
        file,
        `params/${p}`,
      );
    if (t.data.some((x) => !Number.isFinite(x)))
      throw new CheckpointError('holds NaN or infinite values', file, `params/${p}`);
  }
  for (const [p, v] of want) {
    const t = d.tensors.get(`params/${p}`)!;
    tf.tidy(() => v.assign(tf.tensor(t.data, t.shape, 'float32')));
  }
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
    if (which) which.set(name.slice(6), tf.variable(tf.tensor(t.data, t.shape, 'float32'), false));
  }
  return opt;
}
