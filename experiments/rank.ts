// Rank statistics for the probes.

/** Ranks of `v` (0-based), ties given the mean of the ranks they span. */
export const ranks = (v: readonly number[]): number[] => {
  const idx = v.map((_, i) => i).sort((a, b) => v[a]! - v[b]!);
  const r = new Array<number>(v.length);
  for (let k = 0; k < idx.length; ) {
    let end = k;
    while (end + 1 < idx.length && v[idx[end + 1]!] === v[idx[k]!]) end++;
    for (let m = k; m <= end; m++) r[idx[m]!] = (k + end) / 2;
    k = end + 1;
  }
  return r;
};

/** Spearman's rank correlation of x and y (tie-averaged ranks; NaN pairs are dropped). */
export const spearman = (x: readonly number[], y: readonly number[]): number => {
  const keep = x.map((_, i) => i).filter((i) => Number.isFinite(x[i]) && Number.isFinite(y[i]));
  const rx = ranks(keep.map((i) => x[i]!));
  const ry = ranks(keep.map((i) => y[i]!));
  const mx = rx.reduce((a, b) => a + b, 0) / rx.length;
  const my = ry.reduce((a, b) => a + b, 0) / ry.length;
  let num = 0;
  let dx = 0;
  let dy = 0;
  for (let i = 0; i < rx.length; i++) {
    num += (rx[i]! - mx) * (ry[i]! - my);
    dx += (rx[i]! - mx) ** 2;
    dy += (ry[i]! - my) ** 2;
  }
  return num / Math.sqrt(dx * dy);
};
