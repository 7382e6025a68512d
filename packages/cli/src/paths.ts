// Output paths are checked before any work: an output never resolves to an input (realpath or
// the same inode, so hard links count), its folder exists and is writable, and it is not a
// folder itself. What a command would otherwise discover after minutes, it says at once.
import { accessSync, constants, existsSync, realpathSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from './io.js';

function identity(path: string): string | undefined {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * @param inputs files the command reads
 * @param outputs files the command writes (folders: use `checkOutputDir`)
 * @throws UserError naming the clash or the unusable location
 */
export function checkOutputs(
  command: string,
  inputs: readonly string[],
  outputs: readonly string[],
): void {
  const ins = new Map<string, string>();
  for (const p of inputs) {
    const id = identity(p);
    if (id) ins.set(id, p);
    try {
      ins.set(realpathSync(p), p);
    } catch {
      // a missing input is reported by the reader
    }
  }
  for (const out of outputs) {
    const clash = ins.get(identity(out) ?? '') ?? ins.get(existsSync(out) ? realpathSync(out) : '');
    if (clash !== undefined)
      throw new UserError(
        `${command}: the output ${out} is the input ${clash}; writing it would destroy the input (choose another output path)`,
      );
    if (existsSync(out) && statSync(out).isDirectory())
      throw new UserError(`${command}: the output ${out} is a folder; give a file path`);
    checkWritableDir(command, dirname(out));
  }
}

/** A folder the command will create files in: it exists (or can be made) and is writable. */
export function checkOutputDir(command: string, dir: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory())
      throw new UserError(`${command}: ${dir} is a file, not a folder`);
    checkWritableDir(command, dir);
    return;
  }
  // the nearest existing ancestor must let us create the rest
  let parent = dirname(dir);
  while (!existsSync(parent) && dirname(parent) !== parent) parent = dirname(parent);
  checkWritableDir(command, parent);
}

function checkWritableDir(command: string, dir: string): void {
  if (!existsSync(dir))
    throw new UserError(`${command}: the folder ${dir} does not exist (create it first)`);
  if (!statSync(dir).isDirectory()) throw new UserError(`${command}: ${dir} is not a folder`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UserError(`${command}: cannot write in ${dir} (permission denied)`);
  }
  if (dir === '/proc' || dir.startsWith('/proc/') || dir === '/sys' || dir.startsWith('/sys/'))
    throw new UserError(`${command}: ${dir} is a kernel file system, not a place for outputs`);
}

/**
 * What a checkpoint file holds for resuming, from its safetensors header alone (no tensor is
 * read): undefined when the file does not exist or is not a safetensors file.
 */
export async function trainingState(
  path: string,
): Promise<{ step: number; resumable: boolean; extraTasks: string[] } | undefined> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, 'r');
    const len = Buffer.alloc(8);
    if ((await fh.read(len, 0, 8, 0)).bytesRead < 8) return undefined;
    const n = Number(len.readBigUInt64LE(0));
    if (!(n > 0 && n < 100_000_000)) return undefined;
    const head = Buffer.alloc(n);
    await fh.read(head, 0, n, 8);
    const meta = (JSON.parse(head.toString('utf8')) as { __metadata__?: Record<string, string> })
      .__metadata__;
    const step = Number(meta?.['step'] ?? 0);
    const optStep = Number(meta?.['opt_step'] ?? 0);
    let extraTasks: string[] = [];
    try {
      const config = JSON.parse(meta?.['config'] ?? '{}') as { extraAlignmentTasks?: unknown };
      if (Array.isArray(config.extraAlignmentTasks))
        extraTasks = config.extraAlignmentTasks.map(String);
    } catch {
      // a config that is not JSON is refused when the checkpoint loads
    }
    return {
      step: Number.isFinite(step) ? step : 0,
      resumable: Number.isFinite(optStep) && optStep > 0 && meta?.['rng'] !== undefined,
      extraTasks,
    };
  } catch {
    return undefined;
  } finally {
    await fh?.close();
  }
}
