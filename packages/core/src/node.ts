// Node-only file helpers (`@selfalign/core/node`): atomic writes and safetensors files.
// Kept out of the main entry so the browser build never sees node:fs.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CheckpointError, type DecodedSafetensors, decodeSafetensors } from './safetensors.js';

/**
 * Writes `data` to `path` atomically: a temporary file in the same folder, fsync, rename.
 * A crash leaves either the old file or the new one, never half of one.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(tmp, path);
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
