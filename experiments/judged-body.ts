// Probe for docs/results.md 2u: a body fitted to the camera judge's positions on the robot's
// random play, as a tracker. The judge is 6-15 cm off per frame (judged-hindsight.ts), too far
// for hindsight labels; but its errors fall on frames of many arm poses, and a body (link
// lengths, encoder offsets; `fitBody`) fitted to them over a whole play file averages them out.
// The fitted body's forward kinematics on the measured joint angles then says where the end
// effector is in any frame, from proprioception. Per target this reports the judge's own error
// and the fitted body's, on the robot's expert reaches (frames that reach and hold a target,
// as a good try does) and on held-out play; start: the source body that explains the judged play
// best; a second fit drops the frames whose residual is above 2.5x the median (the judge's tail).
// The fits are harness' `BodyTracker.fit`.
//   pnpm --filter @selfalign/experiments probe judged-body.ts CKPT --judge JUDGE
//     [--targets links,combo,src-34,sign,src-35] [--play 10] [--tries 10] [--calibrate src-0,src-5]
// --calibrate: source robots on which the fitted last link is compared with the true one; the
// targets' fits then also report with their last link scaled by the mean ratio.
import { readFileSync } from 'node:fs';
import { loadCheckpoint } from '@selfalign/align';
import { embodimentByName } from '@selfalign/cli/shared';
import { initBackend } from '@selfalign/core';
import { BodyTracker, EffectorJudge, type Locate } from '@selfalign/harness';
import {
  type Episode,
  expertController,
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
const seen: Locate = (ep) => judge.positions(ep.frames, ep.length);
const none: Locate = () => [];

/** Per-frame distance from `locate`'s positions to the true end effector. */
function errors(eps: Episode[], locate: Locate): number[] {
  return eps.flatMap((ep) =>
    locate(ep).map(([x, y], t) =>
      Math.hypot(x - ep.effector![2 * t]!, y - ep.effector![2 * t + 1]!),
    ),
  );
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
  const first = BodyTracker.fit(play, seen, sources, none, { trim: Number.POSITIVE_INFINITY });
  const second = BodyTracker.fit(play, seen, sources, none);
  const scaled = BodyTracker.fit(play, seen, sources, none, { lastLinkScale: scale ?? 1 });
  const report = (what: string, eps: Episode[]) => {
    const [j, f1, f2, fs] = [seen, first, second, scaled].map((l) =>
      errors(eps, typeof l === 'function' ? l : (ep) => l.track(ep)),
    ) as [number[], number[], number[], number[]];
    return `${what}: judge ${cm(rms(j))} / ${cm(median(j))}, body fit ${cm(rms(f1))} / ${cm(median(f1))}, trimmed ${cm(rms(f2))} / ${cm(median(f2))}${scale ? `, last link x ${scale.toFixed(2)} ${cm(rms(fs))} / ${cm(median(fs))}` : ''}`;
  };
  const body = second.body;
  console.log(
    `${target}: links true ${e.links.map(cm).join(' ')} fitted ${body.links.map(cm).join(' ')}; offsets true ${e.offsets.map((o) => o.toFixed(2)).join(' ')} fitted ${body.offsets.map((o) => o.toFixed(2)).join(' ')}`,
  );
  console.log(
    `  cm rms / median: ${report('expert reaches', reaches)}; ${report('held-out play', heldPlay)}`,
  );
  const last = e.links.length - 1;
  return e.links[last]! / body.links[last]!;
}

// the judge's last-link shrink, measured on source robots (held-out play seeds), applied to targets
// (harness' lastLinkShrink is the same mean; the per-robot ratios are printed here)
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
