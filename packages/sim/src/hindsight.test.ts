import { describe, expect, it } from 'vitest';
import { ArmEnv } from './arm-env.js';
import { getPreset } from './embodiment.js';
import { hindsightEpisodes, pathDirectness } from './hindsight.js';
import { heldRandomController, randomController } from './play.js';
import { imageToWorld, worldToImage } from './render.js';
import type { RunResult } from './rollout.js';

describe('hindsight relabelling of reach play', () => {
  const e = getPreset('sign');
  it("draws each frame's target where the end effector is `horizon` steps later, on the played states", async () => {
    const played: RunResult[] = [];
    const [ep] = await hindsightEpisodes(e, [42], randomController(3), {
      horizon: 8,
      onPlayed: (r) => void played.push(r),
    });
    // the play as it was: its real target, the same actions
    expect(played).toHaveLength(1);
    expect(played[0]!.episodes[0]!.actions).toEqual(ep!.actions);
    expect(played[0]!.episodes[0]!.objects.subarray(0, 2)).not.toEqual(ep!.objects.subarray(0, 2));
    const n = e.links.length;
    const T = 40;
    expect(ep!.length).toBe(T);
    // replay the recorded actions on a fresh env: same states, and the targets are the end
    // effector's image positions 8 steps on (the last 8 frames: its final position)
    const env = new ArmEnv(e).reset(42, 'reach');
    const ee: [number, number][] = [env.endEffector()];
    const state = new Float32Array(3 * n);
    for (let t = 0; t < T; t++) {
      env.observeState(state);
      expect(Array.from(ep!.states.subarray(t * 3 * n, (t + 1) * 3 * n))).toEqual(
        Array.from(state),
      );
      env.step(ep!.actions.subarray(t * n, (t + 1) * n));
      ee.push(env.endEffector());
    }
    for (const t of [0, 10, 31, 32, 39]) {
      const [x, y] = ee[Math.min(t + 8, T)]!;
      const [u, v] = worldToImage(env.config.camera, x, y);
      expect(ep!.objects[4 * t]).toBeCloseTo(u, 5);
      expect(ep!.objects[4 * t + 1]).toBeCloseTo(v, 5);
    }
    // the actions are the random controller's, in [-1, 1] and not constant
    expect(Math.max(...ep!.actions.map(Math.abs))).toBeLessThanOrEqual(1);
    expect(new Set(ep!.actions).size).toBeGreaterThan(T * n - 5);
  });

  it('differs from the original play frames only where the target is drawn', async () => {
    const [h] = await hindsightEpisodes(e, [7], randomController(0), { horizon: 4 });
    const env = new ArmEnv(e).reset(7, 'reach');
    const original = env.render();
    const frame0 = h!.frames.subarray(0, original.length);
    let changed = 0;
    for (let i = 0; i < original.length; i++) if (original[i] !== frame0[i]) changed++;
    // the old red disc erased and a new one drawn: a few hundred bytes of a 64 x 64 x 3 image
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThan(original.length / 4);
  });

  it('relabels each try once per horizon, seed-major, and reports the paths it replayed', async () => {
    let paths: Float64Array[] = [];
    const eps = await hindsightEpisodes(e, [5, 6], randomController(1), {
      horizon: [2, 40],
      onPaths: (p) => {
        paths = p;
      },
    });
    expect(eps.map((x) => x.seed)).toEqual([5, 5, 6, 6]);
    expect(paths).toHaveLength(2);
    const T = 40;
    const env = new ArmEnv(e);
    for (const [k, seed] of [5, 6].entries()) {
      const [near, far] = [eps[2 * k]!, eps[2 * k + 1]!];
      // the same played actions and states, different targets
      expect(far.actions).toEqual(near.actions);
      expect(far.states).toEqual(near.states);
      // the path: the end effector before each step and after the last
      const path = paths[k]!;
      expect(path).toHaveLength(2 * (T + 1));
      env.reset(seed, 'reach');
      expect(Array.from(path.subarray(0, 2))).toEqual(env.endEffector());
      // horizon 40 draws every frame's target at the final position; horizon 2 two steps on
      const [u, v] = worldToImage(env.config.camera, path[2 * T]!, path[2 * T + 1]!);
      for (const t of [0, 17, 39]) {
        expect(far.objects[4 * t]).toBeCloseTo(u, 5);
        expect(far.objects[4 * t + 1]).toBeCloseTo(v, 5);
      }
      const [u2, v2] = worldToImage(env.config.camera, path[2 * 12]!, path[2 * 12 + 1]!);
      expect(near.objects[4 * 10]).toBeCloseTo(u2, 5);
      expect(near.objects[4 * 10 + 1]).toBeCloseTo(v2, 5);
    }
    await expect(hindsightEpisodes(e, [1], randomController(0), { horizon: [] })).rejects.toThrow(
      /no horizon/,
    );
  });

  it('draws the targets where a tracker says the end effector went, and checks its paths', async () => {
    const T = 40;
    // a tracker that is 0.1 off in x, read from the played episodes
    const shifted = (r: RunResult) =>
      r.episodes.map((_, i) => {
        const env = new ArmEnv(e).reset(r.episodes[i]!.seed, 'reach');
        const n = env.n;
        const p = [...env.endEffector()];
        for (let t = 0; t < T; t++) {
          env.step(r.episodes[i]!.actions.subarray(t * n, (t + 1) * n));
          p.push(...env.endEffector());
        }
        return Float64Array.from(p, (x, k) => (k % 2 === 0 ? x + 0.1 : x));
      });
    let truth: Float64Array[] = [];
    const [real] = await hindsightEpisodes(e, [9], randomController(4), {
      onPaths: (p) => void (truth = p),
    });
    let paths: Float64Array[] = [];
    const [ep] = await hindsightEpisodes(e, [9], randomController(4), {
      track: shifted,
      onPaths: (p) => void (paths = p),
    });
    expect(ep!.actions).toEqual(real!.actions);
    expect(ep!.states).toEqual(real!.states);
    expect(paths[0]![0]).toBeCloseTo(truth[0]![0]! + 0.1, 9);
    const camera = new ArmEnv(e).config.camera;
    for (const t of [0, 20, 39]) {
      const [x, y] = imageToWorld(camera, ep!.objects[4 * t]!, ep!.objects[4 * t + 1]!);
      const [rx, ry] = imageToWorld(camera, real!.objects[4 * t]!, real!.objects[4 * t + 1]!);
      expect(x - rx).toBeCloseTo(0.1, 5);
      expect(y).toBeCloseTo(ry, 5);
    }
    // a path per episode, T + 1 finite points each
    await expect(
      hindsightEpisodes(e, [9], randomController(4), { track: () => [] }),
    ).rejects.toThrow(/1 episodes/);
    await expect(
      hindsightEpisodes(e, [9], randomController(4), { track: () => [new Float64Array(8)] }),
    ).rejects.toThrow(/41 finite/);
  });

  it('imageToWorld inverts worldToImage under a rotated, shifted camera', () => {
    const camera = { span: 1.7, rotation: 0.6, centerX: 0.2, centerY: -0.1 };
    for (const [x, y] of [
      [0.3, -0.4],
      [-0.9, 0.75],
    ] as const) {
      const [u, v] = worldToImage(camera, x, y);
      const [bx, by] = imageToWorld(camera, u, v);
      expect(bx).toBeCloseTo(x, 9);
      expect(by).toBeCloseTo(y, 9);
    }
  });

  it('scores how directly the end effector went to each hindsight target', () => {
    // a straight line, then back and forth, then still: [T + 1, 2] with T = 6
    const path = Float64Array.from([0, 0, 1, 0, 2, 0, 3, 0, 2, 0, 3, 0, 3, 0]);
    const d = pathDirectness(path, 2);
    expect(d).toHaveLength(6);
    expect(Array.from(d.subarray(0, 2))).toEqual([1, 1]);
    // 2 -> 3 -> 2: no net progress; 3 -> 2 -> 3 likewise; 2 -> 3 -> 3: straight
    expect(d[2]).toBe(0);
    expect(d[3]).toBe(0);
    expect(d[4]).toBe(1);
    // the last step does not move: no information, scored 0
    expect(d[5]).toBe(0);
    // a longer horizon over the same path: 0 -> 3 along 3 units, then 1 -> 2 along 3 units
    const d3 = pathDirectness(path, 3);
    expect(d3[0]).toBeCloseTo(1, 6);
    expect(d3[1]).toBeCloseTo(1 / 3, 6);
  });

  it('held-random play: each random action is held for `hold` steps, and moves more directly than per-step random actions', async () => {
    let paths: Float64Array[] = [];
    const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
    const [held] = await hindsightEpisodes(e, [11], heldRandomController(2, 8));
    const n = e.links.length;
    const at = (t: number) => Array.from(held!.actions.subarray(t * n, (t + 1) * n));
    for (const t0 of [0, 8, 32]) for (let k = 1; k < 8; k++) expect(at(t0 + k)).toEqual(at(t0));
    expect(at(8)).not.toEqual(at(7));
    expect(Math.max(...held!.actions.map(Math.abs))).toBeLessThanOrEqual(1);
    const meanDirectness = async (c: ReturnType<typeof randomController>) => {
      await hindsightEpisodes(e, seeds, c, { onPaths: (p) => void (paths = p) });
      const d = paths.flatMap((p) => Array.from(pathDirectness(p, 8)));
      return d.reduce((a, b) => a + b, 0) / d.length;
    };
    const [dHeld, dWhite] = [
      await meanDirectness(heldRandomController(2, 8)),
      await meanDirectness(randomController(2)),
    ];
    expect(dHeld).toBeGreaterThan(dWhite + 0.1);
    expect(() => heldRandomController(0, 0)).toThrow(/hold/);
  });

  it('refuses a horizon that is not a positive integer', async () => {
    await expect(hindsightEpisodes(e, [1], randomController(0), { horizon: 0 })).rejects.toThrow(
      /horizon/,
    );
  });
});
