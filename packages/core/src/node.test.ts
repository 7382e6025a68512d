import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sweepStaleTemporaries, writeFileAtomic } from './node.js';

describe('atomic writes leave no temporaries', () => {
  it('a write onto a folder fails and leaves nothing behind; a good write replaces the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'selfalign-node-'));
    await mkdir(join(dir, 'sub'));
    await expect(writeFileAtomic(join(dir, 'sub'), 'x')).rejects.toThrow();
    expect((await readdir(dir)).sort()).toEqual(['sub']);
    await writeFileAtomic(join(dir, 'f.bin'), 'one');
    await writeFileAtomic(join(dir, 'f.bin'), 'two');
    expect(await readFile(join(dir, 'f.bin'), 'utf8')).toBe('two');
    expect((await readdir(dir)).sort()).toEqual(['f.bin', 'sub']);
  });

  it("the next write sweeps a dead process's temporaries of that target, not a live one's or others'", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'selfalign-node-'));
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // has exited
    const names = [
      `c.safetensors.${dead}.0123abcd.tmp`, // stale: swept
      `c.safetensors.${process.ppid}.0123abcd.tmp`, // a live process: kept
      `d.safetensors.${dead}.0123abcd.tmp`, // another target: kept
      `c.safetensors.notes.tmp`, // not our naming: kept
    ];
    for (const n of names) await writeFile(join(dir, n), 'partial');
    await writeFileAtomic(join(dir, 'c.safetensors'), 'done');
    expect((await readdir(dir)).sort()).toEqual(['c.safetensors', ...names.slice(1)].sort());
    expect(await sweepStaleTemporaries(join(dir, 'd.safetensors'))).toBe(1);
  });
});
