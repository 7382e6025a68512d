import { Rng } from '@selfalign/core/rng';
import { describe, expect, it } from 'vitest';
import { ArmEnv } from './arm-env.js';
import { actionToCommand, type Embodiment, getPreset, sampleEmbodiment } from './embodiment.js';
import {
  bodyEffector,
  fitBody,
  identifyActionMap,
  invertMatrix,
  kinematicError,
  type Matrix,
  matMul,
  retargetedController,
  retargetMap,
  solveLinear,
} from './identify.js';
import { randomController } from './play.js';
import { runEpisodes, seedRange } from './rollout.js';

/** The simulator's own action -> command map away from the clamps. */
const commandMap = (e: Embodiment): Matrix =>
  Array.from({ length: 3 }, (_, j) =>
    Array.from(
      { length: 3 },
      (_, k) =>
        10 *
        actionToCommand(
          e,
          [0, 1, 2].map((i) => (i === k ? 0.1 : 0)),
        )[j]!,
    ),
  );

const play = async (e: Embodiment, count = 10) =>
  (
    await runEpisodes(e, 'reach', seedRange(count, 500), randomController(1), {
      record: true,
      untilSuccess: false,
    })
  ).episodes;

const close = (A: Matrix, B: Matrix, digits: number) =>
  A.forEach((row, i) => row.forEach((x, k) => expect(x).toBeCloseTo(B[i]![k]!, digits)));

describe('identifying a robot from its random play', () => {
  it('recovers the action -> joint-velocity map up to the one-period lag, and retargets between robots', async () => {
    const source = getPreset('source');
    const perm = getPreset('perm');
    const Bs = identifyActionMap(await play(source));
    const Bp = identifyActionMap(await play(perm));
    // the arm is linear off the clamps: B = (share of the command reached in one period) x
    // maxJointVel x the command map; the preset keeps the source's lag, so the scale is shared
    const scale = Bs[0]![0]! / commandMap(source)[0]![0]!;
    expect(scale).toBeGreaterThan(0.3);
    expect(scale).toBeLessThan(1.5);
    close(
      Bp,
      commandMap(perm).map((r) => r.map((x) => scale * x)),
      3,
    );
    // R moves perm's joints as the source's actions move the source's
    const R = retargetMap(Bp, Bs);
    close(matMul(Bp, R), Bs, 6);
    close(R, matMul(invertMatrix(commandMap(perm)), commandMap(source)), 2);
    // a family robot: permuted, flipped, scaled and rotated actions, another lag
    const other = sampleEmbodiment(new Rng(7), 'x');
    const Bo = identifyActionMap(await play(other));
    const ratio = Bo[0]!.map((x, k) => x / commandMap(other)[0]![k]!).find(Number.isFinite)!;
    close(
      Bo,
      commandMap(other).map((r) => r.map((x) => ratio * x)),
      2,
    );
  });

  it('scores bodies by how well they explain where the end effector was', async () => {
    const eps = await play(getPreset('offset'), 3);
    expect(eps[0]!.effector).toHaveLength(2 * eps[0]!.length);
    expect(kinematicError(getPreset('offset'), eps)).toBeLessThan(1e-10);
    // the true body's forward kinematics on the measured angles is where the effector was
    const ep = eps[1]!;
    const scratch = { q: new Float64Array(3), p: new Float64Array(8) };
    for (const t of [0, 7, ep.length - 1]) {
      const [x, y] = bodyEffector(getPreset('offset'), ep, t, scratch);
      expect(x).toBeCloseTo(ep.effector![2 * t]!, 6);
      expect(y).toBeCloseTo(ep.effector![2 * t + 1]!, 6);
      expect(bodyEffector(getPreset('offset'), ep, t)).toEqual([x, y]);
    }
    expect(kinematicError(getPreset('source'), eps)).toBeGreaterThan(1e-2);
    expect(kinematicError(getPreset('links'), eps)).toBeGreaterThan(1e-2);
    // from another body, the fit finds offset's own (links and encoder offsets)
    const fit = fitBody(eps, getPreset('links'));
    expect(fit.error).toBeLessThan(1e-12);
    fit.links.forEach((l, j) => expect(l).toBeCloseTo(getPreset('offset').links[j]!, 6));
    fit.offsets.forEach((o, j) => expect(o).toBeCloseTo(getPreset('offset').offsets[j]!, 6));
  });

  it('a retargeted controller sends R a, scaled into [-1, 1]', async () => {
    const inner = { act: (obs: readonly unknown[]) => obs.map(() => [0.5, -1, 0.25]) };
    const ctrl = retargetedController(inner, [
      [0, 1, 0],
      [2, 0, 0],
      [0, 0, 1],
    ]);
    const env = new ArmEnv(getPreset('source')).reset(1, 'reach');
    const [a] = await ctrl.act([
      {
        index: 0,
        env,
        image: new Uint8Array(0),
        state: new Float32Array(9),
        instruction: '',
        step: 0,
      },
    ]);
    // R a = [-1, 1, 0.25]: within [-1, 1], sent as is
    expect(Array.from(a!)).toEqual([-1, 1, 0.25]);
    const wide = retargetedController(inner, [
      [4, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    const [b] = await wide.act([
      {
        index: 0,
        env,
        image: new Uint8Array(0),
        state: new Float32Array(9),
        instruction: '',
        step: 0,
      },
    ]);
    // [2, -1, 0.25] scaled down as a whole: the direction is kept
    expect(Array.from(b!)).toEqual([1, -0.5, 0.125]);
  });

  it('says what is wrong with data it cannot use', async () => {
    expect(() => identifyActionMap([])).toThrow(/no episodes/);
    const short = (await play(getPreset('source'), 1)).map((e) => ({ ...e, length: 3 }));
    expect(() => identifyActionMap(short)).toThrow(/only \d+ play steps/);
    const eps = await play(getPreset('source'), 1);
    const { effector: _, ...bare } = eps[0]!;
    expect(() => kinematicError(getPreset('source'), [bare])).toThrow(/no end-effector positions/);
    expect(() => kinematicError({ links: [0.5, 0.5], offsets: [0, 0] }, eps)).toThrow(
      /2-link body for a 3-joint robot/,
    );
    expect(() =>
      solveLinear(
        [
          [1, 2],
          [2, 4],
        ],
        [1, 1],
      ),
    ).toThrow(/singular/);
  });
});
