// The planar multi-link arm. Velocity-command actions in [-1, 1] go through the embodiment's
// map to joint commands and a first-order actuator (time constant `lag`), integrated over
// `substeps` physics steps per control period; joints stop at their limits. The block of the
// push task is moved kinematically out of the end effector's disc. Proprioception is
// [cos q, sin q, qdot] of the measured angles. Everything is a pure function of the seed.
import { Rng } from '@selfalign/core/rng';
import { actionToCommand, type Embodiment, validateEmbodiment } from './embodiment.js';
import { forwardKinematics } from './kinematics.js';
import {
  type Appearance,
  type Camera,
  DEFAULT_APPEARANCE,
  DEFAULT_CAMERA,
  renderScene,
  worldToImage,
} from './render.js';

export type TaskName = 'reach' | 'push';

export interface EnvConfig {
  /** Camera image side I (pixels), 32-96. */
  imageSize: number;
  /** Control period (s). */
  controlDt: number;
  substeps: number;
  /** rad/s at command 1. */
  maxJointVel: number;
  maxSteps: Readonly<Record<TaskName, number>>;
  appearance: Appearance;
  camera: Camera;
}

export const DEFAULT_ENV: Readonly<EnvConfig> = Object.freeze({
  imageSize: 64,
  controlDt: 0.1,
  substeps: 5,
  maxJointVel: 1.5,
  maxSteps: Object.freeze({ reach: 40, push: 100 }),
  appearance: DEFAULT_APPEARANCE,
  camera: DEFAULT_CAMERA,
});

/** Sizes of the scene (world units). */
export const GEOMETRY = Object.freeze({
  linkRadius: 0.035,
  eeRadius: 0.045,
  targetRadius: 0.07,
  reachTolerance: 0.06,
  blockHalf: 0.06,
  /** The block collides as a disc of this radius. */
  blockRadius: 0.07,
  goalRadius: 0.1,
  pushTolerance: 0.08,
});

const TEMPLATES: Readonly<Record<TaskName, readonly string[]>> = Object.freeze({
  reach: ['reach the red target', 'move the gripper to the red dot', 'touch the red target'],
  push: [
    'push the green block to the yellow goal',
    'move the green block onto the yellow ring',
    'slide the block into the goal',
  ],
});

/** Objects per frame in `observeObjects` (reach uses one, push two). */
export const OBJECT_SLOTS = 2;

/** Joint limits of the measured angles: the base turns without limit, the others to +-2.6 rad. */
export function jointLimit(j: number): number {
  return j === 0 ? Number.POSITIVE_INFINITY : 2.6;
}

export class ArmEnv {
  readonly config: EnvConfig;
  readonly n: number;
  /** Measured joint angles (physical = measured + offset). */
  readonly q: Float64Array;
  readonly qd: Float64Array;
  task: TaskName = 'reach';
  instruction = '';
  target: [number, number] = [0, 0];
  block: [number, number] = [0, 0];
  goal: [number, number] = [0, 0];
  /** Control steps taken in this episode. */
  steps = 0;
  private readonly cmd: Float64Array;
  private readonly joints: Float64Array;
  private readonly phys: Float64Array;

  constructor(
    readonly embodiment: Embodiment,
    config: Partial<EnvConfig> = {},
  ) {
    validateEmbodiment(embodiment);
    this.config = { ...DEFAULT_ENV, ...config };
    if (!(this.config.imageSize >= 8 && this.config.imageSize <= 512))
      throw new Error(`image size ${this.config.imageSize} is out of range`);
    this.n = embodiment.links.length;
    this.q = new Float64Array(this.n);
    this.qd = new Float64Array(this.n);
    this.cmd = new Float64Array(this.n);
    this.phys = new Float64Array(this.n);
    this.joints = new Float64Array(2 * (this.n + 1));
  }

  /** Starts an episode of `task`; everything random comes from `seed`. */
  reset(seed: number, task: TaskName): this {
    const rng = new Rng(seed);
    this.task = task;
    this.steps = 0;
    const templates = TEMPLATES[task];
    this.instruction = templates[rng.int(templates.length)]!;
    for (let j = 0; j < this.n; j++) {
      this.q[j] = j === 0 ? (rng.uniform() * 2 - 1) * Math.PI : (rng.uniform() * 2 - 1) * 1.5;
      this.qd[j] = 0;
    }
    const polar = (r0: number, r1: number): [number, number] => {
      const r = r0 + (r1 - r0) * rng.uniform();
      const a = rng.uniform() * 2 * Math.PI;
      return [r * Math.cos(a), r * Math.sin(a)];
    };
    if (task === 'reach') {
      this.target = polar(0.25, 0.75);
    } else {
      this.block = polar(0.3, 0.6);
      for (;;) {
        const d = 0.25 + 0.15 * rng.uniform();
        const a = rng.uniform() * 2 * Math.PI;
        const g: [number, number] = [
          this.block[0] + d * Math.cos(a),
          this.block[1] + d * Math.sin(a),
        ];
        const r = Math.hypot(g[0], g[1]);
        if (r > 0.25 && r < 0.75) {
          this.goal = g;
          break;
        }
      }
      // keep the end effector out of the block at the start
      for (let k = 0; k < 100 && this.contactDistance() < 0.02; k++) this.q[0] = this.q[0]! + 0.3;
    }
    return this;
  }

