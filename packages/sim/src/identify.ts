// Identifying a robot from its recorded play, without an expert or action labels: the linear map
// from action to joint velocity (least squares on proprioception: the arm's actuator is linear
// away from the command clamps and the joint limits), how well a known body explains where the
// end effector was (forward kinematics on the measured angles), and the action map that makes
// one robot's actions move another's joints the same way (retargeting).
import { jointLimit } from './arm-env.js';
import type { Embodiment } from './embodiment.js';
import { forwardKinematics } from './kinematics.js';
import type { Controller } from './play.js';
import type { Episode } from './rollout.js';

export type Matrix = number[][];

/** x with M x = b (Gaussian elimination with partial pivoting); throws when M is singular. */
export function solveLinear(M: readonly (readonly number[])[], b: readonly number[]): number[] {
  const n = b.length;
  const A = M.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(A[r]![c]!) > Math.abs(A[p]![c]!)) p = r;
    if (!(Math.abs(A[p]![c]!) > 1e-12)) throw new Error('solveLinear: the matrix is singular');
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

export const matMul = (A: Matrix, B: Matrix): Matrix =>
  A.map((row) => B[0]!.map((_, k) => row.reduce((acc, x, j) => acc + x * B[j]![k]!, 0)));

export function invertMatrix(M: Matrix): Matrix {
  const n = M.length;
  const cols = Array.from({ length: n }, (_, k) =>
    solveLinear(
      M,
      Array.from({ length: n }, (_, i) => (i === k ? 1 : 0)),
    ),
  );
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, k) => cols[k]![i]!));
}

const jointsOf = (ep: Episode) => ep.actions.length / ep.length;

export interface ActionMapOptions {
  /** Steps whose action has a component beyond this are left out (the command clamps; 0.5). */
  maxAction?: number;
}

/**
 * B (n x n), the robot's action -> joint-velocity map: the next step's joint velocity is
 * A qd + B a, fitted by least squares over the play's steps that stay off the command clamps
 * (every |a_k| <= `maxAction`) and the joint limits. Reads the proprioception [cos q, sin q, qd]
 * and the actions sent; B includes the actuator's lag over one control period, so two robots'
 * maps compare directly. Throws when fewer than 4 usable steps per unknown remain.
 */
export function identifyActionMap(
  episodes: readonly Episode[],
  opts: ActionMapOptions = {},
): Matrix {
  if (episodes.length === 0) throw new Error('identifyActionMap: no episodes');
  const n = jointsOf(episodes[0]!);
  const limit = opts.maxAction ?? 0.5;
  const m = 2 * n;
  const S = Array.from({ length: m }, (_, r) =>
    Array.from({ length: m }, (_, c) => (r === c ? 1e-9 : 0)),
  );
  const C = Array.from({ length: n }, () => new Array<number>(m).fill(0));
  const x = new Array<number>(m);
  let used = 0;
  for (const ep of episodes) {
    if (jointsOf(ep) !== n)
      throw new Error(`identifyActionMap: episodes with ${n} and ${jointsOf(ep)} joints`);
    const s = ep.states;
    for (let t = 0; t + 1 < ep.length; t++) {
      let ok = true;
      for (let k = 0; k < n && ok; k++) ok = Math.abs(ep.actions[t * n + k]!) <= limit;
      for (let j = 0; j < n && ok; j++) {
        const o = (t + 1) * 3 * n;
        const q = Math.atan2(s[o + n + j]!, s[o + j]!);
        ok = Math.abs(q) < jointLimit(j) - 0.05;
      }
      if (!ok) continue;
      for (let j = 0; j < n; j++) {
        x[j] = s[t * 3 * n + 2 * n + j]!;
        x[n + j] = ep.actions[t * n + j]!;
      }
      for (let r = 0; r < m; r++) for (let c = 0; c < m; c++) S[r]![c]! += x[r]! * x[c]!;
      for (let j = 0; j < n; j++) {
        const next = s[(t + 1) * 3 * n + 2 * n + j]!;
        for (let r = 0; r < m; r++) C[j]![r]! += next * x[r]!;
      }
      used++;
    }
  }
  if (used < 4 * m)
    throw new Error(
      `identifyActionMap: only ${used} play steps off the clamps and limits (need ${4 * m}); record more play`,
    );
  return C.map((row) => solveLinear(S, row).slice(n));
}

/** The map R = target^-1 source: `source`'s action a moves the target's joints as a moved the source's. */
export const retargetMap = (target: Matrix, source: Matrix): Matrix =>
  matMul(invertMatrix(target), source);

/** Scratch arrays for `bodyEffector` (angles and joint positions), reused across frames. */
export interface KinematicsScratch {
  q: Float64Array;
  p: Float64Array;
}

/**
 * Where `body`'s forward kinematics puts the end effector in frame `t` of `ep`: on the recorded
 * measured angles (proprioception [cos q, sin q, qdot]) plus the body's encoder offsets.
 */
