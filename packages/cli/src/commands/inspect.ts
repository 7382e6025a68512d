// selfalign inspect: what a file is and what it holds (frame file, checkpoint, adapter).
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CHECKPOINT_FORMAT, decodeCheckpoint } from '@selfalign/align';
import { readSafetensorsFile } from '@selfalign/core/node';
import { validateFile } from '@selfalign/data';
import { readAdapterInfo } from '@selfalign/ttt';
import type { Command } from '../command.js';
import { UserError } from '../io.js';

export const inspect: Command = {
  name: 'inspect',
  summary: 'validate and describe a frame file, a checkpoint or an adapter',
  usage: `selfalign inspect FILE
  Frame files (.arrow) are fully validated (checksum, schema, values, episode order).`,
  options: {},
  positionals: 1,
  async run(args, io) {
    const file = args.positionals[0];
    if (file === undefined) throw new UserError('inspect: which file? (selfalign inspect FILE)');
    const path = resolve(io.cwd, file);
    let head = new Uint8Array(0);
    try {
      const fh = await open(path, 'r');
      head = new Uint8Array(8);
      await fh.read(head, 0, 8, 0);
      await fh.close();
    } catch (err) {
      throw new UserError(
        `${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message}`,
      );
    }
    if (path.endsWith('.arrow') || head[0] === 0xff) {
      const v = await validateFile(path);
      const m = v.meta;
      return {
        lines: [
          `${path}: selfalign frame file (valid)`,
          `  ${v.rows} frames, ${v.episodes} episodes, kind ${m.kind}, ${m.fps} fps`,
          `  image ${m.imageShape.join('x')}, state ${m.stateDim}, action ${m.actionDim}, features ${m.featureDim ?? 'none'}${m.featureModel ? ` (${m.featureModel})` : ''}`,
        ],
        json: { path, type: 'frames', rows: v.rows, episodes: v.episodes, meta: m },
      };
    }
    const d = await readSafetensorsFile(path);
    const format = d.metadata['format'];
    if (format === CHECKPOINT_FORMAT) {
      // the full load: schema of every metadata field, checksum, config fingerprint, every
      // parameter's presence, shape and finiteness, norm stats, RNG state
      const loaded = decodeCheckpoint(d, path);
      loaded.policy.dispose();
      const config = JSON.parse(d.metadata['config'] ?? '{}');
      const info = loaded.info as { slots?: Record<string, number> };
      const params = [...d.tensors.keys()]
        .filter((k) => k.startsWith('params/'))
        .reduce((n, k) => n + d.tensors.get(k)!.data.length, 0);
      return {
        lines: [
          `${path}: selfalign checkpoint (valid${d.metadata['data_checksum'] ? ', checksum verified' : ''})`,
          ...loaded.notices.map((n) => `  notice: ${n}`),
          `  config ${config.name}, ${params} parameters, step ${d.metadata['step']}, fingerprint ${d.metadata['fingerprint']}`,
          `  norm stats: ${d.metadata['norm_stats'] ? 'yes' : 'no'}; slots: ${JSON.stringify(info.slots ?? {})}`,
        ],
        json: {
          path,
          type: 'checkpoint',
          config,
          step: Number(d.metadata['step']),
          parameters: params,
          fingerprint: d.metadata['fingerprint'],
          resumable: loaded.optStep > 0 && loaded.rng !== undefined,
          notices: loaded.notices,
          info,
        },
      };
    }
    const a = readAdapterInfo(d, path);
    const values = [...d.tensors.values()].reduce((n, t) => n + t.data.length, 0);
    return {
      lines: [
        `${path}: selfalign adapter '${a.slotName}'`,
        `  ${d.tensors.size} tensors, ${values} values, fingerprint ${a.fingerprint}, created ${a.createdAt}`,
        `  stats: ${JSON.stringify(a.stats)}`,
      ],
      json: { path, type: 'adapter', ...a, tensors: d.tensors.size, values },
    };
  },
};