  /** Physical joint positions [x0, y0, ..., xn, yn] (the last pair is the end effector). */
  jointPositions(): Float64Array {
    for (let j = 0; j < this.n; j++) this.phys[j] = this.q[j]! + this.embodiment.offsets[j]!;
    return forwardKinematics(this.embodiment.links, this.phys, this.joints);
  }

  endEffector(): [number, number] {
    const p = this.jointPositions();
    return [p[2 * this.n]!, p[2 * this.n + 1]!];
  }

  private contactDistance(): number {
    const [ex, ey] = this.endEffector();
    return (
      Math.hypot(this.block[0] - ex, this.block[1] - ey) - GEOMETRY.blockRadius - GEOMETRY.eeRadius
    );
  }

  /** One control period with policy action `a` (clipped to [-1, 1]). */
  step(a: ArrayLike<number>): void {
    const { controlDt, substeps, maxJointVel } = this.config;
    actionToCommand(this.embodiment, a, this.cmd);
    const dt = controlDt / substeps;
    const k = Math.min(1, dt / this.embodiment.lag);
    for (let s = 0; s < substeps; s++) {
      for (let j = 0; j < this.n; j++) {
        const target = this.cmd[j]! * maxJointVel;
        let qd = this.qd[j]! + (target - this.qd[j]!) * k;
        let q = this.q[j]! + qd * dt;
        const lim = jointLimit(j);
        if (q > lim || q < -lim) {
          q = Math.max(-lim, Math.min(lim, q));
          qd = 0;
        }
        this.q[j] = q;
        this.qd[j] = qd;
      }
      if (this.task === 'push') this.pushBlock();
    }
    this.steps += 1;
  }

  private pushBlock(): void {
    const [ex, ey] = this.endEffector();
    const dx = this.block[0] - ex;
    const dy = this.block[1] - ey;
    const d = Math.hypot(dx, dy);
    const min = GEOMETRY.blockRadius + GEOMETRY.eeRadius;
    if (d < min && d > 1e-9) {
      this.block[0] = Math.max(-0.95, Math.min(0.95, ex + (dx / d) * min));
      this.block[1] = Math.max(-0.95, Math.min(0.95, ey + (dy / d) * min));
    }
  }

  /** Proprioception [cos q, sin q, qdot] (3n values) of the measured angles. */
  observeState(out: Float32Array = new Float32Array(3 * this.n)): Float32Array {
    for (let j = 0; j < this.n; j++) {
      out[j] = Math.cos(this.q[j]!);
      out[this.n + j] = Math.sin(this.q[j]!);
      out[2 * this.n + j] = this.qd[j]!;
    }
    return out;
  }

  /**
   * Where the task's objects appear in the camera image: (u, v) in [-1, 1] of up to
   * OBJECT_SLOTS objects ([u0, v0, u1, v1]); reach: the target, then NaN; push: the block, then
   * the goal. Privileged information (a label for pretraining a vision tower's keypoints,
   * never an input to a policy).
   */
  observeObjects(out: Float32Array = new Float32Array(2 * OBJECT_SLOTS)): Float32Array {
    const cam = this.config.camera;
    const objs = this.task === 'reach' ? [this.target] : [this.block, this.goal];
    out.fill(Number.NaN);
    objs.forEach(([x, y], i) => {
      const [u, v] = worldToImage(cam, x, y);
      out[2 * i] = u;
      out[2 * i + 1] = v;
    });
    return out;
  }

  /** The camera image, uint8 [I, I, 3]. */
  render(out?: Uint8Array): Uint8Array {
    const g = GEOMETRY;
    const push = this.task === 'push';
    return renderScene(
      {
        joints: this.jointPositions(),
        linkRadius: g.linkRadius,
        eeRadius: g.eeRadius,
        targetRadius: g.targetRadius,
        blockHalf: g.blockHalf,
        goalRadius: g.goalRadius,
        ...(push ? { block: this.block, goal: this.goal } : { target: this.target }),
      },
      this.config.imageSize,
      this.config.appearance,
      this.config.camera,
      out,
    );
  }

  /** Task distance: end effector to target (reach) or block to goal (push). */
  distance(): number {
    if (this.task === 'reach') {
      const [ex, ey] = this.endEffector();
      return Math.hypot(this.target[0] - ex, this.target[1] - ey);
    }
    return Math.hypot(this.goal[0] - this.block[0], this.goal[1] - this.block[1]);
  }

  success(): boolean {
    return (
      this.distance() < (this.task === 'reach' ? GEOMETRY.reachTolerance : GEOMETRY.pushTolerance)
    );
  }

  /** Success or out of steps. */
  done(): boolean {
    return this.success() || this.steps >= this.config.maxSteps[this.task];
  }
}
