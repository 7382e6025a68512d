import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@selfalign/core';
import { Rng } from '@selfalign/core/rng';
import { beforeAll, describe, expect, it } from 'vitest';
import { DataError } from './errors.js';
import { sampleStream } from './sample-stream.js';
import type { DatasetMeta } from './schema.js';
import {
  computeNormStats,
  loadNormStats,
  quantile,
  StatsAccumulator,
  saveNormStats,
} from './stats.js';
import { batched, episodeSamples, packBatch, shuffled, toTensors } from './window.js';
import { type EpisodeData, writeEpisodes } from './writer.js';

const meta: DatasetMeta = {
  format: 'selfalign-frames/1',
  kind: 'play',
  fps: 10,
  imageShape: [2, 2, 3],
  stateDim: 2,
  actionDim: 2,
  featureDim: 3,
};

/** Episode whose values encode (episode, frame) so windows can be checked exactly. */
function coded(index: number, length: number): EpisodeData {
  return {
    episodeIndex: index,
    task: 'reach',
    embodiment: 'perm',
    length,
    images: Uint8Array.from(
      { length: length * 12 },
      (_, i) => (index * 50 + Math.floor(i / 12)) % 256,
    ),
    states: Float32Array.from({ length: length * 2 }, (_, i) => index * 100 + Math.floor(i / 2)),
    actions: Float32Array.from(
      { length: length * 2 },
      (_, i) => index * 100 + Math.floor(i / 2) + (i % 2) * 0.5,
    ),
    features: Float32Array.from({ length: length * 3 }, (_, i) => index * 100 + Math.floor(i / 3)),
  };
}

let dir: string;
beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'selfalign-window-'));
});

describe('windowing', () => {
  it('chunks pad and mask past the episode end; next features and state clamp to the last frame', () => {
    const s = [...episodeSamples(coded(3, 5), meta, 3)];
    expect(s.length).toBe(5);
    expect(Array.from(s[0]!.actions)).toEqual([300, 300.5, 301, 301.5, 302, 302.5]);
    expect(Array.from(s[0]!.actionMask)).toEqual([1, 1, 1]);
    expect(Array.from(s[0]!.nextFeatures!)).toEqual([303, 303, 303]); // frame 0 + Ha
    expect(Array.from(s[0]!.nextState)).toEqual([303, 303]);
    expect(Array.from(s[3]!.actions)).toEqual([303, 303.5, 304, 304.5, 0, 0]);
    expect(Array.from(s[3]!.actionMask)).toEqual([1, 1, 0]);
    expect(Array.from(s[3]!.nextFeatures!)).toEqual([304, 304, 304]); // clamped
    expect(Array.from(s[3]!.nextState)).toEqual([304, 304]);
    expect(Array.from(s[4]!.actionMask)).toEqual([1, 0, 0]);
    expect(Array.from(s[4]!.state)).toEqual([304, 304]);
    expect(s[4]!.image[0]).toBe(154);
    expect(s.every((x) => !x.isDemo)).toBe(true);
    expect(() => [...episodeSamples(coded(0, 2), meta, 0)]).toThrow(/horizon/);
  });

  it('the shuffle buffer is a seeded permutation that mixes', async () => {
    const items = Array.from({ length: 100 }, (_, i) => i);
    const a: number[] = [];
    for await (const x of shuffled(items, 16, 1)) a.push(x);
    const b: number[] = [];
    for await (const x of shuffled(items, 16, 1)) b.push(x);
    expect(a).toEqual(b);
    expect([...a].sort((x, y) => x - y)).toEqual(items);
    expect(a).not.toEqual(items);
    const c: number[] = [];
    for await (const x of shuffled(items, 16, 2)) c.push(x);
    expect(c).not.toEqual(a);
  });

  it('streams batches from files across episodes, and makes TrainBatch tensors', async () => {
    const path = join(dir, 'win.arrow');
    await writeEpisodes(path, meta, [coded(0, 4), coded(1, 3)]);
    const batches = [];
    for await (const b of batched(
      sampleStream([path], { horizon: 2, shuffle: 4, seed: 3 }),
      3,
      meta.imageShape,
    ))
      batches.push(b);
    expect(batches.map((b) => b.size)).toEqual([3, 3, 1]);
    const seen = batches
      .flatMap((b) => Array.from(b.episodes, (e, i) => `${e}:${b.frames[i]}`))
      .sort();
    expect(seen).toEqual(['0:0', '0:1', '0:2', '0:3', '1:0', '1:1', '1:2']);
    const t = toTensors(batches[0]!);
    expect(t.images.shape).toEqual([3, 1, 2, 2, 3]);
    expect(t.actions.shape).toEqual([3, 2, 2]);
    expect(t.actionMask.shape).toEqual([3, 2]);
    expect('nextFeatures' in t && t.nextFeatures.shape).toEqual([3, 3]);
    // each row's next state is its own frame's + Ha (2), clamped to its episode's last frame
    const rows = batches[0]!;
    const next = t.nextState.arraySync() as number[][];
    for (let i = 0; i < rows.size; i++) {
      const e = rows.episodes[i]!;
      const last = e === 0 ? 3 : 2;
      const f = Math.min(rows.frames[i]! + 2, last);
      expect(next[i]).toEqual([e * 100 + f, e * 100 + f]);
    }
    expect(Array.from(t.isDemo.dataSync())).toEqual([0, 0, 0]);
  });

  it('mixed shapes in one batch are an error', () => {
    const a = [...episodeSamples(coded(0, 2), meta, 2)];
    const b = [...episodeSamples(coded(1, 2), { ...meta, featureDim: undefined }, 2)];
    expect(() => packBatch([a[0]!, b[0]!], meta.imageShape)).toThrow(DataError);
  });
});

