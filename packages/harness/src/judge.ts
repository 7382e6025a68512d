// A success judge that reads only the camera (docs/results.md 2t). Retarget's pick by tries
// reads whether the tries reached their target, i.e. where the end effector went, which a new
// robot's play file does not hold. The judge locates the end effector in a frame with one
// soft-argmax keypoint (the vision tower's own keypoint head) on a copy of the policy's vision
// tower, trained on the *source* robots' frames, where their known kinematics give the
// effector's position (a pretraining-time label, like the keypoint loss's). On a new robot it
// reads frames only: the judged distance of a frame is its effector to the policy's own target
// keypoint (keypoint 0, trained by the keypoint loss). The policy is never changed.

import {
  CheckpointError,
  createOptimizer,
  decodeSafetensors,
  disposeOptimizer,
  encodeSafetensors,
  type HostTensor,
  loadParams,
  optimizerStep,
  ParamTree,
  Rng,
  randomNormal,
  tf,
  warmupCosine,
} from '@selfalign/core';
import { encodeImages, keypointPositions, type Policy } from '@selfalign/experts';
import {
  type Camera,
  DEFAULT_CAMERA,
  type Episode,
  imageToWorld,
  worldToImage,
} from '@selfalign/sim';

/** What retarget's pick needs from a judge: a distance per frame, from the frames alone. */
export interface CameraJudge {
  /** Judged end-effector-to-target distance (world units) of each of `n` frames, uint8 [n, I, I, 3]. */
  distances(frames: Uint8Array, n: number): number[];
}

/**
 * What practice needs from a reader of its tries instead of the simulator: where the end effector
 * was in each recorded frame (the relabelled targets) and whether a try reached its target.
 */
export interface EffectorTracker {
  /** The end effector's world (x, y) in each recorded frame of `ep`. */
  track(ep: Episode): [number, number][];
  /** Whether the try came within `tolerance` (world units) of its target in some frame. */
  reached(ep: Episode, tolerance: number): boolean;
}

export interface JudgeTrainOptions {
  /** Adam steps (default 3,000), batch (default 64) and peak rate (default 1e-3; warm-up, cosine). */
  steps?: number;
  batch?: number;
  lr?: number;
  seed?: number;
  /** Every 200 steps: the window's rms effector error (world units). */
  onProgress?: (step: number, rms: number) => void;
}

/**
 * A reader of recorded tries that says, from what a robot without a tracker records, whether
 * each reached its target and how far it ended: retarget's pick reads its candidates' tries
 * through one (`EffectorJudge` from the frames, `BodyTracker` through a body fitted to them).
 */
export interface TryReader {
  verdict(ep: Episode, tolerance: number): JudgedEpisode;
  /**
   * A reader fitted again with `tries` (recorded episodes of the robot) added to what it was
   * fitted on, when it learns from recorded episodes (`BodyTracker`); retarget's `refitOnTries`.
   */
  refit?(tries: readonly Episode[]): TryReader;
}

/**
 * Where a reader of tries takes each try's target from: the judge's read of the policy's target
 * keypoint in every frame, or once from the try's first frames (`startTargetPositions`).
 */
export type TargetRead = 'frame' | 'start';

/** The judge's verdict on one recorded episode. */
export interface JudgedEpisode {
  /** Some frame judged within `tolerance` of the target. */
  reached: boolean;
  /** The judged distance in the last frame. */
  distance: number;
  /** The smallest judged distance over the frames (a read without the tolerance). */
  closest: number;
}

/** Judges an episode's recorded frames: reached at some frame, the last and the closest distance. */
export function judgeEpisode(judge: CameraJudge, ep: Episode, tolerance: number): JudgedEpisode {
  return verdictOf(judge.distances(ep.frames, ep.length), tolerance);
}

/** The verdict on an episode's per-frame distances to its target. */
export function verdictOf(d: readonly number[], tolerance: number): JudgedEpisode {
  if (d.length === 0) throw new Error('verdict: an episode with no frames');
  const closest = d.reduce((a, b) => Math.min(a, b));
  return { reached: closest < tolerance, distance: d[d.length - 1]!, closest };
}

