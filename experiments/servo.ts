// A servo that knows nothing of the robot (docs/results.md 2o): local gains from action to
// end-effector motion, learnt from held-random play, steer the end effector toward the target.
import {
  type Controller,
  type Embodiment,
  type EnvConfig,
  heldRandomController,
  runEpisodes,
  solveLinear,
} from '@selfalign/sim';

/**
 * A servo that knows nothing of the robot: local gains learnt from held-random play (the k
 * frames nearest in proprioception, cos q and sin q), steering the end effector toward the
 * target. It needs what relabelling needs (where the end effector and the target are, a
 * tracker on hardware) and no kinematics, expert or label.
 */
export const servo = async (
  e: Embodiment,
  seeds: readonly number[],
  seed: number,
  env: Partial<EnvConfig>,
  k = 48,
): Promise<Controller> => {
  const feats: Float32Array[] = [];
  const acts: Float64Array[] = [];
  const steps: [number, number][] = [];
  const hold = 8;
  const inner = heldRandomController(seed + 1, hold);
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
        if (prev && prev.t % hold >= 3) {
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
        const g = C.map((row) => solveLinear(S, row));
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