describe('norm stats', () => {
  it('match a direct computation (mean, population std, numpy-linear q01/q99)', async () => {
    const rng = new Rng(5);
    const eps = [0, 1, 2].map((i) => ({
      ...coded(i, 40),
      states: Float32Array.from({ length: 80 }, () => rng.normal() * 3 + 1),
    }));
    const path = join(dir, 'stats.arrow');
    await writeEpisodes(path, meta, eps);
    const stats = await computeNormStats([path]);
    const col = (j: number) =>
      eps.flatMap((e) => Array.from(e.states).filter((_, i) => i % 2 === j));
    for (const j of [0, 1]) {
      const x = col(j);
      const mean = x.reduce((a, v) => a + v, 0) / x.length;
      const std = Math.sqrt(x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length);
      const sorted = Float32Array.from(x).sort();
      expect(stats.state.mean[j]).toBeCloseTo(mean, 6);
      expect(stats.state.std[j]).toBeCloseTo(std, 6);
      expect(stats.state.q01[j]).toBeCloseTo(quantile(sorted, 0.01), 6);
      expect(stats.state.q99[j]).toBeCloseTo(quantile(sorted, 0.99), 6);
    }
    expect(quantile([0, 10], 0.5)).toBe(5);
    expect(quantile([1, 2, 3, 4, 5], 0.01)).toBeCloseTo(1.04, 10);
  });

  it('the reservoir keeps quantiles close on long streams', () => {
    const acc = new StatsAccumulator(1, 5000, 1);
    const rng = new Rng(2);
    const values = Float32Array.from({ length: 200_000 }, () => rng.uniform());
    acc.add(values);
    const s = acc.result();
    expect(s.mean[0]).toBeCloseTo(0.5, 2);
    expect(Math.abs(s.q01[0]! - 0.01)).toBeLessThan(0.005);
    expect(Math.abs(s.q99[0]! - 0.99)).toBeLessThan(0.005);
  });

  it('save/load in openpi layout; bad files are clear errors', async () => {
    const path = join(dir, 'norm_stats.json');
    const stats = {
      state: { mean: [1], std: [2], q01: [0], q99: [3] },
      actions: { mean: [0, 1], std: [1, 1], q01: [-1, 0], q99: [1, 2] },
    };
    await saveNormStats(path, stats);
    expect(await loadNormStats(path)).toEqual(stats);
    await writeFile(join(dir, 'bad.json'), '{"norm_stats": {"state": {}}}');
    await expect(loadNormStats(join(dir, 'bad.json'))).rejects.toThrow(
      /bad.json: norm_stats.state.mean is not a list of finite numbers/,
    );
    await expect(loadNormStats(join(dir, 'none.json'))).rejects.toThrow(
      /none.json: file not found/,
    );
    await expect(computeNormStats([])).rejects.toThrow(/no rows/);
  });
});
