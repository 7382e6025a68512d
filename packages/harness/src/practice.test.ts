import { initBackend, tf } from '@selfalign/core';
import { episodeSamples } from '@selfalign/data';
import { createPolicy, tiny } from '@selfalign/experts';
import { DEFAULT_CAMERA, type Episode, sourceEmbodiment, worldToImage } from '@selfalign/sim';
import { beforeAll, describe, expect, it } from 'vitest';
import { episodeData, framesMeta } from './frames.js';
import { type PracticeRound, practice } from './practice.js';
import { slotVector, writeSlotVector } from './slots.js';

beforeAll(() => initBackend('wasm'));

const side = tiny.vision.imageSize;
const e = sourceEmbodiment();
const meta = framesMeta(e, 'demo', side, tiny.featureDim);
// the relabelled tries as samples (zero features: the action loss does not read them)
const toSamples = async (episodes: Episode[]) => {
  seen.push(...episodes);
  const samples = episodes.flatMap((ep, i) => [
    ...episodeSamples(
      episodeData(ep, i, new Float32Array(ep.length * tiny.featureDim)),
      meta,
      tiny.actionHorizon,
    ),
  ]);
  return { samples, meta };
};
const seen: Episode[] = [];

describe('practice', () => {
  it('fits only the slot on its own relabelled tries, round after round, and leaves no tensor', async () => {
    const policy = createPolicy(tiny, 0);
    const slot = 3;
    const other = policy.params.paths().filter((p) => !/ttt/i.test(p));
    expect(other.length).toBeGreaterThan(0);
    const weightsOf = (paths: string[]) =>
      paths.map((p) => policy.params.get(p).dataSync().slice());
    const fixed = weightsOf(other);
    const slots = [0, 1, 2, 3].map((k) => slotVector(policy, k));
    const before = tf.memory().numTensors;
    const rounds: PracticeRound[] = [];
    const {
      rounds: out,
      tried,
      kept,
    } = await practice(policy, e, {
      slot,
      rounds: 2,
      tries: 2,
      steps: 3,
      lr: 1e-2,
      env: { imageSize: side },
      toSamples,
      onRound: (r) => void rounds.push(r),
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(out).toEqual(rounds);
    // keep 'last' (the default): the slot after the last round; each round's tries measured the
    // slot before its fit
    expect(kept).toBe(2);
    expect(tried).toEqual(out.map((r) => r.trySuccess));
    expect(out.map((r) => r.round)).toEqual([1, 2]);
    // every round adds its tries' frames to what is fitted: 2 tries of the full reach length
    const perRound = seen.slice(0, 2).reduce((a, ep) => a + ep.length, 0);
    expect(out.map((r) => r.frames)).toEqual([perRound, 2 * perRound]);
    for (const r of out) {
      expect(Number.isFinite(r.loss) && r.loss > 0).toBe(true);
      // a share of 2 tries that reached their real target
      expect([0, 0.5, 1]).toContain(r.trySuccess);
    }
    // the relabelled tries: targets where the end effector went, the policy's executed actions
    expect(seen).toHaveLength(4);
    expect(seen.every((ep) => ep.task === 'reach' && ep.actions.some((a) => a !== 0))).toBe(true);
    // only the slot moved
    expect(slotVector(policy, slot)).not.toEqual(slots[slot]);
    for (const k of [0, 1, 2]) expect(slotVector(policy, k)).toEqual(slots[k]);
    expect(weightsOf(other)).toEqual(fixed);
    // keep 'best': one more set of tries measures the last slot, and the slot whose tries
    // reached their target most often (the later on a tie) is left in place
    const start = slotVector(policy, slot);
    const after: Float32Array[] = [start];
    const best = await practice(policy, e, {
      slot,
      rounds: 2,
      tries: 2,
      steps: 3,
      lr: 1e-2,
      keep: 'best',
      env: { imageSize: side },
      toSamples,
      onRound: () => void after.push(slotVector(policy, slot)),
    });
    expect(best.tried).toHaveLength(3);
    const top = Math.max(...best.tried);
    expect(best.kept).toBe(best.tried.lastIndexOf(top));
    expect(slotVector(policy, slot)).toEqual(after[best.kept]);
    expect(after[2]).not.toEqual(after[0]);
    expect(tf.memory().numTensors).toBe(before);
    await expect(practice(policy, e, { slot, rounds: 0, toSamples })).rejects.toThrow(
      /rounds must be an integer >= 1, got 0/,
    );
    policy.dispose();
  });

  it('explores with noise, follows a guide, relabels at several horizons, and fits the most direct frames', async () => {
    const policy = createPolicy(tiny, 0);
    const slot = 3;
    const before = tf.memory().numTensors;
    const base = { slot, rounds: 1, tries: 2, steps: 2, env: { imageSize: side }, toSamples };
    seen.length = 0;
    await practice(policy, e, base);
    const plain = seen.splice(0);
    const start = slotVector(policy, slot);
    // the same seeds with noise: other executed actions, still in [-1, 1]
    await practice(policy, e, { ...base, explore: 0.5 });
    const noisy = seen.splice(0);
    expect(noisy[0]!.actions).not.toEqual(plain[0]!.actions);
    expect(Math.max(...noisy[0]!.actions.map(Math.abs))).toBeLessThanOrEqual(1);
    // two horizons: each try relabelled twice; a share of the most direct frames fitted
    const T = plain[0]!.length;
    const two = await practice(policy, e, { ...base, horizon: [4, 40] });
    expect(seen.splice(0).map((ep) => ep.seed)).toEqual([
      plain[0]!.seed,
      plain[0]!.seed,
      plain[1]!.seed,
      plain[1]!.seed,
    ]);
    expect(two.rounds[0]!.frames).toBe(4 * T);
    const half = await practice(policy, e, { ...base, horizon: [4, 40], directShare: 0.25 });
    expect(half.rounds[0]!.frames).toBe(T);
    expect(slotVector(policy, slot)).not.toEqual(start);
    expect(tf.memory().numTensors).toBe(before);
    // a guide with full weight: the tries execute (and the labels are) the guide's actions
    seen.length = 0;
    const fixed = Float64Array.from({ length: e.links.length }, () => 0.5);
    await practice(policy, e, {
      ...base,
      guide: { controller: { act: (obs) => obs.map(() => fixed) }, weight: 1 },
    });
    expect(seen.splice(0).every((ep) => ep.actions.every((a) => a === 0.5))).toBe(true);
    await expect(
      practice(policy, e, { ...base, guide: { controller: { act: () => [] }, weight: 2 } }),
    ).rejects.toThrow(/weight/);
    await expect(practice(policy, e, { ...base, explore: -1 })).rejects.toThrow(/explore/);
    await expect(practice(policy, e, { ...base, directShare: 0 })).rejects.toThrow(/directShare/);
    policy.dispose();
  });

  it('stops before a round whose tries reach stopAt, and leaves the slot they measured', async () => {
    const policy = createPolicy(tiny, 0);
    const slot = 3;
    const base = { slot, rounds: 2, tries: 2, steps: 2, env: { imageSize: side }, toSamples };
    const start = slotVector(policy, slot);
    const before = tf.memory().numTensors;
    // every rate reaches 0: round 1's tries stop it, nothing is relabelled or fitted
    seen.length = 0;
    const fitted: number[] = [];
    const stopped = await practice(policy, e, {
      ...base,
      stopAt: 0,
      onRound: (r) => void fitted.push(r.round),
    });
    expect(stopped.stoppedAt).toBe(1);
    expect(stopped.kept).toBe(0);
    expect(stopped.rounds).toEqual([]);
    expect(fitted).toEqual([]);
    expect(stopped.tried).toHaveLength(1);
    expect(seen).toEqual([]);
    expect(slotVector(policy, slot)).toEqual(start);
    expect(tf.memory().numTensors).toBe(before);
    // a rate the untrained policy's tries do not reach: the same rounds, the same slot as without
    const plain = await practice(policy, e, base);
    const after = slotVector(policy, slot);
    writeSlotVector(policy, slot, start);
    const gated = await practice(policy, e, { ...base, stopAt: 1 });
    expect(plain.tried.every((x) => x < 1)).toBe(true);
    expect(gated.stoppedAt).toBeUndefined();
    expect(gated.kept).toBe(2);
    expect(gated.tried).toEqual(plain.tried);
    expect(slotVector(policy, slot)).toEqual(after);
    expect(tf.memory().numTensors).toBe(before);
    await expect(practice(policy, e, { ...base, stopAt: 1.5 })).rejects.toThrow(
      /stopAt must be a share in \[0, 1\], got 1.5/,
    );
    policy.dispose();
  });

  it('reads the tries with a tracker: its positions become the targets, its verdict the gate', async () => {
    const policy = createPolicy(tiny, 0);
    const slot = 3;
    const base = { slot, rounds: 2, tries: 2, steps: 2, env: { imageSize: side }, toSamples };
    const calls: number[] = [];
    // a judge that sees the end effector at (0.3, 0.2) in every frame, at `d` from the target
    const judge = (d: number) => ({
      reached: (ep: Episode, tolerance: number) => {
        calls.push(ep.length);
        return d < tolerance;
      },
      track: (ep: Episode) =>
        Array.from({ length: ep.length }, () => [0.3, 0.2] as [number, number]),
    });
    const before = tf.memory().numTensors;
    const start = slotVector(policy, slot);
    // every frame judged on target: the untrained policy's tries "reach", so stopAt 1 stops
    const real = await practice(policy, e, { ...base, stopAt: 1 });
    expect(real.stoppedAt).toBeUndefined();
    writeSlotVector(policy, slot, start);
    const stopped = await practice(policy, e, { ...base, stopAt: 1, judge: judge(0) });
    expect(stopped).toMatchObject({ stoppedAt: 1, kept: 0, tried: [1], rounds: [] });
    // judged far: every round fits, on targets drawn where the judge put the end effector
    seen.length = 0;
    calls.length = 0;
    const far = await practice(policy, e, { ...base, keep: 'best', judge: judge(1) });
    expect(far.tried).toEqual([0, 0, 0]);
    // the third set of tries (keep 'best') was recorded full length for the judge
    expect(calls).toEqual([40, 40, 40, 40, 40, 40]);
    const [u, v] = worldToImage(DEFAULT_CAMERA, 0.3, 0.2);
    expect(seen).toHaveLength(4);
    for (const ep of seen)
      for (const t of [0, 20, 39]) {
        expect(ep.objects[4 * t]).toBeCloseTo(u, 5);
        expect(ep.objects[4 * t + 1]).toBeCloseTo(v, 5);
      }
    expect(tf.memory().numTensors).toBe(before);
    policy.dispose();
  });

  it('refits a refitting reader on every try so far before it reads a round', async () => {
    const policy = createPolicy(tiny, 0);
    const base = { slot: 3, rounds: 2, tries: 2, steps: 1, env: { imageSize: side }, toSamples };
    // a reader fitted on `n` tries reads a try as reached once it has seen 3 or more, and puts
    // the end effector at (0.1 n, 0.2)
    const fits: number[] = [];
    const reader = (n: number) => ({
      reached: () => n >= 3,
      track: (ep: Episode) =>
        Array.from({ length: ep.length }, () => [0.1 * n, 0.2] as [number, number]),
      refit: (tries: readonly Episode[]) => {
        fits.push(tries.length);
        return reader(tries.length);
      },
    });
    seen.length = 0;
    const done = await practice(policy, e, { ...base, judge: reader(0), refitOnTries: true });
    // round 1 read through the reader fitted on its 2 tries, round 2 on all 4
    expect(fits).toEqual([2, 4]);
    expect(done.tried).toEqual([0, 1]);
    // each round's targets where the refitted reader put the end effector
    for (const [i, n] of [2, 2, 4, 4].entries()) {
      const [u] = worldToImage(DEFAULT_CAMERA, 0.1 * n, 0.2);
      expect(seen[i]!.objects[0]).toBeCloseTo(u, 5);
    }
    // a reader that cannot refit, or none: a clear error
    const { refit: _, ...fixed } = reader(0);
    await expect(
      practice(policy, e, { ...base, judge: fixed, refitOnTries: true }),
    ).rejects.toThrow(/refitOnTries needs a judge that refits/);
    await expect(practice(policy, e, { ...base, refitOnTries: true })).rejects.toThrow(
      /refitOnTries needs a judge that refits/,
    );
    policy.dispose();
  });
});