/** Runs `fn` over the frames in chunks of 64 and concatenates its rows (no tensors kept). */
function chunked(
  frames: Uint8Array,
  n: number,
  side: number,
  fn: (img: tf.Tensor) => tf.Tensor,
): number[][] {
  const px = side * side * 3;
  if (frames.length < n * px)
    throw new Error(
      `judge: ${frames.length} bytes hold fewer than ${n} frames of ${side}x${side}x3`,
    );
  const rows: number[][] = [];
  for (let from = 0; from < n; from += 64) {
    const m = Math.min(64, n - from);
    const out = tf.tidy(() =>
      fn(tf.tensor(frames.subarray(from * px, (from + m) * px), [m, side, side, 3], 'int32')),
    );
    rows.push(...(out.arraySync() as number[][]));
    out.dispose();
  }
  return rows;
}

/**
 * The end-effector judge: a soft-argmax head on a copy of the policy's vision tower, the two
 * trained together (a head on the policy's own tower stays 24-27 cm off, docs/results.md 2t).
 */
export class EffectorJudge implements CameraJudge, EffectorTracker, TryReader {
  private readonly head = new ParamTree();
  private readonly tower = new ParamTree();
  private readonly side: number;
  /** The judge's kind in its file: a head on a trained tower copy. */
  readonly kind = 'tuned' as const;

  /** The file's metadata, for a decoded judge (empty for a new one). */
  metadata: Record<string, string> = {};

  constructor(
    private readonly policy: Policy,
    readonly camera: Readonly<Camera> = DEFAULT_CAMERA,
  ) {
    const vc = policy.config.vision;
    if ((vc.keypoints ?? 0) < 1)
      throw new Error(
        'judge: the policy has no keypoints (its target keypoint is the judge target)',
      );
    this.side = vc.imageSize;
    const rng = new Rng(7);
    const w = vc.width;
    this.head.add('vision/keypoints/logit', randomNormal(rng, [w, 1], 1 / Math.sqrt(w)));
    this.head.add('vision/keypoints/offset', randomNormal(rng, [w, 2], 0.02));
    for (const [path, v] of policy.params.select('vision/**'))
      if (!path.startsWith('vision/keypoints') && !path.startsWith('vision/proj'))
        this.tower.add(path, tf.clone(v));
    this.tower.add('vision/proj/w', tf.zeros([w, 1]));
    this.tower.add('vision/proj/b', tf.zeros([1]));
  }

  /** World units per image unit ((u, v) spans [-1, 1] over the camera's span). */
  get unit(): number {
    return this.camera.span / 2;
  }

  /** [N, 2] the effector's (u, v) from uint8 frames [N, I, I, 3] (call inside a tidy). */
  private locate(images: tf.Tensor): tf.Tensor {
    const vc = this.policy.config.vision;
    const img = tf.reshape(images, [-1, 1, this.side, this.side, 3]);
    const xn = encodeImages(this.tower, { ...vc, keypoints: 0 }, img, { patches: true }).patches!;
    return tf.reshape(keypointPositions(this.head, { ...vc, keypoints: 1 }, xn), [-1, 2]);
  }

