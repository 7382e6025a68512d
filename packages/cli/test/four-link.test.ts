// A 4-link arm of the family runs the whole chain: collect -> pretrain (tiny) -> align -> eval.
// Nothing in the CLI or the libraries assumes 3 links: the frame files, the policy's state
// width and the controller all take their sizes from the embodiment.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sampleSources } from '@selfalign/sim';
import { beforeAll, describe, expect, it } from 'vitest';
import { runIn } from './run-cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'selfalign-4link-'));
});

const cli = (...argv: string[]) => runIn(dir, ...argv);

const tiny = ['--image-size', '16', '--features', 'default', '--feature-dim', '8'];

describe('a 4-link arm', () => {
  it('collect -> pretrain -> align -> eval', async () => {
    expect(sampleSources(3, 1, 4).map((e) => e.links.length)).toEqual([4, 4, 4]);
    const demos = await cli(
      ...['collect', '--out', 'demos.arrow', '--embodiment', 'src-0,src-1', '--links', '4'],
      ...['--controller', 'expert', '--episodes', '2', ...tiny, '--json'],
    );
    expect(demos.code).toBe(0);
    const play = await cli(
      ...['collect', '--out', 'play.arrow', '--embodiment', 'src-2', '--links', '4'],
      ...['--controller', 'random', '--episodes', '3', '--seed', '50', ...tiny, '--json'],
    );
    expect(play.code).toBe(0);
    const frames = (await cli('inspect', 'play.arrow', '--json')).json();
    expect(frames.meta).toMatchObject({ stateDim: 12, actionDim: 4 });

    // tiny takes 10 state values: the 4 angles and 4 velocities
    const pre = await cli(
      ...['pretrain', '--config', 'tiny', '--data', 'demos.arrow', '--out', 'ckpt.safetensors'],
      ...['--steps', '3', '--batch-size', '4', '--state-dims', '8', '--workers', '1', '--json'],
    );
    expect(pre.code, pre.err.join('\n')).toBe(0);
    expect(pre.json()).toMatchObject({ steps: 3, slots: { 'src-0': 0, 'src-1': 1 } });
    const info = (await cli('inspect', 'ckpt.safetensors', '--json')).json();
    expect(info.info).toMatchObject({ stateDims: 8 });

    const al = await cli(
      ...['align', '--checkpoint', 'ckpt.safetensors', '--data', 'play.arrow'],
      ...['--adapter', 'src2', '--param', 'free', '--steps', '3', '--batch-size', '4', '--json'],
    );
    expect(al.code, al.err.join('\n')).toBe(0);
    const aligned = al.json();
    expect(aligned).toMatchObject({ steps: 3, param: 'free', slot: 2 });
    expect(Number.isFinite(aligned.after.total)).toBe(true);

    const ev = await cli(
      ...['eval', '--checkpoint', 'ckpt.safetensors', '--embodiment', 'src-2', '--links', '4'],
      ...['--slot', '2', '--adapter', 'src2', '--episodes', '3', '--json'],
    );
    expect(ev.code, ev.err.join('\n')).toBe(0);
    const e = ev.json();
    expect(e).toMatchObject({ embodiment: 'src-2', slot: 2, episodes: 3 });
    // an untrained policy on a 4-joint arm: it moves (a distance that is a real number) and its
    // actions are compared with the 4-joint expert's
    expect(e.meanFinalDistance).toBeGreaterThan(0);
    expect(e.actionMse).toBeGreaterThan(0);
    expect(Number.isFinite(e.actionMse)).toBe(true);
    // a preset is 3-link: asking for 4 links on it says so
    const bad = await cli(
      ...['eval', '--checkpoint', 'ckpt.safetensors', '--embodiment', 'perm', '--links', '4'],
    );
    expect(bad.code).toBe(1);
    expect(bad.err[0]).toMatch(
      /'perm' is a 3-link preset; --links 4 takes family members src-K only/,
    );
  });
});
