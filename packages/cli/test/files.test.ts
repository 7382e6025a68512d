// The CLI's promises about files: an output never destroys an input, a resumable training
// checkpoint is never silently replaced by a weights-only one, --resume says what it resumed or
// refuses, and unusable output locations are reported before any work.
import { link, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runIn } from './run-cli.js';

let dir: string;

const cli = (...argv: string[]) => runIn(dir, ...argv);

async function refused(
  r: Promise<{ code: number; last: string }>,
  pattern: RegExp,
  untouched: string[] = [],
) {
  const before = await Promise.all(untouched.map((f) => readFile(join(dir, f))));
  const res = await r;
  expect(res.code, res.last).toBe(1);
  expect(res.last).toMatch(/^selfalign: /);
  expect(res.last).toMatch(pattern);
  const after = await Promise.all(untouched.map((f) => readFile(join(dir, f))));
  after.forEach((b, i) => expect(b.equals(before[i]!), untouched[i]).toBe(true));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'selfalign-files-'));
  const tinyData = ['--image-size', '16', '--features', 'default', '--feature-dim', '8'];
  expect(
    (
      await cli(
        'collect',
        '--sources',
        '2',
        '--controller',
        'expert',
        '--episodes',
        '2',
        ...tinyData,
        '--out',
        'd.arrow',
      )
    ).code,
  ).toBe(0);
  expect(
    (
      await cli(
        'pretrain',
        '--config',
        'tiny',
        '--data',
        'd.arrow',
        '--steps',
        '2',
        '--out',
        't.safetensors',
        '--workers',
        '1',
      )
    ).code,
  ).toBe(0);
  expect(
    (await cli('export', '--checkpoint', 't.safetensors', '--out', 'w.safetensors')).code,
  ).toBe(0);
  expect(
    (
      await cli(
        'align',
        '--checkpoint',
        'w.safetensors',
        '--data',
        'd.arrow',
        '--adapter',
        'a',
        '--steps',
        '1',
      )
    ).code,
  ).toBe(0);
}, 120_000);

describe('outputs never destroy inputs', () => {
  it('pretrain --out on its data, also through a hard link', async () => {
    await refused(
      cli('pretrain', '--config', 'tiny', '--data', 'd.arrow', '--steps', '1', '--out', 'd.arrow'),
      /the output .*d\.arrow is the input .*d\.arrow/,
      ['d.arrow'],
    );
    await link(join(dir, 'd.arrow'), join(dir, 'd-link.arrow'));
    await refused(
      cli(
        'pretrain',
        '--config',
        'tiny',
        '--data',
        'd.arrow',
        '--steps',
        '1',
        '--out',
        'd-link.arrow',
      ),
      /is the input/,
      ['d.arrow'],
    );
  });

  it('align --save-checkpoint on its data, adapters switch onto its adapter, results --out onto its checkpoint, export onto itself', async () => {
    await refused(
      cli(
        'align',
        '--checkpoint',
        'w.safetensors',
        '--data',
        'd.arrow',
        '--adapter',
        'b',
        '--save-checkpoint',
        'd.arrow',
      ),
      /is the input/,
      ['d.arrow'],
    );
    await refused(
      cli(
        'adapters',
        'switch',
        '--checkpoint',
        'w.safetensors',
        '--adapter',
        'a',
        '--slot',
        '3',
        '--out',
        'adapters/a.safetensors',
      ),
      /is the input/,
      ['adapters/a.safetensors'],
    );
    await refused(
      cli(
        'results',
        '--checkpoint',
        't.safetensors',
        '--targets',
        'perm',
        '--out',
        't.safetensors',
      ),
      /is the input/,
      ['t.safetensors'],
    );
    await refused(
      cli('export', '--checkpoint', 't.safetensors', '--out', 't.safetensors'),
      /is the input/,
      ['t.safetensors'],
    );
  });
});