  /**
   * Fits the judge to recorded episodes with end-effector positions (source robots' play).
   * @returns the rms effector error on them after training (world units)
   */
  train(episodes: readonly Episode[], opts: JudgeTrainOptions = {}): number {
    const side = this.side;
    const px = side * side * 3;
    const n = episodes.reduce((s, ep) => s + ep.length, 0);
    if (n === 0) throw new Error('judge: no frames to train on');
    const all = new Uint8Array(n * px);
    const uv: number[][] = [];
    let at = 0;
    for (const ep of episodes) {
      if (ep.imageSize !== side)
        throw new Error(
          `judge: episode ${ep.seed} has ${ep.imageSize} px frames, the policy ${side}`,
        );
      uv.push(...this.labels(ep));
      all.set(ep.frames.subarray(0, ep.length * px), at * px);
      at += ep.length;
    }
    // batches are drawn on the host: the frames stay uint8 there (an int32 tensor of them is 4x)
    const labels = Float32Array.from(uv.flat());
    const params = [
      ...this.head.select(),
      ...this.tower.select('vision/**').filter(([p]) => !p.startsWith('vision/proj')),
    ];
    const steps = opts.steps ?? 3000;
    const lr = opts.lr ?? 1e-3;
    // warm-up, then cosine to a thirtieth: a constant 3e-3 jumped from 4 to 24 cm late in a run
    const opt = createOptimizer({
      lr: warmupCosine(lr, Math.min(100, steps), Math.max(steps, 1), lr / 30),
      clipNorm: 1,
    });
    const draw = new Rng(11 + (opts.seed ?? 0));
    const batch = opts.batch ?? 64;
    const xs = new Uint8Array(batch * px);
    const ys = new Float32Array(batch * 2);
    let window = 0;
    try {
      for (let step = 1; step <= steps; step++) {
        for (let b = 0; b < batch; b++) {
          const i = draw.int(n);
          xs.set(all.subarray(i * px, (i + 1) * px), b * px);
          ys[2 * b] = labels[2 * i]!;
          ys[2 * b + 1] = labels[2 * i + 1]!;
        }
        const xb = tf.tensor(xs, [batch, side, side, 3], 'int32');
        const yb = tf.tensor2d(ys, [batch, 2]);
        const r = optimizerStep(
          opt,
          params,
          () => tf.mean(tf.square(tf.sub(this.locate(xb), yb))) as tf.Scalar,
        );
        tf.dispose([xb, yb]);
        if (!Number.isFinite(r.loss))
          throw new Error(`judge: the loss is ${r.loss} at step ${step}`);
        window += r.loss;
        if (step % 200 === 0) {
          opts.onProgress?.(step, Math.sqrt(2 * (window / 200)) * this.unit);
          window = 0;
        }
      }
    } finally {
      disposeOptimizer(opt);
    }
    return this.rms(episodes);
  }

  /** The rms distance (world units) between the located and the recorded end effector. */
  rms(episodes: readonly Episode[]): number {
    let se = 0;
    let n = 0;
    for (const ep of episodes) {
      const want = this.labels(ep);
      const got = this.effector(ep.frames, ep.length);
      for (let t = 0; t < ep.length; t++, n++)
        se += (got[t]![0]! - want[t]![0]!) ** 2 + (got[t]![1]! - want[t]![1]!) ** 2;
    }
    return Math.sqrt(se / n) * this.unit;
  }

  /** A recorded episode's end effector in the image, frame by frame (u, v): the labels. */
  private labels(ep: Episode): number[][] {
    const fx = ep.effector;
    if (!fx)
      throw new Error(`judge: episode ${ep.seed} (${ep.embodiment}) has no end-effector positions`);
    return Array.from({ length: ep.length }, (_, t) =>
      worldToImage(this.camera, fx[2 * t]!, fx[2 * t + 1]!),
    );
  }

  /** The effector's (u, v) in each of `n` frames, uint8 [n, I, I, 3]. */
  effector(frames: Uint8Array, n: number): number[][] {
    return chunked(frames, n, this.side, (img) => this.locate(img));
  }

  /** The end effector's world (x, y) in each of `n` frames, uint8 [n, I, I, 3]. */
  positions(frames: Uint8Array, n: number): [number, number][] {
    return this.effector(frames, n).map(([u, v]) => imageToWorld(this.camera, u!, v!));
  }

  /** The policy's target keypoint as a world (x, y) in each of `n` frames. */
  targetPositions(frames: Uint8Array, n: number): [number, number][] {
    return this.target(frames, n).map(([u, v]) => imageToWorld(this.camera, u!, v!));
  }

