// Diagnostic for docs/results.md: the push expert per strategy, on the source robots (family
// seed 1) and the held-out presets: how often it succeeds, and how continuous its action is in
// the scene (on the states it visits, the share where moving the block by 5 mm in a random
// direction changes some action component by more than 0.3: where a learner that is a few mm
// off would be told something else entirely).
//   pnpm --filter @selfalign/experiments probe push-expert.ts [--episodes 100] [--sources 8]
import {
  actionJumpShare,
  expertAction,
  getPreset,
  HELD_OUT,
  type PushStrategy,
  sampleSources,
  seedRange,
} from '@selfalign/sim';
import { arg } from './args.js';

const episodes = Number(arg('--episodes', '100'));
const robots = [...sampleSources(Number(arg('--sources', '8')), 1), ...HELD_OUT.map(getPreset)];
for (const strategy of ['field', 'waypoint'] as PushStrategy[]) {
  const rows: string[] = [];
  let total = 0;
  let visited = 0;
  let jumps = 0;
  for (const e of robots) {
    const r = await actionJumpShare(e, 'push', seedRange(episodes, 900_000), (env) =>
      expertAction(env, undefined, undefined, 'canonical', strategy),
    );
    total += r.successRate;
    visited += r.visited;
    jumps += r.share * r.visited;
    rows.push(`${e.name} ${(100 * r.successRate).toFixed(0)}%`);
  }
  console.log(
    `${strategy}: mean ${((100 * total) / robots.length).toFixed(1)}% (${rows.join(', ')}); ` +
      `action jumps > 0.3 for a 5 mm block shift on ${((100 * jumps) / visited).toFixed(1)}% of ${visited} states`,
  );
}
