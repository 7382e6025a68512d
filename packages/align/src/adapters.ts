// Adapter management: a folder of adapter files (one embodiment slot's W1/b1 each, from
// @selfalign/ttt), saved atomically, listed with their metadata, and loaded into a slot to
// switch robots. A file made for another model is a clear error and changes nothing.
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { readCheckpointBytes, readSafetensorsFile, writeFileAtomic } from '@selfalign/core/node';
import type { Policy } from '@selfalign/experts';
import { type AdapterInfo, encodeAdapter, loadAdapter, readAdapterInfo } from '@selfalign/ttt';

export interface StoredAdapter extends AdapterInfo {
  name: string;
  path: string;
  bytes: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export class AdapterStore {
  constructor(readonly dir: string) {}

  pathOf(name: string): string {
    if (!NAME.test(name))
      throw new Error(`adapter name '${name}' must be letters, digits, '.', '_' or '-'`);
    return join(this.dir, `${name}.safetensors`);
  }

  /** Saves slot `slot` of the policy as adapter `name`. */
  async save(
    name: string,
    policy: Policy,
    slot: number,
    stats: Record<string, unknown> = {},
  ): Promise<string> {
    const path = this.pathOf(name);
    await writeFileAtomic(
      path,
      await encodeAdapter(policy.tttModules(), slot, {
        fingerprint: policy.fingerprint,
        slotName: name,
        stats,
      }),
    );
    return path;
  }

  /** Every adapter in the folder with its metadata (files that are not adapters are skipped). */
  async list(): Promise<StoredAdapter[]> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((n) => n.endsWith('.safetensors')).sort();
    } catch {
      return [];
    }
    const out: StoredAdapter[] = [];
    for (const n of names) {
      const path = join(this.dir, n);
      try {
        const info = readAdapterInfo(await readSafetensorsFile(path), path);
        out.push({
          ...info,
          name: basename(n, '.safetensors'),
          path,
          bytes: (await stat(path)).size,
        });
      } catch {
        // not an adapter (or unreadable): `show` reports why
      }
    }
    return out;
  }

  /** Loads adapter `name` into `slot` (switching the robot that slot drives). */
  async load(name: string, policy: Policy, slot: number): Promise<AdapterInfo> {
    const path = this.pathOf(name);
    return loadAdapter(
      policy.tttModules(),
      await readCheckpointBytes(path),
      slot,
      policy.fingerprint,
      path,
    );
  }
}