  /**
   * The policy's target keypoint read once per try, before the arm can cover the target: the
   * median world (x, y) over the first `k` of `n` frames, repeated for each frame (a reach target
   * does not move; per frame the read is 5 cm off when the end effector is within 3 cm of it,
   * 2 cm when far: docs/results.md 2z).
   */
  startTargetPositions(frames: Uint8Array, n: number, k = 5): [number, number][] {
    if (!(Number.isInteger(k) && k >= 1))
      throw new RangeError(`judge: the start target pools k >= 1 frames, got ${k}`);
    const first = this.targetPositions(frames, Math.min(k, n));
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      const h = s.length >> 1;
      return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
    };
    const at: [number, number] = [median(first.map((p) => p[0])), median(first.map((p) => p[1]))];
    return Array.from({ length: n }, () => [at[0], at[1]]);
  }

  track(ep: Episode): [number, number][] {
    return this.positions(ep.frames, ep.length);
  }

  reached(ep: Episode, tolerance: number): boolean {
    return judgeEpisode(this, ep, tolerance).reached;
  }

  verdict(ep: Episode, tolerance: number): JudgedEpisode {
    return judgeEpisode(this, ep, tolerance);
  }

  /** The policy's target keypoint (keypoint 0, (u, v)) in each of `n` frames. */
  target(frames: Uint8Array, n: number): number[][] {
    const vc = this.policy.config.vision;
    return chunked(frames, n, this.side, (img) => {
      const kp = encodeImages(
        this.policy.params,
        vc,
        tf.reshape(img, [-1, 1, this.side, this.side, 3]),
      ).keypoints!;
      return tf.reshape(tf.slice(kp, [0, 0, 0, 0], [-1, 1, 1, 2]), [-1, 2]);
    });
  }

  distances(frames: Uint8Array, n: number): number[] {
    const e = this.effector(frames, n);
    const t = this.target(frames, n);
    return e.map((v, i) => Math.hypot(v[0]! - t[i]![0]!, v[1]! - t[i]![1]!) * this.unit);
  }

  /** The judge as safetensors bytes (the head, the tower copy, the kind and the camera span). */
  async encode(metadata: Record<string, string> = {}): Promise<Uint8Array> {
    const entries: [string, HostTensor][] = [];
    for (const [prefix, tree] of [
      ['head', this.head],
      ['tower', this.tower],
    ] as const)
      for (const [p, v] of tree.select())
        entries.push([
          `${prefix}:${p}`,
          { shape: [...v.shape], data: (await v.data()) as Float32Array },
        ]);
    return encodeSafetensors(entries, {
      ...metadata,
      format: 'selfalign-judge',
      kind: this.kind,
      camera: JSON.stringify(this.camera),
    });
  }

  /**
   * A judge from `encode`'s bytes, for a policy with the same vision tower.
   * @throws CheckpointError when the file is not a judge, is corrupt, or its shapes do not fit
   */
  static decode(policy: Policy, bytes: Uint8Array, file = '<buffer>'): EffectorJudge {
    const decoded = decodeSafetensors(bytes, file);
    if (decoded.metadata['format'] !== 'selfalign-judge')
      throw new CheckpointError(
        'not a judge file (no format selfalign-judge in its metadata)',
        file,
      );
    const kind = decoded.metadata['kind'];
    if (kind !== 'tuned') throw new CheckpointError(`unknown judge kind ${kind}`, file);
    let camera: Camera;
    try {
      camera = JSON.parse(decoded.metadata['camera'] ?? '') as Camera;
    } catch {
      throw new CheckpointError('the camera in its metadata is not JSON', file);
    }
    if (!(camera.span > 0))
      throw new CheckpointError('the camera in its metadata has no span', file);
    const judge = new EffectorJudge(policy, camera);
    judge.metadata = decoded.metadata;
    try {
      for (const [prefix, tree] of [
        ['head', judge.head],
        ['tower', judge.tower],
      ] as const) {
        const tensors = new Map(
          [...decoded.tensors]
            .filter(([k]) => k.startsWith(`${prefix}:`))
            .map(([k, v]) => [k.slice(prefix.length + 1), v]),
        );
        loadParams(tree, { ...decoded, tensors }, { file, strict: true });
      }
      const known = judge.head.select().length + judge.tower.select().length;
      if (decoded.tensors.size !== known)
        throw new CheckpointError(
          `${decoded.tensors.size} tensors, a ${kind} judge has ${known}`,
          file,
        );
    } catch (e) {
      judge.dispose();
      throw e;
    }
    return judge;
  }

  dispose(): void {
    this.head.dispose();
    this.tower.dispose();
  }
}