describe('training state is never dropped silently', () => {
  it('weights-only writes refuse to replace a resumable checkpoint without --force', async () => {
    await refused(
      cli(
        'align',
        '--checkpoint',
        'w.safetensors',
        '--data',
        'd.arrow',
        '--adapter',
        'c',
        '--steps',
        '1',
        '--save-checkpoint',
        't.safetensors',
      ),
      /resumable training checkpoint.*--force/,
      ['t.safetensors'],
    );
    await refused(
      cli(
        'adapters',
        'switch',
        '--checkpoint',
        'w.safetensors',
        '--adapter',
        'a',
        '--slot',
        '3',
        '--out',
        't.safetensors',
      ),
      /resumable training checkpoint/,
      ['t.safetensors'],
    );
    await refused(
      cli(
        'pretrain',
        '--config',
        'tiny',
        '--data',
        'd.arrow',
        '--steps',
        '1',
        '--out',
        't.safetensors',
      ),
      /resumable checkpoint \(step 2\).*--resume.*--force/,
      ['t.safetensors'],
    );
  });

  it('--resume says what it resumed, and refuses a weights-only file or a missing one', async () => {
    const r = await cli(
      'pretrain',
      '--config',
      'tiny',
      '--data',
      'd.arrow',
      '--steps',
      '3',
      '--out',
      't.safetensors',
      '--resume',
      '--workers',
      '1',
    );
    expect(r.code).toBe(0);
    expect(r.err.join('\n')).toMatch(/resuming .*t\.safetensors at step 2 of 3/);
    await refused(
      cli(
        'pretrain',
        '--config',
        'tiny',
        '--data',
        'd.arrow',
        '--steps',
        '3',
        '--out',
        'w.safetensors',
        '--resume',
      ),
      /holds weights only .* cannot be resumed/,
      ['w.safetensors'],
    );
    await refused(
      cli(
        'pretrain',
        '--config',
        'tiny',
        '--data',
        'd.arrow',
        '--steps',
        '3',
        '--out',
        'nothing.safetensors',
        '--resume',
      ),
      /does not exist/,
    );
  });
});

describe('unusable outputs are reported before any work', () => {
  it('a missing folder, a folder as the output, a kernel file system, a bad learning rate', async () => {
    const t0 = performance.now();
    await refused(
      cli(
        'pretrain',
        '--config',
        'tiny',
        '--data',
        'd.arrow',
        '--steps',
        '500',
        '--out',
        'missing/dir/c.safetensors',
      ),
      /the folder .*missing\/dir does not exist/,
    );
    await refused(
      cli('collect', '--episodes', '1', '--out', 'adapters'),
      /is a folder; give a file path/,
    );
    await refused(cli('demo', '--config', 'tiny', '--out', '/proc/demo'), /kernel file system/);
    expect(performance.now() - t0).toBeLessThan(5_000);
    for (const lr of ['-1', '0', '1e30', 'nan']) {
      const r = await cli(
        'pretrain',
        '--config',
        'tiny',
        '--data',
        'd.arrow',
        '--out',
        'x.safetensors',
        '--lr',
        lr,
      );
      expect(r.code).toBe(2);
      expect(r.last).toMatch(/--lr must be a number in \(0, 1\]/);
    }
    await expect(stat(join(dir, 'x.safetensors'))).rejects.toThrow();
    await writeFile(join(dir, 'keep.txt'), 'x');
  });
});

describe('user mistakes are usage errors, not internal errors', () => {
  it('empty robot list, a slot the policy lacks, an unknown config, a huge batch, negative counts', async () => {
    const cases: [string[], RegExp][] = [
      [['collect', '--embodiment', ',', '--out', 'e.arrow'], /--embodiment names no robot/],
      [
        ['eval', '--checkpoint', 'w.safetensors', '--embodiment', 'perm', '--slot', '99'],
        /--slot 99 does not exist: the policy has slots 0\.\.3/,
      ],
      [['bench', '--config', 'pi0'], /--config must be tiny or small, got 'pi0'/],
      [['bench', '--config', 'tiny', '--batch-size', '100000'], /--batch-size must be at most 256/],
      [
        [
          'pretrain',
          '--config',
          'tiny',
          '--data',
          'd.arrow',
          '--out',
          'y.safetensors',
          '--steps',
          '-1',
        ],
        /--steps must be an integer >= 1, got '-1'/,
      ],
      [
        ['pretrain', '--config', 'tiny', '--data', 'd.arrow', '--out', 'y.safetensors'].concat([
          '--data-weights',
          '1,2',
        ]),
        /--data-weights has 2 weights for 1 --data files/,
      ],
      [
        ['pretrain', '--config', 'tiny', '--data', 'd.arrow', '--out', 'y.safetensors'].concat([
          '--data-weights',
          'x',
        ]),
        /--data-weights must be numbers >= 0, not all 0, one per --data file; got 'x'/,
      ],
    ];
    for (const [argv, pattern] of cases) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.last).toMatch(pattern);
      expect(r.last).not.toMatch(/internal error/);
    }
  });
});

