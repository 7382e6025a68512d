// Probe for docs/results.md 2p: tries that have the policy's style *and* competence. Section 2o
// found that relabelled expert episodes fit a slot that acts like the oracle's, the policy's own
// tries on a stalled target do not (they are not competent), and a play-fitted servo's tries do
// not either (competent, but not the way the policy moves). Retargeting: identify from random
// play the robot's linear map from action to joint velocity (B_t: least squares of the next
// joint velocity on the current one and the action; the arm is linear away from clamps and joint
// limits), pick the source robot whose body explains the play's end-effector positions best (its
// link lengths and encoder offsets through forward kinematics; the source robots are ours, so
// their bodies are known), run the policy through that source's slot, and send B_t^-1 B_s a: the
// joint velocities the policy meant for the source arm, on the target's actuators. The tries are
// the policy's own way of moving, executed on the right joints; relabelled in hindsight they fit
// the free slot (from the mean of the source slots, as the oracle), then practice goes on from
// there. No expert and no action labels: what it needs is what practice needs (the end
// effector's position, the robot running the policy).
//   pnpm --filter @selfalign/experiments probe retarget.ts CKPT [--targets perm,src-33]
//     [--play 10] [--tries 10] [--steps 200] [--rounds 3] [--episodes 50] [--seed 0]
//     [--pick body|nearest] [--distill yes (also: the play episodes labelled by the retargeted source
//     slot fit the free slot, no tries)] [--from mean|source (the distilled slot's start)]
//     [--body map|body] [--draws 1 (teacher chunks per play frame)] [--dagger 0 (rounds: the
//     slot tries 10 episodes, the teacher labels the frames it visited, 100 more steps)]
//     [--raw out.json]
import { writeFileSync } from 'node:fs';
import { type AlignState, align, defaultAlignWeights, loadCheckpoint } from '@selfalign/align';
import {
  embodimentByName,
  episodesAsSamples,
  featureExtractor,
  recordEpisodes,
} from '@selfalign/cli/shared';
import { initBackend, Rng, tf } from '@selfalign/core';
import { disposeBatch, type TrainBatch } from '@selfalign/experts';
import {
  copySlot,
  fillWithSourceMean,
  firstFreeSlot,
  nearestSourceSlot,
  playSplit,
  policyController,
  practice,
} from '@selfalign/harness';
import {
  actionToCommand,
  type Body,
  type Controller,
  type Embodiment,
  type Episode,
  fitBody,
  hindsightEpisodes,
  identifyActionMap,
  invertMatrix,
  jacobian,
  kinematicError,
  type Matrix,
  randomController,
  retargetMap,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { arg } from './args.js';
import { fitActions, tableEvaluation } from './table-cells.js';

const targets = arg('--targets', 'perm,src-33').split(',');
const play = Number(arg('--play', '10'));
const tries = Number(arg('--tries', '10'));
const steps = Number(arg('--steps', '200'));
const rounds = Number(arg('--rounds', '3'));
const episodes = Number(arg('--episodes', '50'));
const s = Number(arg('--seed', '0'));
const pick = arg('--pick', 'body');
const raw = arg('--raw', '');
const distill = arg('--distill', 'no') === 'yes';
const from = arg('--from', 'mean');
const bodyMode = arg('--body', 'map');
const draws = Number(arg('--draws', '1'));
const dagger = Number(arg('--dagger', '0'));

/** The simulator's own action -> command map away from the clamps (a check on the identified map). */
function linearMap(e: Embodiment): Matrix {
  const n = e.links.length;
  return Array.from({ length: n }, (_, j) =>
    Array.from({ length: n }, (_, k) => {
      const a = Array.from({ length: n }, (_, i) => (i === k ? 0.1 : 0));
      return 10 * actionToCommand(e, a)[j]!;
    }),
  );
}

/**
 * The target action for the source policy's action `a` at measured angles `q`: 'map' sends
 * R a = Bt^-1 Bs a (the joints move as the policy meant the source's to); 'body' also corrects
 * for the body: the end-effector velocity the policy meant on the source's body (its Jacobian at
 * q + the source's offsets) is made on the target's fitted body, the rest of the joint motion
 * kept (w_t = w + Jt^+ (v - Jt w)). Scaled down as a whole to stay in [-1, 1].
 */
function actionMapper(
  mode: string,
  Bs: Matrix,
  Bt: Matrix,
  src: Body,
  tgt: Body,
): (q: ArrayLike<number>, a: ArrayLike<number>) => number[] {
  const BtInv = invertMatrix(Bt);
  const n = Bs.length;
  const mv = (M: Matrix, x: ArrayLike<number>) =>
    M.map((row) => row.reduce((acc, v, k) => acc + v * x[k]!, 0));
  const scale = (b: number[]) => {
    const peak = Math.max(1, ...b.map(Math.abs));
    return b.map((x) => x / peak);
  };
  return (q, a) => {
    const w = mv(Bs, a);
    if (mode === 'body') {
      const js = jacobian(
        src.links,
        Array.from({ length: n }, (_, j) => q[j]! + src.offsets[j]!),
      );
      const jt = jacobian(
        tgt.links,
        Array.from({ length: n }, (_, j) => q[j]! + tgt.offsets[j]!),
      );
      const row = (J: Float64Array, r: number, x: number[]) =>
        x.reduce((acc, v, k) => acc + J[r * n + k]! * v, 0);
      const e0 = row(js, 0, w) - row(jt, 0, w);
      const e1 = row(js, 1, w) - row(jt, 1, w);
      // Jt^T (Jt Jt^T + lambda I)^-1 e
      const lambda = 1e-4;
      const m00 = row(jt, 0, Array.from(jt.subarray(0, n))) + lambda;
      const m11 = row(jt, 1, Array.from(jt.subarray(n, 2 * n))) + lambda;
      const m01 = row(jt, 0, Array.from(jt.subarray(n, 2 * n)));
      const det = m00 * m11 - m01 * m01;
      const y0 = (m11 * e0 - m01 * e1) / det;
      const y1 = (m00 * e1 - m01 * e0) / det;
      for (let j = 0; j < n; j++) w[j]! += jt[j]! * y0 + jt[n + j]! * y1;
    }
    return scale(mv(BtInv, w));
  };
}

const anglesOf = (state: ArrayLike<number>, n: number) =>
  Array.from({ length: n }, (_, j) => Math.atan2(state[n + j]!, state[j]!));

await initBackend('wasm');
const ckpt = process.argv[2]!;
const { policy, info } = await loadCheckpoint(ckpt);
const c = policy.config;
const slotOf = (info['slots'] ?? {}) as Record<string, number>;
const sourceSlots = Object.values(slotOf);
const robotOf = new Map(Object.entries(slotOf).map(([r, k]) => [k, r]));
const slot = firstFreeSlot(policy, sourceSlots)!;
const side = c.vision.imageSize;
const env = { imageSize: side };
const extractor = await featureExtractor('default', process.cwd(), c.featureDim);
const evaluate = tableEvaluation(policy, slot, episodes, s);

const out: Record<string, unknown>[] = [];
const log = (target: string, what: string, r: Record<string, number>) => {
  out.push({ target, seed: s, what, ...r });
  console.log(
    `${new Date().toISOString()} ${target.padEnd(7)} ${what.padEnd(44)} success ${(100 * r['success']!).toFixed(0).padStart(3)}%${r['actionMse'] !== undefined ? `  action MSE ${r['actionMse'].toFixed(4)}` : ''}`,
  );
};

const record = async (e: Embodiment, seeds: number[]) =>
  (await runEpisodes(e, 'reach', seeds, randomController(s), { record: true, env })).episodes;
// each source's action map, from its own random play (the sources are ours; play is cheap)
const sourceMaps = new Map<string, Matrix>();
const sourceMap = async (name: string) => {
  let B = sourceMaps.get(name);
  if (!B) {
    B = identifyActionMap(await record(embodimentByName(name, 1), seedRange(10, 900_000)));
    sourceMaps.set(name, B);
  }
  return B;
};

/** `inner` (the policy through the source slot) with each action mapped at the robot's angles. */
const mapped = (inner: Controller, f: ReturnType<typeof actionMapper>): Controller => ({
  ...(inner.reset ? { reset: inner.reset.bind(inner) } : {}),
  async act(obs) {
    const out = await inner.act(obs);
    return out.map((a, i) => Float32Array.from(f(anglesOf(obs[i]!.state, a.length), a)));
  },
});

for (const t of targets) {
  const e = embodimentByName(t, 1);
  const base = 1_000_000 * (s + 1) + 10_000 * play;
  const t0 = performance.now();
  // the table's play episodes (the same seeds and controller as `results --play`)
  const playEps = await record(e, seedRange(play, base));
  const Bt = identifyActionMap(playEps);
  let source: string;
  if (pick === 'body') {
    const ranked = Object.keys(slotOf)
      .map((name) => ({ name, err: kinematicError(embodimentByName(name, 1), playEps) }))
      .sort((a, b) => a.err - b.err);
    source = ranked[0]!.name;
    console.log(
      `${t}: bodies nearest the play: ${ranked
        .slice(0, 3)
        .map((r) => `${r.name} ${r.err.toExponential(1)}`)
        .join(', ')}`,
    );
  } else {
    // the results table's label-free pick (state-dynamics loss on 10 random-play episodes)
    fillWithSourceMean(policy, slot, sourceSlots);
    const rec = await recordEpisodes(e, randomController(s), 'play', 10, base, extractor, c);
    const split = playSplit(policy, rec.samples, rec.meta, 16, new Rng(s + 11), slot, 0.2);
    const { nearest } = nearestSourceSlot(policy, split.train, sourceSlots, slot, {
      weights: defaultAlignWeights(c),
      seed: s,
    });
    for (const b of [...split.train, ...split.heldOut]) disposeBatch(b);
    source = robotOf.get(nearest)!;
  }
  const srcE = embodimentByName(source, 1);
  const Bs = await sourceMap(source);
  const fitted = fitBody(playEps, srcE);
  const f = actionMapper(bodyMode, Bs, Bt, srcE, fitted);
  const R = retargetMap(Bt, Bs);
  const truth = retargetMap(linearMap(e), linearMap(srcE));
  const fmt = (M: Matrix) => M.map((r) => r.map((x) => x.toFixed(2)).join(' ')).join(' | ');
  console.log(
    `${t}: source ${source}; R = ${fmt(R)} (the simulator's, lag aside: ${fmt(truth)}); fitted body ${fitted.links.map((x) => x.toFixed(2))} / ${fitted.offsets.map((x) => x.toFixed(2))} (error ${fitted.error.toExponential(1)})`,
  );
  // the retargeted policy alone, on the table's evaluation episodes
  copySlot(policy, slotOf[source]!, slot);
  const alone = await runEpisodes(
    e,
    'reach',
    seedRange(episodes, 700_000 + 10_000 * s),
    mapped(policyController(policy, { slot, rng: new Rng(710_000 + 10_000 * s) }), f),
    { env, parallel: 25 },
  );
  log(t, `retargeted ${source} slot (${bodyMode}, no fit)`, {
    success: alone.successRate,
    actionMse: alone.actionMse,
  });
  if (distill) {
    // no tries: the retargeted source slot labels the play frames (reach prompt and target in
    // view), and the free slot is fitted to those labels
    const teacher = new Rng(s * 1_000 + 99);
    // the teacher's chunks (`draws` per frame) on recorded episodes' frames, as labelled batches
    const labelledBatches = async (eps: Episode[], salt: number) => {
      const rec = await episodesAsSamples(e, eps, 'demo', extractor, c);
      const out: TrainBatch[] = [];
      for (let d = 0; d < draws; d++) {
        const batches = playSplit(
          policy,
          rec.samples,
          rec.meta,
          16,
          new Rng(s + salt + d),
          slot,
          0,
        ).train;
        for (const b of batches) {
          const chunk = policy.sampleActions(
            { ...b, slot: tf.fill([b.state.shape[0]!], slotOf[source]!, 'int32') },
            { rng: teacher, actionDims: Bt.length },
          );
          const states = b.state.arraySync() as number[][];
          const labels = (chunk.arraySync() as number[][][]).map((steps, i) =>
            steps.map((a) => f(anglesOf(states[i]!, Bt.length), a)),
          );
          chunk.dispose();
          b.actions.dispose();
          b.actionMask?.dispose();
          const { actionMask: _, ...rest } = b;
          out.push({ ...rest, actions: tf.tensor3d(labels) });
        }
      }
      return out;
    };
    const buffer = await labelledBatches(playEps, 13);
    if (from === 'mean') fillWithSourceMean(policy, slot, sourceSlots);
    else copySlot(policy, slotOf[source]!, slot);
    let state: AlignState | undefined;
    const fit = async (n: number) => {
      const o = await align(policy, buffer, {
        slot,
        parametrisation: 'free',
        init: 'current',
        maxSteps: n,
        lr: 1e-3,
        objective: 'action',
        seed: s,
        ...(state ? { state } : {}),
      });
      state = o.state;
    };
    await fit(steps);
    log(t, `distilled on ${play} play, ${steps} steps from ${from}, ${draws} draws`, {
      ...(await evaluate(e)),
      wallS: (performance.now() - t0) / 1000,
    });
    // DAgger: the slot tries, the teacher labels the frames it visited, fit on everything
    for (let r = 1; r <= dagger; r++) {
      const tried = await runEpisodes(
        e,
        'reach',
        seedRange(10, base + 30_000 + 1_000 * r),
        policyController(policy, { slot, rng: new Rng(s * 1_000 + r) }),
        { record: true, env },
      );
      buffer.push(...(await labelledBatches(tried.episodes, 1_000 * r)));
      await fit(100);
      log(t, `dagger round ${r} (tries reached ${(100 * tried.successRate).toFixed(0)}%)`, {
        ...(await evaluate(e)),
        wallS: (performance.now() - t0) / 1000,
      });
    }
    state?.dispose();
    for (const b of buffer) disposeBatch(b);
    if (tries === 0) continue;
    copySlot(policy, slotOf[source]!, slot);
  }
  // its tries, relabelled, fit the free slot from the source mean
  const eps = await hindsightEpisodes(
    e,
    seedRange(tries, base + 30_000),
    mapped(policyController(policy, { slot, rng: new Rng(s * 1_000 + 77) }), f),
    { horizon: 8, env },
  );
  const rec = await episodesAsSamples(e, eps, 'demo', extractor, c);
  fillWithSourceMean(policy, slot, sourceSlots);
  await fitActions(policy, slot, rec, s, steps);
  log(t, `fit on ${tries} retargeted tries, ${steps} steps`, {
    ...(await evaluate(e)),
    wallS: (performance.now() - t0) / 1000,
  });
  if (rounds > 0)
    await practice(policy, e, {
      slot,
      rounds,
      tries: 10,
      steps: 100,
      seed: s,
      firstSeed: base + 30_000,
      env,
      toSamples: (x) => episodesAsSamples(e, x, 'demo', extractor, c),
      onRound: async (r) =>
        log(t, `then practice round ${r.round}`, {
          ...(await evaluate(e)),
          trySuccess: r.trySuccess,
        }),
    });
}
if (raw)
  writeFileSync(
    raw,
    `${JSON.stringify({ ckpt, args: process.argv.slice(3), rows: out }, null, 2)}\n`,
  );
policy.dispose();
