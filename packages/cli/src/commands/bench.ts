// selfalign bench: a quick side-by-side measurement on this machine: one align step
// (prefix cached, Alignment Expert only) against the naive full joint forward, and
// sampleActions, for a config and batch size. The package benchmarks go deeper.
import { cpus } from 'node:os';
import { SlotParam } from '@selfalign/align';
import { createOptimizer, currentBackend, optimizerStep, Rng, tf } from '@selfalign/core';
import {
  computeLoss,
  createPolicy,
  disposeBatch,
  disposePrefixCache,
  encodePrefix,
  randomBatch,
} from '@selfalign/experts';
import { defaultWorkers } from '@selfalign/pretrain';
import type { Command } from '../command.js';
import { UsageError, UserError } from '../io.js';
import { configByName } from '../shared.js';
import { benchMachine, benchTrain, median } from './bench-train.js';

export const bench: Command = {
  name: 'bench',
  summary: 'time an align step against the naive joint forward, and sampleActions',
  usage: `selfalign bench [--config tiny|small] [--batch-size B] [--repeats N]
selfalign bench --train [--config small] [--batch-sizes 16,32] [--repeats N] [--workers N] [--episodes N]
  --train       the training-speed benchmark: pretrain steps with the stock and the fast wasm
                kernels and with data-parallel workers, align steps, sampleActions, eval episodes;
                each pretrain cell is the median of --repeats steps (default 5) after 2 warm-up steps
  (deeper benchmarks: pnpm bench, see each package README)`,
  options: {
    config: { type: 'string' },
    'batch-size': { type: 'string' },
    'batch-sizes': { type: 'string' },
    repeats: { type: 'string' },
    train: { type: 'boolean' },
    workers: { type: 'string' },
    episodes: { type: 'string' },
  },
  async run(args, io) {
    if (args.has('train')) {
      const config = configByName(args.str('config', 'small'), 'bench');
      const batches = args.list('batch-sizes', ['16', '32']).map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 1 || n > 256)
          throw new UserError(`bench: --batch-sizes takes integers 1..256, got '${s}'`);
        return n;
      });
      const machine = benchMachine();
      io.err(`bench --train: ${config.name} on ${machine}`);
      const rows = await benchTrain({
        config,
        batches,
        steps: args.int('repeats', 5, 1),
        workers: args.int('workers', defaultWorkers(), 1),
        episodes: args.int('episodes', 25, 1),
        log: (line) => io.err(line),
      });
      const base = (b: number) =>
        rows.find((r) => r.what === 'pretrain step' && r.kernels === 'stock' && r.batch === b);
      const lines = [`${config.name}; ${machine}; ${new Date().toISOString().slice(0, 10)}`];
      lines.push('| what | kernels | workers | B | ms | per second | vs stock |');
      lines.push('|---|---|---|---|---|---|---|');
      for (const r of rows) {
        const ref = r.what.startsWith('pretrain')
          ? base(r.batch)
          : rows.find((x) => x.what === r.what && x.kernels === 'stock' && x.batch === r.batch);
        const ratio = ref ? `${(r.perSecond / ref.perSecond).toFixed(2)}x` : '';
        lines.push(
          `| ${r.what} | ${r.kernels} | ${r.workers} | ${r.batch} | ${r.ms.toFixed(0)} | ${r.perSecond.toFixed(1)} ${r.unit} | ${ratio} |`,
        );
      }
      return { lines, json: { config: config.name, machine, rows } };
    }
    const config = configByName(args.str('config', 'tiny'), 'bench');
    const b = args.int('batch-size', 8, 1);
    if (b > 256) throw new UsageError(`bench: --batch-size must be at most 256, got ${b}`);
    const reps = args.int('repeats', 3, 1);
    const policy = createPolicy(config, 0);
    const batch = { ...randomBatch(policy, b, new Rng(1)), slot: tf.fill([b], 1, 'int32') };
    const param = new SlotParam(policy, { kind: 'free', slot: 1 });
    const opt = createOptimizer({ lr: 1e-4 });
    const rng = new Rng(2);
    const cache = encodePrefix(policy, batch);
    const step = (naive: boolean) =>
      optimizerStep(opt, param.tree.select(), () => {
        const { total, ...rest } = computeLoss(policy, batch, {
          rng,
          fastWeights: param.fastWeights(),
          ...(naive ? { weights: { action: 0 } } : { streams: ['alignment'], prefixCache: cache }),
        });
        tf.dispose(Object.values(rest) as tf.Tensor[]);
        return total;
      });
    const time = (fn: () => unknown) => median(fn, reps);
    try {
      const ours = time(() => step(false));
      const naive = time(() => step(true));
      const sampling = time(() => policy.sampleActions(batch).dispose());
      const machine = `${cpus()[0]?.model ?? '?'} x${cpus().length}, node ${process.version}, backend ${currentBackend()?.name}`;
      return {
        lines: [
          `${config.name}, batch ${b}, median of ${reps}; ${machine}`,
          `  align step (prefix cached, Alignment Expert only): ${ours.toFixed(0)} ms`,
          `  naive step (joint forward with the Action Expert): ${naive.toFixed(0)} ms  (${(naive / ours).toFixed(2)}x)`,
          `  sampleActions (${config.flowSteps} steps): ${sampling.toFixed(0)} ms`,
        ],
        json: {
          config: config.name,
          batch: b,
          alignMs: ours,
          naiveMs: naive,
          ratio: naive / ours,
          sampleMs: sampling,
          machine,
        },
      };
    } finally {
      disposePrefixCache(cache);
      disposeBatch(batch);
      param.dispose();
      policy.dispose();
    }
  },
};
