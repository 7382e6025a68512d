// selfalign judge: train the camera judge that lets retarget's pick by tries run without a
// reward (docs/results.md 2t). It locates the end effector in a frame (one soft-argmax keypoint on
// a copy of the policy's vision tower) and measures it against the policy's own target keypoint.
// It is trained once per checkpoint on the source robots' random play, whose end-effector
// positions their known bodies give; on a new robot it reads frames only.
import { relative, resolve } from 'node:path';
import { writeFileAtomic } from '@selfalign/core/node';
import { EffectorJudge } from '@selfalign/harness';
import {
  type Controller,
  type Episode,
  expertController,
  randomController,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import type { Command } from '../command.js';
import { UserError } from '../io.js';
import { checkOutputs } from '../paths.js';
import { loadPolicy, retargetSources } from '../shared.js';

export const judgeCommand: Command = {
  name: 'judge',
  summary:
    "train a checkpoint's camera judge (retarget --judge: pick the teacher without a reward)",
  usage: `selfalign judge --checkpoint CKPT --out FILE [options]
  Trains the camera judge of a checkpoint: a copy of its vision tower with one keypoint that
  finds the end effector in a frame, fitted on --episodes random-play episodes of every source
  robot the checkpoint records (simulator robots: their bodies give where the end effector was).
  On a new robot the judge reads frames only: a frame's judged distance is its end effector to
  the policy's target keypoint. retarget --judge and results --retarget-judge pick the teacher by
  it instead of by the simulator's success. Prints the error on other episodes of the same robots.
  --checkpoint CKPT   a pretrained checkpoint with source slots and keypoints
  --out FILE          the judge (safetensors, ~1 MB for small)
  --episodes N        random-play episodes per source robot     (default 5)
  --demos N           also N expert reach episodes per source robot, full length: frames of
                      an arm reaching and holding the target, where a try is judged (and
                      practice --judge reads its positions)    (default 0)
  --steps N           Adam steps                                (default 3000)
  --batch N           frames per step                           (default 64)
  --lr LR             peak rate (warm-up 100 steps, cosine to a thirtieth)  (default 1e-3)
  --family-seed S     source family seed for src-K names        (default 1)
  --seed S            (default 0)`,
  options: {
    checkpoint: { type: 'string' },
    out: { type: 'string' },
    episodes: { type: 'string' },
    demos: { type: 'string' },
    steps: { type: 'string' },
    batch: { type: 'string' },
    lr: { type: 'string' },
    'family-seed': { type: 'string' },
    seed: { type: 'string' },
  },
  async run(args, io) {
    const input = resolve(io.cwd, args.str('checkpoint'));
    const out = resolve(io.cwd, args.str('out'));
    checkOutputs('judge', [input], [out]);
    const episodes = args.int('episodes', 5, 1);
    const demos = args.int('demos', 0, 0);
    const steps = args.int('steps', 3000, 0);
    const batch = args.int('batch', 64, 1);
    const lr = args.has('lr') ? args.lr('lr') : 1e-3;
    const seed = args.int('seed', 0);
    const { policy, slots } = await loadPolicy(input);
    try {
      if ((policy.config.vision.keypoints ?? 0) < 1)
        throw new UserError(
          `judge: '${policy.config.name}' has no keypoints; the judge measures against its target keypoint`,
        );
      const sources = retargetSources('judge', Object.entries(slots), args.int('family-seed', 1));
      if (sources.length === 0)
        throw new UserError(
          'judge: the checkpoint records no source robots (not a pretrain checkpoint)',
        );
      const t0 = performance.now();
      const env = { imageSize: policy.config.vision.imageSize };
      // play as it always was (an episode ends at success); demos run their full length
      const record = async (from: number, n: number, by: () => Controller, full = false) => {
        const eps: Episode[] = [];
        if (n === 0) return eps;
        for (const s of sources)
          eps.push(
            ...(
              await runEpisodes(s.embodiment, 'reach', seedRange(n, from), by(), {
                record: true,
                ...(full ? { untilSuccess: false } : {}),
                env,
              })
            ).episodes,
          );
        return eps;
      };
      const play = () => randomController(seed);
      const expert = () => expertController(undefined, 'canonical');
      const train = [
        ...(await record(900_000, episodes, play)),
        ...(await record(920_000, demos, expert, true)),
      ];
      const held = [
        ...(await record(950_000, 1, play)),
        ...(await record(970_000, Math.min(demos, 1), expert, true)),
      ];
      const frames = train.reduce((s, ep) => s + ep.length, 0);
      if (!args.has('json'))
        io.err(`judge: ${frames} frames of ${sources.length} source robots; ${steps} steps`);
      const judge = new EffectorJudge(policy);
      try {
        const rms = judge.train(train, {
          steps,
          batch,
          lr,
          seed,
          onProgress: (step, r) => {
            if (!args.has('json')) io.err(`judge: step ${step}/${steps}: ${r.toFixed(3)} rms`);
          },
        });
        const heldRms = judge.rms(held);
        const stats = {
          checkpoint: input,
          fingerprint: policy.fingerprint,
          sources: sources.length,
          episodes,
          ...(demos > 0 ? { demos } : {}),
          frames,
          steps,
          batch,
          lr,
          seed,
          rms,
          heldOutRms: heldRms,
          wallMs: Math.round(performance.now() - t0),
        };
        await writeFileAtomic(
          out,
          await judge.encode({
            fingerprint: policy.fingerprint,
            config: policy.config.name,
            training: JSON.stringify({ ...stats, checkpoint: relative(io.cwd, input) }),
          }),
        );
        return {
          lines: [
            `${out}: the end effector located to ${heldRms.toFixed(3)} (rms, world units) on held-out play of the ${sources.length} source robots (${rms.toFixed(3)} on its ${frames} training frames), ${steps} steps in ${(stats.wallMs / 1000).toFixed(0)} s`,
          ],
          json: { out, ...stats },
        };
      } finally {
        judge.dispose();
      }
    } finally {
      policy.dispose();
    }
  },
};
