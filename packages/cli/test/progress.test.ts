// Progress of long commands: a bar on a terminal; off a terminal (nohup logs) a plain line at
// most once per interval and a closing line when any was written; nothing when disabled.
import { describe, expect, it } from 'vitest';
import { type Io, Progress } from '../src/io.js';

function fakeIo(tty: boolean) {
  const err: string[] = [];
  const raw: string[] = [];
  const io: Io = { out: () => {}, err: (l) => err.push(l), raw: (t) => raw.push(t), tty, cwd: '.' };
  return { io, err, raw };
}

describe('Progress', () => {
  it('off a terminal: a plain line per interval and one at the end, not per tick', () => {
    const { io, err, raw } = fakeIo(false);
    const every = new Progress(io, 'eval', 3, true, 0);
    for (let i = 0; i < 3; i++) every.tick();
    every.tick(); // past the end: nothing more
    every.end();
    expect(raw).toEqual([]);
    expect(err).toHaveLength(3);
    expect(err[0]).toMatch(/^eval: 1\/3 after \d+s \([\d.]+\/s, ETA \d+s\)$/);
    expect(err[2]).toMatch(/^eval: 3\/3 after \d+s \([\d.]+\/s, ETA 0s\)$/);
  });

  it('off a terminal, a short run inside one interval writes nothing', () => {
    const { io, err, raw } = fakeIo(false);
    const p = new Progress(io, 'align', 50, true);
    for (let i = 0; i < 50; i++) p.tick();
    p.end();
    expect([err, raw]).toEqual([[], []]);
  });

  it('on a terminal: a bar on the raw stream, ended by a newline; disabled (--json): nothing', () => {
    const tty = fakeIo(true);
    const bar = new Progress(tty.io, 'collect', 2, true);
    bar.tick();
    bar.tick();
    bar.end();
    expect(tty.err).toEqual([]);
    expect(tty.raw.at(-2)).toMatch(/^\rcollect \[#{24}\] 2\/2 /);
    expect(tty.raw.at(-1)).toBe('\n');
    for (const t of [true, false]) {
      const off = fakeIo(t);
      const p = new Progress(off.io, 'x', 2, false, 0);
      p.tick();
      p.tick();
      p.end();
      expect([off.err, off.raw]).toEqual([[], []]);
    }
  });
});
