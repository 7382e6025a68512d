// selfalign export: a training checkpoint -> the weights-only file that ships (no optimiser
// moments, no RNG state: a third of the size), with its training notes and a record of where it
// came from. The policy, its config, fingerprint and norm stats are unchanged.
import { resolve } from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '@selfalign/align';
import type { Command } from '../command.js';
import { checkOutputs } from '../paths.js';

export const exportCommand: Command = {
  name: 'export',
  summary: 'write the weights-only copy of a training checkpoint (what ships)',
  usage: `selfalign export --checkpoint CKPT --out FILE
  --checkpoint CKPT   a checkpoint written by selfalign pretrain
  --out FILE          the weights-only checkpoint (never the input file)`,
  options: {
    checkpoint: { type: 'string' },
    out: { type: 'string' },
  },
  async run(args, io) {
    const input = resolve(io.cwd, args.str('checkpoint'));
    const out = resolve(io.cwd, args.str('out'));
    checkOutputs('export', [input], [out]);
    const loaded = await loadCheckpoint(input);
    try {
      await saveCheckpoint(out, loaded.policy, {
        step: loaded.step,
        info: { ...loaded.info, exportedFrom: input, exportedAt: new Date().toISOString() },
      });
      return {
        lines: [
          `${out}: weights of '${loaded.policy.config.name}' at step ${loaded.step} (fingerprint ${loaded.policy.fingerprint}), no training state`,
        ],
        json: { out, step: loaded.step, fingerprint: loaded.policy.fingerprint },
      };
    } finally {
      loaded.policy.dispose();
    }
  },
};
