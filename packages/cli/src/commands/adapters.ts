// selfalign adapters list | show | switch
import { resolve } from 'node:path';
import { AdapterStore, loadCheckpoint, saveCheckpoint } from '@selfalign/align';
import { readSafetensorsFile } from '@selfalign/core/node';
import { readAdapterInfo } from '@selfalign/ttt';
import type { Command } from '../command.js';
import { UsageError, UserError } from '../io.js';
import { checkOutputs, trainingState } from '../paths.js';
import { checkSlot } from '../shared.js';

export const adapters: Command = {
  name: 'adapters',
  summary: 'list, show, or switch embodiment adapters (one TTT slot each)',
  usage: `selfalign adapters list [--adapters DIR]
selfalign adapters show FILE
selfalign adapters switch --checkpoint CKPT --adapter NAME --slot K --out CKPT2 [--adapters DIR]
  switch loads the adapter into slot K and writes the checkpoint to --out (atomic)`,
  options: {
    adapters: { type: 'string' },
    checkpoint: { type: 'string' },
    adapter: { type: 'string' },
    slot: { type: 'string' },
    out: { type: 'string' },
    force: { type: 'boolean' },
  },
  positionals: 2,
  async run(args, io) {
    const [verb, file] = args.positionals;
    const store = new AdapterStore(resolve(io.cwd, args.str('adapters', 'adapters')));
    if (verb === 'list') {
      const all = await store.list();
      return {
        lines: all.length
          ? all.map(
              (a) =>
                `${a.name}  ${a.bytes} bytes  created ${a.createdAt}  ${JSON.stringify(a.stats).slice(0, 80)}`,
            )
          : [`no adapters in ${store.dir}`],
        json: all,
      };
    }
    if (verb === 'show') {
      if (!file) throw new UsageError('adapters show: which file? (selfalign adapters show FILE)');
      const path = resolve(io.cwd, file);
      const d = await readSafetensorsFile(path);
      const info = readAdapterInfo(d, path);
      const tensors = [...d.tensors].map(([k, t]) => `${k} [${t.shape}]`);
      return {
        lines: [
          `${path}: adapter '${info.slotName}', fingerprint ${info.fingerprint}, created ${info.createdAt}`,
          `  stats ${JSON.stringify(info.stats)}`,
          ...tensors.map((t) => `  ${t}`),
        ],
        json: { ...info, tensors },
      };
    }
    if (verb === 'switch') {
      const ckpt = resolve(io.cwd, args.str('checkpoint'));
      const outPath = resolve(io.cwd, args.str('out'));
      const adapterFile = store.pathOf(args.str('adapter'));
      checkOutputs('adapters switch', [ckpt, adapterFile], [outPath]);
      if ((await trainingState(outPath))?.resumable && !args.has('force'))
        throw new UserError(
          `adapters switch: ${outPath} is a resumable training checkpoint; the switched copy holds weights only (give another --out, or --force)`,
        );
      const loaded = await loadCheckpoint(ckpt);
      try {
        const name = args.str('adapter');
        const slot = checkSlot('adapters switch', args.int('slot', undefined, 0), loaded.policy);
        const info = await store.load(name, loaded.policy, slot);
        const out = resolve(io.cwd, args.str('out'));
        const slots = { ...((loaded.info['slots'] ?? {}) as Record<string, number>), [name]: slot };
        await saveCheckpoint(out, loaded.policy, {
          step: loaded.step,
          info: { ...loaded.info, slots },
        });
        return {
          lines: [`loaded adapter '${info.slotName}' into slot ${slot}; wrote ${out}`],
          json: { adapter: name, slot, out },
        };
      } finally {
        loaded.policy.dispose();
      }
    }
    throw new UsageError(`adapters: unknown verb '${verb ?? ''}' (list, show, switch)`);
  },
};
