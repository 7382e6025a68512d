// selfalign bench --train: the training-speed benchmark (issue: 5x the samples per second on
// 2 cores). In one process, side by side: a pretrain step (computeLoss forward + backward +
// AdamW, keypoint loss on) at two batch sizes with tfjs's stock wasm kernels, with selfalign's
// fast kernels, and with the fast kernels on data-parallel worker threads; the frozen-prefix
// step (prefixes gathered from a PrefixStore, the two experts only); align-aware pretraining's
// step with the prefix trained and frozen; an align step and
// sampleActions on both kernel sets; and evaluation episodes per second on the simulator.
import { availableParallelism, cpus } from 'node:os';
import { SlotParam } from '@selfalign/align';
import {
  createOptimizer,
  currentBackend,
  optimizerStep,
  Rng,
  setKernels,
  tf,
} from '@selfalign/core';
import {
  computeLoss,
  createPolicy,
  disposeBatch,
  disposePrefixCache,
  encodePrefix,
  type Policy,
  type PolicyConfig,
  randomBatch,
  type TrainBatch,
} from '@selfalign/experts';
import { policyController } from '@selfalign/harness';
import {
  type AlignAwareOptions,
  disposePretrain,
  PrefixStore,
  pretrain,
} from '@selfalign/pretrain';
import { runEpisodes, seedRange, sourceEmbodiment } from '@selfalign/sim';

export interface TrainBenchOptions {
  config: PolicyConfig;
  batches: readonly number[];
  /** Timed steps per cell (after warm-up steps; the median is reported). */
  steps: number;
  workers: number;
  episodes: number;
  log: (line: string) => void;
}

export interface TrainBenchRow {
  what: string;
  kernels: 'stock' | 'fast';
  workers: number;
  batch: number;
  ms: number;
  perSecond: number;
  unit: string;
}

/** A batch with object positions (so the keypoint loss runs, as in real pretraining). */
function trainBatch(
  policy: Policy,
  b: number,
  seed: number,
  one?: { slot: number; isDemo: number },
): TrainBatch {
  const batch = randomBatch(policy, b, new Rng(seed), {
    slots: Array.from(
      { length: b },
      (_, i) => one?.slot ?? i % Math.min(8, policy.config.ttt.slots),
    ),
    ...(one ? { isDemo: Array.from({ length: b }, () => one.isDemo) } : {}),
    stateDims: 6,
    actionDims: 3,
  });
  const g = Math.min(2, policy.config.vision.keypoints ?? 0);
  if (g > 0) {
    const rng = new Rng(seed + 1);
    batch.objects = tf.tensor3d(
      Float32Array.from({ length: b * g * 2 }, () => rng.uniform()),
      [b, g, 2],
    );
  }
  return batch;
}

/** Steps run before timing: the first steps of a run (and of a worker pool) are still warming. */
const WARMUP_STEPS = 2;

/**
 * Median wall time of a pretrain step after WARMUP_STEPS (ms), as in a long run. With
 * `frozenPrefix` the batch's frames are a store's (built once, outside the timing) and each step
 * gathers their prefixes.
 */
async function pretrainMs(
  policy: Policy,
  b: number,
  steps: number,
  workers: number,
  frozenPrefix = false,
  alignAware = false,
) {
  const t: number[] = [];
  let last = performance.now();
  const frames = frozenPrefix ? trainBatch(policy, b, 99) : undefined;
  const store = frames ? PrefixStore.build(policy, b, () => frames, { batch: b }) : undefined;
  const index = Array.from({ length: b }, (_, i) => i);
  const r = await pretrain(
    policy,
    (s) => ({
      ...trainBatch(policy, b, 100 + s),
      ...(store ? { prefixCache: store.gather(index) } : {}),
    }),
    {
      steps: steps + WARMUP_STEPS,
      workers,
      lr: 1e-4,
      frozenPrefix,
      lossWeights: { keypoints: 1 },
      ...(alignAware ? { alignAware: metaTerm(policy) } : {}),
      onStep: () => {
        const now = performance.now();
        t.push(now - last);
        last = now;
      },
    },
  );
  disposePretrain(r);
  const timed = t.slice(WARMUP_STEPS).sort((x, y) => x - y);
  return timed[timed.length >> 1]!;
}

/** Meta rows per step, as `pretrain --align-aware-rows` defaults to. */
const META_ROWS = 8;

/**
 * Align-aware pretraining's term as `pretrain --align-aware 1:0.3 --align-aware-param span
 * --align-aware-data` runs it: every step a robot without a slot of its own (its rows on the first
 * slot after trainBatch's 8 sources) takes one inner step from the sources' mean.
 */
function metaTerm(policy: Policy): AlignAwareOptions {
  const sources = Array.from({ length: Math.min(8, policy.config.ttt.slots - 1) }, (_, i) => i);
  const slot = sources.length;
  const rows = (seed: number, isDemo: number) =>
    trainBatch(policy, META_ROWS, seed, { slot, isDemo });
  return {
    batch: (s) => ({ slot, play: rows(500 + s, 0), demo: rows(700 + s, 1) }),
    weight: 1,
    innerLr: 0.3,
    sources,
    innerParam: 'span',
  };
}

