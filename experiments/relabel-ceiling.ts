// Probe for docs/results.md 2o: is practice limited by its labels (hindsight relabelling) or by
// its tries (what the policy does on the new robot)? The free slot is fitted from the mean of the
// source slots, as the oracle adapter (action loss, 200 Adam steps at 1e-3), on four data sets of
// the same robot: the oracle's 10 expert demos (true targets, stop at success); 10 and 40 expert
// episodes relabelled in hindsight (full length, frame t's target where the end effector was H
// steps later: practice's labels with the expert's tries); 10 random-play episodes relabelled
// the same way (section 2m). If relabelled expert tries act like the oracle, relabelling loses
// nothing and practice is limited by its tries.
//   pnpm --filter @selfalign/experiments probe relabel-ceiling.ts CKPT [--targets perm,src-33]
//     [--horizon 8] [--steps 200] [--episodes 50] [--seed 0] [--raw out.json]
import { writeFileSync } from 'node:fs';
import { align, loadCheckpoint } from '@selfalign/align';
import { embodimentByName, episodesAsSamples, featureExtractor } from '@selfalign/cli/shared';
import { initBackend, Rng } from '@selfalign/core';
import type { DatasetMeta, Sample } from '@selfalign/data';
import { disposeBatch } from '@selfalign/experts';
import { fillWithSourceMean, firstFreeSlot, playSplit, policyController } from '@selfalign/harness';
import {
  type Controller,
  type Embodiment,
  expertController,
  heldRandomController,
  hindsightEpisodes,
  ouController,
  randomController,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { arg } from './args.js';

const targets = arg('--targets', 'perm,src-33').split(',');
const horizon = Number(arg('--horizon', '8'));
const steps = Number(arg('--steps', '200'));
const episodes = Number(arg('--episodes', '50'));
const s = Number(arg('--seed', '0'));
const raw = arg('--raw', '');
const only = arg('--sets', 'oracle,expert10,expert40,random10').split(',');

const servoPlay = Number(arg('--servo-play', '20'));

/**
 * A servo that knows nothing of the robot: local gains learnt from held-random play (the k
 * frames nearest in proprioception, cos q and sin q), steering the end effector toward the
 * target. It needs what relabelling needs (where the end effector and the target are, a
 * tracker on hardware) and no kinematics, expert or label.
 */
const servo = async (e: Embodiment, seeds: readonly number[], k = 48): Promise<Controller> => {
  const feats: Float32Array[] = [];
  const acts: Float64Array[] = [];
  const steps: [number, number][] = [];
  const inner = heldRandomController(s + 1, 8);
  const last = new Map<
    number,
    { f: Float32Array; a: Float64Array; ee: [number, number]; t: number }
  >();
  const logger: Controller = {
    reset: (i, sd) => {
      last.delete(i);
      inner.reset?.(i, sd);
    },
    async act(obs) {
      const out = await inner.act(obs);
      obs.forEach((o, i) => {
        const ee = o.env.endEffector();
        const prev = last.get(o.index);
        // the held action's settled part (the lag has passed): one step's motion per action
        if (prev && prev.t % 8 >= 3) {
          feats.push(prev.f);
          acts.push(prev.a);
          steps.push([ee[0] - prev.ee[0], ee[1] - prev.ee[1]]);
        }
        last.set(o.index, {
          f: Float32Array.from(o.state.subarray(0, 2 * o.env.n)),
          a: Float64Array.from(out[i]!),
          ee,
          t: o.step,
        });
      });
      return out;
    },
  };
  await runEpisodes(e, 'reach', seeds, logger, { untilSuccess: false, env });
  const n = acts[0]!.length;
  return {
    act: (obs) =>
      obs.map((o) => {
        const f = o.state.subarray(0, 2 * n);
        const near = feats
          .map((g, i) => ({ i, d: g.reduce((a, x, j) => a + (x - f[j]!) ** 2, 0) }))
          .sort((a, b) => a.d - b.d)
          .slice(0, k);
        // G (2 x n) = (sum dx a^T)(sum a a^T + lambda I)^-1, the local gain from action to motion
        const S = Array.from({ length: n }, (_, r) =>
          Array.from({ length: n }, (_, c) => (r === c ? 1e-3 : 0)),
        );
        const C = [new Array<number>(n).fill(0), new Array<number>(n).fill(0)];
        for (const { i } of near) {
          const ai = acts[i]!;
          for (let r = 0; r < n; r++) {
            for (let c = 0; c < n; c++) S[r]![c]! += ai[r]! * ai[c]!;
            C[0]![r]! += steps[i]![0] * ai[r]!;
            C[1]![r]! += steps[i]![1] * ai[r]!;
          }
        }
        // G S = C: solve S^T G^T = C^T row by row (S is symmetric)
        const g = C.map((row) => solve(S, row));
        const [ex, ey] = o.env.endEffector();
        const d = [o.env.target[0] - ex, o.env.target[1] - ey];
        // a = G^T (G G^T + mu I)^-1 d: the smallest action that moves by d
        const m00 = g[0]!.reduce((a, x) => a + x * x, 0) + 1e-6;
        const m11 = g[1]!.reduce((a, x) => a + x * x, 0) + 1e-6;
        const m01 = g[0]!.reduce((a, x, j) => a + x * g[1]![j]!, 0);
        const det = m00 * m11 - m01 * m01;
        const y0 = (m11 * d[0]! - m01 * d[1]!) / det;
        const y1 = (m00 * d[1]! - m01 * d[0]!) / det;
        const a = Array.from({ length: n }, (_, j) => 0.5 * (g[0]![j]! * y0 + g[1]![j]! * y1));
        const top = Math.max(1, ...a.map(Math.abs));
        return a.map((x) => x / top);
      }),
  };
};

/** x with M x = b (Gaussian elimination with partial pivoting; M small and well-posed). */
function solve(M: number[][], b: number[]): number[] {
  const n = b.length;
  const A = M.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(A[r]![c]!) > Math.abs(A[p]![c]!)) p = r;
    [A[c], A[p]] = [A[p]!, A[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = A[r]![c]! / A[c]![c]!;
      for (let k = c; k <= n; k++) A[r]![k]! -= f * A[c]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let v = A[r]![n]!;
    for (let k = r + 1; k < n; k++) v -= A[r]![k]! * x[k]!;
    x[r] = v / A[r]![r]!;
  }
  return x;
}

await initBackend('wasm');
const ckpt = process.argv[2]!;
const { policy, info } = await loadCheckpoint(ckpt);
const c = policy.config;
const sourceSlots = Object.values((info['slots'] ?? {}) as Record<string, number>);
const slot = firstFreeSlot(policy, sourceSlots)!;
const side = c.vision.imageSize;
const extractor = await featureExtractor('default', process.cwd(), c.featureDim);
const env = { imageSize: side };

// the results table's evaluation: the same episode seeds and noise stream per seed
const evaluate = async (e: Embodiment) => {
  const r = await runEpisodes(
    e,
    'reach',
    seedRange(episodes, 700_000 + 10_000 * s),
    policyController(policy, { slot, rng: new Rng(710_000 + 10_000 * s) }),
    { env, parallel: 25 },
  );
  return { success: r.successRate, actionMse: r.actionMse };
};

const fitOn = async (rec: { samples: Sample[]; meta: DatasetMeta }) => {
  fillWithSourceMean(policy, slot, sourceSlots);
  const batches = playSplit(policy, rec.samples, rec.meta, 16, new Rng(s + 13), slot, 0).train;
  const o = await align(policy, batches, {
    slot,
    parametrisation: 'free',
    init: 'current',
    maxSteps: steps,
    lr: 1e-3,
    objective: 'action',
    seed: s,
  });
  o.state.dispose();
  for (const b of batches) disposeBatch(b);
};

const out: Record<string, unknown>[] = [];
for (const t of targets) {
  const e = embodimentByName(t, 1);
  const base = 1_000_000 * (s + 1) + 50_000;
  const relabelled = async (ctrl: Controller, n: number) =>
    episodesAsSamples(
      e,
      await hindsightEpisodes(e, seedRange(n, base), ctrl, { horizon, env }),
      'demo',
      extractor,
      c,
    );
  const sets: [string, string, () => Promise<{ samples: Sample[]; meta: DatasetMeta }>][] = [
    [
      'oracle',
      'oracle: 10 expert demos',
      async () => {
        const r = await runEpisodes(e, 'reach', seedRange(10, base), expertController(), {
          record: true,
          env,
        });
        return episodesAsSamples(e, r.episodes, 'demo', extractor, c);
      },
    ],
    [
      'expert10',
      `10 expert tries, relabelled H=${horizon}`,
      () => relabelled(expertController(), 10),
    ],
    [
      'expert40',
      `40 expert tries, relabelled H=${horizon}`,
      () => relabelled(expertController(), 40),
    ],
    [
      'random10',
      `10 random play, relabelled H=${horizon}`,
      () => relabelled(randomController(s), 10),
    ],
    ['ou10', `10 OU play, relabelled H=${horizon}`, () => relabelled(ouController(s), 10)],
    [
      'held10',
      `10 held-8 play, relabelled H=${horizon}`,
      () => relabelled(heldRandomController(s, 8), 10),
    ],
    [
      'held40',
      `40 held-8 play, relabelled H=${horizon}`,
      () => relabelled(heldRandomController(s, 8), 40),
    ],
    [
      'servo10',
      `10 servo tries (${servoPlay} held play), relabelled H=${horizon}`,
      async () => {
        const ctrl = await servo(e, seedRange(servoPlay, base + 20_000));
        const own = await runEpisodes(e, 'reach', seedRange(10, base), ctrl, { env });
        console.log(
          `${t}: the servo alone reaches ${(100 * own.successRate).toFixed(0)}% of its targets`,
        );
        return relabelled(ctrl, 10);
      },
    ],
  ];
  for (const [key, what, make] of sets) {
    if (!only.includes(key)) continue;
    const t0 = performance.now();
    const rec = await make();
    await fitOn(rec);
    const r = { ...(await evaluate(e)), frames: rec.samples.length };
    out.push({ target: t, seed: s, what, ...r, wallS: (performance.now() - t0) / 1000 });
    console.log(
      `${new Date().toISOString()} ${t.padEnd(7)} ${what.padEnd(38)} success ${(100 * r.success).toFixed(0).padStart(3)}%  action MSE ${r.actionMse.toFixed(4)}  (${rec.samples.length} frames)`,
    );
  }
}
if (raw)
  writeFileSync(
    raw,
    `${JSON.stringify({ ckpt, args: process.argv.slice(3), rows: out }, null, 2)}\n`,
  );
policy.dispose();
