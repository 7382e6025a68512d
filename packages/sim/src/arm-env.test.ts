import { describe, expect, it } from 'vitest';
import { ArmEnv, GEOMETRY } from './arm-env.js';
import { actionJumpShare } from './clonability.js';
import { getPreset, PRESETS } from './embodiment.js';
import { expertAction, pushVelocity } from './expert.js';
import { expertController, ouController, randomController } from './play.js';
import { DEFAULT_APPEARANCE, DEFAULT_CAMERA, renderScene } from './render.js';
import { runEpisodes, seedRange } from './rollout.js';

describe('determinism', () => {
  it('the same seed gives bit-identical frames and states; another seed does not', async () => {
    const run = (seed: number) =>
      runEpisodes(getPreset('combo'), 'push', [seed], ouController(1), { record: true });
    const [a, b, c] = await Promise.all([run(5), run(5), run(6)]);
    const ea = a.episodes[0]!;
    const eb = b.episodes[0]!;
    expect(ea.length).toBe(eb.length);
    expect(Buffer.from(ea.frames).equals(Buffer.from(eb.frames))).toBe(true);
    expect(Buffer.from(ea.states.buffer).equals(Buffer.from(eb.states.buffer))).toBe(true);
    expect(
      Buffer.from(ea.frames).equals(
        Buffer.from(c.episodes[0]!.frames.subarray(0, ea.frames.length)),
      ),
    ).toBe(false);
  });
});

describe('the scripted expert on its own embodiment (200 seeded episodes)', () => {
  it('reach: at least 95% success', async () => {
    const r = await runEpisodes(PRESETS.source!, 'reach', seedRange(200), expertController());
    expect(r.successRate).toBeGreaterThanOrEqual(0.95);
    expect(r.actionMse).toBe(0); // it is the reference of the action MSE
  });

  it('untilSuccess false: every episode runs the full length, success or not', async () => {
    const seeds = seedRange(5);
    const early = await runEpisodes(PRESETS.source!, 'reach', seeds, expertController(), {
      record: true,
    });
    const full = await runEpisodes(PRESETS.source!, 'reach', seeds, expertController(), {
      record: true,
      untilSuccess: false,
    });
    const T = new ArmEnv(PRESETS.source!).config.maxSteps.reach;
    expect(early.episodes.every((e) => e.success && e.length < T)).toBe(true);
    expect(full.episodes.map((e) => e.length)).toEqual(seeds.map(() => T));
    // the same first steps: the episode only goes on (recorded in the order they end)
    const n = PRESETS.source!.links.length;
    for (const e of early.episodes) {
      const f = full.episodes.find((x) => x.seed === e.seed)!;
      expect(f.actions.subarray(0, e.length * n)).toEqual(e.actions);
    }
    // all end together: recorded in seed order (hindsightEpisodes relies on it)
    expect(full.episodes.map((e) => e.seed)).toEqual(seeds);
    // the closest approach is the smallest distance over the recorded effector path
    for (const [i, sum] of full.summaries.entries()) {
      const e = full.episodes[i]!;
      const env = new ArmEnv(PRESETS.source!).reset(e.seed, 'reach');
      const [tx, ty] = env.target;
      let min = Number.POSITIVE_INFINITY;
      for (let t = 0; t < e.length; t++)
        min = Math.min(min, Math.hypot(e.effector![2 * t]! - tx!, e.effector![2 * t + 1]! - ty!));
      // the recorded path is before each action; the summary also sees after the last one
      expect(sum.closestDistance).toBeLessThanOrEqual(min + 1e-12);
      expect(sum.closestDistance).toBeLessThan(GEOMETRY.reachTolerance);
      expect(sum.closestDistance).toBeLessThanOrEqual(sum.finalDistance);
    }
    // an episode ended at success ends within the tolerance, at its closest or beyond
    for (const sum of early.summaries)
      expect(sum.closestDistance).toBeLessThanOrEqual(sum.finalDistance);
  });

  it('push: at least 95% success with the field expert (the default), 80% with waypoints', async () => {
    const field = await runEpisodes(PRESETS.source!, 'push', seedRange(200), expertController());
    expect(field.successRate).toBeGreaterThanOrEqual(0.95);
    expect(field.actionMse).toBe(0);
    const waypoint = await runEpisodes(
      PRESETS.source!,
      'push',
      seedRange(200),
      expertController(undefined, 'canonical', 'waypoint'),
    );
    expect(waypoint.successRate).toBeGreaterThanOrEqual(0.8);
  });
});

