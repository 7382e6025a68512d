// Diagnostic for docs/results.md: how hard is the control problem itself, with perception
// solved? Behaviour cloning of the scripted expert by a plain MLP from privileged inputs
// (cos/sin of the joint angles, the target's (x, y) for reach, the block's and the goal's for
// push, a one-hot of the source robot) on the first 8 (`--sources N`) source robots, as the pretraining probe; MSE
// regression of the expert's action, Adam, batch 64; closed-loop success on fresh seeds every
// `--eval-every` steps.
//   pnpm --filter @selfalign/experiments probe privileged-bc.ts
//     [--task reach|push] [--demos 30] [--steps 3000] [--eval-every 500] [--width 256]
//     [--batch 64] [--lr 1e-3] [--dart 0] [--reach canonical|nearest]
//     [--dagger R] [--dagger-episodes 50] [--sources 8] [--schedule constant|cosine]
// --schedule cosine: 100 warm-up steps, then cosine decay from --lr to a tenth of it at --steps
// (the pretraining recipe's schedule); constant keeps --lr throughout.
// --eval-noise S1,S2,..: the last evaluation also runs with the objects' (x, y) read with
// Gaussian error of std S metres per coordinate, drawn afresh every step ('step') and once per
// episode ('episode', a bias as a keypoint head's may be): how precisely must the policy see
// the block? --train-noise S adds fresh error of std S to the training inputs' objects.
// --read pixels: the objects' (x, y) are not given but read from the camera frame the policy
// sees (`--image-size`, default 64): the centroid of the block's and the goal's pixels (held
// from the last frame that showed any), in training and evaluation alike; --read pixels-no-arm
// reads a frame of the same scene drawn without the arm (no occlusion, the pixel grid only).
// The renderer has no anti-aliasing, so at 64 px (3.3 cm per pixel) a still block's read is
// fixed to the grid: what a perfect reader of the frame could know.
// --read-bias S: every episode's object reads (training demos and evaluation alike) carry one
// error of std S metres per coordinate, drawn when the episode starts: a reader that is off by a
// few centimetres in a way the policy trains with, not only meets at evaluation.
// --dagger R: DAgger, R rounds spread evenly over the steps: the MLP drives `--dagger-episodes`
// fresh episodes per source, the expert labels every state it visits, the rows join the data.
import {
  createOptimizer,
  initBackend,
  linear,
  optimizerStep,
  ParamTree,
  Rng,
  randomNormal,
  tf,
  warmupCosine,
} from '@selfalign/core';
import {
  type Controller,
  DEFAULT_APPEARANCE,
  DEFAULT_CAMERA,
  expertController,
  GEOMETRY,
  imageToWorld,
  renderScene,
  runEpisodes,
  type StepObservation,
  sampleSources,
  seedRange,
} from '@selfalign/sim';
import { arg } from './args.js';
import { colourCentroid } from './colour-centroid.js';

const demos = Number(arg('--demos', '30'));
const steps = Number(arg('--steps', '3000'));
const evalEvery = Number(arg('--eval-every', '500'));
const width = Number(arg('--width', '256'));
const batch = Number(arg('--batch', '64'));
const lr = Number(arg('--lr', '1e-3'));
/** --dart S: the demos execute the expert's action plus N(0, S^2) noise; the label stays clean (DART). */
const dart = Number(arg('--dart', '0'));
const daggerRounds = Number(arg('--dagger', '0'));
const daggerEpisodes = Number(arg('--dagger-episodes', '50'));
const noise = new Rng(77);
const evalNoise = arg('--eval-noise', '')
  .split(',')
  .filter((x) => x !== '')
  .map(Number);
const trainNoise = Number(arg('--train-noise', '0'));
const read = arg('--read', 'exact') as 'exact' | 'pixels' | 'pixels-no-arm';
if (!['exact', 'pixels', 'pixels-no-arm'].includes(read))
  throw new Error(`--read must be exact, pixels or pixels-no-arm, got ${read}`);
