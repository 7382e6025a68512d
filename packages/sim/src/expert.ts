// The scripted expert: inverse kinematics to the next end-effector waypoint (the solution
// within joint limits nearest to the current pose) and joint-space P control toward it, using
// privileged scene positions and a *believed* embodiment (its own by default) for the
// kinematics and for turning joint commands back into policy actions. Run with the source's
// belief on a shifted robot, it shows how much the shift hurts a policy that does not adapt.
import type { ArmEnv } from './arm-env.js';
import { GEOMETRY, jointLimit } from './arm-env.js';
import { commandToAction, type Embodiment } from './embodiment.js';
import { dlsStep, forwardKinematics, inverseKinematics3, wrapAngle } from './kinematics.js';

const GAIN = 5; // 1/s: half the remaining error per 0.1 s control period
const MAX_SPEED = 1.2; // world units/s

/** End-effector position under a belief about the body. */
function believedEndEffector(env: ArmEnv, belief: Embodiment): [number, number] {
  const n = env.n;
  const q = new Float64Array(n);
  for (let j = 0; j < n; j++) q[j] = env.q[j]! + belief.offsets[j]!;
  const p = forwardKinematics(belief.links, q);
  return [p[2 * n]!, p[2 * n + 1]!];
}

/**
 * Where the end effector should go next. Push: circle around the block (radius R) toward its
 * far side from the goal, step to the point behind it, then push through toward the goal,
 * re-aligning whenever the block drifts off the line.
 */
function waypoint(env: ArmEnv, ee: [number, number]): [number, number] {
  if (env.task === 'reach') return env.target;
  const [bx, by] = env.block;
  const [gx, gy] = env.goal;
  const dist = Math.hypot(gx - bx, gy - by);
  const dx = (gx - bx) / dist;
  const dy = (gy - by) / dist;
  const contact = GEOMETRY.blockRadius + GEOMETRY.eeRadius;
  const rx = ee[0] - bx;
  const ry = ee[1] - by;
  const along = rx * dx + ry * dy; // < 0: behind the block
  const across = -rx * dy + ry * dx;
  if (along < -contact * 0.8 && along > -contact - 0.08 && Math.abs(across) < 0.03) {
    // aligned behind: push through, slowing near the goal
    const reach = Math.min(0.15, dist + 0.03);
    return [ee[0] + dx * reach, ee[1] + dy * reach];
  }
  const radius = contact + 0.07;
  const theta = Math.atan2(ry, rx);
  const behindAngle = Math.atan2(-dy, -dx);
  const diff = wrapAngle(behindAngle - theta);
  if (Math.abs(diff) > 0.35) {
    // travel on the circle around the block toward its back side
    const next = theta + Math.max(-0.7, Math.min(0.7, diff));
    return [bx + radius * Math.cos(next), by + radius * Math.sin(next)];
  }
  return [bx - dx * (contact + 0.04), by - dy * (contact + 0.04)];
}

const JOINT_GAIN = 5; // 1/s: half the joint error per 0.1 s control period
const PUSH_STEP = 0.15; // push: the IK goal stays this close to the end effector

/**
 * How the reach expert picks among the arm's IK solutions for the target. `canonical` (the
 * default): the one nearest to a reference pose that depends on the target only (base toward the
 * target, both joints bent +0.5 rad), so the goal pose is a function of the scene, not of the
 * path. `nearest`: the one nearest to the current pose (shortest joint motion, ~11 steps per
 * reach instead of ~16), but the choice depends on where the arm is and flips between solutions
 * as the pose changes: much harder to clone (docs/results.md: an MLP given the true joint angles
 * and target reaches 16% vs 42% from 30 demos per robot, 49% vs 80% from 300).
 */
export type ReachSolution = 'nearest' | 'canonical';

/** The expert's action for `env` in the policy's action space, under `belief` (default: the env's own embodiment). */
export function expertAction(
  env: ArmEnv,
  belief: Embodiment = env.embodiment,
  out?: Float64Array,
  reach: ReachSolution = 'canonical',
): Float64Array {
  const n = env.n;
  const ee = believedEndEffector(env, belief);
  let [wx, wy] = waypoint(env, ee);
  if (env.task === 'push') {
    const d = Math.hypot(wx - ee[0], wy - ee[1]);
    if (d > PUSH_STEP) {
      wx = ee[0] + ((wx - ee[0]) * PUSH_STEP) / d;
      wy = ee[1] + ((wy - ee[1]) * PUSH_STEP) / d;
    }
  }
  const q = new Float64Array(n);
  for (let j = 0; j < n; j++) q[j] = env.q[j]! + belief.offsets[j]!;
  const cmd = new Float64Array(n);
  const canonical = env.task === 'reach' && reach === 'canonical';
  const ref = canonical ? [Math.atan2(wy, wx) - 0.5, 0.5, 0.5] : q;
  const goal =
    n === 3
      ? inverseKinematics3(belief.links, belief.offsets, ref, wx, wy, jointLimit(1))
      : undefined;
  // the base turns without limit: go the short way round
  if (goal !== undefined && canonical) goal[0] = q[0]! + wrapAngle(goal[0]! - q[0]!);
  if (goal !== undefined) {
    for (let j = 0; j < n; j++) cmd[j] = (JOINT_GAIN * (goal[j]! - q[j]!)) / env.config.maxJointVel;
  } else {
    // unreachable (or not 3 links): Cartesian damped least squares toward the waypoint
    let vx = GAIN * (wx - ee[0]);
    let vy = GAIN * (wy - ee[1]);
    const speed = Math.hypot(vx, vy);
    if (speed > MAX_SPEED) {
      vx *= MAX_SPEED / speed;
      vy *= MAX_SPEED / speed;
    }
    const qd = dlsStep(belief.links, q, vx, vy);
    for (let j = 0; j < n; j++) cmd[j] = qd[j]! / env.config.maxJointVel;
  }
  let peak = 0;
  for (let j = 0; j < n; j++) peak = Math.max(peak, Math.abs(cmd[j]!));
  if (peak > 1) for (let j = 0; j < n; j++) cmd[j]! /= peak;
  return commandToAction(belief, cmd, out);
}
