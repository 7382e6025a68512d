// selfalign retarget: teach one TTT slot a new simulator robot from its random play, with the
// policy as its own teacher (docs/results.md 2p): the robot's action -> joint-velocity map is
// identified from the play, the source robot whose body explains where the play's end effector
// was is picked, and the free slot is fitted to the policy's chunks through that source's slot,
// mapped onto the robot's actions. The play comes from the simulator (--embodiment) or from play
// files that carry the end effector's position (--data, as `selfalign collect` writes them).
// With --rank perception the sources are ranked by the perception loss through each source slot
// on the play's frames instead of by body, and the play needs no end-effector positions.
import { basename, resolve } from 'node:path';
import { readEpisodes } from '@selfalign/data';
import { type EffectorJudge, retarget, type TryReader } from '@selfalign/harness';
import {
  type Embodiment,
  type Episode,
  randomController,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
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
  retargetSources,
  TRACK_READERS,
  trackArgs,
} from '../shared.js';

export const retargetCommand: Command = {
  name: 'retarget',
  summary: 'fit one TTT slot to a simulator robot from its random play, the policy as teacher',
  usage: `selfalign retarget --checkpoint CKPT (--embodiment NAME | --data FILES) --adapter NAME [options]
  Records --play random-play episodes of the robot (proprioception, actions, and where the end
  effector was: the simulator's; on hardware, a tracker), or reads them from --data, identifies its action -> joint-
  velocity map from them, picks the source robot whose body (link lengths, encoder offsets)
  puts the end effector where it was, and fits only the slot's W1/b1 with the action loss to
  the policy's chunks through that source's slot, mapped onto this robot's actions, on the play
  frames. No expert, no labels, nothing run on the robot beyond the play. It assumes velocity
  commands linear in the action away from the clamps (the identification needs play steps off
  them) and a body near a source robot's (docs/results.md 2p: it fails on bodies outside them).
  --embodiment NAME     a preset or src-K: the simulator robot, its play recorded here
  --data FILES          instead, play files of one robot, reach scenes, with the end
                        effector's position per frame (observation.effector: selfalign collect
                        writes it) unless --rank perception; only the play fit (--rounds and
                        --candidates need the robot)
  --rank R              body | perception: how the sources are ranked for the teacher, by
                        the body's error on the play's end-effector positions, or by the
                        perception loss (the state from the image) through each source slot on
                        the play's frames: no end-effector positions (docs/results.md 2r)
                                                             (default body)
  --play N              random-play episodes                 (default 10)
  --steps N             fitting steps (Adam)                 (default 200)
  --lr LR               (default 1e-3)
  --rounds R            then R DAgger rounds: the slot tries --tries reach episodes on the
                        robot, the same teacher labels every frame they visited, and the slot
                        is fitted --round-steps more steps on all labels so far (it runs the
                        policy on the robot, as practice does)       (default 0)
  --tries N             reach tries per round                (default 10)
  --round-steps N       fitting steps per round              (default 100)
  --keep K              last | best: with rounds, keep the fit whose own tries reached most
                        often (--tries more episodes measure the last; with --judge the
                        tries run full length and are read as the candidates' are, with
                        body+tries through the body refitted on every try so far)
                                                             (default last)
  --candidates K        pick the teacher among the first K sources of --rank by tries:
                        each, retargeted, tries --pick-tries reach episodes on the robot and
                        the one that reaches most often teaches  (default 1: the first)
  --pick-tries M        reach tries per candidate             (default 6)
  --pick-by B           reached | approach: the candidate whose tries reach most often (ties:
                        the closer last distance) teaches, or the one whose tries come closest
                        on average (each try's smallest distance to its target, read without
                        the tolerance; docs/results.md 2y)   (default reached)
  --also-nearest        the nearest source slot by align's objective on the play (the
                        alignment losses through each source slot) tries too, after the
                        candidates, when it is not among them (docs/results.md 2w)
  --judge FILE          score the candidates' tries with this camera judge (selfalign judge)
                        instead of the simulator's success: full-length tries, read as
                        --track says; no reward, no end effector
                        (docs/results.md 2t; needs --candidates K > 1)
  --track T             judge | body | body+tries: with body, the candidates' tries are read
                        through a body fitted to the judge's positions on the play (its last
                        link scaled by the judge's shrink), a try reached when its end effector
                        comes within the tolerance of the judged target, as practice --track
                        body (docs/results.md 2w); with body+tries, through that body fitted
                        again on the play and every candidate's tries (2y: the best read
                        measured; the judge's own verdicts read worst)
                                                             (default with --judge: body+tries)
  --shrink X            with a body track: the factor on the fitted last link (default: measured
                        on the checkpoint's first 8 source robots, whose bodies are known)
  --judge-target W      frame | start: with a body track, each try's target as the judge reads
                        the policy's target keypoint in every frame, or once, the median over
                        the try's first 5 frames, before the arm can cover the target
                        (docs/results.md 2z)                  (default frame)
  --start S             mean | source: the fit's start, the mean of the source slots or the
                        picked source's slot                 (default mean)
  --slot K              slot to fit (default: the first slot no embodiment uses)
  --adapters DIR        where adapters are saved            (default adapters)
  --family-seed S       source family seed for src-K names (the targets and the checkpoint's
                        source robots)                       (default 1)
  --seed S              (default 0)`,
  options: {
    checkpoint: { type: 'string' },
    embodiment: { type: 'string' },
    data: { type: 'string' },
    adapter: { type: 'string' },
    play: { type: 'string' },
    steps: { type: 'string' },
    lr: { type: 'string' },
    start: { type: 'string' },
    rounds: { type: 'string' },
    tries: { type: 'string' },
    candidates: { type: 'string' },
    'pick-tries': { type: 'string' },
    'pick-by': { type: 'string' },
    'judge-target': { type: 'string' },
    'also-nearest': { type: 'boolean' },
    judge: { type: 'string' },
    track: { type: 'string' },
    shrink: { type: 'string' },
    'round-steps': { type: 'string' },
    keep: { type: 'string' },
    rank: { type: 'string' },
    slot: { type: 'string' },
    adapters: { type: 'string' },
    'family-seed': { type: 'string' },
    seed: { type: 'string' },
  },
  async run(args, io) {
    const adaptersDir = resolve(io.cwd, args.str('adapters', 'adapters'));
    checkOutputDir('retarget', adaptersDir);
    const play = args.int('play', 10, 1);
    const steps = args.int('steps', 200, 1);
    const lr = args.has('lr') ? args.lr('lr') : 1e-3;
    const start = args.choice('start', ['mean', 'source'] as const, 'mean');
    const rounds = args.int('rounds', 0, 0);
    const tries = args.int('tries', 10, 1);
    const candidates = args.int('candidates', 1, 1);
    const pickTries = args.int('pick-tries', 6, 1);
    const pickBy = args.choice('pick-by', ['reached', 'approach'] as const, 'reached');
    const alsoNearest = args.has('also-nearest');
    if (args.has('judge') && candidates < 2 && !alsoNearest)
      throw new UserError(
        "retarget: --judge scores the candidates' tries; pass --candidates K > 1",
      );
    const {
      track,
      shrink: givenShrink,
      target: judgeTarget,
    } = trackArgs('retarget', args, {
      tracks: ['body+tries'] as const,
      preferred: 'body+tries',
      target: 'frame',
    });
    const roundSteps = args.int('round-steps', 100, 1);
    const keep = args.choice('keep', ['last', 'best'] as const, 'last');
    const rank = args.choice('rank', ['body', 'perception'] as const, 'body');
    const seed = args.int('seed', 0);
    const familySeed = args.int('family-seed', 1);
    const fromFiles = args.has('data');
    if (fromFiles === args.has('embodiment'))
      throw new UserError(
        'retarget: pass the robot as --embodiment NAME (simulator) or its play as --data FILES, one of the two',
      );
    if (fromFiles)
      for (const flag of ['rounds', 'candidates', 'also-nearest', 'play', 'keep'])
        if (args.has(flag))
          throw new UserError(
            `retarget: --${flag} ${flag === 'play' ? 'records play on' : 'runs the policy on'} the robot; with --data there is none (use --embodiment)`,
          );
    const files = fromFiles ? args.list('data').map((f) => resolve(io.cwd, f)) : [];
    const fileEpisodes = fromFiles ? await playFromFiles(files, rank === 'body') : undefined;
    // the robot: a simulator embodiment, or the files' joints (what the samples need)
    const e = fromFiles
      ? {
          name: fileEpisodes![0]!.embodiment,
          links: new Array<number>(fileEpisodes!.joints).fill(0),
        }
      : embodimentByName(args.str('embodiment'), familySeed);
    const { policy, slots } = await loadPolicy(resolve(io.cwd, args.str('checkpoint')));
    const c = policy.config;
    const extractor = await featureExtractor('default', io.cwd, c.featureDim);
    let judge: EffectorJudge | undefined;
    try {
      if (args.has('judge'))
        judge = await loadJudge('retarget', resolve(io.cwd, args.str('judge')), policy);
      const { store, name, slot } = adapterTarget('retarget', args, policy, slots, adaptersDir);
      checkJoints('retarget', e.links.length, policy);
      const sources = retargetSources(
        'retarget',
        Object.entries(slots).filter(([, k]) => k !== slot),
        familySeed,
      );
      if (sources.length === 0)
        throw new UserError(
          'retarget: the checkpoint records no source slots to teach from (not a pretrain checkpoint)',
        );
      const t0 = performance.now();
      const env = { imageSize: c.vision.imageSize };
      if (fileEpisodes && fileEpisodes[0]!.imageSize !== env.imageSize)
        throw new UserError(
          `retarget: the play files' images are ${fileEpisodes[0]!.imageSize} px, the policy's ${env.imageSize} px`,
        );
      // the play: the files', or the same seeds and controller as practice's --init nearest
      // (ranked by perception, the recorded play goes without its end-effector positions)
      const playEpisodes =
        fileEpisodes ??
        (
          await runEpisodes(
            e as Embodiment,
            'reach',
            seedRange(play, 1_000_000 * (seed + 1)),
            randomController(seed),
            { record: true, env },
          )
        ).episodes.map((ep) => {
          if (rank === 'body') return ep;
          const { effector: _, ...bare } = ep;
          return bare;
        });
      // the source slot whose alignment losses on the play are lowest (results' 'nearest
      // source slot'): every play frame, 20% of the episodes held out, at most 8 batches
      let nearest: string | undefined;
      if (alsoNearest) {
        const k = await nearestSlotOnPlay(
          policy,
          e,
          playEpisodes,
          extractor,
          slot,
          sources.map((x) => x.slot),
          { seed, heldOut: 0.2 },
        );
        nearest = sources.find((x) => x.slot === k)!.name;
      }
      // --track body(+tries): the candidates' tries read through the body fitted to the judge's
      // positions on the play
      let reader: TryReader | undefined = judge;
      let shrink: number | undefined;
      if (judge && track !== 'judge') {
        const fit = await judgedBodyOnPlay(
          'retarget',
          judge,
          playEpisodes,
          sources.map((x) => x.embodiment),
          c.vision.imageSize,
          givenShrink,
          judgeTarget,
        );
        ({ tracker: reader, shrink } = fit);
        if (!args.has('json')) io.err(fit.line);
      }
      const r = await retarget(policy, {
        slot,
        sources,
        play: playEpisodes,
        toSamples: (eps) => episodesAsSamples(e, eps, 'demo', extractor, c),
        steps,
        lr,
        start,
        rounds,
        tries,
        roundSteps,
        candidates,
        pickTries,
        pickBy,
        ...(nearest ? { alsoTry: [nearest] } : {}),
        ...(reader ? { judge: reader } : {}),
        ...(track === 'body+tries' ? { refitOnTries: true } : {}),
        keep,
        rank,
        ...(fromFiles ? {} : { robot: e as Embodiment }),
        seed,
        env,
        onRound: (x) => {
          if (x.round > 0 && !args.has('json'))
            io.err(
              `retarget: round ${x.round}/${rounds}: ${Math.round(x.trySuccess * tries)}/${tries} tries reached their target${reader ? (keep === 'best' ? ' (as the judge read them)' : " (the simulator's count, for this line only: nothing reads it)") : ''}; fitted on ${x.frames} labelled frames, action loss ${x.loss.toFixed(4)}`,
            );
        },
      }).catch((err: Error) => {
        // the play cannot identify the robot: say so in one line
        if (/^identifyActionMap: /.test(err.message))
          throw new UserError(`retarget: ${err.message} (${fromFiles ? '--data' : '--play'})`);
        throw err;
      });
      const stats = {
        method: 'retarget',
        embodiment: e.name,
        slot,
        source: r.source,
        map: r.map,
        bodies: r.bodies.slice(0, 3),
        rank,
        ranking: r.ranking.slice(0, 3),
        ...(candidates > 1 || nearest
          ? {
              candidates: r.candidates,
              pickTries,
              pickBy: judge ? TRACK_READERS[track] : 'success',
              pickRule: pickBy,
              ...(shrink !== undefined ? { shrink, judgeTarget } : {}),
            }
          : {}),
        ...(nearest ? { nearest } : {}),
        play: playEpisodes.length,
        ...(fromFiles ? { data: files.map((f) => basename(f)) } : {}),
        steps,
        lr,
        start,
        rounds,
        tries: rounds > 0 ? tries : 0,
        ...(rounds > 0 ? { keep, kept: r.kept, tried: r.tried } : {}),
        seed,
        loss: { first: r.losses[0]!, last: r.losses.at(-1)! },
        wallMs: Math.round(performance.now() - t0),
      };
      const path = await store.save(name, policy, slot, stats);
      return {
        lines: [
          `retargeted slot ${slot} to ${e.name} from ${playEpisodes.length} play episodes in ${(stats.wallMs / 1000).toFixed(0)} s: the policy through ${r.source}'s slot (${
            r.candidates.length > 0
              ? `picked by ${pickTries} tries each${judge ? (track === 'body+tries' ? ' read through the judged body refitted on them' : track === 'body' ? ' read through the judged body' : ' as the camera judge saw them') : ''}${pickBy === 'approach' ? ', the closest mean approach' : ''}: ${r.candidates
                  .map(
                    (x) =>
                      `${x.name} ${Math.round(100 * x.success)}%${pickBy === 'approach' ? ` (${(100 * x.approach).toFixed(1)} cm)` : ''}`,
                  )
                  .join(', ')}`
              : `the ${rank === 'body' ? 'nearest body' : 'lowest perception loss'}: ${r.ranking
                  .slice(0, 3)
                  .map((b) => `${b.name} ${b.score.toExponential(1)}`)
                  .join(', ')}`
          }), actions mapped by R = ${r.map.map((row) => row.map((x) => x.toFixed(2)).join(' ')).join(' | ')}; action loss ${stats.loss.first.toFixed(4)} -> ${stats.loss.last.toFixed(4)}`,
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

/**
 * The play episodes of `files` as recorded episodes (what identification and labelling read):
 * one robot, proprioception of 3 values per joint, and (where `effector`) the end effector's
 * position per frame.
 */
async function playFromFiles(
  files: readonly string[],
  effector: boolean,
): Promise<Episode[] & { joints: number }> {
  const out: Episode[] = [];
  let joints: number | undefined;
  let robot: string | undefined;
  for (const f of files) {
    for await (const ep of readEpisodes(f)) {
      const m = ep.meta;
      if (effector && m.effectorDim !== 2)
        throw new UserError(
          `retarget: ${f} has no end-effector positions (observation.effector, 2 values per frame); record the play with selfalign collect, which writes them, or rank the sources with --rank perception`,
        );
      const n = m.actionDim;
      if (m.stateDim !== 3 * n)
        throw new UserError(
          `retarget: ${f}: state of ${m.stateDim} values for ${n} joints; retarget reads [cos q, sin q, qd] (3 per joint)`,
        );
      if (joints !== undefined && n !== joints)
        throw new UserError(`retarget: ${f} has ${n} joints, ${files[0]} ${joints}`);
      if (robot !== undefined && ep.embodiment !== robot)
        throw new UserError(
          `retarget: the play files hold more than one robot ('${robot}', '${ep.embodiment}'); retarget fits one`,
        );
      joints = n;
      robot = ep.embodiment;
      out.push({
        task: 'reach',
        instruction: ep.task,
        embodiment: ep.embodiment,
        seed: ep.episodeIndex,
        length: ep.length,
        imageSize: m.imageShape[0],
        frames: ep.images,
        states: ep.states,
        actions: ep.actions,
        objects: ep.objects ?? new Float32Array(0),
        ...(effector ? { effector: ep.effector! } : {}),
        success: false,
        finalDistance: Number.NaN,
        stepsToSuccess: -1,
      });
    }
  }
  if (out.length === 0) throw new UserError(`retarget: no play episodes in ${files.join(', ')}`);
  return Object.assign(out, { joints: joints! });
}
