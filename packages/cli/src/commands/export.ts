// selfalign export: a training checkpoint -> the weights-only file that ships (no optimiser
// moments, no RNG state: a third of the size), with its training notes and a record of where it
// came from. The policy, its config, fingerprint and norm stats are unchanged; where the checkpoint
// keeps a moving average of the weights, that average is what ships (unless --weights raw).
// --dtype f16 stores the weights as IEEE half: half the bytes, values rounded to ~3 digits.
import { resolve } from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '@selfalign/align';
import type { Command } from '../command.js';
import { checkOutputs } from '../paths.js';
import { weightsArg } from '../shared.js';

export const exportCommand: Command = {
  name: 'export',
  summary: 'write the weights-only copy of a training checkpoint (what ships)',
  usage: `selfalign export --checkpoint CKPT --out FILE
  --checkpoint CKPT   a checkpoint written by selfalign pretrain
  --out FILE          the weights-only checkpoint (never the input file)
  --weights W         ema | raw: the moving average of the weights where the checkpoint keeps
                      one (default), or the raw weights
  --dtype D           f32 | f16: how the weights are stored (default f32; f16 halves the file,
                      each weight rounded to the nearest half float: check it acts the same)`,
  options: {
    checkpoint: { type: 'string' },
    out: { type: 'string' },
    weights: { type: 'string' },
    dtype: { type: 'string' },
  },
  async run(args, io) {
    const input = resolve(io.cwd, args.str('checkpoint'));
    const out = resolve(io.cwd, args.str('out'));
    checkOutputs('export', [input], [out]);
    const dtype = args.choice('dtype', ['f32', 'f16'] as const, 'f32') === 'f16' ? 'F16' : 'F32';
    const loaded = await loadCheckpoint(input, { weights: weightsArg(args) });
    try {
      await saveCheckpoint(
        out,
        loaded.policy,
        {
          step: loaded.step,
          info: {
            ...loaded.info,
            exportedFrom: input,
            exportedAt: new Date().toISOString(),
            weights: loaded.weights,
          },
        },
        { dtype },
      );
      const which = loaded.weights === 'ema' ? 'moving average of the weights' : 'weights';
      return {
        lines: [
          `${out}: ${which} of '${loaded.policy.config.name}' at step ${loaded.step} (fingerprint ${loaded.policy.fingerprint}), ${dtype}, no training state`,
        ],
        json: {
          out,
          step: loaded.step,
          fingerprint: loaded.policy.fingerprint,
          weights: loaded.weights,
          dtype,
        },
      };
    } finally {
      loaded.policy.dispose();
    }
  },
};
