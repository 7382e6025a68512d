import {
  bodyEffector,
  DEFAULT_CAMERA,
  type Episode,
  expertController,
  GEOMETRY,
  getPreset,
  imageToWorld,
  PRESETS,
  randomController,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { beforeAll, describe, expect, it } from 'vitest';
import { BodyTracker, type Locate, lastLinkShrink } from './body-tracker.js';

// `links` (25/45/30 cm, outside the family) tracked from locators of known error
const e = getPreset('links');
const starts = Object.values(PRESETS);
const rec = { record: true, untilSuccess: false, env: { imageSize: 16 } } as const;
let play: Episode[];
let reaches: Episode[];

/** The true end effector of each recorded frame. */
const truth: Locate = (ep) =>
  Array.from({ length: ep.length }, (_, t) => [ep.effector![2 * t]!, ep.effector![2 * t + 1]!]);
/** A point `share` of the way along the last link (what the camera judge does, about 0.7). */
const along =
  (share: number): Locate =>
  (ep) => {
    const n = e.links.length;
    const body = {
      links: e.links.map((l, j) => (j === n - 1 ? l * share : l)),
      offsets: e.offsets,
    };
    return Array.from({ length: ep.length }, (_, t) => bodyEffector(body, ep, t));
  };
/** The reach target of each recorded frame (object 0). */
const goal: Locate = (ep) =>
  Array.from({ length: ep.length }, (_, t) =>
    imageToWorld(DEFAULT_CAMERA, ep.objects[4 * t]!, ep.objects[4 * t + 1]!),
  );
const rms = (tracker: BodyTracker, eps: Episode[]) => {
  const d = eps.flatMap((ep) => {
    const at = tracker.track(ep);
    const t = truth(ep);
    return at.map((v, i) => Math.hypot(v[0] - t[i]![0], v[1] - t[i]![1]));
  });
  return Math.sqrt(d.reduce((a, b) => a + b * b, 0) / d.length);
};

beforeAll(async () => {
  play = (await runEpisodes(e, 'reach', seedRange(6, 40_000), randomController(3), rec)).episodes;
  reaches = (
    await runEpisodes(
      e,
      'reach',
      seedRange(4, 30_000),
      expertController(undefined, 'canonical'),
      rec,
    )
  ).episodes;
});

describe('BodyTracker', () => {
  it('fits the body from located play and tracks the end effector from the joint angles', () => {
    const exact = BodyTracker.fit(play, truth, starts, goal);
    exact.body.links.forEach((l, j) => expect(l).toBeCloseTo(e.links[j]!, 3));
    expect(rms(exact, reaches)).toBeLessThan(1e-3);
    // a locator that marks 70% of the last link: the fit's last link is that short, the tracker
    // 30% of it (9 cm) off at the tip; the shrink measured on the same kind of robot corrects it
    const short = BodyTracker.fit(play, along(0.7), starts, goal);
    expect(short.body.links[2]).toBeCloseTo(0.7 * e.links[2]!, 3);
    expect(rms(short, reaches)).toBeGreaterThan(0.08);
    const shrink = lastLinkShrink([{ body: e, play }], along(0.7), starts);
    expect(shrink).toBeCloseTo(1 / 0.7, 3);
    const fixed = BodyTracker.fit(play, along(0.7), starts, goal, { lastLinkScale: shrink });
    expect(rms(fixed, reaches)).toBeLessThan(1e-3);
  });

  it('says a try reached as the simulator does, from the tracked end effector and the target', () => {
    const tracker = BodyTracker.fit(play, truth, starts, goal);
    const tol = GEOMETRY.reachTolerance;
    for (const ep of [...reaches, ...play]) expect(tracker.reached(ep, tol)).toBe(ep.success);
    // its verdict: the same reach, and the last frame's tracked distance to the target
    for (const ep of reaches) {
      const v = tracker.verdict(ep, tol);
      const at = truth(ep).at(-1)!;
      const to = goal(ep).at(-1)!;
      expect(v.reached).toBe(ep.success);
      expect(v.distance).toBeCloseTo(Math.hypot(at[0] - to[0], at[1] - to[1]), 6);
      // and the closest approach over the frames, which decides the reach
      expect(v.closest).toBeLessThanOrEqual(v.distance);
      expect(v.reached).toBe(v.closest < tol);
    }
    expect(reaches.some((ep) => ep.success)).toBe(true);
  });

  it('refits on its play and recorded tries, as fit does, its last-link scale kept', () => {
    const opts = { lastLinkScale: 1.2 };
    const tracker = BodyTracker.fit(play, along(0.7), starts, goal, opts);
    expect(tracker.refit([]).body).toEqual(tracker.body);
    const both = BodyTracker.fit([...play, ...reaches], along(0.7), starts, goal, opts);
    const refitted = tracker.refit(reaches);
    expect(refitted.body).toEqual(both.body);
    expect(refitted.body).not.toEqual(tracker.body);
    expect(refitted.body.links[2]).toBeCloseTo(1.2 * 0.7 * e.links[2]!, 3);
    expect(() => new BodyTracker(tracker.body, goal).refit(reaches)).toThrow(
      /refit needs a tracker made by BodyTracker.fit/,
    );
  });

  it('refuses a locator that misses frames, a body of another size and a bad scale', () => {
    expect(() => BodyTracker.fit(play, () => [[0, 0]], starts, goal)).toThrow(
      /the locator gave 1 positions for 40 frames/,
    );
    const twoLinks = [{ links: [0.5, 0.5], offsets: [0, 0] }];
    expect(() => BodyTracker.fit(play, truth, twoLinks, goal)).toThrow(
      /no start body with 3 links/,
    );
    expect(() => BodyTracker.fit(play, truth, starts, goal, { lastLinkScale: 0 })).toThrow(
      /lastLinkScale must be > 0/,
    );
  });
});
