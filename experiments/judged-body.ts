// Probe for docs/results.md 2u: a body fitted to the camera judge's positions on the robot's
// random play, as a tracker. The judge is 6-15 cm off per frame (judged-hindsight.ts), too far
// for hindsight labels; but its errors fall on frames of many arm poses, and a body (link
// lengths, encoder offsets; `fitBody`) fitted to them over a whole play file averages them out.
// The fitted body's forward kinematics on the measured joint angles then says where the end
// effector is in any frame, from proprioception. Per target this reports the judge's own error
// and the fitted body's, on the robot's expert reaches (frames that reach and hold a target,
// as a good try does) and on held-out play; start: the source body that explains the judged play
// best; a second fit drops the frames whose residual is above 2.5x the median (the judge's tail).
//   pnpm --filter @selfalign/experiments probe judged-body.ts CKPT --judge JUDGE
//     [--targets links,combo,src-34,sign,src-35] [--play 10] [--tries 10] [--calibrate src-0,src-5]
// --calibrate: source robots on which the fitted last link is compared with the true one; the
// targets' fits then also report with their last link scaled by the mean ratio.
import { readFileSync } from 'node:fs';
import { loadCheckpoint } from '@selfalign/align';
import { embodimentByName } from '@selfalign/cli/shared';
import { initBackend } from '@selfalign/core';
import { EffectorJudge } from '@selfalign/harness';
import {
  type Body,
  type Episode,
  expertController,
  fitBody,
  forwardKinematics,
  kinematicError,
  randomController,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { arg } from './args.js';

const targets = arg('--targets', 'links,combo,src-34,sign,src-35').split(',');
const playN = Number(arg('--play', '10'));
const tries = Number(arg('--tries', '10'));

await initBackend('wasm');
const { policy, info } = await loadCheckpoint(process.argv[2]!);
const slots = (info['slots'] ?? {}) as Record<string, number>;
const judge = EffectorJudge.decode(policy, readFileSync(arg('--judge', '')), arg('--judge', ''));
const side = policy.config.vision.imageSize;
const sources = Object.keys(slots)
  .filter((k) => k.startsWith('src-'))
  .map((k) => embodimentByName(k, 1));
const cm = (x: number) => (100 * x).toFixed(1);
const rms = (xs: number[]) => Math.sqrt(xs.reduce((a, b) => a + b * b, 0) / xs.length);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The episodes with their end-effector path replaced by the judge's reading of their frames. */
const judged = (eps: Episode[]): Episode[] =>
  eps.map((ep) => ({
    ...ep,
    effector: Float32Array.from(judge.positions(ep.frames, ep.length).flat()),
  }));

/** Per-frame distance from `body`'s forward kinematics (or the judge) to the true end effector. */
function errors(eps: Episode[], at: (ep: Episode, t: number) => [number, number]): number[] {
  const out: number[] = [];
  for (const ep of eps)
    for (let t = 0; t < ep.length; t++) {
      const [x, y] = at(ep, t);
      out.push(Math.hypot(x - ep.effector![2 * t]!, y - ep.effector![2 * t + 1]!));
    }
  return out;
}
function fk(body: Body): (ep: Episode, t: number) => [number, number] {
  const n = body.links.length;
  const q = new Float64Array(n);
  const p = new Float64Array(2 * (n + 1));
  return (ep, t) => {
    for (let j = 0; j < n; j++)
      q[j] =
        Math.atan2(ep.states[t * 3 * n + n + j]!, ep.states[t * 3 * n + j]!) + body.offsets[j]!;
    forwardKinematics(body.links, q, p);
    return [p[2 * n]!, p[2 * n + 1]!];
  };
}
/** The same episodes keeping only the frames `keep` says (the fit reads states and effector). */
function subset(eps: Episode[], keep: (ep: Episode, t: number) => boolean): Episode[] {
  return eps.map((ep) => {
    const j = ep.actions.length / ep.length;
    const n = 3 * j;
    const ts = [...Array(ep.length).keys()].filter((t) => keep(ep, t));
    return {
      ...ep,
      length: ts.length,
      actions: Float32Array.from(ts.flatMap((t) => [...ep.actions.subarray(t * j, (t + 1) * j)])),
      states: Float32Array.from(ts.flatMap((t) => [...ep.states.subarray(t * n, (t + 1) * n)])),
      effector: Float32Array.from(
        ts.flatMap((t) => [ep.effector![2 * t]!, ep.effector![2 * t + 1]!]),
      ),
    };
  });
}

/**
 * Fit a body to the judged play of `target` and report; with `scale`, also the fit with its last
 * link multiplied by it. Returns the true last link over the fitted one.
 */
async function probe(target: string, scale?: number): Promise<number> {
  const e = embodimentByName(target, 1);
  const rec = { record: true, untilSuccess: false, env: { imageSize: side } } as const;
  const play = (await runEpisodes(e, 'reach', seedRange(playN, 40_000), randomController(7), rec))
    .episodes;
  const heldPlay = (await runEpisodes(e, 'reach', seedRange(3, 45_000), randomController(8), rec))
    .episodes;
  const reaches = (
    await runEpisodes(
      e,
      'reach',
      seedRange(tries, 30_000),
      expertController(undefined, 'canonical'),
      rec,
    )
  ).episodes;
  const seen = judged(play);
  const start = sources
    .filter((s) => s.links.length === e.links.length)
    .map((s) => ({ s, err: kinematicError(s, seen) }))
    .sort((a, b) => a.err - b.err)[0]!.s;
  const first = fitBody(seen, { links: [...start.links], offsets: [...start.offsets] });
  const res = errors(seen, fk(first));
  const cut = 2.5 * median(res);
  let i = 0;
  const kept = subset(seen, () => res[i++]! <= cut);
  const second = fitBody(kept, first);
  const last = e.links.length - 1;
  const scaled: Body = {
    links: second.links.map((l, j) => (j === last ? l * (scale ?? 1) : l)),
    offsets: second.offsets,
  };
  const report = (what: string, eps: Episode[]) => {
    const seenEps = judged(eps);
    const j = errors(eps, (ep, t) => {
      const s = seenEps[eps.indexOf(ep)]!;
      return [s.effector![2 * t]!, s.effector![2 * t + 1]!];
    });
    const f1 = errors(eps, fk(first));
    const f2 = errors(eps, fk(second));
    const fs = errors(eps, fk(scaled));
    return `${what}: judge ${cm(rms(j))} / ${cm(median(j))}, body fit ${cm(rms(f1))} / ${cm(median(f1))}, trimmed ${cm(rms(f2))} / ${cm(median(f2))}${scale ? `, last link x ${scale.toFixed(2)} ${cm(rms(fs))} / ${cm(median(fs))}` : ''}`;
  };
  console.log(
    `${target}: start ${start.name}; links true ${e.links.map(cm).join(' ')} fitted ${second.links.map(cm).join(' ')}; offsets true ${e.offsets.map((o) => o.toFixed(2)).join(' ')} fitted ${second.offsets.map((o) => o.toFixed(2)).join(' ')} (kept ${kept.reduce((a, k) => a + k.length, 0)} of ${seen.reduce((a, k) => a + k.length, 0)} frames)`,
  );
  console.log(
    `  cm rms / median: ${report('expert reaches', reaches)}; ${report('held-out play', heldPlay)}`,
  );
  return e.links[last]! / second.links[last]!;
}

// the judge's last-link shrink, measured on source robots (held-out play seeds), applied to targets
const calibrate = arg('--calibrate', '').split(',').filter(Boolean);
const ratios: number[] = [];
for (const s of calibrate) ratios.push(await probe(s));
const scale = ratios.length ? ratios.reduce((a, b) => a + b, 0) / ratios.length : undefined;
if (scale)
  console.log(
    `last link: true / fitted on ${calibrate.join(',')}: ${ratios.map((r) => r.toFixed(2)).join(' ')}, mean ${scale.toFixed(2)}`,
  );
for (const target of targets) await probe(target, scale);
judge.dispose();
policy.dispose();
