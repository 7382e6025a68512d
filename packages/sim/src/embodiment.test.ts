import { describe, expect, it } from 'vitest';
import { ArmEnv } from './arm-env.js';
import {
  actionToCommand,
  commandToAction,
  describeEmbodiment,
  getPreset,
  HELD_OUT,
  PRESETS,
  planeRotation,
  sampleSources,
  sourceEmbodiment,
  validateEmbodiment,
} from './embodiment.js';
import { forwardKinematics, inverseKinematics3, jacobian } from './kinematics.js';

const cmd = (name: string, a: number[]) => Array.from(actionToCommand(getPreset(name), a));

describe('embodiment maps', () => {
  it('source is the identity', () => {
    expect(cmd('source', [0.5, -0.2, 0.1])).toEqual([0.5, -0.2, 0.1]);
  });

  it('perm: action dim i drives joint perm[i]', () => {
    const perm = getPreset('perm').perm;
    for (let i = 0; i < 3; i++) {
      const a = [0, 0, 0];
      a[i] = 0.7;
      const c = cmd('perm', a);
      expect(c[perm[i]!]).toBeCloseTo(0.7, 12);
      expect(c.filter((v) => v !== 0).length).toBe(1);
    }
    expect(perm).not.toEqual([0, 1, 2]);
  });

  it('sign flips the flagged joints; gains scale and clamp', () => {
    expect(cmd('sign', [0.3, 0.3, 0.3])).toEqual(getPreset('sign').signs.map((s) => 0.3 * s));
    const g = getPreset('gain').gains;
    const c = cmd('gain', [0.5, 0.5, 0.5]);
    g.forEach((gain, j) => expect(c[j]).toBeCloseTo(Math.min(1, 0.5 * gain), 12));
  });

  it('rotate mixes action dims 0 and 1 and keeps norms', () => {
    const c = cmd('rotate', [1, 0, 0]);
    expect(c[0]).toBeCloseTo(Math.cos(Math.PI / 3), 12);
    expect(c[1]).toBeCloseTo(Math.sin(Math.PI / 3), 12);
    expect(c[2]).toBe(0);
  });

  it('commandToAction inverts actionToCommand for every preset (inside the range)', () => {
    for (const name of Object.keys(PRESETS)) {
      const e = getPreset(name);
      const want = [0.2, -0.15, 0.1];
      const a = commandToAction(e, want);
      Array.from(actionToCommand(e, a)).forEach((v, j) =>
        expect(v, `${name} joint ${j}`).toBeCloseTo(want[j]!, 9),
      );
    }
  });

  it('links and offsets move the body: the same measured angles give another end effector', () => {
    const pose = (name: string) => new ArmEnv(getPreset(name)).reset(3, 'reach').endEffector();
    expect(pose('links')).not.toEqual(pose('source'));
    expect(pose('offset')).not.toEqual(pose('source'));
    expect(pose('perm')).toEqual(pose('source'));
  });

  it('lag slows the actuator', () => {
    const speed = (name: string) => {
      const env = new ArmEnv(getPreset(name)).reset(4, 'reach');
      env.step([1, 0, 0]);
      return Math.abs(env.qd[0]!);
    };
    expect(speed('lag')).toBeLessThan(speed('source') * 0.75);
  });

  it('validation rejects malformed embodiments', () => {
    const bad = (change: object) => () => validateEmbodiment({ ...sourceEmbodiment(), ...change });
    expect(bad({ perm: [0, 0, 1] })).toThrow(/not a permutation/);
    expect(bad({ signs: [1, 2, 1] })).toThrow(/signs/);
    expect(bad({ mix: [1, 1, 0, 0, 1, 0, 0, 0, 1] })).toThrow(/orthogonal/);
    expect(bad({ offsets: [0, 0] })).toThrow(/offsets has 2 entries/);
    expect(() => getPreset('nope')).toThrow(/unknown embodiment 'nope'/);
    for (const name of Object.keys(PRESETS)) validateEmbodiment(getPreset(name));
  });

  it('the random family is reproducible, valid and apart from the held-out presets', () => {
    const a = sampleSources(8, 1);
    expect(sampleSources(8, 1)).toEqual(a);
    expect(sampleSources(8, 2)).not.toEqual(a);
    for (const e of a) validateEmbodiment(e);
    const names = new Set(a.map((e) => e.name));
    for (const h of HELD_OUT) expect(names.has(h)).toBe(false);
    expect(planeRotation(3, 0).map((v) => v + 0)).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  });
});

describe('kinematics', () => {
  const links = [0.4, 0.3, 0.2];
  it('the Jacobian matches finite differences', () => {
    const q = [0.3, -0.7, 1.1];
    const j = jacobian(links, q);
    const h = 1e-6;
    for (let i = 0; i < 3; i++) {
      const qp = [...q];
      qp[i]! += h;
      const a = forwardKinematics(links, q);
      const b = forwardKinematics(links, qp);
      expect((b[6]! - a[6]!) / h).toBeCloseTo(j[i]!, 4);
      expect((b[7]! - a[7]!) / h).toBeCloseTo(j[3 + i]!, 4);
    }
  });

  it('IK reaches the point within limits', () => {
    const sol = inverseKinematics3(links, [0, 0, 0], [0, 0, 0], 0.3, 0.5, 2.6)!;
    const p = forwardKinematics(links, sol);
    expect(p[6]).toBeCloseTo(0.3, 9);
    expect(p[7]).toBeCloseTo(0.5, 9);
    expect(Math.abs(sol[1]!)).toBeLessThanOrEqual(2.6);
    expect(inverseKinematics3(links, [0, 0, 0], [0, 0, 0], 2, 0, 2.6)).toBeUndefined();
  });
});

describe('describeEmbodiment', () => {
  it('names what differs from the source arm', () => {
    expect(describeEmbodiment(PRESETS.source!)).toBe('the source arm');
    expect(describeEmbodiment(PRESETS.perm!)).toBe(
      'actions drive other joints (action 1 -> joint 2, action 2 -> joint 3, action 3 -> joint 1)',
    );
    expect(describeEmbodiment(PRESETS.sign!)).toBe('joints 1, 2 turn the other way');
    expect(describeEmbodiment(PRESETS.links!)).toMatch(
      /^link lengths 0.25 \/ 0.45 \/ 0.30 \(source 0.40/,
    );
    expect(describeEmbodiment(PRESETS.rotate!)).toBe('the action space is rotated');
    expect(describeEmbodiment(PRESETS.combo!).split('; ').length).toBe(4);
  });
});