const imageSize = Number(arg('--image-size', '64'));
const env = { imageSize };
const reachMode = arg('--reach', 'nearest') as 'nearest' | 'canonical';
const task = arg('--task', 'reach') as 'reach' | 'push';
await initBackend('wasm');
const sources = sampleSources(Number(arg('--sources', '8')), 1);
const OBJ = task === 'reach' ? 2 : 4;
const IN = 6 + OBJ + sources.length;
/** The centroid of the pixels of colour `rgb` as a world point, or undefined when none shows. */
const centroid = (img: Uint8Array, rgb: readonly number[]): [number, number] | undefined => {
  const uv = colourCentroid(img, imageSize, rgb);
  return uv && imageToWorld(DEFAULT_CAMERA, uv[0], uv[1]);
};
// the last pixel read of each running episode's objects (held while none shows)
const held = new Map<number, [number, number][]>();
const readBias = Number(arg('--read-bias', '0'));
const biasRng = new Rng(31);
const biases = new Map<number, number[]>();
const startEpisode = (i: number) => {
  held.delete(i);
  biases.set(
    i,
    Array.from({ length: OBJ }, () => readBias * biasRng.normal()),
  );
};
const objectsOf = (o: StepObservation): readonly (readonly [number, number])[] => {
  const truth = task === 'reach' ? [o.env.target] : [o.env.block, o.env.goal];
  if (read === 'exact') return truth;
  const img =
    read === 'pixels'
      ? o.image
      : renderScene(
          {
            joints: [9, 9, 9, 9],
            linkRadius: GEOMETRY.linkRadius,
            eeRadius: GEOMETRY.eeRadius,
            targetRadius: GEOMETRY.targetRadius,
            blockHalf: GEOMETRY.blockHalf,
            goalRadius: GEOMETRY.goalRadius,
            ...(task === 'push'
              ? { block: o.env.block, goal: o.env.goal }
              : { target: o.env.target }),
          },
          imageSize,
        );
  const colours =
    task === 'reach'
      ? [DEFAULT_APPEARANCE.target]
      : [DEFAULT_APPEARANCE.block, DEFAULT_APPEARANCE.goal];
  const last = held.get(o.index);
  const now = colours.map((c, i): [number, number] => centroid(img, c) ?? last?.[i] ?? [0, 0]);
  held.set(o.index, now);
  return now;
};
const features = (o: StepObservation, k: number, out: Float32Array, at: number) => {
  out.set(o.state.subarray(0, 6), at);
  const objs = objectsOf(o);
  const b = biases.get(o.index);
  objs.forEach(([x, y], i) => {
    out[at + 6 + 2 * i] = x + (b?.[2 * i] ?? 0);
    out[at + 7 + 2 * i] = y + (b?.[2 * i + 1] ?? 0);
  });
  out[at + 6 + OBJ + k] = 1;
};
const xs: number[] = [];
const ys: number[] = [];
for (const [k, e] of sources.entries()) {
  const rec: Controller = {
    reset: (i) => startEpisode(i),
    act: (obs) => {
      const a = expertController(undefined, reachMode).act(obs) as Float64Array[];
      obs.forEach((o, i) => {
        const f = new Float32Array(IN);
        features(o, k, f, 0);
        xs.push(...f);
        ys.push(...a[i]!);
      });
      return dart > 0 ? a.map((v) => v.map((x) => x + dart * noise.normal())) : a;
    },
  };
  await runEpisodes(e, task, seedRange(demos, 100_000 + k * 1000), rec, { env });
}
let n = ys.length / 3;
let X = tf.tensor2d(xs, [n, IN]);
let Y = tf.tensor2d(ys, [n, 3]);
const tree = new ParamTree();
const rng = new Rng(0);
const dense = (p: string, a: number, b: number) => {
  tree.add(`${p}/w`, randomNormal(rng, [a, b], 1 / Math.sqrt(a)));
  tree.add(`${p}/b`, tf.zeros([b]));
};
dense('l1', IN, width);
dense('l2', width, width);
dense('l3', width, 3);
const P = (p: string) => tree.get(p);
const mlp = (x: tf.Tensor) =>
  linear(
    tf.relu(linear(tf.relu(linear(x, P('l1/w'), P('l1/b'))), P('l2/w'), P('l2/b'))),
    P('l3/w'),
    P('l3/b'),
  );
/**
 * The MLP driving source k; `record` sees each step's features (rows of IN) and observations
 * first (DAgger labels them).
 */
