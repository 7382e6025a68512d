// selfalign practice: the policy teaches one TTT slot a new simulator robot from its own reach
// tries, relabelled in hindsight (goal-conditioned supervised learning; docs/results.md 2n).
import { resolve } from 'node:path';
import {
  copySlot,
  type EffectorJudge,
  type EffectorTracker,
  fillWithSourceMean,
  practice,
} from '@selfalign/harness';
import { randomController } from '@selfalign/sim';
import type { Command } from '../command.js';
import { UserError } from '../io.js';
import { checkOutputDir } from '../paths.js';
import {
  adapterTarget,
  checkJoints,
  embodimentByName,
  episodesAsSamples,
  featureExtractor,
  judgedBodyOnPlay,
  loadJudge,
  loadPolicy,
  nearestSlotOnPlay,
  recordedEpisodes,
  retargetSources,
  TRACK_READERS,
  trackArgs,
} from '../shared.js';

export const practiceCommand: Command = {
  name: 'practice',
  summary:
    "fit one TTT slot to a simulator robot from the policy's own reach tries, save the adapter",
  usage: `selfalign practice --checkpoint CKPT --embodiment NAME --adapter NAME [options]
  Each round the policy, through the slot, tries --tries reach episodes on the robot; each try
  is redrawn with frame t's target where the end effector went --horizon steps later (so its
  actions are labels of a goal it reached), and only the slot's W1/b1 are fitted with the
  action loss on every try so far. No expert and no labels; it needs the end effector's
  position, which the simulator gives, or a camera judge reads from the tries' frames (--judge).
  --embodiment NAME     a preset or src-K
  --rounds R            rounds of try, relabel, fit          (default 3)
  --tries N             reach tries per round                (default 10)
  --steps N             fitting steps per round (Adam)       (default 100)
  --lr LR               (default 1e-3)
  --horizon H           hindsight horizon in steps           (default 8)
  --keep K              last | best: leave the slot after the last round, or the one whose
                        tries reached their target most often (the start and each round's
                        slot; one more set of tries measures the last; on 11 targets x 2 seeds
                        it kept no better than last, docs/results.md 2n)   (default last)
  --stop-at S           practise only while the slot is weak: a round whose tries reach their
                        target at least this share of the time stops before its fit, and the
                        slot those tries measured is saved (a good retarget teacher is kept,
                        a weak one practised: docs/results.md 2q)   (default: off)
  --judge FILE          read the tries with this camera judge (selfalign judge), as --track
                        says: the relabelled targets and the tries' success (the --stop-at
                        gate, --keep best); no end effector, no reward
                                                             (default: the simulator)
  --track T             judge | body | body+tries: with body, a body fitted to the judge's
                        positions on the robot's --play trajectories (its last link scaled by
                        the judge's shrink) reads the tries from their joint angles: the
                        relabelled targets its end effector, a try reached when that comes
                        within the tolerance of the judged target (docs/results.md 2u; the
                        judge's own positions are 6-14 cm off, too far for hindsight
                        targets); with body+tries, that body fitted again on the play and
                        every try so far before each round's read (2z: it reads a strong
                        slot's tries as reached 84% of the time where 89% did, the play's
                        body 77%)                            (default with --judge: body+tries)
  --shrink X            with --track body: the factor on the fitted last link (default: measured
                        on the checkpoint's first 8 source robots, whose bodies are known)
  --judge-target W      frame | start: with --track body, each try's target as the judge reads
                        the policy's target keypoint in every frame, or once, the median over
                        the try's first 5 frames, before the arm can cover the target
                        (docs/results.md 2z)                  (default frame)
  --init I              nearest | mean: the start; nearest is the source slot with the lowest
                        align objective on --play random-play trajectories of the robot
                        (label-free)                         (default nearest)
  --from NAME           start from this saved adapter (from --adapters DIR) instead: the one
                        \`selfalign retarget\` wrote, say (retarget, then practice: docs/results.md
                        2q); not with --init
  --play N              random-play trajectories for --init nearest and --track body
                                                             (default 10)
  --slot K              slot to fit (default: the first slot no embodiment uses)
  --adapters DIR        where adapters are saved            (default adapters)
  --feature-model M     default | an ONNX file: next-observation features for --init nearest
  --family-seed S       source family seed for src-K names   (default 1)
  --seed S              (default 0)`,
  options: {
    checkpoint: { type: 'string' },
    embodiment: { type: 'string' },
    adapter: { type: 'string' },
    rounds: { type: 'string' },
    tries: { type: 'string' },
    steps: { type: 'string' },
    lr: { type: 'string' },
    horizon: { type: 'string' },
    init: { type: 'string' },
    from: { type: 'string' },
    keep: { type: 'string' },
    'stop-at': { type: 'string' },
    judge: { type: 'string' },
    track: { type: 'string' },
    shrink: { type: 'string' },
    'judge-target': { type: 'string' },
    play: { type: 'string' },
    slot: { type: 'string' },
    adapters: { type: 'string' },
    'feature-model': { type: 'string' },
    'family-seed': { type: 'string' },
    seed: { type: 'string' },
  },
  async run(args, io) {
    const adaptersDir = resolve(io.cwd, args.str('adapters', 'adapters'));
    checkOutputDir('practice', adaptersDir);
    const rounds = args.int('rounds', 3, 1);
    const tries = args.int('tries', 10, 1);
    const steps = args.int('steps', 100, 1);
    const horizon = args.int('horizon', 8, 1);
    const lr = args.has('lr') ? args.lr('lr') : 1e-3;
    const from = args.optStr('from');
    if (from !== undefined && args.has('init'))
      throw new UserError('practice: --from starts from an adapter; --init picks another start');
    const init = args.choice('init', ['nearest', 'mean'] as const, 'nearest');
    const keep = args.choice('keep', ['last', 'best'] as const, 'last');
    const stopAt = args.has('stop-at') ? args.share('stop-at') : undefined;
    const {
      track,
      shrink: givenShrink,
      target: judgeTarget,
    } = trackArgs('practice', args, {
      tracks: ['body+tries'] as const,
      preferred: 'body+tries',
      target: 'frame',
    });
    const play = args.int('play', 10, 1);
    const seed = args.int('seed', 0);
    const familySeed = args.int('family-seed', 1);
    const e = embodimentByName(args.str('embodiment'), familySeed);
    const { policy, slots } = await loadPolicy(resolve(io.cwd, args.str('checkpoint')));
    const c = policy.config;
    const extractor = await featureExtractor(
      args.str('feature-model', 'default'),
      io.cwd,
      c.featureDim,
    );
    let judge: EffectorJudge | undefined;
    try {
      const { store, name, slot, used } = adapterTarget(
        'practice',
        args,
        policy,
        slots,
        adaptersDir,
      );
      checkJoints('practice', e.links.length, policy);
      if (args.has('judge'))
        judge = await loadJudge('practice', resolve(io.cwd, args.str('judge')), policy);
      const sources = [...used].filter((k) => k !== slot).sort((a, b) => a - b);
      if (sources.length === 0)
        throw new UserError(
          'practice: the checkpoint records no source slots to start from (not a pretrain checkpoint)',
        );
      const robotOf = new Map(Object.entries(slots).map(([r, k]) => [k, r]));
      let start = 'the mean of the source slots';
      if (from !== undefined) {
        await store.load(from, policy, slot);
        start = `the adapter ${from}`;
      } else fillWithSourceMean(policy, slot, sources);
      // the robot's random play: the label-free pick of the start, and the body's fit
      const playEpisodes =
        (from === undefined && init === 'nearest') || track !== 'judge'
          ? await recordedEpisodes(e, randomController(seed), play, 1_000_000 * (seed + 1), c)
          : [];
      if (from === undefined && init === 'nearest') {
        const nearest = await nearestSlotOnPlay(policy, e, playEpisodes, extractor, slot, sources, {
          seed,
          heldOut: 0,
        });
        copySlot(policy, nearest, slot);
        start = `the nearest source slot, ${robotOf.get(nearest) ?? nearest}`;
      }
      if (!args.has('json')) io.err(`practice: ${e.name}, slot ${slot} starts at ${start}`);
      let tracker: EffectorTracker | undefined = judge;
      let shrink: number | undefined;
      if (judge && track !== 'judge') {
        // the source robots' bodies: the fit's starts, and where the shrink is measured
        const bodies = retargetSources(
          'practice',
          Object.entries(slots).filter(([, k]) => k !== slot),
          familySeed,
        ).map((x) => x.embodiment);
        const fit = await judgedBodyOnPlay(
          'practice',
          judge,
          playEpisodes,
          bodies,
          c.vision.imageSize,
          givenShrink,
          judgeTarget,
        );
        ({ tracker, shrink } = fit);
        if (!args.has('json')) io.err(fit.line);
      }
      const t0 = performance.now();
      const done = await practice(policy, e, {
        slot,
        rounds,
        tries,
        steps,
        horizon,
        lr,
        seed,
        keep,
        ...(stopAt !== undefined ? { stopAt } : {}),
        ...(tracker ? { judge: tracker } : {}),
        ...(track === 'body+tries' ? { refitOnTries: true } : {}),
        env: { imageSize: c.vision.imageSize },
        toSamples: (eps) => episodesAsSamples(e, eps, 'demo', extractor, c),
        onRound: (r) => {
          if (!args.has('json'))
            io.err(
              `practice: round ${r.round}/${rounds}: ${Math.round(r.trySuccess * tries)}/${tries} tries ${judge ? 'judged to reach' : 'reached'} their target; fitted on ${r.frames} relabelled frames, action loss ${r.loss.toFixed(4)} (${r.wallS.toFixed(0)} s)`,
            );
        },
      });
      const stats = {
        method: 'practice',
        embodiment: e.name,
        slot,
        start,
        rounds: done.rounds,
        tried: done.tried,
        keep,
        kept: done.kept,
        ...(stopAt !== undefined ? { stopAt, stoppedAt: done.stoppedAt ?? null } : {}),
        readBy: judge ? TRACK_READERS[track] : 'simulator',
        ...(shrink !== undefined ? { shrink, judgeTarget } : {}),
        tries,
        steps,
        horizon,
        lr,
        seed,
        wallMs: Math.round(performance.now() - t0),
      };
      const path = await store.save(name, policy, slot, stats);
      const reached = judge ? 'were judged to reach' : 'reached';
      return {
        lines: [
          `practised slot ${slot} on ${e.name} for ${done.rounds.length} of ${rounds} rounds of ${tries} tries${done.stoppedAt !== undefined ? ` (round ${done.stoppedAt}'s tries ${reached} ${Math.round(100 * stopAt!)}%: stopped)` : ''} in ${(stats.wallMs / 1000).toFixed(0)} s; tries that ${reached} their target with the start and after each round: ${done.tried.map((x) => `${Math.round(100 * x)}%`).join(', ')}; kept ${done.kept === 0 ? 'the start' : `the slot after round ${done.kept}`}`,
          `  adapter ${path}`,
        ],
        json: { adapter: path, ...stats },
      };
    } finally {
      judge?.dispose();
      await extractor.dispose();
      policy.dispose();
    }
  },
};
