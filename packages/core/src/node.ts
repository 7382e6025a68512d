// Node-only file helpers (`@selfalign/core/node`): atomic writes and safetensors files.
// Kept out of the main entry so the browser build never sees node:fs.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CheckpointError, type DecodedSafetensors, decodeSafetensors } from './safetensors.js';

// Temporary files of atomic writes: `<target>.<pid>.<8 hex>.tmp` beside the target. Those of
// this process are removed on an error, on exit and on SIGINT/SIGTERM; those of a process that
// no longer runs (kill -9, power loss) are swept by the next write to the same target.
const live = new Set<string>();
let hooked = false;

function hookSignals(): void {
  if (hooked || typeof process === 'undefined') return;
  hooked = true;
  const clean = () => {
    for (const t of live) rmSync(t, { force: true });
    live.clear();
  };
  process.on('exit', clean);
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(sig, () => {
      clean();
      process.exit(code);
    });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temporaries of earlier writes to `path` whose process has gone. @returns how many */
export async function sweepStaleTemporaries(path: string): Promise<number> {
  const dir = dirname(path);
  const base = basename(path);
  const re = /^\.(\d+)\.[0-9a-f]{8}\.tmp$/;
  let n = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!name.startsWith(base)) continue;
    const m = re.exec(name.slice(base.length));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && !alive(pid)) {
      await rm(join(dir, name), { force: true });
      n++;
    }
  }
  return n;
}

/**
 * A fresh temporary path beside `path` (its folder created), tracked so that it is removed on
 * exit or a signal unless `releaseTemporary` is called after the rename.
 */
export async function createTemporary(path: string): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await sweepStaleTemporaries(path);
  hookSignals();
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  live.add(tmp);
  return tmp;
}

/** Stops tracking a temporary (renamed into place, or removed). */
export function releaseTemporary(tmp: string): void {
  live.delete(tmp);
}

/**
 * Writes `data` to `path` atomically: a temporary file in the same folder, fsync, rename.
 * A crash leaves either the old file or the new one, never half of one; a failed write leaves
 * no temporary behind.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = await createTemporary(path);
  try {
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  } finally {
    releaseTemporary(tmp);
  }
}

/** Reads a file, turning "not found" into a CheckpointError that names it. */
export async function readCheckpointBytes(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CheckpointError('file not found', path);
    if (code === 'EISDIR') throw new CheckpointError('is a folder, not a file', path);
    throw new CheckpointError((err as Error).message, path);
  }
}

export async function readSafetensorsFile(path: string): Promise<DecodedSafetensors> {
  return decodeSafetensors(await readCheckpointBytes(path), path);
}
