// selfalign eval: the policy acting on a simulator embodiment: success rate, final distance,
// steps to success, action MSE against the embodiment's own expert.
import { resolve } from 'node:path';
import { AdapterStore } from '@selfalign/align';
import { policyController } from '@selfalign/harness';
import { runEpisodes, seedRange } from '@selfalign/sim';
import type { Command } from '../command.js';
import { Progress, UsageError } from '../io.js';
import { checkJoints, checkSlot, embodimentByName, loadPolicy, weightsArg } from '../shared.js';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'run the policy on simulator embodiments and report success and action MSE',
  usage: `selfalign eval --checkpoint CKPT --embodiment NAMES [options]
  --embodiment NAMES    comma-separated presets or src-K
  --sources N           instead: the first N source robots src-0..src-N-1 (a table)
  --slot K              slot to act with (default: each embodiment's slot in the checkpoint, else 0)
  --adapter NAME        load this adapter (from --adapters DIR) into the slot first
  --adapters DIR        (default adapters)
  --task T              reach | push, or both: reach,push    (default reach)
  --episodes N          per robot and task                 (default 100)
  --seed S              first evaluation seed              (default 10000)
  --execute K           actions executed per chunk         (default Ha/2)
  --family-seed S       source family seed for src-K names (default 1)
  --links N             joints of the family's arms            (default 3)
  --weights W           ema | raw: the checkpoint's moving average of the weights where it
                        keeps one (default), or its raw weights`,
  options: {
    checkpoint: { type: 'string' },
    embodiment: { type: 'string' },
    sources: { type: 'string' },
    slot: { type: 'string' },
    adapter: { type: 'string' },
    adapters: { type: 'string' },
    task: { type: 'string' },
    episodes: { type: 'string' },
    seed: { type: 'string' },
    execute: { type: 'string' },
    'family-seed': { type: 'string' },
    links: { type: 'string' },
    weights: { type: 'string' },
  },
  async run(args, io) {
    const { policy, slots, weights } = await loadPolicy(
      resolve(io.cwd, args.str('checkpoint')),
      weightsArg(args),
    );
    try {
      const familySeed = args.int('family-seed', 1);
      const links = args.int('links', 3, 2);
      const names = args.has('sources')
        ? Array.from({ length: args.int('sources', undefined, 1) }, (_, k) => `src-${k}`)
        : args.list('embodiment');
      if (names.length === 0) throw new UsageError('eval: --embodiment names no robot');
      const tasks = args.list('task', ['reach']).map((t) => {
        if (t !== 'reach' && t !== 'push')
          throw new UsageError(`eval: --task must be reach or push, got '${t}'`);
        return t;
      });
      const episodes = args.int('episodes', 100, 1);
      const seed = args.int('seed', 10_000);
      const adapter = args.optStr('adapter');
      const rows: {
        embodiment: string;
        task: string;
        slot: number;
        episodes: number;
        successRate: number;
        meanFinalDistance: number;
        meanStepsToSuccess: number;
        actionMse: number;
      }[] = [];
      const progress = new Progress(
        io,
        'eval',
        episodes * names.length * tasks.length,
        !args.has('json'),
      );
      for (const name of names) {
        const embodiment = embodimentByName(name, familySeed, undefined, links);
        checkJoints('eval', embodiment.links.length, policy);
        const slot = args.has('slot')
          ? checkSlot('eval', args.int('slot', undefined, 0), policy)
          : (slots[name] ?? 0);
        if (adapter)
          await new AdapterStore(resolve(io.cwd, args.str('adapters', 'adapters'))).load(
            adapter,
            policy,
            slot,
          );
        for (const task of tasks) {
          const r = await runEpisodes(
            embodiment,
            task,
            seedRange(episodes, seed),
            policyController(policy, {
              slot,
              ...(args.has('execute') ? { execute: args.int('execute', undefined, 1) } : {}),
            }),
            {
              env: { imageSize: policy.config.vision.imageSize },
              parallel: 25,
              onEpisode: () => progress.tick(),
            },
          );
          rows.push({
            embodiment: name,
            task,
            slot,
            episodes,
            successRate: r.successRate,
            meanFinalDistance: r.meanFinalDistance,
            meanStepsToSuccess: r.meanStepsToSuccess,
            actionMse: r.actionMse,
          });
        }
      }
      progress.end();
      const averaged = weights === 'ema' ? ', moving average of the weights' : '';
      const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
      const steps = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(1));
      if (rows.length === 1) {
        const r = rows[0]!;
        return {
          lines: [
            `${r.embodiment} ${r.task}, slot ${r.slot}${adapter ? ` with adapter ${adapter}` : ''}${averaged}: success ${pct(r.successRate)} over ${episodes} episodes`,
            `  final distance ${r.meanFinalDistance.toFixed(3)}, steps to success ${steps(r.meanStepsToSuccess)}, action MSE vs its own expert ${r.actionMse.toFixed(4)}`,
          ],
          json: { ...r, adapter: adapter ?? null, weights },
        };
      }
      const lines = [
        `success over ${episodes} episodes per robot and task (seeds ${seed}..${seed + episodes - 1})${adapter ? `, adapter ${adapter}` : ''}${averaged}`,
        '| robot | slot | task | success | final distance | steps to success | action MSE vs own expert |',
        '|---|---|---|---|---|---|---|',
        ...rows.map(
          (r) =>
            `| ${r.embodiment} | ${r.slot} | ${r.task} | ${pct(r.successRate)} | ${r.meanFinalDistance.toFixed(3)} | ${steps(r.meanStepsToSuccess)} | ${r.actionMse.toFixed(4)} |`,
        ),
      ];
      for (const task of tasks) {
        const t = rows.filter((r) => r.task === task);
        const mean = t.reduce((a, r) => a + r.successRate, 0) / t.length;
        const min = Math.min(...t.map((r) => r.successRate));
        lines.push(`${task}: mean ${pct(mean)}, lowest ${pct(min)} over ${t.length} robots`);
      }
      return { lines, json: { episodes, seed, adapter: adapter ?? null, weights, rows } };
    } finally {
      policy.dispose();
    }
  },
};
