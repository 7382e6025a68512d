// selfalign diagnose: why align does (not) close the gap on a target robot. For each target:
// three slots of the same new TTT slot position, the no-adaptation slot (mean of the source
// slots), the oracle slot (TTT-only, fitted on labelled target demos with the action loss) and
// the aligned slot (TTT-only, fitted on target play with the alignment losses), and
//   - the held-out alignment losses at each slot: if the oracle slot scores worse than what align
//     finds, the objective is misaligned with acting; if better, align fails to find it;
//   - success on the robot at each slot;
//   - the distance of the aligned slot to the oracle and to the start over align steps;
//   - which task's gradient at the start points toward the oracle (cosine with oracle - start).

import { resolve } from 'node:path';
import {
  align,
  evaluateLosses,
  loadCheckpoint,
  SlotParam,
  type TaskLosses,
} from '@selfalign/align';
import { Rng, tf } from '@selfalign/core';
import { writeFileAtomic } from '@selfalign/core/node';
import {
  alignmentTasksOf,
  computeLoss,
  disposePrefixCache,
  encodePrefix,
} from '@selfalign/experts';
import {
  fillWithSourceMean,
  firstFreeSlot,
  playSplit,
  policyController,
  slotVector,
  writeSlotVector,
} from '@selfalign/harness';
import { expertController, randomController, runEpisodes, seedRange } from '@selfalign/sim';
import type { Command } from '../command.js';
import { Progress, UserError } from '../io.js';
import { checkOutputs } from '../paths.js';
import { embodimentByName, featureExtractor, recordEpisodes } from '../shared.js';
import { TASK_SHORT_TITLE as LABELS } from '../task-titles.js';

const norm = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0));
const dist = (a: Float32Array, b: Float32Array) =>
  Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]!) ** 2, 0));
function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return dot / Math.max(1e-12, norm(a) * norm(b));
}

