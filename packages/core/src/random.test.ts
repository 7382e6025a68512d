import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { flowTime, normalArray, randomNormal } from './random.js';
import { beta15, Rng } from './rng.js';

beforeAll(() => initBackend('wasm'));

describe('Rng', () => {
  it('is reproducible for a seed and differs between seeds', () => {
    const a = normalArray(new Rng(42), 100);
    const b = normalArray(new Rng(42), 100);
    const c = normalArray(new Rng(43), 100);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(Array.from(randomNormal(new Rng(42), [10, 10]).dataSync())).toEqual(Array.from(a));
  });

  it('pins the stream (a changed generator breaks saved experiments)', () => {
    const r = new Rng(0);
    expect([r.nextUint32(), r.nextUint32(), r.nextUint32()]).toMatchInlineSnapshot(`
      [
        3809008728,
        1133695204,
        53579671,
      ]
    `);
  });

  it('normals have mean 0 and std 1; uniforms are in [0, 1)', () => {
    const x = normalArray(new Rng(1), 200_000);
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const std = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(std - 1)).toBeLessThan(0.01);
    const r = new Rng(2);
    for (let i = 0; i < 10_000; i++) {
      const u = r.uniform();
      expect(u >= 0 && u < 1).toBe(true);
    }
  });

  it('Beta(1.5, 1) has mean 0.6 and flow time lies in [0.001, 1]', () => {
    const r = new Rng(5);
    let s = 0;
    for (let i = 0; i < 100_000; i++) s += beta15(r);
    expect(s / 100_000).toBeCloseTo(0.6, 2);
    const t = flowTime(new Rng(6), 10_000).dataSync() as Float32Array;
    expect(Math.min(...t)).toBeGreaterThanOrEqual(0.001);
    expect(Math.max(...t)).toBeLessThanOrEqual(1);
    expect(t.reduce((a, v) => a + v, 0) / t.length).toBeCloseTo(0.999 * 0.6 + 0.001, 2);
  });

  it('getState/fromState resumes a stream exactly', () => {
    const a = new Rng(12);
    a.normal();
    const b = Rng.fromState(a.getState());
    expect([a.normal(), a.nextUint32(), a.uniform()]).toEqual([
      b.normal(),
      b.nextUint32(),
      b.uniform(),
    ]);
    expect(() => Rng.fromState([1, 2])).toThrow(/not an Rng state/);
  });

  it('fork gives independent, reproducible streams; shuffle permutes', () => {
    const a = new Rng(9).fork('play');
    const b = new Rng(9).fork('play');
    const c = new Rng(9).fork('demo');
    expect(a.nextUint32()).toBe(b.nextUint32());
    expect(new Rng(9).fork('play').nextUint32()).not.toBe(c.nextUint32());
    const xs = new Rng(3).shuffle([0, 1, 2, 3, 4, 5, 6, 7]);
    expect([...xs].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(xs).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});
