// Does a blind task's loss tell the robot's slot from the others? On each robot's random play
// (held-out episodes, fixed flow draws), the loss of one alignment task with the slot set to the
// robot's own slot (source robots), the source mean, and every source slot: a task that can
// guide align ranks the robot's own slot first on a source, and on a held-out robot the source
// slots closest to it in body or joint dynamics first.
//   npx tsx --conditions=@selfalign/source experiments/kinematics-slots.ts --checkpoint CKPT
//     [--robots src-0,src-7,links,offset,sign] [--task kinematics] [--play 10]
import { evaluateLosses, loadCheckpoint } from '@selfalign/align';
import { embodimentByName, featureExtractor, recordEpisodes } from '@selfalign/cli/shared';
import { initBackend, Rng } from '@selfalign/core';
import { disposeBatch } from '@selfalign/experts';
import {
  fillWithSourceMean,
  firstFreeSlot,
  playSplit,
  slotVector,
  sourceSlotsOf,
  writeSlotVector,
} from '@selfalign/harness';
import { randomController } from '@selfalign/sim';
import { arg } from './args.js';

const path = arg('--checkpoint', 'checkpoints/small-reach32.safetensors');
const robots = arg('--robots', 'src-0,src-7,src-19,links,offset,sign').split(',');
const task = arg('--task', 'kinematics');
const PLAY = Number(arg('--play', '10'));
await initBackend('wasm');
const loaded = await loadCheckpoint(path);
const policy = loaded.policy;
const sources = sourceSlotsOf(loaded.info);
const slots = (loaded.info['slots'] ?? {}) as Record<string, number>;
const free = firstFreeSlot(policy, sources)!;
const c = policy.config;
const extractor = await featureExtractor('default', process.cwd(), c.featureDim);
const vectors = sources.map((k) => slotVector(policy, k));
fillWithSourceMean(policy, free, sources);
const mean = slotVector(policy, free);
const weights = { perception: 0, dynamics: 0, inverseDynamics: 0, stateDynamics: 0, [task]: 1 };

console.log(`${path}, task ${task}, ${PLAY} play episodes per robot (all frames)`);
console.log(
  '| robot | own slot | source mean | best source slot | rank of own slot | median source slot | worst |',
);
console.log('|---|---|---|---|---|---|---|');
for (const name of robots) {
  const play = await recordEpisodes(
    embodimentByName(name, 1),
    randomController(7),
    'play',
    PLAY,
    5_000_000,
    extractor,
    c,
  );
  const { train } = playSplit(policy, play.samples, play.meta, 32, new Rng(3), free, 0);
  const at = (v: Float32Array) => {
    writeSlotVector(policy, free, v);
    return evaluateLosses(policy, train, { weights, seed: 99 }).total;
  };
  const bySource = vectors.map((v, i) => [at(v), sources[i]!] as const).sort((a, b) => a[0] - b[0]);
  const own = slots[name];
  const ownLoss = own === undefined ? undefined : bySource.find(([, k]) => k === own)![0];
  const rank = own === undefined ? '-' : `${bySource.findIndex(([, k]) => k === own) + 1}`;
  const f = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(4));
  console.log(
    `| ${name} | ${f(ownLoss)} | ${f(at(mean))} | ${f(bySource[0]![0])} (slot ${bySource[0]![1]}) | ${rank} / ${sources.length} | ${f(bySource[bySource.length >> 1]![0])} | ${f(bySource[bySource.length - 1]![0])} |`,
  );
  for (const b of train) disposeBatch(b);
}