/** Median wall time of `reps` calls after one warm-up call (ms). */
export function median(fn: () => unknown, reps: number): number {
  fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return times.sort((x, y) => x - y)[times.length >> 1]!;
}

async function useKernels(kernels: 'stock' | 'fast') {
  const why = await setKernels(kernels);
  if (why) throw new Error(`bench --train: the fast kernels do not load here: ${why}`);
}

export async function benchTrain(o: TrainBenchOptions): Promise<TrainBenchRow[]> {
  if (currentBackend()?.name !== 'wasm')
    throw new Error('bench --train compares wasm kernel sets: run it with the wasm backend');
  const rows: TrainBenchRow[] = [];
  const add = (row: Omit<TrainBenchRow, 'perSecond'> & { per?: number }) => {
    const perSecond = ((row.per ?? row.batch) * 1000) / row.ms;
    const full = { ...row, perSecond };
    delete (full as { per?: number }).per;
    rows.push(full);
    o.log(
      `  ${row.what.padEnd(26)} ${row.kernels.padEnd(5)} x${row.workers} B=${String(row.batch).padEnd(3)} ${row.ms.toFixed(0).padStart(6)} ms  ${perSecond.toFixed(1).padStart(7)} ${row.unit}`,
    );
  };
  const policy = createPolicy(o.config, 0);
  try {
    for (const kernels of ['stock', 'fast'] as const) {
      await useKernels(kernels);
      for (const b of o.batches) {
        const ms = await pretrainMs(policy, b, o.steps, 1);
        add({ what: 'pretrain step', kernels, workers: 1, batch: b, ms, unit: 'samples/s' });
      }
    }
    if (o.workers > 1) {
      for (const b of o.batches) {
        const ms = await pretrainMs(policy, b, o.steps, o.workers);
        add({
          what: 'pretrain step',
          kernels: 'fast',
          workers: o.workers,
          batch: b,
          ms,
          unit: 'samples/s',
        });
      }
    }
    // the frozen-prefix phase at the largest batch: the two experts only
    const big = Math.max(...o.batches);
    for (const workers of o.workers > 1 ? [1, o.workers] : [1]) {
      const ms = await pretrainMs(policy, big, o.steps, workers, true);
      add({
        what: 'pretrain, prefix frozen',
        kernels: 'fast',
        workers,
        batch: big,
        ms,
        unit: 'samples/s',
      });
    }
    // align-aware pretraining (a meta robot each step, 8 + 8 rows): the prefix trained or frozen
    for (const frozen of [false, true]) {
      const ms = await pretrainMs(policy, big, o.steps, 1, frozen, true);
      add({
        what: `align-aware${frozen ? ', prefix frozen' : ''}`,
        kernels: 'fast',
        workers: 1,
        batch: big,
        ms,
        unit: 'samples/s',
      });
    }
    for (const kernels of ['stock', 'fast'] as const) {
      await useKernels(kernels);
      const b = 16;
      const batch = { ...trainBatch(policy, b, 7), slot: tf.fill([b], 1, 'int32') };
      const param = new SlotParam(policy, { kind: 'free', slot: 1 });
      const opt = createOptimizer({ lr: 1e-4 });
      const rng = new Rng(2);
      const cache = encodePrefix(policy, batch);
      const ms = median(
        () =>
          optimizerStep(opt, param.tree.select(), () => {
            const { total, ...rest } = computeLoss(policy, batch, {
              rng,
              fastWeights: param.fastWeights(),
              streams: ['alignment'],
              prefixCache: cache,
            });
            tf.dispose(Object.values(rest) as tf.Tensor[]);
            return total;
          }),
        o.steps,
      );
      add({
        what: 'align step (prefix cached)',
        kernels,
        workers: 1,
        batch: b,
        ms,
        unit: 'frames/s',
      });
      disposePrefixCache(cache);
      param.dispose();
      disposeBatch(batch);
      for (const bs of [1, 32]) {
        const obs = trainBatch(policy, bs, 9);
        const sms = median(() => policy.sampleActions(obs).dispose(), Math.max(2, o.steps >> 1));
        add({
          what: 'sampleActions',
          kernels,
          workers: 1,
          batch: bs,
          ms: sms,
          unit: 'calls x B/s',
        });
        disposeBatch(obs);
      }
      const arm = sourceEmbodiment();
      const t0 = performance.now();
      await runEpisodes(
        arm,
        'reach',
        seedRange(o.episodes, 10_000),
        policyController(policy, { slot: 0, stateDims: 6 }),
        { env: { imageSize: policy.config.vision.imageSize }, parallel: 25 },
      );
      add({
        what: 'eval episodes (reach)',
        kernels,
        workers: 1,
        batch: o.episodes,
        ms: performance.now() - t0,
        unit: 'episodes/s',
      });
    }
  } finally {
    await useKernels('fast');
    policy.dispose();
  }
  return rows;
}

export function benchMachine(): string {
  return `${cpus()[0]?.model ?? '?'} x${availableParallelism()}, node ${process.version}, tfjs wasm`;
}
