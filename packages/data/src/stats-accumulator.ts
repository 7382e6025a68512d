// Streaming statistics of one vector column (no file system: runs in the browser too): exact
// mean and population std (Welford, float64) and q01/q99 from a seeded reservoir of up to
// `reservoir` values per dimension (exact below that; numpy's linear interpolation).
import type { Stats } from '@selfalign/core';
import { Rng } from '@selfalign/core/rng';

export class StatsAccumulator {
  private n = 0;
  private readonly mean: Float64Array;
  private readonly m2: Float64Array;
  private readonly pool: Float32Array[];
  private readonly rng: Rng;

  constructor(
    readonly dim: number,
    readonly reservoir = 20_000,
    seed = 0,
  ) {
    this.mean = new Float64Array(dim);
    this.m2 = new Float64Array(dim);
    this.pool = Array.from({ length: dim }, () => new Float32Array(reservoir));
    this.rng = new Rng(seed);
  }

  /** Adds `rows` rows of `dim` values (row-major). */
  add(values: Float32Array, rows = values.length / this.dim): void {
    const d = this.dim;
    for (let r = 0; r < rows; r++) {
      this.n += 1;
      // reservoir sampling: row n replaces a random slot with probability reservoir / n
      const slot = this.n <= this.reservoir ? this.n - 1 : this.rng.int(this.n);
      for (let j = 0; j < d; j++) {
        const x = values[r * d + j]!;
        const delta = x - this.mean[j]!;
        this.mean[j]! += delta / this.n;
        this.m2[j]! += delta * (x - this.mean[j]!);
        if (slot < this.reservoir) this.pool[j]![slot] = x;
      }
    }
  }

  get count(): number {
    return this.n;
  }

  result(): Stats {
    if (this.n === 0) throw new Error('no rows: statistics of nothing');
    const kept = Math.min(this.n, this.reservoir);
    const quantiles = this.pool.map((p) => {
      const sorted = p.slice(0, kept).sort();
      return [quantile(sorted, 0.01), quantile(sorted, 0.99)] as const;
    });
    return {
      mean: Array.from(this.mean),
      std: Array.from(this.m2, (m) => Math.sqrt(m / this.n)),
      q01: quantiles.map((q) => q[0]),
      q99: quantiles.map((q) => q[1]),
    };
  }
}

/** numpy's default (linear) quantile of sorted values. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
