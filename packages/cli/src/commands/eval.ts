// selfalign eval: the policy acting on a simulator embodiment: success rate, final distance,
// steps to success, action MSE against the embodiment's own expert.
import { resolve } from 'node:path';
import { AdapterStore } from '@selfalign/align';
import { runEpisodes, seedRange } from '@selfalign/sim';
import type { Command } from '../command.js';
import { Progress, UserError } from '../io.js';
import { policyController } from '../policy-controller.js';
import { checkSlot, embodimentByName, loadPolicy } from '../shared.js';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'run the policy on a simulator embodiment and report success and action MSE',
  usage: `selfalign eval --checkpoint CKPT --embodiment NAME [options]
  --slot K              slot to act with (default: the embodiment's slot in the checkpoint, else 0)
  --adapter NAME        load this adapter (from --adapters DIR) into the slot first
  --adapters DIR        (default adapters)
  --task T              reach | push                       (default reach)
  --episodes N          (default 100)
  --seed S              first evaluation seed              (default 10000)
  --execute K           actions executed per chunk         (default Ha/2)
  --family-seed S       source family seed for src-K names (default 1)`,
  options: {
    checkpoint: { type: 'string' },
    embodiment: { type: 'string' },
    slot: { type: 'string' },
    adapter: { type: 'string' },
    adapters: { type: 'string' },
    task: { type: 'string' },
    episodes: { type: 'string' },
    seed: { type: 'string' },
    execute: { type: 'string' },
    'family-seed': { type: 'string' },
  },
  async run(args, io) {
    const { policy, slots } = await loadPolicy(resolve(io.cwd, args.str('checkpoint')));
    try {
      const name = args.str('embodiment');
      const embodiment = embodimentByName(name, args.int('family-seed', 1));
      if (embodiment.links.length > policy.config.actionDim) {
        throw new UserError(
          `eval: the arm has ${embodiment.links.length} joints, the policy at most ${policy.config.actionDim} action dims`,
        );
      }
      const slot = args.has('slot')
        ? checkSlot('eval', args.int('slot', undefined, 0), policy)
        : (slots[name] ?? 0);
      const adapter = args.optStr('adapter');
      if (adapter)
        await new AdapterStore(resolve(io.cwd, args.str('adapters', 'adapters'))).load(
          adapter,
          policy,
          slot,
        );
      const task = args.choice('task', ['reach', 'push'] as const, 'reach');
      const episodes = args.int('episodes', 100, 1);
      const progress = new Progress(io, 'eval', episodes, io.tty && !args.has('json'));
      const r = await runEpisodes(
        embodiment,
        task,
        seedRange(episodes, args.int('seed', 10_000)),
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
      progress.end();
      const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
      return {
        lines: [
          `${name} ${task}, slot ${slot}${adapter ? ` with adapter ${adapter}` : ''}: success ${pct(r.successRate)} over ${episodes} episodes`,
          `  final distance ${r.meanFinalDistance.toFixed(3)}, steps to success ${Number.isNaN(r.meanStepsToSuccess) ? '-' : r.meanStepsToSuccess.toFixed(1)}, action MSE vs its own expert ${r.actionMse.toFixed(4)}`,
        ],
        json: {
          embodiment: name,
          task,
          slot,
          adapter: adapter ?? null,
          episodes,
          successRate: r.successRate,
          meanFinalDistance: r.meanFinalDistance,
          meanStepsToSuccess: r.meanStepsToSuccess,
          actionMse: r.actionMse,
        },
      };
    } finally {
      policy.dispose();
    }
  },
};