export function bodyEffector(
  body: Readonly<Body>,
  ep: Pick<Episode, 'states'>,
  t: number,
  scratch?: KinematicsScratch,
): [number, number] {
  const n = body.links.length;
  const q = scratch?.q ?? new Float64Array(n);
  const p = scratch?.p ?? new Float64Array(2 * (n + 1));
  const o = t * 3 * n;
  for (let j = 0; j < n; j++)
    q[j] = Math.atan2(ep.states[o + n + j]!, ep.states[o + j]!) + body.offsets[j]!;
  forwardKinematics(body.links, q, p);
  return [p[2 * n]!, p[2 * n + 1]!];
}

/**
 * Mean squared distance between where `body`'s forward kinematics puts the end effector (on the
 * recorded measured angles plus the body's encoder offsets) and where it was (the recordings'
 * `effector`). The body that explains a robot's play best has the lowest.
 */
export function kinematicError(
  body: Pick<Embodiment, 'links' | 'offsets'>,
  episodes: readonly Episode[],
): number {
  let sum = 0;
  let count = 0;
  for (const ep of episodes) {
    if (!ep.effector)
      throw new Error('kinematicError: the episodes carry no end-effector positions (effector)');
    const n = jointsOf(ep);
    if (n !== body.links.length)
      throw new Error(`kinematicError: a ${body.links.length}-link body for a ${n}-joint robot`);
    const scratch = { q: new Float64Array(n), p: new Float64Array(2 * (n + 1)) };
    for (let t = 0; t < ep.length; t++) {
      const [x, y] = bodyEffector(body, ep, t, scratch);
      sum += (x - ep.effector[2 * t]!) ** 2 + (y - ep.effector[2 * t + 1]!) ** 2;
      count++;
    }
  }
  return sum / Math.max(1, count);
}

export interface Body {
  links: number[];
  offsets: number[];
}

/**
 * The body (link lengths, encoder offsets) that best explains where the play's end effector was
 * on the measured angles: Gauss-Newton with Levenberg-Marquardt damping from `init` (the nearest
 * known body, say), `iterations` steps.
 */
export function fitBody(
  episodes: readonly Episode[],
  init: Readonly<Body>,
  iterations = 30,
): Body & { error: number } {
  const n = init.links.length;
  const m = 2 * n;
  let body: Body = { links: [...init.links], offsets: [...init.offsets] };
  let error = kinematicError(body, episodes);
  let damping = 1e-3;
  for (let it = 0; it < iterations; it++) {
    const H = Array.from({ length: m }, () => new Array<number>(m).fill(0));
    const g = new Array<number>(m).fill(0);
    const d = new Array<number>(m).fill(0);
    for (const ep of episodes) {
      for (let t = 0; t < ep.length; t++) {
        let angle = 0;
        let x = 0;
        let y = 0;
        const angles: number[] = [];
        for (let j = 0; j < n; j++) {
          const o = t * 3 * n;
          angle += Math.atan2(ep.states[o + n + j]!, ep.states[o + j]!) + body.offsets[j]!;
          angles.push(angle);
          x += body.links[j]! * Math.cos(angle);
          y += body.links[j]! * Math.sin(angle);
        }
        const rx = x - ep.effector![2 * t]!;
        const ry = y - ep.effector![2 * t + 1]!;
        // d(x, y)/d link_j = (cos, sin) of angle j; d/d offset_j = sum over i >= j of the
        // rotation of link i
        const dx = new Array<number>(m).fill(0);
        const dy = new Array<number>(m).fill(0);
        for (let j = 0; j < n; j++) {
          dx[j] = Math.cos(angles[j]!);
          dy[j] = Math.sin(angles[j]!);
          for (let i = j; i < n; i++) {
            dx[n + j]! -= body.links[i]! * Math.sin(angles[i]!);
            dy[n + j]! += body.links[i]! * Math.cos(angles[i]!);
          }
        }
        for (let r = 0; r < m; r++) {
          g[r]! += dx[r]! * rx + dy[r]! * ry;
          for (let c = 0; c < m; c++) H[r]![c]! += dx[r]! * dx[c]! + dy[r]! * dy[c]!;
        }
      }
    }
    for (let r = 0; r < m; r++) d[r] = -g[r]!;
    const step = solveLinear(
      H.map((row, r) => row.map((v, c) => v + (r === c ? damping * (H[r]![r]! + 1e-9) : 0))),
      d,
    );
    const next: Body = {
      links: body.links.map((l, j) => l + step[j]!),
      offsets: body.offsets.map((o, j) => o + step[n + j]!),
    };
    const e = kinematicError(next, episodes);
    if (e < error) {
      body = next;
      error = e;
      damping = Math.max(1e-6, damping / 3);
    } else damping *= 10;
  }
  return { ...body, error };
}

/** `inner`'s actions through `map` (a' = R a), scaled down as a whole to stay in [-1, 1]. */
export function retargetedController(inner: Controller, map: Matrix): Controller {
  return {
    ...(inner.reset ? { reset: inner.reset.bind(inner) } : {}),
    async act(obs) {
      const out = await inner.act(obs);
      return out.map((a) => {
        const b = map.map((row) => row.reduce((acc, x, k) => acc + x * a[k]!, 0));
        const peak = Math.max(1, ...b.map(Math.abs));
        return Float32Array.from(b, (x) => x / peak);
      });
    },
  };
}
