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
const JOINT_GAIN = 5; // 1/s: half the joint error per 0.1 s control period

/** Physical joint angles under a belief about the body (measured + believed offsets). */
function believedAngles(env: ArmEnv, belief: Embodiment): Float64Array {
  const q = new Float64Array(env.n);
  for (let j = 0; j < env.n; j++) q[j] = env.q[j]! + belief.offsets[j]!;
  return q;
}

/** End-effector position of physical angles `q` under a belief about the body. */
function believedEndEffector(belief: Embodiment, q: Float64Array): [number, number] {
  const n = q.length;
  const p = forwardKinematics(belief.links, q);
  return [p[2 * n]!, p[2 * n + 1]!];
}

/** (vx, vy) scaled down to MAX_SPEED when faster. */
function capSpeed(vx: number, vy: number): [number, number] {
  const speed = Math.hypot(vx, vy);
  return speed > MAX_SPEED ? [(vx * MAX_SPEED) / speed, (vy * MAX_SPEED) / speed] : [vx, vy];
}

/** Joint commands of the P controller toward physical angles `goal` from `q`. */
function towardPose(env: ArmEnv, goal: Float64Array, q: Float64Array): Float64Array {
  const cmd = new Float64Array(env.n);
  for (let j = 0; j < env.n; j++)
    cmd[j] = (JOINT_GAIN * (goal[j]! - q[j]!)) / env.config.maxJointVel;
  return cmd;
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

/**
 * How the push expert moves the end effector. `field` (the default): a velocity field around the
 * block that is continuous in the scene (`pushVelocity`): circle the block at a clearance that
 * shrinks to contact behind it (seen from the goal) and push along the block-goal line there,
 * steering back round the block whenever it drifts off the line; the arm follows the field's
 * next point in joint space toward that point's canonical IK pose. Designed to be cloned: a
 * few millimetres of error in the learner's view of the scene change the action little.
 * `waypoint` (the earlier expert): IK to discrete waypoints (circle, step behind, push) whose
 * modes switch inside a 3 cm band, each solved among 72 end-link orientations nearest to the
 * current pose: a privileged-input MLP clones it to at most ~25% (docs/results.md section 3b).
 */
export type PushStrategy = 'field' | 'waypoint';

/** The push field's constants (world units, s). */
const FIELD = Object.freeze({
  /** Extra clearance while circling the block. */
  margin: 0.08,
  /** How far inside contact the field aims behind the block (the push). */
  press: 0.02,
  /** Angular width (rad) of the sector behind the block where the field pushes. */
  width: 0.4,
  /** Tangential speed round the block. */
  orbit: 0.7,
  /** Push speed along the block-goal line, and its slow-down gain near the goal. */
  push: 0.5,
  pushGain: 4,
  /** Radial gain toward the clearance circle (1/s). */
  radial: 5,
  /** Joints 1.. are pulled back inside this angle (measured) through the null space. */
  comfort: 1.8,
  /** Damping of the least-squares solve. */
  damping: 0.08,
  /** How far ahead (s) the field's velocity places the next end-effector point. */
  lookahead: 0.2,
  /** End-link orientations the IK tries (finer than the waypoint expert's 72). */
  orientations: 360,
});

/** The push field: the end effector's desired velocity (world units/s) for the scene. */
export function pushVelocity(env: ArmEnv, ee: readonly [number, number]): [number, number] {
  const [bx, by] = env.block;
  const [gx, gy] = env.goal;
  const dist = Math.max(1e-6, Math.hypot(gx - bx, gy - by));
  const ux = (gx - bx) / dist;
  const uy = (gy - by) / dist;
  const rx = ee[0] - bx;
  const ry = ee[1] - by;
  const rho = Math.max(1e-6, Math.hypot(rx, ry));
  // angle of the end effector round the block, 0 straight behind it (on the side away from the goal)
  const theta = Math.atan2(-ux * ry + uy * rx, -ux * rx - uy * ry);
  const contact = GEOMETRY.blockRadius + GEOMETRY.eeRadius;
  const behind = Math.exp(-((theta / FIELD.width) ** 2));
  const radius = contact + FIELD.margin * (1 - behind) - FIELD.press * behind;
  const radial = FIELD.radial * (radius - rho);
  // toward theta = 0 at constant speed, easing off at 0 and (an unstable balance) at pi
  const ease =
    Math.max(-1, Math.min(1, theta / 0.5)) * Math.min(1, (Math.PI - Math.abs(theta)) / 0.5);
  const tangential = -FIELD.orbit * ease;
  const push = behind * Math.min(FIELD.push, FIELD.pushGain * dist);
  return capSpeed(
    (radial * rx - tangential * ry) / rho + push * ux,
    (radial * ry + tangential * rx) / rho + push * uy,
  );
}

/**
 * Joint velocities that move the end effector by (vx, vy): damped least squares weighted so that
 * joints 1.. near their limits move less, plus a pull of those joints back inside FIELD.comfort
 * through the (weighted) null space. Continuous in q.
 */
function fieldJointVelocity(
  belief: Embodiment,
  qPhys: Float64Array,
  qMeasured: ArrayLike<number>,
  vx: number,
  vy: number,
): Float64Array {
  const n = qPhys.length;
  const w = new Float64Array(n).fill(1);
  const z = new Float64Array(n);
  for (let j = 1; j < n; j++) {
    const q = qMeasured[j]!;
    const lim = jointLimit(j);
    w[j] = Math.max(0.05, Math.min(1, (lim - Math.abs(q)) / (lim - FIELD.comfort)));
    z[j] = -JOINT_GAIN * (q - Math.max(-FIELD.comfort, Math.min(FIELD.comfort, q)));
  }
  return dlsStep(belief.links, qPhys, vx, vy, FIELD.damping, w, z);
}

const PUSH_STEP = 0.15; // push: the IK goal stays this close to the end effector

/**
 * The `field` push expert's action: the field's velocity, looked ahead FIELD.lookahead s, gives
 * the next end-effector point; the arm is steered in joint space toward that point's canonical
 * IK pose (the reach expert's choice: a pose that depends on the point only, so the arm's
 * redundancy is resolved the same way wherever the episode came from). Where no pose reaches
 * the point, weighted damped least squares on the velocity instead.
 */
function fieldAction(
  env: ArmEnv,
  belief: Embodiment,
  q: Float64Array,
  ee: [number, number],
  out?: Float64Array,
): Float64Array {
  const n = env.n;
  const [vx, vy] = pushVelocity(env, ee);
  const wx = ee[0] + vx * FIELD.lookahead;
  const wy = ee[1] + vy * FIELD.lookahead;
  const goal =
    n === 3
      ? inverseKinematics3(
          belief.links,
          belief.offsets,
          [Math.atan2(wy, wx) - 0.5, 0.5, 0.5],
          wx,
          wy,
          jointLimit(1),
          FIELD.orientations,
        )
      : undefined;
  if (goal !== undefined) {
    goal[0] = q[0]! + wrapAngle(goal[0]! - q[0]!);
    return toAction(belief, towardPose(env, goal, q), out);
  }
  const qd = fieldJointVelocity(belief, q, env.q, vx, vy);
  return toAction(
    belief,
    qd.map((v) => v / env.config.maxJointVel),
    out,
  );
}

/** Joint commands, scaled down as a whole when one leaves [-1, 1], as the policy's action. */
function toAction(belief: Embodiment, cmd: Float64Array, out?: Float64Array): Float64Array {
  let peak = 0;
  for (const c of cmd) peak = Math.max(peak, Math.abs(c));
  if (peak > 1) for (let j = 0; j < cmd.length; j++) cmd[j]! /= peak;
  return commandToAction(belief, cmd, out);
}

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
  push: PushStrategy = 'field',
): Float64Array {
  const n = env.n;
  const q = believedAngles(env, belief);
  const ee = believedEndEffector(belief, q);
  if (env.task === 'push' && push === 'field') return fieldAction(env, belief, q, ee, out);
  let [wx, wy] = waypoint(env, ee);
  if (env.task === 'push') {
    const d = Math.hypot(wx - ee[0], wy - ee[1]);
    if (d > PUSH_STEP) {
      wx = ee[0] + ((wx - ee[0]) * PUSH_STEP) / d;
      wy = ee[1] + ((wy - ee[1]) * PUSH_STEP) / d;
    }
  }
  const canonical = env.task === 'reach' && reach === 'canonical';
  const ref = canonical ? [Math.atan2(wy, wx) - 0.5, 0.5, 0.5] : q;
  const goal =
    n === 3
      ? inverseKinematics3(belief.links, belief.offsets, ref, wx, wy, jointLimit(1))
      : undefined;
  // the base turns without limit: go the short way round
  if (goal !== undefined && canonical) goal[0] = q[0]! + wrapAngle(goal[0]! - q[0]!);
  if (goal !== undefined) return toAction(belief, towardPose(env, goal, q), out);
  // unreachable (or not 3 links): Cartesian damped least squares toward the waypoint
  const [vx, vy] = capSpeed(GAIN * (wx - ee[0]), GAIN * (wy - ee[1]));
  const qd = dlsStep(belief.links, q, vx, vy);
  return toAction(
    belief,
    qd.map((v) => v / env.config.maxJointVel),
    out,
  );
}
