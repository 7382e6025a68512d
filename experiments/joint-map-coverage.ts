// How close is the nearest source robot's joint map to a target's, and how many sources does a
// family need before every new robot has a close one? The joint map of an embodiment is the
// linear map from the policy's action to the joint commands, J = diag(sign * gain) P M (the
// action-space rotation M, the permutation P, the per-joint signs and gains; clamping, the body
// and the actuator lag left out). Section 2j found the label-free nearest source slot acting on
// a target only once a source close to it existed; this probe measures that distance
// (Frobenius norm of J_target - J_source) without running a policy:
//   1. per target, the closest sources' joint-map distances among the source sets given;
//   2. with --raw, the source slots results' rows picked (nearest, hindsight): distance and rank;
//   3. coverage: the share of random family robots (family seed --family-seed, indices from
//      --probe-from) with a source within --radius, for families of 8 .. 1,024 sources.
//   pnpm --filter @selfalign/experiments probe joint-map-coverage.ts \
//     [--targets perm,rotate,...] [--sources 0-31,37-132] [--raw a.json,b.json] [--radius 0.6]
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { embodimentByName } from '@selfalign/cli/shared';
import { type Embodiment, sampleSources } from '@selfalign/sim';
import { arg } from './args.js';

const familySeed = Number(arg('--family-seed', '1'));
const radius = Number(arg('--radius', '0.6'));
const probeFrom = Number(arg('--probe-from', '3000'));
const probes = Number(arg('--probes', '500'));
const targetNames = arg(
  '--targets',
  'perm,rotate,combo,sign,offset,links,src-32,src-33,src-34,src-35,src-36',
).split(',');
/** "0-31,37-132" -> [0, ..., 31, 37, ..., 132] */
const ranges = (s: string): number[] =>
  s.split(',').flatMap((r) => {
    const [a, b] = r.split('-').map(Number) as [number, number | undefined];
    return Array.from({ length: (b ?? a) - a + 1 }, (_, k) => a + k);
  });
const sourceSets = arg('--sources', '0-31;0-31,37-132').split(';');

const FAMILY_SIZES = [8, 32, 128, 256, 512, 1024];
const maxIndex = Math.max(probeFrom + probes, ...FAMILY_SIZES, ...sourceSets.flatMap(ranges)) + 1;
const family = sampleSources(maxIndex, familySeed);
const byName = (name: string): Embodiment => embodimentByName(name, familySeed, maxIndex);

const maps = new Map<Embodiment, Float64Array>();
/** J[j][k]: joint j's command per unit of action k (computed once per embodiment). */
function jointMap(e: Embodiment): Float64Array {
  const known = maps.get(e);
  if (known) return known;
  const n = e.links.length;
  const J = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const j = e.perm[i]!;
    for (let k = 0; k < n; k++) J[j * n + k] = e.signs[j]! * e.gains[j]! * e.mix[i * n + k]!;
  }
  maps.set(e, J);
  return J;
}
const distance = (a: Embodiment, b: Embodiment): number => {
  const x = jointMap(a);
  const y = jointMap(b);
  return Math.sqrt(x.reduce((s, v, i) => s + (v - y[i]!) ** 2, 0));
};
const ranked = (t: Embodiment, pool: readonly Embodiment[]) =>
  pool.map((s) => ({ name: s.name, d: distance(t, s) })).sort((a, b) => a.d - b.d);

// 1. per target, the closest sources of each set
for (const set of sourceSets) {
  const pool = ranges(set).map((k) => family[k]!);
  console.log(`\nsources ${set} (${pool.length}): the closest joint maps per target`);
  for (const name of targetNames) {
    const r = ranked(byName(name), pool);
    console.log(
      `  ${name.padEnd(7)} ${r
        .slice(0, 3)
        .map((x) => `${x.name} ${x.d.toFixed(2)}`)
        .join(', ')}`,
    );
  }
}

// 2. the picks of results' rows that pick a source slot, against the last source set
const raw = arg('--raw', '');
if (raw !== '') {
  const pool = ranges(sourceSets[sourceSets.length - 1]!).map((k) => family[k]!);
  console.log('\nsource slot picks: joint-map distance, rank among the sources, success');
  for (const file of raw.split(',')) {
    const rows = JSON.parse(readFileSync(resolve(process.cwd(), file), 'utf8')).rows as {
      target: string;
      seed: number;
      method: string;
      success: number;
      pick?: string;
    }[];
    for (const r of rows.filter((x) => x.pick !== undefined)) {
      const order = ranked(byName(r.target), pool);
      const rank = order.findIndex((x) => x.name === r.pick);
      console.log(
        `  ${r.target.padEnd(7)} seed ${r.seed}: ${r.pick} at ${distance(byName(r.target), byName(r.pick!)).toFixed(2)} (rank ${rank + 1}; closest ${order[0]!.name} ${order[0]!.d.toFixed(2)}), success ${(100 * r.success).toFixed(0)}% (${r.method})`,
      );
    }
  }
}

// 3. coverage: random family robots outside every source set, with a source within the radius
const probe = family.slice(probeFrom, probeFrom + probes);
console.log(
  `\ncoverage: share of ${probes} family robots (src-${probeFrom}..) with a source within ${radius}`,
);
for (const n of FAMILY_SIZES) {
  const pool = family.slice(0, n);
  const near = probe.map((t) => Math.min(...pool.map((s) => distance(t, s))));
  const within = near.filter((d) => d <= radius).length / near.length;
  const median = [...near].sort((a, b) => a - b)[Math.floor(near.length / 2)]!;
  console.log(
    `  ${String(n).padStart(5)} sources: ${(100 * within).toFixed(0)}% within ${radius}, median closest ${median.toFixed(2)}`,
  );
}
