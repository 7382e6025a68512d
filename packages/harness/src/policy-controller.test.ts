import { initBackend, Rng, randomNormal, tf } from '@selfalign/core';
import { createPolicy, tiny } from '@selfalign/experts';
import { runEpisodes, seedRange, sourceEmbodiment } from '@selfalign/sim';
import { beforeAll, describe, expect, it } from 'vitest';
import { policyController } from './policy-controller.js';

beforeAll(() => initBackend('wasm'));

describe('policyController', () => {
  it('with its own noise stream, episodes do not depend on what the policy sampled before', async () => {
    const policy = createPolicy(tiny, 0);
    const run = (rng?: Rng) =>
      runEpisodes(
        sourceEmbodiment(),
        'reach',
        seedRange(3, 5),
        policyController(policy, { slot: 0, ...(rng ? { rng } : {}) }),
        { env: { imageSize: tiny.vision.imageSize }, parallel: 3 },
      );
    const a = await run(new Rng(42));
    // draws from the policy's own stream in between (another row, another robot)
    tf.dispose(randomNormal(policy.rng, [7]));
    const b = await run(new Rng(42));
    expect(b.actionMse).toBe(a.actionMse);
    expect(b.meanFinalDistance).toBe(a.meanFinalDistance);
    // the policy's own stream moves on: the same call without a stream differs
    const c = await run();
    const d = await run();
    expect(d.actionMse).not.toBe(c.actionMse);
    policy.dispose();
  });
});
