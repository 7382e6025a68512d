import { describe, expect, it } from 'vitest';
import { ArmEnv } from './arm-env.js';
import { getPreset } from './embodiment.js';
import { hindsightEpisodes } from './hindsight.js';
import { randomController } from './play.js';
import { worldToImage } from './render.js';
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

  it('refuses a horizon that is not a positive integer', async () => {
    await expect(hindsightEpisodes(e, [1], randomController(0), { horizon: 0 })).rejects.toThrow(
      /horizon/,
    );
  });
});
