// The camera judge: trained on source frames with end-effector labels, read on frames alone.
import { CheckpointError, encodeParams, initBackend, tf } from '@selfalign/core';
import { createPolicy, type PolicyConfig, tiny } from '@selfalign/experts';
import { type Episode, getPreset, randomController, runEpisodes, seedRange } from '@selfalign/sim';
import { beforeAll, describe, expect, it } from 'vitest';
import { EffectorJudge, judgeEpisode } from './judge.js';

beforeAll(() => initBackend('wasm'));

// tiny's tower on 32 px frames (at 16 px the end effector is under a pixel)
const config: PolicyConfig = { ...tiny, vision: { ...tiny.vision, imageSize: 32 } };
const env = { imageSize: 32 };
const play = async (preset: string, n: number, from: number): Promise<Episode[]> =>
  (
    await runEpisodes(getPreset(preset), 'reach', seedRange(n, from), randomController(3), {
      record: true,
      untilSuccess: false,
      env,
    })
  ).episodes;
const framesOf = (eps: readonly Episode[]) => {
  const px = 32 * 32 * 3;
  const out = new Uint8Array(eps.reduce((s, ep) => s + ep.length, 0) * px);
  let at = 0;
  for (const ep of eps) {
    out.set(ep.frames.subarray(0, ep.length * px), at * px);
    at += ep.length;
  }
  return { frames: out, n: at };
};

describe('EffectorJudge', () => {
  it('learns where the end effector is from source frames, without a tensor left behind', async () => {
    const policy = createPolicy(config, 0);
    const train = [...(await play('source', 6, 10)), ...(await play('links', 6, 20))];
    const judge = new EffectorJudge(policy);
    const tensors = tf.memory().numTensors;
    const untrained = judge.train(train, { steps: 0 });
    expect(tf.memory().numTensors).toBe(tensors);
    const progress: number[] = [];
    const trained = judge.train(train, {
      steps: 200,
      lr: 1e-2,
      onProgress: (s) => progress.push(s),
    });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(progress).toEqual([200]);
    expect(trained).toBeLessThan(0.3 * untrained); // 0.78 -> 0.17 here
    // a robot it never saw: frames only, one distance per frame, nothing kept
    const other = await play('offset', 2, 30);
    const { frames, n } = framesOf(other);
    const d = judge.distances(frames, n);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(d).toHaveLength(n);
    expect(d.every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
    const verdict = judgeEpisode(judge, other[0]!, 0.06);
    expect(verdict.distance).toBeCloseTo(d[other[0]!.length - 1]!, 6);
    expect(verdict.reached).toBe(d.slice(0, other[0]!.length).some((v) => v < 0.06));
    judge.dispose();
    policy.dispose();
  });

  it("reads a try's target once, the median over its first frames, for every frame", async () => {
    const policy = createPolicy(config, 0);
    const judge = new EffectorJudge(policy);
    const ep = (await play('perm', 1, 40))[0]!;
    const tensors = tf.memory().numTensors;
    const per = judge.targetPositions(ep.frames, ep.length);
    const start = judge.startTargetPositions(ep.frames, ep.length, 3);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(start).toHaveLength(ep.length);
    const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[1]!;
    for (const p of start) {
      expect(p[0]).toBeCloseTo(mid(per.slice(0, 3).map((q) => q[0])), 6);
      expect(p[1]).toBeCloseTo(mid(per.slice(0, 3).map((q) => q[1])), 6);
    }
    // one frame: its own read; more frames asked than the try has: all of them
    expect(judge.startTargetPositions(ep.frames, ep.length, 1)[7]).toEqual(per[0]);
    const two = judge.startTargetPositions(ep.frames, 2, 50);
    expect(two[1]![0]).toBeCloseTo((per[0]![0] + per[1]![0]) / 2, 6);
    expect(() => judge.startTargetPositions(ep.frames, ep.length, 0)).toThrow(/k >= 1 frames/);
    judge.dispose();
    policy.dispose();
  });

  it('round-trips through its file, and a wrong, corrupt or foreign file is a clear error', async () => {
    const policy = createPolicy(config, 0);
    const judge = new EffectorJudge(policy);
    judge.train(await play('source', 2, 10), { steps: 5 });
    const bytes = await judge.encode({ policy: 'test' });
    const back = EffectorJudge.decode(policy, bytes, 'judge.safetensors');
    const { frames, n } = framesOf(await play('perm', 1, 40));
    expect(back.distances(frames, n)).toEqual(judge.distances(frames, n));
    expect(back.kind).toBe('tuned');
    expect(back.camera.span).toBe(judge.camera.span);
    expect(() =>
      EffectorJudge.decode(policy, bytes.subarray(0, bytes.length - 9), 'cut.safetensors'),
    ).toThrow(CheckpointError);
    const weights = await encodeParams(policy.params);
    expect(() => EffectorJudge.decode(policy, weights, 'policy.safetensors')).toThrow(
      /not a judge file/,
    );
    const wider = createPolicy({ ...config, vision: { ...config.vision, width: 48 } }, 0);
    expect(() => EffectorJudge.decode(wider, bytes, 'judge.safetensors')).toThrow(
      /judge\.safetensors.*shape/,
    );
    // frames that do not fit, episodes without labels
    expect(() => judge.distances(frames.subarray(0, 100), 1)).toThrow(/fewer than 1 frames/);
    const unlabelled = { ...(await play('source', 1, 10))[0]!, effector: undefined };
    expect(() => judge.train([unlabelled], { steps: 1 })).toThrow(/no end-effector positions/);
    for (const x of [judge, back]) x.dispose();
    wider.dispose();
    policy.dispose();
  });
});