describe('push expert: the field', () => {
  const scene = (ee: [number, number]) => {
    const env = new ArmEnv(PRESETS.source!).reset(1, 'push');
    env.block = [0.4, 0];
    env.goal = [0.4, 0.3];
    return pushVelocity(env, ee);
  };

  it('pushes toward the goal from behind the block and circles it from the front', () => {
    const contact = GEOMETRY.blockRadius + GEOMETRY.eeRadius;
    const [vx, vy] = scene([0.4, -contact]);
    expect(vy).toBeGreaterThan(0.3); // through the block toward the goal
    expect(Math.abs(vx)).toBeLessThan(0.05);
    // in front, a little to the right: round the right side (+x), not through the block
    const [fx, fy] = scene([0.45, 0.2]);
    expect(fx).toBeGreaterThan(0.2);
    expect(fy).toBeGreaterThan(-0.2);
    // off to the side behind: steers back onto the line behind the block
    const [sx] = scene([0.55, -0.1]);
    expect(sx).toBeLessThan(0);
  });

  const jumpShare = async (push: 'field' | 'waypoint') =>
    (
      await actionJumpShare(PRESETS.source!, 'push', seedRange(40), (env) =>
        expertAction(env, undefined, undefined, 'canonical', push),
      )
    ).share;

  it('is continuous in the scene where the waypoint expert jumps', async () => {
    const field = await jumpShare('field');
    const waypoint = await jumpShare('waypoint');
    expect(field).toBeLessThan(0.02);
    expect(waypoint).toBeGreaterThan(0.05);
  });
});

describe('rollout harness', () => {
  it('records typed arrays of the right sizes with clipped actions', async () => {
    const r = await runEpisodes(PRESETS.source!, 'reach', [1, 2, 3], randomController(0), {
      record: true,
      env: { imageSize: 32 },
    });
    expect(r.episodes.length).toBe(3);
    for (const e of r.episodes) {
      expect(e.length).toBe(40); // random play never reaches a 6 cm target in time here
      expect(e.frames.length).toBe(e.length * 32 * 32 * 3);
      expect(e.states.length).toBe(e.length * 9);
      expect(e.actions.length).toBe(e.length * 3);
      expect(e.actions.every((v) => v >= -1 && v <= 1)).toBe(true);
      expect(e.instruction).toMatch(/red/);
    }
    expect(r.actionMse).toBeGreaterThan(0.1);
  });

  it('a controller with the wrong action size is an error', async () => {
    const bad = { act: (o: readonly unknown[]) => o.map(() => [0, 0]) };
    await expect(runEpisodes(PRESETS.source!, 'reach', [1], bad)).rejects.toThrow(
      /2 dims, the arm has 3/,
    );
  });

  it('parallel groups give the same results as one batch', async () => {
    const all = await runEpisodes(
      PRESETS.perm!,
      'reach',
      seedRange(6),
      expertController(PRESETS.source),
    );
    const grouped = await runEpisodes(
      PRESETS.perm!,
      'reach',
      seedRange(6),
      expertController(PRESETS.source),
      { parallel: 4 },
    );
    expect(grouped.summaries).toEqual(all.summaries);
  });
});

describe('push physics', () => {
  it('the end effector pushes the block; the block stays in the workspace', () => {
    const env = new ArmEnv(PRESETS.source!).reset(7, 'push');
    const [ex, ey] = env.endEffector();
    env.block = [ex + 0.01, ey];
    env.step([0, 0, 0]);
    expect(Math.hypot(env.block[0] - ex, env.block[1] - ey)).toBeCloseTo(
      GEOMETRY.blockRadius + GEOMETRY.eeRadius,
      6,
    );
  });
});