/** Read error on the objects' (x, y): std `sd`, fresh every step or one draw per episode. */
interface ReadError {
  sd: number;
  kind: 'step' | 'episode';
  rng: Rng;
  bias: Map<number, Float32Array>;
}
const learner = (
  k: number,
  record?: (f: Float32Array, obs: readonly StepObservation[]) => void,
  err?: ReadError,
): Controller => ({
  reset: (i) => startEpisode(i),
  act: (obs) =>
    tf.tidy(() => {
      const f = new Float32Array(obs.length * IN);
      obs.forEach((o, i) => {
        features(o, k, f, i * IN);
        if (!err || err.sd === 0) return;
        let e = err.kind === 'episode' ? err.bias.get(o.index) : undefined;
        if (!e) {
          e = Float32Array.from({ length: OBJ }, () => err.sd * err.rng.normal());
          if (err.kind === 'episode') err.bias.set(o.index, e);
        }
        for (let j = 0; j < OBJ; j++) f[i * IN + 6 + j]! += e[j]!;
      });
      record?.(f, obs);
      return mlp(tf.tensor2d(f, [obs.length, IN])).arraySync() as number[][];
    }),
});
const evaluate = async (step: number, err?: Omit<ReadError, 'bias' | 'rng'>) => {
  const rates: string[] = [];
  let total = 0;
  for (const [k, e] of sources.entries()) {
    const ctrl = learner(
      k,
      undefined,
      err ? { ...err, rng: new Rng(5_000 + k), bias: new Map() } : undefined,
    );
    const r = await runEpisodes(e, task, seedRange(25, 900_000 + k * 100), ctrl, { env });
    rates.push(`${(100 * r.successRate).toFixed(0)} (d ${r.meanFinalDistance.toFixed(2)})`);
    total += r.successRate;
  }
  console.log(
    `step ${step}${err ? ` (read error ${err.sd} m per ${err.kind})` : ''}: ${task} success per source ${rates.join(' / ')} %, mean ${((100 * total) / sources.length).toFixed(0)}%`,
  );
};
/** DAgger: the learner acts, the expert labels what it visits; the rows join the data. */
const aggregate = async (round: number) => {
  for (const [k, e] of sources.entries()) {
    const ctrl = learner(k, (f, obs) => {
      const labels = expertController(undefined, reachMode).act(obs) as Float64Array[];
      labels.forEach((a, i) => {
        xs.push(...f.subarray(i * IN, (i + 1) * IN));
        ys.push(...a);
      });
    });
    await runEpisodes(
      e,
      task,
      seedRange(daggerEpisodes, 200_000 + round * 10_000 + k * 1000),
      ctrl,
      { env },
    );
  }
  tf.dispose([X, Y]);
  n = ys.length / 3;
  X = tf.tensor2d(xs, [n, IN]);
  Y = tf.tensor2d(ys, [n, 3]);
  console.log(`dagger round ${round}: ${n} frames`);
};
const roundEvery = daggerRounds > 0 ? Math.floor(steps / (daggerRounds + 1)) : 0;
console.log(`${n} demo frames (${demos} demos per source)`);
const schedule = arg('--schedule', 'constant');
if (schedule !== 'constant' && schedule !== 'cosine')
  throw new Error(`--schedule must be constant or cosine, got ${schedule}`);
// the objects' columns of the inputs (--train-noise perturbs only these)
const objectColumns = tf.tensor1d(
  Array.from({ length: IN }, (_, j) => (j >= 6 && j < 6 + OBJ ? 1 : 0)),
);
const opt = createOptimizer({ lr: schedule === 'cosine' ? warmupCosine(lr, 100, steps) : lr });
const params = tree.select();
for (let s = 1; s <= steps; s++) {
  const idx = tf.tensor1d(
    Array.from({ length: batch }, () => rng.int(n)),
    'int32',
  );
  const r = optimizerStep(opt, params, () => {
    let x = tf.gather(X, idx);
    if (trainNoise > 0) {
      // fresh read error on the objects' columns only
      x = tf.add(
        x,
        tf.mul(tf.randomNormal([batch, IN], 0, trainNoise, 'float32', rng.int(1e9)), objectColumns),
      );
    }
    return tf.mean(tf.square(tf.sub(mlp(x), tf.gather(Y, idx)))) as tf.Scalar;
  });
  idx.dispose();
  if (roundEvery > 0 && s % roundEvery === 0 && s / roundEvery <= daggerRounds)
    await aggregate(s / roundEvery);
  if (s % evalEvery === 0) {
    console.log(`step ${s}: train mse ${r.loss.toFixed(4)}`);
    await evaluate(s);
  }
}
for (const sd of evalNoise)
  for (const kind of ['step', 'episode'] as const) await evaluate(steps, { sd, kind });
