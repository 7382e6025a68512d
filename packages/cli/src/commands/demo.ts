// selfalign demo: the self-alignment pipeline end to end on the built-in simulator, nothing
// downloaded. (1) how much each held-out shift hurts a controller that does not adapt;
// (2) random play on a held-out robot -> Arrow -> features from the embedded ONNX encoder;
// (3) align only TTT W1/b1 of a fresh slot (free, span) and report the held-out alignment
// losses before/after; with --checkpoint, (4) the policy's success on the robot before and
// after. Without a pretrained checkpoint the policy is untrained and the demo says so.

import { join, resolve } from 'node:path';
import { AdapterStore, align, loadCheckpoint } from '@selfalign/align';
import { currentBackend, Rng } from '@selfalign/core';
import { computeNormStats, type DatasetMeta, writeEpisodes } from '@selfalign/data';
import { createPolicy, type Policy } from '@selfalign/experts';
import {
  expertController,
  HELD_OUT,
  PRESETS,
  randomController,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import type { Command } from '../command.js';
import { UserError } from '../io.js';
import { policyController } from '../policy-controller.js';
import {
  configByName,
  drawBatch,
  featureExtractor,
  loadSamples,
  simEpisodeData,
} from '../shared.js';

export const demo: Command = {
  name: 'demo',
  summary: 'the self-alignment demo on the built-in simulator (nothing downloaded)',
  usage: `selfalign demo [options]
  --checkpoint CKPT   a pretrained checkpoint (else an untrained policy of --config)
  --config C          tiny | small                  (default small)
  --target NAME       held-out robot                 (default perm)
  --play N            random-play episodes           (default 12)
  --steps N           align steps per parametrisation (default 20)
  --episodes N        shift-table / eval episodes     (default 50)
  --out DIR           outputs                         (default out/demo)
  --seed S            (default 0)`,
  options: {
    checkpoint: { type: 'string' },
    config: { type: 'string' },
    target: { type: 'string' },
    play: { type: 'string' },
    steps: { type: 'string' },
    episodes: { type: 'string' },
    out: { type: 'string' },
    seed: { type: 'string' },
  },
  async run(args, io) {
    const t0 = performance.now();
    const out = resolve(io.cwd, args.str('out', join('out', 'demo')));
    const episodes = args.int('episodes', 50, 1);
    const seed = args.int('seed', 0);
    const targetName = args.str('target', 'perm');
    const target = PRESETS[targetName];
    if (!target)
      throw new UserError(
        `demo: unknown target '${targetName}' (presets: ${Object.keys(PRESETS).join(', ')})`,
      );
    const lines: string[] = [`backend: ${currentBackend()?.name}`];
    const say = (l: string) => {
      lines.push(l);
      if (!args.has('json')) io.out(l);
    };
    say(
      `\n1. Embodiment shifts (reach, ${episodes} episodes each): the source expert without adaptation vs the robot's own expert`,
    );
    say('| target | no adaptation | own expert |');
    say('|---|---|---|');
    const shifts: Record<string, [number, number]> = {};
    for (const name of HELD_OUT) {
      const seeds = seedRange(episodes);
      const un = await runEpisodes(
        PRESETS[name]!,
        'reach',
        seeds,
        expertController(PRESETS.source),
      );
      const own = await runEpisodes(PRESETS[name]!, 'reach', seeds, expertController());
      shifts[name] = [un.successRate, own.successRate];
      say(
        `| ${name} | ${(100 * un.successRate).toFixed(0)}% | ${(100 * own.successRate).toFixed(0)}% |`,
      );
    }
    let policy: Policy;
    let sourceSlots: number[] = [];
    let pretrained = false;
    const ckpt = args.optStr('checkpoint');
    if (ckpt) {
      const loaded = await loadCheckpoint(resolve(io.cwd, ckpt));
      policy = loaded.policy;
      sourceSlots = Object.values((loaded.info['slots'] ?? {}) as Record<string, number>);
      pretrained = true;
    } else {
      const config = configByName(args.str('config', 'small'), 'demo');
      policy = createPolicy(config, seed);
      sourceSlots = [0, 1, 2, 3];
    }
    try {
      const c = policy.config;
      const side = c.vision.imageSize;
      const nPlay = args.int('play', 12, 1);
      say(
        `\n2. Random play on held-out robot '${targetName}': ${nPlay} episodes at ${side} px -> Arrow -> features (embedded ONNX encoder, ${c.featureDim} dims)`,
      );
      const play = await runEpisodes(
        target,
        'reach',
        seedRange(nPlay, 500 + seed),
        randomController(7 + seed),
        { record: true, env: { imageSize: side } },
      );
      const extractor = await featureExtractor('default', io.cwd, c.featureDim);
      const meta: DatasetMeta = {
        format: 'selfalign-frames/1',
        kind: 'play',
        fps: 10,
        imageShape: [side, side, 3],
        stateDim: 9,
        actionDim: 3,
        featureDim: c.featureDim,
        featureModel: extractor.name,
      };
      const file = join(out, `play-${targetName}.arrow`);
      const eps = [];
      for (const [i, e] of play.episodes.entries()) eps.push(await simEpisodeData(e, i, extractor));
      await extractor.dispose();
      await writeEpisodes(file, meta, eps);
      if (!policy.normStats) policy.normStats = await computeNormStats([file]);
      say(`   ${eps.reduce((n, e) => n + e.length, 0)} frames -> ${file}`);
      const { samples } = await loadSamples([file], c.actionHorizon);
      const E = c.ttt.slots;
      const slot =
        Array.from({ length: E }, (_, k) => k).find((k) => !sourceSlots.includes(k)) ?? E - 1;
      const rng = new Rng(seed + 1);
      const batches = Array.from({ length: 3 }, () =>
        drawBatch(policy, samples, meta, 16, rng, slot),
      );
      const heldOut = [drawBatch(policy, samples, meta, 16, rng, slot)];
      const evalSuccess = async () =>
        (
          await runEpisodes(
            target,
            'reach',
            seedRange(episodes, 20_000),
            policyController(policy, { slot }),
            { env: { imageSize: side }, parallel: 25 },
          )
        ).successRate;
      say(
        `\n3. align on that play: ${pretrained ? 'pretrained' : 'UNTRAINED'} '${c.name}' policy (${(policy.params.count() / 1e6).toFixed(2)} M parameters), new slot ${slot}; only TTT W1/b1 move`,
      );
      say(
        '| parametrisation | steps | wall (s) | Action Expert calls | perception | dynamics | inverse dyn. | success on robot |',
      );
      say('|---|---|---|---|---|---|---|---|');
      const store = new AdapterStore(join(out, 'adapters'));
      const results: Record<string, unknown> = {};
      const fmt = (a: number, b: number) => `${a.toFixed(3)} -> ${b.toFixed(3)}`;
      for (const [kind, lr] of [
        ['free', 1e-3],
        ['span', 3e-2],
      ] as const) {
        const basis = sourceSlots.filter((k) => k !== slot);
        const before = pretrained ? await evalSuccess() : undefined;
        const calls = policy.calls.action; // align's own forwards only, not the evaluations
        const r = await align(policy, batches, {
          slot,
          parametrisation: kind,
          init: 'mean',
          basis,
          lr,
          maxSteps: args.int('steps', 20, 1),
          heldOut,
          seed,
        });
        const actionCalls = policy.calls.action - calls;
        const after = pretrained ? await evalSuccess() : undefined;
        const success =
          before === undefined
            ? 'n/a (untrained)'
            : `${(100 * before).toFixed(0)}% -> ${(100 * after!).toFixed(0)}%`;
        say(
          `| ${kind} | ${r.steps} | ${(r.wallMs / 1000).toFixed(1)} | ${actionCalls} | ${fmt(r.before.perception, r.after.perception)} | ${fmt(r.before.dynamics, r.after.dynamics)} | ${fmt(r.before.inverseDynamics, r.after.inverseDynamics)} | ${success} |`,
        );
        await store.save(`${targetName}-${kind}`, policy, slot, {
          steps: r.steps,
          before: r.before,
          after: r.after,
        });
        results[kind] = {
          steps: r.steps,
          before: r.before,
          after: r.after,
          successBefore: before ?? null,
          successAfter: after ?? null,
          actionCalls,
        };
        r.state.dispose();
      }
      say(
        `\nAdapters in ${join(out, 'adapters')}. Done in ${((performance.now() - t0) / 1000).toFixed(1)} s.`,
      );
      if (!pretrained) {
        say(
          'No pretrained checkpoint was given, so the policy is untrained: the table shows how its alignment',
        );
        say(
          'losses moved, not whether aligned actions improve (that needs selfalign demo --checkpoint CKPT).',
        );
      }
      return {
        lines: args.has('json') ? [] : [],
        json: { out, shifts, pretrained, slot, results },
      };
    } finally {
      policy.dispose();
    }
  },
};
