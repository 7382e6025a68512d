import { initBackend, tf } from '@selfalign/core';
import { episodeSamples } from '@selfalign/data';
import { createPolicy, tiny } from '@selfalign/experts';
import {
  actionToCommand,
  type Embodiment,
  type Episode,
  GEOMETRY,
  getPreset,
  type Matrix,
  randomController,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { beforeAll, describe, expect, it } from 'vitest';
import { episodeData, framesMeta } from './frames.js';
import { retarget } from './retarget.js';
import { copySlot, slotVector } from './slots.js';

beforeAll(() => initBackend('wasm'));

const side = tiny.vision.imageSize;
const env = { imageSize: side };
const target = getPreset('perm'); // the source arm's body, its actions on other joints
const meta = framesMeta(target, 'play', side, tiny.featureDim);
// the play as samples (zero features: the action loss does not read them)
const toSamples = async (episodes: Episode[]) => ({
  samples: episodes.flatMap((ep, i) => [
    ...episodeSamples(
      episodeData(ep, i, new Float32Array(ep.length * tiny.featureDim)),
      meta,
      tiny.actionHorizon,
    ),
  ]),
  meta,
});
const commandMap = (e: Embodiment): Matrix =>
  [0, 1, 2].map((j) =>
    [0, 1, 2].map(
      (k) =>
        10 *
        actionToCommand(
          e,
          [0, 1, 2].map((i) => (i === k ? 0.1 : 0)),
        )[j]!,
    ),
  );

// perm's random play, full length (8 episodes of 40 frames)
const recordPlay = async () =>
  (
    await runEpisodes(target, 'reach', seedRange(8, 40), randomController(2), {
      record: true,
      untilSuccess: false,
      env,
    })
  ).episodes;
// the source arm's body among two others
const threeSources = () => [
  { name: 'links', slot: 0, embodiment: getPreset('links') },
  { name: 'source', slot: 1, embodiment: getPreset('source') },
  { name: 'offset', slot: 2, embodiment: getPreset('offset') },
];

describe('retarget', () => {
  it("picks the source whose body explains the play, maps its actions onto the target's joints, and fits only the slot", async () => {
    const policy = createPolicy(tiny, 0);
    const sources = threeSources();
    const play = await recordPlay();
    const other = policy.params.paths().filter((p) => !/ttt/i.test(p));
    const fixed = other.map((p) => policy.params.get(p).dataSync().slice());
    const slots = [0, 1, 2].map((k) => slotVector(policy, k));
    const before = slotVector(policy, 3);
    const tensors = tf.memory().numTensors;
    const r = await retarget(policy, {
      slot: 3,
      sources,
      play,
      toSamples,
      steps: 3,
      lr: 1e-2,
      env,
    });
    expect(tf.memory().numTensors).toBe(tensors);
    // the source arm's body explains perm's play exactly; the others do not
    expect(r.source).toBe('source');
    expect(r.sourceSlot).toBe(1);
    expect(r.bodies.map((b) => b.name)).toEqual(['source', expect.any(String), expect.any(String)]);
    expect(r.bodies[0]!.error).toBeLessThan(1e-10);
    expect(r.bodies[1]!.error).toBeGreaterThan(1e-3);
    // R = B_perm^-1 B_source: the permutation undone (the two share their actuators' lag)
    const truth = commandMap(target);
    const src = commandMap(getPreset('source'));
    for (let k = 0; k < 3; k++) {
      // perm's joints under R e_k move as the source's joints under e_k
      const moved = truth.map((row) => row.reduce((a, x, i) => a + x * r.map[i]![k]!, 0));
      moved.forEach((v, j) => expect(v).toBeCloseTo(src[j]![k]!, 2));
    }
    expect(r.losses).toHaveLength(3);
    expect(r.losses.every((l) => Number.isFinite(l) && l > 0)).toBe(true);
    // only the free slot moved
    expect(slotVector(policy, 3)).not.toEqual(before);
    for (const k of [0, 1, 2]) expect(slotVector(policy, k)).toEqual(slots[k]);
    expect(other.map((p) => policy.params.get(p).dataSync().slice())).toEqual(fixed);
    policy.dispose();
  });

  it('DAgger rounds: the slot tries, the teacher labels the visited frames, the fit goes on', async () => {
    const policy = createPolicy(tiny, 0);
    const sources = [{ name: 'source', slot: 1, embodiment: getPreset('source') }];
    const play = await recordPlay();
    const seen: { round: number; frames: number; trySuccess: number; loss: number }[] = [];
    const slots: Float32Array[] = [];
    const tensors = tf.memory().numTensors;
    const r = await retarget(policy, {
      slot: 3,
      sources,
      play,
      toSamples,
      steps: 2,
      rounds: 2,
      tries: 2,
      roundSteps: 3,
      robot: target,
      env,
      onRound: (x) => {
        seen.push(x);
        slots.push(slotVector(policy, 3));
      },
    });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(seen.map((x) => x.round)).toEqual([0, 1, 2]);
    // the play fit first (no tries), then each round adds its 2 tries' frames
    expect(seen[0]!.frames).toBe(8 * 40);
    expect(Number.isNaN(seen[0]!.trySuccess)).toBe(true);
    expect(seen[1]!.frames).toBeGreaterThan(seen[0]!.frames);
    expect(seen[2]!.frames).toBeGreaterThan(seen[1]!.frames);
    for (const x of seen.slice(1)) expect([0, 0.5, 1]).toContain(x.trySuccess);
    expect(r.losses).toHaveLength(2 + 3 + 3);
    // every round moves the slot
    expect(slots[1]).not.toEqual(slots[0]);
    expect(slots[2]).not.toEqual(slots[1]);
    // keep 'best': every fit measured by tries (the last by tries of its own), the best kept
    const snaps: Float32Array[] = [];
    const kb = await retarget(policy, {
      ...{ slot: 3, sources, play, toSamples, steps: 2, rounds: 2, tries: 2, roundSteps: 3 },
      ...{ robot: target, env, keep: 'best' as const },
      onRound: () => {
        snaps.push(slotVector(policy, 3));
      },
    });
    expect(kb.tried).toHaveLength(3);
    for (const x of kb.tried) expect([0, 0.5, 1]).toContain(x);
    const top = Math.max(...kb.tried);
    expect(kb.kept).toBe(kb.tried.lastIndexOf(top));
    expect(slotVector(policy, 3)).toEqual(snaps[kb.kept]);
    expect(r.kept).toBe(2);
    expect(r.tried).toHaveLength(2);
    await expect(
      retarget(policy, { slot: 3, sources, play, toSamples, rounds: 1 }),
    ).rejects.toThrow(/rounds of tries need the robot/);
    await expect(retarget(policy, { slot: 3, sources, play, toSamples, steps: 0 })).rejects.toThrow(
      /retarget: steps must be an integer >= 1, got 0/,
    );
    await expect(
      retarget(policy, { slot: 3, sources, play, toSamples, rounds: 1.5, robot: target }),
    ).rejects.toThrow(/retarget: rounds must be an integer >= 0, got 1.5/);
    policy.dispose();
  });

  it('picks the teacher among the nearest bodies by tries when asked', async () => {
    const policy = createPolicy(tiny, 0);
    const sources = threeSources();
    const play = await recordPlay();
    const opts = { slot: 3, sources, play, toSamples, steps: 1, env };
    // by body alone: no tries
    const one = await retarget(policy, opts);
    expect(one.candidates).toEqual([]);
    const tensors = tf.memory().numTensors;
    const r = await retarget(policy, { ...opts, candidates: 2, pickTries: 2, robot: target });
    expect(tf.memory().numTensors).toBe(tensors);
    // the two nearest bodies tried, in body order; the best of them teaches
    expect(r.candidates.map((c) => c.name)).toEqual(r.bodies.slice(0, 2).map((b) => b.name));
    for (const c of r.candidates) {
      expect([0, 0.5, 1]).toContain(c.success);
      expect(c.distance).toBeGreaterThan(0);
    }
    const best = [...r.candidates].sort(
      (a, b) => b.success - a.success || a.distance - b.distance,
    )[0]!;
    expect(r.source).toBe(best.name);
    expect(r.sourceSlot).toBe(sources.find((x) => x.name === best.name)!.slot);
    // an untrained policy's tries differ in how near they end
    expect(r.candidates[0]!.distance).not.toBe(r.candidates[1]!.distance);
    await expect(retarget(policy, { ...opts, candidates: 2 })).rejects.toThrow(
      /picking among candidates by tries need the robot/,
    );
    await expect(
      retarget(policy, { ...opts, candidates: 2, pickTries: 0, robot: target }),
    ).rejects.toThrow(/retarget: pickTries must be an integer >= 1, got 0/);
    // alsoTry: a source outside the first k is tried after them; the first k read as before
    const third = r.bodies[2]!.name;
    const also = await retarget(policy, {
      ...opts,
      candidates: 2,
      pickTries: 2,
      robot: target,
      alsoTry: [third, r.bodies[0]!.name, third],
    });
    expect(also.candidates.map((c) => c.name)).toEqual([
      ...r.bodies.slice(0, 2).map((b) => b.name),
      third,
    ]);
    expect(also.candidates.slice(0, 2)).toEqual(r.candidates);
    // with one candidate, alsoTry alone makes it a pick by tries
    const pair = await retarget(policy, { ...opts, pickTries: 2, robot: target, alsoTry: [third] });
    expect(pair.candidates.map((c) => c.name)).toEqual([r.bodies[0]!.name, third]);
    await expect(retarget(policy, { ...opts, alsoTry: [third] })).rejects.toThrow(/need the robot/);
    await expect(
      retarget(policy, { ...opts, robot: target, alsoTry: ['src-nowhere'] }),
    ).rejects.toThrow(/retarget: alsoTry names no source: src-nowhere/);
    policy.dispose();
  });

  it('with a camera judge, the tries run full length and the judge, not the simulator, picks', async () => {
    const policy = createPolicy(tiny, 0);
    const sources = threeSources();
    const play = await recordPlay();
    const opts = {
      slot: 3,
      sources,
      play,
      toSamples,
      steps: 1,
      env,
      candidates: 3,
      pickTries: 2,
      robot: target,
    };
    const plain = await retarget(policy, opts);
    // a judge that sees the last candidate tried within reach in every frame, the others far
    const seen: number[] = [];
    let call = 0;
    const judge = {
      distances: (_frames: Uint8Array, n: number) => {
        seen.push(n);
        const last = call++ >= 2 * 2; // two tries per candidate, the third candidate's
        return Array.from({ length: n }, (_, t) => (last ? 0.01 : 0.5 + t));
      },
    };
    const r = await retarget(policy, { ...opts, judge });
    expect(seen).toHaveLength(6);
    expect(new Set(seen)).toEqual(new Set([40])); // no stop at success
    expect(r.candidates.map((c) => c.name)).toEqual(plain.candidates.map((c) => c.name));
    expect(r.candidates.map((c) => c.success)).toEqual([0, 0, 1]);
    expect(r.candidates[0]!.distance).toBeCloseTo(0.5 + 39, 6);
    expect(r.candidates[2]!.distance).toBeCloseTo(0.01, 6);
    expect(r.source).toBe(r.candidates[2]!.name);
    // a reader of whole tries (a body tracker, say) reads them its own way: here the first
    // candidate's reached and ended nearest, the others not
    const lengths: number[] = [];
    let read = 0;
    const reader = {
      verdict: (ep: Episode, tolerance: number) => {
        lengths.push(ep.length);
        expect(tolerance).toBe(GEOMETRY.reachTolerance);
        const first = read++ < 2;
        return { reached: first, distance: first ? 0.02 : 0.3, closest: first ? 0.01 : 0.2 };
      },
    };
    const byReader = await retarget(policy, { ...opts, judge: reader });
    expect(lengths).toEqual([40, 40, 40, 40, 40, 40]);
    expect(byReader.candidates.map((c) => c.success)).toEqual([1, 0, 0]);
    expect(byReader.candidates.map((c) => c.distance)).toEqual([0.02, 0.3, 0.3]);
    expect(byReader.candidates.map((c) => c.approach)).toEqual([0.01, 0.2, 0.2]);
    expect(byReader.source).toBe(byReader.candidates[0]!.name);
    // pickBy 'approach' reads the closest approach, not the count: the first candidate reaches
    // one try of two and misses the other by far, the second comes close in both and reaches
    // none; the count picks the first, the approach the second
    const closest = [0.01, 0.5, 0.06, 0.07, 0.3, 0.3];
    const tol = GEOMETRY.reachTolerance;
    expect(tol).toBeGreaterThan(0.01);
    expect(tol).toBeLessThanOrEqual(0.06);
    const byClosest = () => {
      let i = 0;
      return {
        verdict: (_ep: Episode, tolerance: number) => {
          const c = closest[i++]!;
          return { reached: c < tolerance, distance: c, closest: c };
        },
      };
    };
    const counted = await retarget(policy, { ...opts, judge: byClosest() });
    expect(counted.source).toBe(counted.candidates[0]!.name);
    const approached = await retarget(policy, { ...opts, judge: byClosest(), pickBy: 'approach' });
    expect(approached.candidates.map((c) => c.success)).toEqual([0.5, 0, 0]);
    expect(approached.candidates[1]!.approach).toBeCloseTo(0.065, 9);
    expect(approached.source).toBe(approached.candidates[1]!.name);
    // refitOnTries: every candidate tries, then the reader is fitted again on all the tries
    // (once) and that reader reads them; here the refitted one sees the third candidate reach
    const refits: number[] = [];
    const refitting = {
      verdict: () => ({ reached: false, distance: 0.3, closest: 0.3 }),
      refit: (tries: readonly Episode[]) => {
        refits.push(tries.length);
        let i = 0;
        return {
          verdict: () => {
            const third = i++ >= 4;
            return { reached: third, distance: 0.3, closest: third ? 0.02 : 0.3 };
          },
        };
      },
    };
    const refitted = await retarget(policy, { ...opts, judge: refitting, refitOnTries: true });
    expect(refits).toEqual([6]);
    expect(refitted.candidates.map((c) => c.success)).toEqual([0, 0, 1]);
    expect(refitted.source).toBe(refitted.candidates[2]!.name);
    await expect(retarget(policy, { ...opts, judge: reader, refitOnTries: true })).rejects.toThrow(
      /refitOnTries needs a judge that refits on recorded tries/,
    );
    // the simulator's read has an approach too: each try's smallest distance, at most the last
    for (const c of plain.candidates) expect(c.approach).toBeLessThanOrEqual(c.distance);
    await expect(retarget(policy, { ...opts, pickBy: 'nearest' as 'approach' })).rejects.toThrow(
      /pickBy must be 'reached' or 'approach', got nearest/,
    );
    policy.dispose();
  });

  it("keep 'best' under a judge: the rounds' tries run full length and the judge's read keeps the fit", async () => {
    const policy = createPolicy(tiny, 0);
    const sources = [{ name: 'source', slot: 1, embodiment: getPreset('source') }];
    const play = await recordPlay();
    const base = {
      slot: 3,
      sources,
      play,
      toSamples,
      steps: 2,
      rounds: 2,
      tries: 2,
      roundSteps: 2,
    };
    // the judge reads round 1's tries (the play fit's slot) reached, round 2's (round 1's fit)
    // not, and one of the last fit's own two tries; the simulator is not asked
    const reads = [true, true, false, false, false, true];
    const lengths: number[] = [];
    const reader = () => {
      let i = 0;
      return {
        verdict: (ep: Episode) => {
          lengths.push(ep.length);
          const reached = reads[i++]!;
          return { reached, distance: reached ? 0.01 : 0.3, closest: reached ? 0.01 : 0.3 };
        },
      };
    };
    const snaps: Float32Array[] = [];
    const rounds: number[] = [];
    const tensors = tf.memory().numTensors;
    const r = await retarget(policy, {
      ...base,
      ...{ robot: target, env, keep: 'best' as const, judge: reader() },
      onRound: (x) => {
        snaps.push(slotVector(policy, 3));
        rounds.push(x.trySuccess);
      },
    });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(lengths).toEqual([40, 40, 40, 40, 40, 40]); // no stop at success
    expect(r.tried).toEqual([1, 0, 0.5]);
    expect(rounds.slice(1)).toEqual([1, 0]);
    expect(r.kept).toBe(0);
    expect(slotVector(policy, 3)).toEqual(snaps[0]);
    // with refitOnTries the reader is fitted again on every try so far before each read
    const refits: number[] = [];
    const refitting = {
      verdict: () => ({ reached: false, distance: 0.3, closest: 0.3 }),
      refit: (tries: readonly Episode[]) => {
        refits.push(tries.length);
        return { verdict: () => ({ reached: true, distance: 0.01, closest: 0.01 }) };
      },
    };
    const refitted = await retarget(policy, {
      ...base,
      ...{ robot: target, env, keep: 'best' as const, judge: refitting, refitOnTries: true },
    });
    expect(refits).toEqual([2, 4, 6]);
    expect(refitted.tried).toEqual([1, 1, 1]);
    expect(refitted.kept).toBe(2);
    // keep 'last' under a judge leaves the rounds to the simulator (its tries stop at success)
    const last = await retarget(policy, { ...base, robot: target, env, judge: reader() });
    expect(last.kept).toBe(2);
    for (const x of last.tried) expect([0, 0.5, 1]).toContain(x);
    policy.dispose();
  });

  it('ranks the sources by perception when the play has no end-effector positions', async () => {
    const policy = createPolicy(tiny, 0);
    copySlot(policy, 0, 1); // two sources with one slot's weights
    const sources = threeSources();
    const bare = (await recordPlay()).map(({ effector: _, ...ep }) => ep as Episode);
    const slots = [0, 1, 2].map((k) => slotVector(policy, k));
    const opts = { slot: 3, sources, play: bare, toSamples, steps: 1, env };
    await expect(retarget(policy, opts)).rejects.toThrow(
      /ranking the sources by body needs the play's end-effector positions/,
    );
    const tensors = tf.memory().numTensors;
    const r = await retarget(policy, { ...opts, rank: 'perception', rankBatches: 2 });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(r.bodies).toEqual([]);
    expect(r.ranking.map((x) => x.name).sort()).toEqual(['links', 'offset', 'source']);
    const scores = r.ranking.map((x) => x.score);
    expect(scores.every((x) => Number.isFinite(x) && x > 0)).toBe(true);
    expect(scores).toEqual([...scores].sort((a, b) => a - b));
    // one noise draw for all: the same slot scores the same; another slot does not
    const of = (n: string) => r.ranking.find((x) => x.name === n)!.score;
    expect(of('source')).toBe(of('links'));
    expect(of('offset')).not.toBe(of('links'));
    expect(r.source).toBe(r.ranking[0]!.name);
    for (const k of [0, 1, 2]) expect(slotVector(policy, k)).toEqual(slots[k]);
    // with the end effector the body ranks, and the ranking is the body order
    const tracked = await retarget(policy, { ...opts, play: await recordPlay() });
    expect(tracked.ranking).toEqual(tracked.bodies.map((b) => ({ name: b.name, score: b.error })));
    await expect(retarget(policy, { ...opts, rank: 'perception', rankBatches: 0 })).rejects.toThrow(
      /rankBatches must be an integer >= 1, got 0/,
    );
    policy.dispose();
  });

  it('says what is missing', async () => {
    const policy = createPolicy(tiny, 0);
    const opts = { slot: 3, play: [] as Episode[], toSamples, sources: [] };
    await expect(retarget(policy, opts)).rejects.toThrow(/no source robots/);
    await expect(
      retarget(policy, {
        ...opts,
        sources: [{ name: 'source', slot: 0, embodiment: getPreset('source') }],
      }),
    ).rejects.toThrow(/no play episodes/);
    policy.dispose();
  });
});
