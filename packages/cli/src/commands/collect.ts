// selfalign collect: run the simulator with the expert or a play policy and write a frame file.
import { resolve } from 'node:path';
import { type DatasetMeta, FrameWriter } from '@selfalign/data';
import {
  expertController,
  OBJECT_SLOTS,
  ouController,
  randomController,
  runEpisodes,
  sampleSources,
  seedRange,
} from '@selfalign/sim';
import type { Command } from '../command.js';
import { Progress, UsageError } from '../io.js';
import { checkOutputs } from '../paths.js';
import { embodimentByName, featureExtractor, simEpisodeData } from '../shared.js';

/** Episodes simulated together and written before the next group (bounds memory). */
const GROUP = 64;

export const collect: Command = {
  name: 'collect',
  summary: 'run the simulator (expert or play policy) and write an Arrow frame file',
  usage: `selfalign collect --out FILE [options]
  --embodiment NAMES   comma-separated presets (perm, sign, ...) or src-K (default source)
  --sources N          instead: the first N members of the source family (src-0..src-N-1)
  --family-seed S      seed of the source family (default 1)
  --links N            joints of the family's arms (src-K; default 3): state 3N, action N
  --controller C       expert (demos) | random | ou (play)         (default random)
  --task T             reach | push                                 (default reach)
  --push-expert P      field | waypoint: the push expert's strategy (default field; waypoint
                       is the earlier expert, docs/results.md section 3b)
  --episodes N         episodes per embodiment                      (default 10)
  --image-size I       camera pixels                                (default 64)
  --features F         none | default | FILE.onnx                   (default none)
  --feature-dim F      dim of the default encoder                   (default 64)
  --seed S             first episode seed                           (default 0)`,
  options: {
    out: { type: 'string' },
    embodiment: { type: 'string' },
    sources: { type: 'string' },
    'family-seed': { type: 'string' },
    links: { type: 'string' },
    controller: { type: 'string' },
    task: { type: 'string' },
    'push-expert': { type: 'string' },
    episodes: { type: 'string' },
    'image-size': { type: 'string' },
    features: { type: 'string' },
    'feature-dim': { type: 'string' },
    seed: { type: 'string' },
  },
  async run(args, io) {
    const out = resolve(io.cwd, args.str('out'));
    checkOutputs('collect', [], [out]);
    const familySeed = args.int('family-seed', 1);
    const links = args.int('links', 3, 2);
    // --sources N: the first N family members (any N); --embodiment: presets or src-K by name
    const named = args.has('sources') ? [] : args.list('embodiment', ['source']);
    if (!args.has('sources') && named.length === 0)
      throw new UsageError('collect: --embodiment names no robot (give e.g. source,perm or src-3)');
    const embodiments = args.has('sources')
      ? sampleSources(args.int('sources', undefined, 1), familySeed, links)
      : named.map((n) => embodimentByName(n, familySeed, undefined, links));
    const names = embodiments.map((e) => e.name);
    const controllerName = args.choice('controller', ['expert', 'random', 'ou'] as const, 'random');
    const task = args.choice('task', ['reach', 'push'] as const, 'reach');
    const pushExpert = args.choice('push-expert', ['field', 'waypoint'] as const, 'field');
    const episodes = args.int('episodes', 10, 1);
    const size = args.int('image-size', 64, 8);
    const seed = args.int('seed', 0);
    const features = args.str('features', 'none');
    const extractor =
      features === 'none'
        ? undefined
        : await featureExtractor(features, io.cwd, args.int('feature-dim', 64, 1));
    const n = embodiments[0]!.links.length;
    const meta: DatasetMeta = {
      format: 'selfalign-frames/1',
      kind: controllerName === 'expert' ? 'demo' : 'play',
      fps: 10,
      imageShape: [size, size, 3],
      stateDim: 3 * n,
      actionDim: n,
      // the task objects' image positions: a pretraining label for the vision tower's keypoints
      objectDim: 2 * OBJECT_SLOTS,
      // where the end effector was (a tracker's reading on hardware): retarget's body pick
      effectorDim: 2,
      ...(extractor ? { featureDim: extractor.dim, featureModel: extractor.name } : {}),
      source: {
        simulator: 'selfalign-sim planar arm',
        controller: controllerName,
        task,
        familySeed,
        ...(controllerName === 'expert' && task === 'push' ? { pushExpert } : {}),
      },
    };
    const writer = await FrameWriter.open(out, meta);
    const progress = new Progress(io, 'collect', episodes * embodiments.length, !args.has('json'));
    const per: Record<string, { episodes: number; success: number }> = {};
    let index = 0;
    try {
      for (const [k, e] of embodiments.entries()) {
        const controller =
          controllerName === 'expert'
            ? expertController(undefined, 'canonical', pushExpert)
            : controllerName === 'ou'
              ? ouController(seed + k)
              : randomController(seed + k);
        // groups of GROUP episodes, each written (in seed order) before the next runs: memory
        // stays bounded however many episodes are asked for, and the file is the same for any
        // group size
        const seeds = seedRange(episodes, seed + 100_000 * k);
        let successes = 0;
        for (let g = 0; g < seeds.length; g += GROUP) {
          const r = await runEpisodes(e, task, seeds.slice(g, g + GROUP), controller, {
            record: true,
            env: { imageSize: size },
            onEpisode: () => progress.tick(),
          });
          successes += r.summaries.filter((x) => x.success).length;
          // in seed order, so the file does not depend on which episode finished first
          for (const ep of [...r.episodes].sort((a, b) => a.seed - b.seed))
            writer.writeEpisode(await simEpisodeData(ep, index++, extractor));
          await writer.flush();
        }
        per[e.name] = { episodes: seeds.length, success: successes / seeds.length };
      }
      const { rows } = await writer.close();
      progress.end();
      return {
        lines: [
          `wrote ${rows} frames of ${index} episodes (${names.join(', ')}, ${controllerName}, ${task}) to ${out}`,
        ],
        json: { out, rows, episodes: index, kind: meta.kind, embodiments: per },
      };
    } catch (err) {
      await writer.abort();
      throw err;
    } finally {
      await extractor?.dispose();
    }
  },
};
