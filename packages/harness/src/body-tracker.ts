// A tracker of the end effector from proprioception: a body (link lengths, encoder offsets)
// fitted to where a locator (the camera judge) saw the end effector over a robot's random play,
// then its forward kinematics on each frame's measured joint angles (docs/results.md 2u). The
// judge's per-frame error is mostly a bias (it marks the last link about a third short of the
// tip, on the source robots as on new ones), so the fit's last link is scaled by that shrink as
// measured on source robots, whose bodies are known (`lastLinkShrink`).
import {
  type Body,
  bodyEffector,
  type Episode,
  fitBody,
  type KinematicsScratch,
  kinematicError,
} from '@selfalign/sim';
import { type JudgedEpisode, verdictOf } from './judge.js';

/** Per recorded frame of an episode, a world (x, y). */
export type Locate = (ep: Episode) => [number, number][];

export interface BodyFitOptions {
  /** Multiply the fitted last link by this (the locator's shrink; default 1). */
  lastLinkScale?: number;
  /** Refit without the frames whose residual exceeds this many medians (default 2.5). */
  trim?: number;
}

/** `ep` with `effector` replaced by `at`'s reading of its frames. */
function located(ep: Episode, at: Locate): Episode {
  const p = at(ep);
  if (p.length !== ep.length)
    throw new Error(`body tracker: the locator gave ${p.length} positions for ${ep.length} frames`);
  return { ...ep, effector: Float32Array.from(p.flat()) };
}

/** The episodes keeping only the frames `keep` lets through (the fit reads states, actions, effector). */
function keepFrames(eps: Episode[], keep: (i: number) => boolean): Episode[] {
  let i = 0;
  return eps.map((ep) => {
    const j = ep.actions.length / ep.length;
    const ts = [...Array(ep.length).keys()].filter(() => keep(i++));
    const rows = (a: ArrayLike<number>, w: number) =>
      Float32Array.from(ts.flatMap((t) => Array.from({ length: w }, (_, k) => a[t * w + k]!)));
    return {
      ...ep,
      length: ts.length,
      states: rows(ep.states, 3 * j),
      actions: rows(ep.actions, j),
      effector: rows(ep.effector!, 2),
    };
  });
}

export class BodyTracker {
  private readonly scratch: KinematicsScratch;

  /**
   * @param body the robot's body as tracked
   * @param target where the reach target is in each recorded frame (the judge's reading of the
   *   policy's target keypoint), for `reached`
   */
  constructor(
    readonly body: Readonly<Body>,
    private readonly target: Locate,
    /** What `fit` fitted it on (`refit` adds recorded tries to it); absent: it cannot refit. */
    private readonly fitted?: {
      play: readonly Episode[];
      locate: Locate;
      starts: readonly Readonly<Body>[];
      opts: BodyFitOptions;
    },
  ) {
    this.scratch = {
      q: new Float64Array(body.links.length),
      p: new Float64Array(2 * (body.links.length + 1)),
    };
  }

  /**
   * Fit a body to `locate`'s positions over `play` (recorded episodes of the robot), from the
   * start among `starts` that explains them best; then refit without the frames whose residual
   * exceeds `trim` medians; then scale the last link.
   */
  static fit(
    play: readonly Episode[],
    locate: Locate,
    starts: readonly Readonly<Body>[],
    target: Locate,
    opts: BodyFitOptions = {},
  ): BodyTracker {
    const seen = play.map((ep) => located(ep, locate));
    const n = seen[0]?.actions.length ? seen[0].actions.length / seen[0].length : 0;
    const fits = starts.filter((s) => s.links.length === n);
    if (fits.length === 0)
      throw new Error(`body tracker: no start body with ${n} links among ${starts.length}`);
    const start = fits
      .map((s) => ({ s, err: kinematicError(s, seen) }))
      .sort((a, b) => a.err - b.err)[0]!.s;
    const first = fitBody(seen, { links: [...start.links], offsets: [...start.offsets] });
    const scratch = { q: new Float64Array(n), p: new Float64Array(2 * (n + 1)) };
    const res = seen.flatMap((ep) =>
      Array.from({ length: ep.length }, (_, t) => {
        const [x, y] = bodyEffector(first, ep, t, scratch);
        return Math.hypot(x - ep.effector![2 * t]!, y - ep.effector![2 * t + 1]!);
      }),
    );
    const cut = (opts.trim ?? 2.5) * [...res].sort((a, b) => a - b)[Math.floor(res.length / 2)]!;
    const body = fitBody(
      keepFrames(seen, (i) => res[i]! <= cut),
      first,
    );
    const scale = opts.lastLinkScale ?? 1;
    if (!(scale > 0)) throw new RangeError(`body tracker: lastLinkScale must be > 0, got ${scale}`);
    return new BodyTracker(
      { links: body.links.map((l, j) => (j === n - 1 ? l * scale : l)), offsets: body.offsets },
      target,
      { play, locate, starts, opts },
    );
  }

  /**
   * The tracker fitted again, as `fit` fitted this one, on its play and `tries` too (recorded
   * episodes of the same robot, its own reach tries say: they visit the poses near the targets
   * that a read of the tries depends on; docs/results.md 2y).
   */
  refit(tries: readonly Episode[]): BodyTracker {
    const f = this.fitted;
    if (!f) throw new Error('body tracker: refit needs a tracker made by BodyTracker.fit');
    return BodyTracker.fit([...f.play, ...tries], f.locate, f.starts, this.target, f.opts);
  }

  /** The tracked end effector in each recorded frame of `ep`. */
  track(ep: Episode): [number, number][] {
    return Array.from({ length: ep.length }, (_, t) =>
      bodyEffector(this.body, ep, t, this.scratch),
    );
  }

  /** Whether the tracked end effector came within `tolerance` of the target in some frame. */
  reached(ep: Episode, tolerance: number): boolean {
    return this.verdict(ep, tolerance).reached;
  }

  /** Reached at some frame (as `reached`), the tracked distance to the target in the last, the closest. */
  verdict(ep: Episode, tolerance: number): JudgedEpisode {
    const at = this.track(ep);
    const goal = this.target(ep);
    return verdictOf(
      at.map((v, t) => Math.hypot(v[0] - goal[t]![0], v[1] - goal[t]![1])),
      tolerance,
    );
  }
}

/**
 * The locator's last-link shrink on robots whose bodies are known: the mean over them of the true
 * last link over the one fitted to `locate`'s positions (1.45 for the shipped judge).
 */
export function lastLinkShrink(
  robots: readonly { body: Readonly<Body>; play: readonly Episode[] }[],
  locate: Locate,
  starts: readonly Readonly<Body>[],
): number {
  const none: Locate = () => [];
  const ratios = robots.map(({ body, play }) => {
    const fitted = BodyTracker.fit(play, locate, starts, none).body;
    const last = body.links.length - 1;
    return body.links[last]! / fitted.links[last]!;
  });
  if (ratios.length === 0) throw new Error('lastLinkShrink: no robots to measure it on');
  return ratios.reduce((a, b) => a + b, 0) / ratios.length;
}
