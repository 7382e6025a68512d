// The shift table of the package README: for every held-out shift (and the milder presets),
// the source embodiment's expert run on the target (what a policy that does not adapt does)
// next to the target's own expert, over a fixed seed set. A shift that does not drop the
// unadapted success rate by at least 50 points is too weak to be a benchmark.
// Run: pnpm --filter @selfalign/sim shift-table [--episodes 200]
import {
  expertController,
  HELD_OUT,
  PRESETS,
  runEpisodes,
  seedRange,
  type TaskName,
} from '../src/index.js';

const arg = process.argv.indexOf('--episodes');
const episodes = arg > 0 ? Number(process.argv[arg + 1]) : 200;
const seeds = seedRange(episodes);
const names = [...HELD_OUT, 'gain', 'lag'];
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

console.log(`${episodes} episodes per cell, evaluation seeds ${seeds[0]}..${seeds.at(-1)}\n`);
console.log(
  '| target | held out | reach: source expert | reach: own expert | reach drop | push: source expert | push: own expert | push drop |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const name of names) {
  const target = PRESETS[name]!;
  const cells: string[] = [];
  for (const task of ['reach', 'push'] as TaskName[]) {
    const unadapted = await runEpisodes(target, task, seeds, expertController(PRESETS.source));
    const own = await runEpisodes(target, task, seeds, expertController());
    const drop = own.successRate - unadapted.successRate;
    cells.push(pct(unadapted.successRate), pct(own.successRate), `${(100 * drop).toFixed(1)} pts`);
  }
  console.log(`| ${name} | ${HELD_OUT.includes(name) ? 'yes' : 'no'} | ${cells.join(' | ')} |`);
}
