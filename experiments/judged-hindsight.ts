// Probe for docs/results.md 2u: how far practice's hindsight targets move when a camera judge,
// not the simulator, says where the end effector went. On each target robot the slot of one
// source robot tries reach episodes (full length, as practice's tries; with --expert the
// robot's own expert instead: tries that reach and hold the target); per try this reports
// the judge's error against the true end effector, split into the try's mean offset (a bias
// that relabelling turns into a reach that ends that far off) and the rest, and the error of
// the hindsight target at horizon H, raw and after a running median over the judged path.
//   pnpm --filter @selfalign/experiments probe judged-hindsight.ts CKPT --judge JUDGE
//     [--pairs links=src-22,combo=src-15] [--tries 10] [--horizon 8] [--window 5] [--expert]
import { readFileSync } from 'node:fs';
import { loadCheckpoint } from '@selfalign/align';
import { embodimentByName } from '@selfalign/cli/shared';
import { initBackend, Rng } from '@selfalign/core';
import { copySlot, EffectorJudge, firstFreeSlot, policyController } from '@selfalign/harness';
import { expertController, runEpisodes, seedRange } from '@selfalign/sim';
import { arg } from './args.js';

const pairs = arg('--pairs', 'links=src-22,combo=src-15,src-34=src-12,sign=src-24,src-35=src-31')
  .split(',')
  .map((p) => p.split('=') as [string, string]);
const tries = Number(arg('--tries', '10'));
const H = Number(arg('--horizon', '8'));
const win = Number(arg('--window', '5'));
const expert = process.argv.includes('--expert');

await initBackend('wasm');
const { policy, info } = await loadCheckpoint(process.argv[2]!);
const slots = (info['slots'] ?? {}) as Record<string, number>;
const judge = EffectorJudge.decode(policy, readFileSync(arg('--judge', '')), arg('--judge', ''));
const free = firstFreeSlot(policy, Object.values(slots))!;
const side = policy.config.vision.imageSize;

/** Running median of a path's x and y over `w` frames (clipped at the ends). */
function smooth(path: [number, number][], w: number): [number, number][] {
  const h = Math.floor(w / 2);
  const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return path.map((_, t) => {
    const near = path.slice(Math.max(0, t - h), t + h + 1);
    return [med(near.map((p) => p[0])), med(near.map((p) => p[1]))];
  });
}
const cm = (x: number) => (100 * x).toFixed(1);
const rms = (xs: number[]) => Math.sqrt(xs.reduce((a, b) => a + b * b, 0) / xs.length);

for (const [target, source] of pairs) {
  const e = embodimentByName(target, 1);
  copySlot(policy, slots[source]!, free);
  const run = await runEpisodes(
    e,
    'reach',
    seedRange(tries, 30_000),
    expert
      ? expertController(undefined, 'canonical')
      : policyController(policy, { slot: free, rng: new Rng(1) }),
    { record: true, untilSuccess: false, env: { imageSize: side } },
  );
  const all: number[] = [];
  const bias: number[] = [];
  const rest: number[] = [];
  const hsRaw: number[] = [];
  const hsSmooth: number[] = [];
  for (const ep of run.episodes) {
    const T = ep.length;
    const truth = Array.from(
      { length: T },
      (_, t) => [ep.effector![2 * t]!, ep.effector![2 * t + 1]!] as [number, number],
    );
    const seen = judge.positions(ep.frames, T);
    const d = seen.map((p, t) => [p[0] - truth[t]![0], p[1] - truth[t]![1]]);
    const mean = [0, 1].map((k) => d.reduce((a, v) => a + v[k]!, 0) / T);
    bias.push(Math.hypot(mean[0]!, mean[1]!));
    for (const v of d) {
      all.push(Math.hypot(v[0]!, v[1]!));
      rest.push(Math.hypot(v[0]! - mean[0]!, v[1]! - mean[1]!));
    }
    const sm = smooth(seen, win);
    for (let t = 0; t < T; t++) {
      const g = Math.min(t + H, T - 1);
      hsRaw.push(Math.hypot(seen[g]![0] - truth[g]![0], seen[g]![1] - truth[g]![1]));
      hsSmooth.push(Math.hypot(sm[g]![0] - truth[g]![0], sm[g]![1] - truth[g]![1]));
    }
  }
  const sorted = [...all].sort((a, b) => a - b);
  console.log(
    `${target} (${expert ? 'its expert' : `slot of ${source}`}): tries reached ${(100 * run.successRate).toFixed(0)}%; judge error rms ${cm(rms(all))} cm, median ${cm(sorted[Math.floor(sorted.length / 2)]!)} cm; per-try offset ${cm(rms(bias))} cm rms (${bias.map(cm).join(' ')}), the rest ${cm(rms(rest))} cm; hindsight target (H ${H}) rms ${cm(rms(hsRaw))} cm, median-of-${win} ${cm(rms(hsSmooth))} cm`,
  );
}
policy.dispose();