describe('inspect runs the full checkpoint validation', () => {
  it('a good checkpoint is valid with its checksum; an edited or damaged one exits 1', async () => {
    const ok = await cli('inspect', 'w.safetensors');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/selfalign checkpoint \(valid, checksum verified\)/);
    const bytes = await readFile(join(dir, 'w.safetensors'));
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 5] = flipped[flipped.length - 5]! ^ 0x40;
    await writeFile(join(dir, 'flipped.safetensors'), flipped);
    await refused(cli('inspect', 'flipped.safetensors'), /do not match the checksum/);
    await refused(
      cli('eval', '--checkpoint', 'flipped.safetensors', '--embodiment', 'perm', '--episodes', '1'),
      /flipped\.safetensors: .*checksum/,
    );
  });
});

describe('diagnose', () => {
  it('reports the three slots, the distances over align steps and the task gradient cosines', async () => {
    const r = await cli(
      'diagnose',
      '--checkpoint',
      'w.safetensors',
      '--targets',
      'perm',
      '--play',
      '3',
      '--steps',
      '4',
      '--episodes',
      '2',
      '--json',
    );
    expect(r.code, r.last).toBe(0);
    const j = JSON.parse(r.out.split('\n').at(-1)!).perm;
    for (const k of ['atStart', 'atOracle', 'atAligned'])
      expect(Object.keys(j[k].losses)).toEqual(
        expect.arrayContaining(['perception', 'dynamics', 'inverseDynamics', 'total']),
      );
    expect(Object.keys(j.cosine)).toEqual(['perception', 'dynamics', 'inverseDynamics', 'all']);
    for (const v of Object.values(j.cosine) as number[]) expect(Math.abs(v)).toBeLessThanOrEqual(1);
    expect(j.trace[0]).toEqual({ step: 0, toOracle: j.trace[0].toOracle, fromStart: 0 });
    expect(j.trace[0].toOracle).toBeGreaterThan(0); // the oracle moved the slot
    expect(j.trace.at(-1).step).toBe(4);
    expect(j.trace.at(-1).fromStart).toBeGreaterThan(0); // align moved it too
    expect(j.verdict).toMatch(/problem/);
  });
});

describe('eval tables', () => {
  it('--sources N evaluates every source robot on each task, one row each, with a summary', async () => {
    const r = await cli(
      'eval',
      '--checkpoint',
      'w.safetensors',
      '--sources',
      '2',
      '--task',
      'reach,push',
      '--episodes',
      '2',
      '--json',
    );
    expect(r.code, r.last).toBe(0);
    const j = JSON.parse(r.out.split('\n').at(-1)!);
    expect(
      j.rows.map((x: { embodiment: string; task: string }) => `${x.embodiment}/${x.task}`),
    ).toEqual(['src-0/reach', 'src-0/push', 'src-1/reach', 'src-1/push']);
    // each robot acts through its own slot from the checkpoint's slot map
    expect(j.rows.map((x: { slot: number }) => x.slot)).toEqual([0, 0, 1, 1]);
    const text = await cli(
      'eval',
      '--checkpoint',
      'w.safetensors',
      '--sources',
      '2',
      '--episodes',
      '2',
    );
    expect(text.out).toMatch(/\| src-1 \| 1 \| reach \|/);
    expect(text.out).toMatch(/reach: mean \d+\.\d%, lowest \d+\.\d% over 2 robots/);
  });
});
