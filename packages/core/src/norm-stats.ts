// Normalisation statistics in openpi's norm_stats.json layout:
// `{ "norm_stats": { "state": { mean, std, q01, q99 }, "actions": { ... } } }`. @selfalign/data
// computes them, @selfalign/experts applies them, checkpoints carry them.

export interface Stats {
  mean: number[];
  std: number[];
  q01: number[];
  q99: number[];
}

export interface NormStats {
  state: Stats;
  actions: Stats;
}

export type NormMode = 'zscore' | 'quantile';

/** openpi's file layout: `{ "norm_stats": { "state": {...}, "actions": {...} } }`. */
export function toNormStatsJson(stats: NormStats): string {
  return JSON.stringify({ norm_stats: stats }, null, 2);
}

/** @throws Error naming the missing or malformed field */
export function parseNormStatsJson(text: string, file = 'norm_stats.json'): NormStats {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: bad JSON (${(err as Error).message})`);
  }
  const root = (raw as { norm_stats?: unknown })?.norm_stats;
  if (root === undefined || root === null || typeof root !== 'object') {
    throw new Error(`${file}: no "norm_stats" object`);
  }
  const read = (key: 'state' | 'actions'): Stats => {
    const s = (root as Record<string, unknown>)[key] as Record<string, unknown> | undefined;
    if (s === undefined) throw new Error(`${file}: norm_stats.${key} is missing`);
    const out = {} as Stats;
    let n: number | undefined;
    for (const f of ['mean', 'std', 'q01', 'q99'] as const) {
      const v = s[f];
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
        throw new Error(`${file}: norm_stats.${key}.${f} is not a list of finite numbers`);
      }
      if (n !== undefined && v.length !== n)
        throw new Error(`${file}: norm_stats.${key}.${f} has ${v.length} values, expected ${n}`);
      n = v.length;
      out[f] = v as number[];
    }
    return out;
  };
  return { state: read('state'), actions: read('actions') };
}
