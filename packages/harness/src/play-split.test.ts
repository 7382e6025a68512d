import { initBackend, Rng } from '@selfalign/core';
import type { DatasetMeta, Sample } from '@selfalign/data';
import { createPolicy, tiny } from '@selfalign/experts';
import { beforeAll, describe, expect, it } from 'vitest';
import { playSplit } from './play-split.js';

beforeAll(() => initBackend('wasm'));

const side = tiny.vision.imageSize;
const meta: DatasetMeta = {
  format: 'selfalign-frames/1',
  kind: 'play',
  fps: 10,
  imageShape: [side, side, 3],
  stateDim: 2,
  actionDim: 3,
  featureDim: tiny.featureDim,
};

/** Episode e has 3 + e frames; state[0] is a unique frame id. */
function samples(episodes: number): Sample[] {
  const out: Sample[] = [];
  let id = 0;
  for (let e = 0; e < episodes; e++)
    for (let f = 0; f < 3 + e; f++)
      out.push({
        episode: e,
        frame: f,
        task: 'reach the red target',
        embodiment: 'perm',
        isDemo: false,
        image: new Uint8Array(side * side * 3),
        state: Float32Array.from([id++, e]),
        nextState: new Float32Array(2),
        actions: new Float32Array(tiny.actionHorizon * 3),
        actionMask: new Uint8Array(tiny.actionHorizon).fill(1),
        nextFeatures: new Float32Array(tiny.featureDim),
      });
  return out;
}

describe('align play split', () => {
  it('holds out whole episodes and puts every other frame in exactly one batch per epoch', () => {
    const policy = createPolicy(tiny, 0);
    const all = samples(10); // 75 frames
    const s = playSplit(policy, all, meta, 8, new Rng(3), 2, 0.2);
    expect(s.heldOutEpisodes.length).toBe(2);
    expect(s.trainEpisodes.length).toBe(8);
    expect(s.trainEpisodes.some((e) => s.heldOutEpisodes.includes(e))).toBe(false);
    const rows = (batches: typeof s.train) =>
      batches.flatMap((b) => {
        const st = b.state.dataSync();
        const n = b.state.shape[0]!;
        const ds = b.state.shape[1]!;
        expect(Array.from(b.slot!.dataSync())).toEqual(new Array(n).fill(2));
        return Array.from({ length: n }, (_, i) => [st[i * ds]!, st[i * ds + 1]!] as const);
      });
    const train = rows(s.train);
    const held = rows(s.heldOut);
    const trainIds = train.map(([id]) => id);
    expect(new Set(trainIds).size).toBe(trainIds.length); // no frame twice
    expect(trainIds.length + held.length).toBe(all.length); // every frame somewhere
    for (const [, e] of train) expect(s.trainEpisodes).toContain(e);
    for (const [, e] of held) expect(s.heldOutEpisodes).toContain(e);
    expect(s.train.length).toBe(Math.ceil(train.length / 8));
    // shuffled: frames of one episode do not all sit in one batch
    const firstBatchEpisodes = new Set(rows([s.train[0]!]).map(([, e]) => e));
    expect(firstBatchEpisodes.size).toBeGreaterThan(1);
    policy.dispose();
  });

  it('keeps at least one training episode, and none held out with share 0', () => {
    const policy = createPolicy(tiny, 0);
    expect(playSplit(policy, samples(2), meta, 4, new Rng(1), 1, 0.9).trainEpisodes.length).toBe(1);
    expect(playSplit(policy, samples(3), meta, 4, new Rng(1), 1, 0).heldOut.length).toBe(0);
    policy.dispose();
  });
});
