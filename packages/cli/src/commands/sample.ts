// selfalign sample: the action chunk the policy samples for one frame of a data file.
import { resolve } from 'node:path';
import { Rng, tf } from '@selfalign/core';
import { openFrames } from '@selfalign/data';
import { makeObservation } from '@selfalign/experts';
import type { Command } from '../command.js';
import { UserError } from '../io.js';
import { loadPolicy } from '../shared.js';

export const sample: Command = {
  name: 'sample',
  summary: 'sample the action chunk for one frame of a data file',
  usage: `selfalign sample --checkpoint CKPT --data FILE [options]
  --row R        frame row in the file         (default 0)
  --slot K       (default: the frame's embodiment slot, else 0)
  --steps N      Euler steps                   (default: the config's)
  --seed S       noise seed                    (default 0)`,
  options: {
    checkpoint: { type: 'string' },
    data: { type: 'string' },
    row: { type: 'string' },
    slot: { type: 'string' },
    steps: { type: 'string' },
    seed: { type: 'string' },
  },
  async run(args, io) {
    const { policy, slots } = await loadPolicy(resolve(io.cwd, args.str('checkpoint')));
    try {
      const row = args.int('row', 0);
      const { meta, batches } = await openFrames(resolve(io.cwd, args.str('data')));
      const [h, w, c] = meta.imageShape;
      if (h !== policy.config.vision.imageSize)
        throw new UserError(
          `sample: frames are ${h} px, the policy takes ${policy.config.vision.imageSize} px`,
        );
      for await (const b of batches) {
        if (row >= b.firstRow + b.length) continue;
        const i = row - b.firstRow;
        const slot = args.has('slot') ? args.int('slot') : (slots[b.embodiment[i]!] ?? 0);
        const obs = makeObservation(policy, {
          batch: 1,
          images: b.images.subarray(i * h * w * c, (i + 1) * h * w * c),
          prompts: [b.task[i]!],
          state: b.states.subarray(i * meta.stateDim, (i + 1) * meta.stateDim),
          stateDims: meta.stateDim,
          slots: [slot],
        });
        const rng = new Rng(args.int('seed', 0));
        const chunk = policy.sampleActions(obs, {
          rng,
          actionDims: meta.actionDim,
          ...(args.has('steps') ? { numSteps: args.int('steps', undefined, 1) } : {}),
        });
        const actions = chunk.arraySync() as number[][][];
        tf.dispose([chunk, ...Object.values(obs)]);
        return {
          lines: [
            `row ${row} (${b.embodiment[i]}, '${b.task[i]}'), slot ${slot}:`,
            ...actions[0]!.map((a, k) => `  t+${k}: ${a.map((x) => x.toFixed(3)).join(' ')}`),
          ],
          json: { row, slot, embodiment: b.embodiment[i], task: b.task[i], actions: actions[0] },
        };
      }
      throw new UserError(`sample: row ${row} is past the end of the file`);
    } finally {
      policy.dispose();
    }
  },
};