export const diagnose: Command = {
  name: 'diagnose',
  summary:
    'why align does or does not close the gap: losses, success and distances at the no-adaptation, oracle and aligned slots',
  usage: `selfalign diagnose --checkpoint CKPT [options]
  --targets NAMES   held-out robots                       (default sign,links)
  --play N          play (and oracle demo) trajectories    (default 10)
  --steps N         align / oracle steps                   (default 200)
  --episodes N      evaluation episodes per slot           (default 50)
  --lr LR           align learning rate (free slot)        (default 1e-3)
  --seed S          (default 0)
  --out FILE        also write the JSON here`,
  options: {
    checkpoint: { type: 'string' },
    targets: { type: 'string' },
    play: { type: 'string' },
    steps: { type: 'string' },
    episodes: { type: 'string' },
    lr: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
  },
  async run(args, io) {
    const ckpt = resolve(io.cwd, args.str('checkpoint'));
    const outFile = args.optStr('out');
    if (outFile) checkOutputs('diagnose', [ckpt], [resolve(io.cwd, outFile)]);
    const targets = args.list('targets', ['sign', 'links']);
    const nPlay = args.int('play', 10, 1);
    const steps = args.int('steps', 200, 1);
    const episodes = args.int('episodes', 50, 1);
    const lr = args.lr('lr', 1e-3);
    const seed = args.int('seed', 0);
    const loaded = await loadCheckpoint(ckpt);
    const policy = loaded.policy;
    // the policy's alignment tasks: the three, and any extra task its config adds
    const tasks = alignmentTasksOf(policy.config).map((t) => t.name);
    const sourceSlots = Object.values((loaded.info['slots'] ?? {}) as Record<string, number>);
    if (sourceSlots.length < 2)
      throw new UserError(`diagnose: ${ckpt} records fewer than two source slots`);
    const E = policy.config.ttt.slots;
    const slot = firstFreeSlot(policy, sourceSlots);
    if (slot === undefined) throw new UserError(`diagnose: no free slot among ${E}`);
    const extractor = await featureExtractor('default', io.cwd, policy.config.featureDim);
    const progress = new Progress(io, 'diagnose', targets.length, !args.has('json'));
    const lines: string[] = [];
    const report: Record<string, unknown> = {};
    try {
      for (const name of targets) {
        const e = embodimentByName(name, 1);
        const base = 3_000_000 + 10_000 * seed;
        const play = await recordEpisodes(
          e,
          randomController(seed),
          'play',
          nPlay,
          base,
          extractor,
          policy.config,
        );
        const demos = await recordEpisodes(
          e,
          expertController(),
          'demo',
          nPlay,
          base + 5_000,
          extractor,
          policy.config,
        );
        const split = playSplit(policy, play.samples, play.meta, 16, new Rng(seed + 11), slot, 0.2);
        const demoSplit = playSplit(
          policy,
          demos.samples,
          demos.meta,
          16,
          new Rng(seed + 13),
          slot,
          0,
        );
        const success = async () =>
          (
            await runEpisodes(
              e,
              'reach',
              seedRange(episodes, 700_000),
              policyController(policy, { slot }),
              {
                env: { imageSize: policy.config.vision.imageSize },
                parallel: 25,
              },
            )
          ).successRate;
        const heldOut = (): TaskLosses => evaluateLosses(policy, split.heldOut, { seed: 99 });
        // no adaptation
        fillWithSourceMean(policy, slot, sourceSlots);
        const start = slotVector(policy, slot);
        const atStart = { losses: heldOut(), success: await success() };
        // oracle: the action loss on labelled demos, TTT-only, free slot from the mean
        const o = await align(policy, demoSplit.train, {
          slot,
          parametrisation: 'free',
          init: 'mean',
          basis: sourceSlots,
          maxSteps: steps,
          lr: 1e-3,
          objective: 'action',
          seed,
        });
        o.state.dispose();
        const oracle = slotVector(policy, slot);
        const atOracle = { losses: heldOut(), success: await success() };
        // which task's gradient at the start points toward the oracle
        writeSlotVector(policy, slot, start);
        const toOracle = oracle.map((x, i) => x - start[i]!);
        const param = new SlotParam(policy, {
          kind: 'free',
          slot,
          init: 'current',
          basis: sourceSlots,
        });
        const cos: Record<string, number> = {};
        const vars = param.tree.select().map(([, v]) => v);
        for (const task of [...tasks, 'all']) {
          const g = new Float32Array(toOracle.length);
          for (const b of split.train.slice(0, 8)) {
            const cache = encodePrefix(policy, b);
            const weights = Object.fromEntries(
              tasks.map((n) => [n, task === 'all' || task === n ? 1 : 0]),
            );
            const { value, grads } = tf.variableGrads(
              () =>
                computeLoss(
                  policy,
                  { ...b, slot: tf.fill([b.state.shape[0]!], slot, 'int32') },
                  {
                    streams: ['alignment'],
                    prefixCache: cache,
                    fastWeights: param.fastWeights(),
                    weights,
                    rng: new Rng(5),
                  },
                ).total,
              vars,
            );
            // the free parametrisation's tensors are the slot's W1/b1 in TTT_FAST_WEIGHTS order
            let off = 0;
            for (const v of vars) {
              const gv = grads[v.name];
              if (gv) {
                const d = gv.dataSync();
                for (let i = 0; i < d.length; i++) g[off + i]! -= d[i]!; // descent direction
              }
              off += v.size;
            }
            value.dispose();
            tf.dispose(Object.values(grads));
            disposePrefixCache(cache);
          }
          cos[task] = cosine(g, toOracle);
        }
        param.dispose();
        // align, with the distance to the oracle every few steps
        const trace: { step: number; toOracle: number; fromStart: number }[] = [
          { step: 0, toOracle: dist(start, oracle), fromStart: 0 },
        ];
        const chunk = Math.max(1, Math.floor(steps / 10));
        let state: Awaited<ReturnType<typeof align>>['state'] | undefined;
        let done = 0;
        while (done < steps) {
          const r = await align(policy, split.train, {
            slot,
            parametrisation: 'free',
            init: 'mean',
            basis: sourceSlots,
            maxSteps: Math.min(chunk, steps - done),
            lr,
            seed,
            ...(state ? { state } : {}),
          });
          state = r.state;
          done += r.steps;
          const now = slotVector(policy, slot);
          trace.push({ step: done, toOracle: dist(now, oracle), fromStart: dist(now, start) });
          if (r.steps === 0) break;
        }
        state?.dispose();
        const atAligned = { losses: heldOut(), success: await success() };
        const f = (x: number) => x.toFixed(3);
        const row = (label: string, v: { losses: TaskLosses; success: number }) =>
          `| ${label} | ${tasks.map((n) => f(v.losses[n as keyof TaskLosses] ?? Number.NaN)).join(' | ')} | ${f(v.losses.total)} | ${(100 * v.success).toFixed(0)}% |`;
        const verdict =
          atOracle.losses.total > atAligned.losses.total
            ? 'the oracle slot scores WORSE on the held-out alignment losses than the aligned one: minimising them does not lead to acting right (an objective / pretraining problem)'
            : 'the oracle slot scores better on the held-out alignment losses: align does not find it (an optimisation problem)';
        lines.push(
          `\n${name}: ${nPlay} play / demo trajectories, ${split.trainEpisodes.length} play episodes to align on, ${split.heldOutEpisodes.length} held out; ${episodes} eval episodes`,
          `| slot | ${tasks.map((n) => LABELS[n] ?? n).join(' | ')} | total | success |`,
          `|---|${tasks.map(() => '---|').join('')}---|---|`,
          row('no adaptation (source mean)', atStart),
          row('oracle (action loss, demos)', atOracle),
          row(`aligned (free, lr ${lr}, ${steps} steps)`, atAligned),
          `  verdict: ${verdict}`,
          `  per task, oracle vs no adaptation (a task that sees the acting slot scores lower at the oracle): ${tasks
            .map((n) => {
              const k = n as keyof TaskLosses;
              const a = atStart.losses[k] ?? Number.NaN;
              const o = atOracle.losses[k] ?? Number.NaN;
              return `${n} ${(100 * (o / a - 1)).toFixed(1)}%`;
            })
            .join(', ')}`,
          `  |oracle - start| = ${f(dist(start, oracle))}; aligned: ${trace.map((t) => `step ${t.step}: to oracle ${f(t.toOracle)}, moved ${f(t.fromStart)}`).join('; ')}`,
          `  cosine of each task's descent direction at the start with (oracle - start): ${Object.entries(
            cos,
          )
            .map(([k, v]) => `${k} ${v.toFixed(3)}`)
            .join(', ')}`,
        );
        report[name] = { atStart, atOracle, atAligned, cosine: cos, trace, verdict };
        progress.tick();
      }
      progress.end();
    } finally {
      await extractor.dispose();
      policy.dispose();
    }
    if (outFile)
      await writeFileAtomic(resolve(io.cwd, outFile), `${JSON.stringify(report, null, 2)}\n`);
    return { lines, json: report };
  },
};