describe('rendering', () => {
  it('draws the target, the arm and the block where they are, at any size', () => {
    for (const size of [32, 64, 96]) {
      const env = new ArmEnv(PRESETS.source!, { imageSize: size }).reset(8, 'reach');
      const img = env.render();
      expect(img.length).toBe(size * size * 3);
      const px = (x: number, y: number) => {
        const col = Math.floor(((x + 1.05) / 2.1) * size);
        const row = Math.floor(((1.05 - y) / 2.1) * size);
        const k = (row * size + col) * 3;
        return [img[k], img[k + 1], img[k + 2]];
      };
      expect(px(env.target[0], env.target[1])).toEqual([220, 40, 40]);
      expect([
        [20, 20, 60],
        [40, 70, 170],
      ]).toContainEqual(px(0, 0)); // the base joint / first link
    }
  });

  it('appearance and camera shifts change the image', () => {
    const scene = {
      joints: [0, 0, 0.4, 0, 0.7, 0, 0.9, 0],
      linkRadius: 0.035,
      eeRadius: 0.045,
      target: [0.5, 0.5] as const,
      targetRadius: 0.07,
      blockHalf: 0.06,
      goalRadius: 0.1,
    };
    const base = renderScene(scene, 48);
    const moved = renderScene(scene, 48, undefined, {
      span: 2.1,
      rotation: 0.3,
      centerX: 0.1,
      centerY: 0,
    });
    const tinted = renderScene(scene, 48, {
      background: [0, 0, 0],
      floor: [90, 90, 90],
      arm: [200, 0, 200],
      joint: [0, 0, 0],
      target: [0, 0, 255],
      block: [0, 0, 0],
      goal: [0, 0, 0],
    });
    expect(Buffer.from(base).equals(Buffer.from(moved))).toBe(false);
    expect(Buffer.from(base).equals(Buffer.from(tinted))).toBe(false);
    expect(Buffer.from(renderScene(scene, 48)).equals(Buffer.from(base))).toBe(true);
  });
});

describe('observeObjects', () => {
  it('gives the image position of the reach target: the rendered red disc is there', () => {
    const env = new ArmEnv(getPreset('source'), { imageSize: 64 }).reset(7, 'reach');
    const uv = env.observeObjects();
    expect(Number.isNaN(uv[2]!) && Number.isNaN(uv[3]!)).toBe(true);
    // centroid of the target-coloured pixels, in the same (u, v) convention
    const img = env.render();
    let su = 0;
    let sv = 0;
    let n = 0;
    for (let r = 0; r < 64; r++)
      for (let c = 0; c < 64; c++) {
        const k = (r * 64 + c) * 3;
        const [R, G, B] = DEFAULT_APPEARANCE.target;
        if (img[k] === R && img[k + 1] === G && img[k + 2] === B) {
          su += ((c + 0.5) / 64) * 2 - 1;
          sv += ((r + 0.5) / 64) * 2 - 1;
          n++;
        }
      }
    expect(n).toBeGreaterThan(4);
    // the arm may cover part of the disc: a pixel and a half of slack
    expect(Math.abs(su / n - uv[0]!)).toBeLessThan(3 / 64);
    expect(Math.abs(sv / n - uv[1]!)).toBeLessThan(3 / 64);
  });

  it('gives block then goal for push, and follows a rotated camera', () => {
    const env = new ArmEnv(getPreset('source'), { imageSize: 32 }).reset(3, 'push');
    const uv = env.observeObjects();
    expect(uv.every(Number.isFinite)).toBe(true);
    expect(uv[0]).toBeCloseTo(env.block[0] / 1.05, 5);
    expect(uv[1]).toBeCloseTo(-env.block[1] / 1.05, 5);
    expect(uv[2]).toBeCloseTo(env.goal[0] / 1.05, 5);
    const turned = new ArmEnv(getPreset('source'), {
      camera: { ...DEFAULT_CAMERA, rotation: Math.PI / 2 },
    }).reset(3, 'push');
    const w = turned.observeObjects();
    // the view turned a quarter: world +y appears to the right and world +x downwards
    expect(w[0]).toBeCloseTo(env.block[1] / 1.05, 5);
    expect(w[1]).toBeCloseTo(env.block[0] / 1.05, 5);
  });
});

describe('reach expert IK choice', () => {
  /** Runs the expert from a given start pose to the end; returns the final angles (base wrapped). */
  const finalPose = (start: number[], reach: 'canonical' | 'nearest') => {
    const env = new ArmEnv(getPreset('source')).reset(11, 'reach');
    start.forEach((v, j) => {
      env.q[j] = v;
    });
    // past success too, so the pose settles on the goal
    for (let t = 0; t < 80; t++) env.step(expertAction(env, undefined, undefined, reach));
    expect(env.success()).toBe(true);
    return [Math.atan2(Math.sin(env.q[0]!), Math.cos(env.q[0]!)), env.q[1]!, env.q[2]!];
  };

  it('canonical: the goal pose depends on the target only; nearest: on where the arm starts', () => {
    const starts = [
      [0.3, 1.2, -1.0],
      [-2.5, -1.2, 1.3],
    ];
    const [a, b] = starts.map((s) => finalPose(s, 'canonical'));
    for (let j = 0; j < 3; j++) expect(Math.abs(a![j]! - b![j]!)).toBeLessThan(0.02);
    const [c, d] = starts.map((s) => finalPose(s, 'nearest'));
    expect(Math.max(...c!.map((v, j) => Math.abs(v - d![j]!)))).toBeGreaterThan(0.5);
  });
});
