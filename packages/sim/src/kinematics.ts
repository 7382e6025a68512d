// Planar kinematics for n links with physical joint angles (measured + offset), base at the
// workspace centre: forward kinematics, the Jacobian, a damped-least-squares step, and
// inverse kinematics for three links (analytic two-link IK over a grid of end-link
// orientations, the solution within joint limits nearest to the current configuration).

/** Joint positions: [x0, y0, x1, y1, ..., xn, yn] (n + 1 points, the last is the end effector). */
export function forwardKinematics(
  links: readonly number[],
  q: ArrayLike<number>,
  out?: Float64Array,
): Float64Array {
  const n = links.length;
  const p = out ?? new Float64Array(2 * (n + 1));
  let x = 0;
  let y = 0;
  let angle = 0;
  p[0] = 0;
  p[1] = 0;
  for (let i = 0; i < n; i++) {
    angle += q[i]!;
    x += links[i]! * Math.cos(angle);
    y += links[i]! * Math.sin(angle);
    p[2 * i + 2] = x;
    p[2 * i + 3] = y;
  }
  return p;
}

/** End-effector Jacobian, row-major 2 x n. */
export function jacobian(links: readonly number[], q: ArrayLike<number>): Float64Array {
  const n = links.length;
  const p = forwardKinematics(links, q);
  const ex = p[2 * n]!;
  const ey = p[2 * n + 1]!;
  const j = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    j[i] = -(ey - p[2 * i + 1]!);
    j[n + i] = ex - p[2 * i]!;
  }
  return j;
}

/**
 * Joint velocity that moves the end effector by `v` [2]: J^T (J J^T + lambda^2 I)^-1 v. With
 * per-joint `weights` W (a joint of weight < 1 moves less) and a secondary joint motion `rest` z
 * kept where it leaves the end effector (nearly) still: z + W J^T (J W J^T + lambda^2 I)^-1 (v - J z).
 */
export function dlsStep(
  links: readonly number[],
  q: ArrayLike<number>,
  vx: number,
  vy: number,
  lambda = 0.08,
  weights?: ArrayLike<number>,
  rest?: ArrayLike<number>,
): Float64Array {
  const n = links.length;
  const j = jacobian(links, q);
  let a = lambda * lambda;
  let b = 0;
  let d = lambda * lambda;
  let rx = vx;
  let ry = vy;
  for (let i = 0; i < n; i++) {
    const w = weights?.[i] ?? 1;
    a += w * j[i]! * j[i]!;
    b += w * j[i]! * j[n + i]!;
    d += w * j[n + i]! * j[n + i]!;
    if (rest) {
      rx -= j[i]! * rest[i]!;
      ry -= j[n + i]! * rest[i]!;
    }
  }
  const det = a * d - b * b;
  const wx = (d * rx - b * ry) / det;
  const wy = (-b * rx + a * ry) / det;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++)
    out[i] = (rest?.[i] ?? 0) + (weights?.[i] ?? 1) * (j[i]! * wx + j[n + i]! * wy);
  return out;
}

/** Wraps an angle to [-pi, pi). */
export function wrapAngle(a: number): number {
  return a - 2 * Math.PI * Math.floor((a + Math.PI) / (2 * Math.PI));
}

/**
 * Physical joint angles that put a 3-link end effector at (x, y), nearest (weighted squared
 * joint distance, the base measured around the circle) to `current` among solutions whose
 * joints 1.. stay within +-`limit` after subtracting `offsets`. Undefined when unreachable.
 * @param current physical angles now
 */
export function inverseKinematics3(
  links: readonly number[],
  offsets: readonly number[],
  current: ArrayLike<number>,
  x: number,
  y: number,
  limit: number,
  orientations = 72,
): Float64Array | undefined {
  const [l1, l2, l3] = links as [number, number, number];
  let best: Float64Array | undefined;
  let bestCost = Number.POSITIVE_INFINITY;
  const cand = new Float64Array(3);
  for (let k = 0; k < orientations; k++) {
    const phi = (2 * Math.PI * k) / orientations;
    const wx = x - l3 * Math.cos(phi);
    const wy = y - l3 * Math.sin(phi);
    const c2 = (wx * wx + wy * wy - l1 * l1 - l2 * l2) / (2 * l1 * l2);
    if (c2 < -1 || c2 > 1) continue;
    for (const elbow of [1, -1]) {
      const q2 = elbow * Math.acos(c2);
      const q1 = Math.atan2(wy, wx) - Math.atan2(l2 * Math.sin(q2), l1 + l2 * Math.cos(q2));
      cand[0] = current[0]! + wrapAngle(q1 - current[0]!);
      cand[1] = q2;
      cand[2] = wrapAngle(phi - q1 - q2);
      let ok = true;
      let cost = 0;
      for (let j = 1; j < 3; j++) {
        // measured angle must be within limits (wrapped to the representation nearest 0)
        const measured = wrapAngle(cand[j]! - offsets[j]!);
        if (Math.abs(measured) > limit) ok = false;
        cand[j] = measured + offsets[j]!;
      }
      if (!ok) continue;
      for (let j = 0; j < 3; j++) {
        const d = j === 0 ? cand[0]! - current[0]! : cand[j]! - current[j]!;
        cost += (j === 0 ? 1 : 0.5) * d * d;
      }
      if (cost < bestCost) {
        bestCost = cost;
        best = Float64Array.from(cand);
      }
    }
  }
  return best;
}
