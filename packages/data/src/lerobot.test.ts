// LeRobot import on fixture datasets that this test writes in LeRobot's own layouts
// (codebase v2.1: one parquet per episode + tasks.jsonl; v3.0: many episodes per parquet +
// tasks.parquet), with PNG images inside the parquet as LeRobot's "image" dtype stores them.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from 'fast-png';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { beforeAll, describe, expect, it } from 'vitest';
import { importLeRobot, resizeRgb } from './lerobot.js';
import { readEpisodes, validateFile } from './reader.js';

const H = 6;
const W = 8;
/** Frame pixels encode (episode, frame). */
const pixels = (ep: number, f: number) =>
  Uint8Array.from({ length: H * W * 3 }, (_, i) => (ep * 40 + f * 7 + (i % 3) * 50) % 256);
const stateOf = (ep: number, f: number) => [ep + f / 10, -f, 0.5];
const actionOf = (ep: number, f: number) => [f / 100, ep];
const LENGTHS = [3, 4];

function framesParquet(episodes: number[], taskOf: (ep: number) => number): ArrayBuffer {
  const rows = episodes.flatMap((ep) =>
    Array.from({ length: LENGTHS[ep]! }, (_, f) => ({ ep, f })),
  );
  const columnData = [
    { name: 'observation.state', data: rows.map(({ ep, f }) => stateOf(ep, f)) },
    { name: 'action', data: rows.map(({ ep, f }) => actionOf(ep, f)) },
    {
      name: 'observation.images.top',
      data: rows.map(({ ep, f }) => ({
        bytes: encode({ width: W, height: H, data: pixels(ep, f), channels: 3, depth: 8 }),
        path: null,
      })),
    },
    { name: 'timestamp', data: rows.map(({ f }) => f / 10) },
    { name: 'frame_index', data: rows.map(({ f }) => BigInt(f)) },
    { name: 'episode_index', data: rows.map(({ ep }) => BigInt(ep)) },
    { name: 'index', data: rows.map((_, i) => BigInt(i)) },
    { name: 'task_index', data: rows.map(({ ep }) => BigInt(taskOf(ep))) },
  ];
  const list = (name: string) => [
    { name, repetition_type: 'OPTIONAL', num_children: 1, converted_type: 'LIST' },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    { name: 'element', type: 'FLOAT', repetition_type: 'OPTIONAL' },
  ];
  const schema = [
    { name: 'schema', num_children: columnData.length },
    ...list('observation.state'),
    ...list('action'),
    { name: 'observation.images.top', repetition_type: 'OPTIONAL', num_children: 2 },
    { name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
    { name: 'path', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
    { name: 'timestamp', type: 'FLOAT', repetition_type: 'OPTIONAL' },
    { name: 'frame_index', type: 'INT64', repetition_type: 'OPTIONAL' },
    { name: 'episode_index', type: 'INT64', repetition_type: 'OPTIONAL' },
    { name: 'index', type: 'INT64', repetition_type: 'OPTIONAL' },
    { name: 'task_index', type: 'INT64', repetition_type: 'OPTIONAL' },
  ];
  return parquetWriteBuffer({ columnData, schema } as never);
}

function info(version: string, cameraDtype = 'image') {
  return {
    codebase_version: version,
    robot_type: 'so100',
    fps: 30,
    total_episodes: 2,
    features: {
      'observation.state': { dtype: 'float32', shape: [3], names: ['x', 'y', 'z'] },
      action: { dtype: 'float32', shape: [2], names: { motors: ['m0', 'm1'] } },
      'observation.images.top': {
        dtype: cameraDtype,
        shape: [H, W, 3],
        names: ['height', 'width', 'channel'],
      },
      timestamp: { dtype: 'float32', shape: [1] },
      frame_index: { dtype: 'int64', shape: [1] },
      episode_index: { dtype: 'int64', shape: [1] },
      index: { dtype: 'int64', shape: [1] },
      task_index: { dtype: 'int64', shape: [1] },
    },
  };
}

const TASKS = ['pick the cube', 'open the drawer'];

async function v21(root: string, cameraDtype = 'image') {
  await mkdir(join(root, 'meta'), { recursive: true });
  await mkdir(join(root, 'data', 'chunk-000'), { recursive: true });
  await writeFile(
    join(root, 'meta', 'info.json'),
    JSON.stringify({
      ...info('v2.1', cameraDtype),
      data_path: 'data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet',
    }),
  );
  await writeFile(
    join(root, 'meta', 'tasks.jsonl'),
    TASKS.map((task, task_index) => JSON.stringify({ task_index, task })).join('\n'),
  );
  await writeFile(
    join(root, 'meta', 'episodes.jsonl'),
    LENGTHS.map((length, episode_index) =>
      JSON.stringify({ episode_index, tasks: [TASKS[1 - episode_index]], length }),
    ).join('\n'),
  );
  for (const ep of [0, 1]) {
    await writeFile(
      join(root, 'data', 'chunk-000', `episode_00000${ep}.parquet`),
      Buffer.from(framesParquet([ep], (e) => 1 - e)),
    );
  }
}

async function v30(root: string) {
  await mkdir(join(root, 'meta', 'episodes', 'chunk-000'), { recursive: true });
  await mkdir(join(root, 'data', 'chunk-000'), { recursive: true });
  await writeFile(
    join(root, 'meta', 'info.json'),
    JSON.stringify({
      ...info('v3.0'),
      data_path: 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet',
    }),
  );
  await writeFile(
    join(root, 'meta', 'tasks.parquet'),
    Buffer.from(
      parquetWriteBuffer({
        columnData: [
          { name: 'task_index', data: [0n, 1n], type: 'INT64' },
          { name: 'task', data: TASKS, type: 'STRING' },
        ],
      }),
    ),
  );
  await writeFile(
    join(root, 'meta', 'episodes', 'chunk-000', 'file-000.parquet'),
    Buffer.from(
      parquetWriteBuffer({
        columnData: [
          { name: 'episode_index', data: [0n, 1n], type: 'INT64' },
          { name: 'length', data: LENGTHS.map(BigInt), type: 'INT64' },
        ],
      }),
    ),
  );
  await writeFile(
    join(root, 'data', 'chunk-000', 'file-000.parquet'),
    Buffer.from(framesParquet([0, 1], (e) => 1 - e)),
  );
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'selfalign-lerobot-'));
});

describe('LeRobot import', () => {
  for (const [version, make] of [
    ['v2.1', v21],
    ['v3.0', v30],
  ] as const) {
    it(`imports a ${version} dataset: states, actions, tasks, images bit for bit`, async () => {
      const root = join(dir, version);
      await make(root);
      const out = join(dir, `${version}.arrow`);
      const r = await importLeRobot(root, out);
      expect(r).toEqual({
        version,
        camera: 'observation.images.top',
        episodes: 2,
        rows: 7,
        imageShape: [H, W, 3],
      });
      const v = await validateFile(out);
      expect(v.meta.fps).toBe(30);
      expect(v.meta.kind).toBe('demo');
      expect(v.meta.stateNames).toEqual(['x', 'y', 'z']);
      expect(v.meta.actionNames).toEqual(['m0', 'm1']);
      const eps = [];
      for await (const e of readEpisodes(out)) eps.push(e);
      expect(eps.map((e) => [e.episodeIndex, e.length, e.task, e.embodiment])).toEqual([
        [0, 3, 'open the drawer', 'so100'],
        [1, 4, 'pick the cube', 'so100'],
      ]);
      const e1 = eps[1]!;
      expect(Array.from(e1.states.subarray(6, 9))).toEqual(
        stateOf(1, 2).map((x) => Math.fround(x)),
      );
      expect(Array.from(e1.actions.subarray(4, 6))).toEqual(
        actionOf(1, 2).map((x) => Math.fround(x)),
      );
      expect(
        Buffer.from(e1.images.subarray(2 * H * W * 3, 3 * H * W * 3)).equals(
          Buffer.from(pixels(1, 2)),
        ),
      ).toBe(true);
    });
  }

  it('resizes on import', async () => {
    const out = join(dir, 'resized.arrow');
    const r = await importLeRobot(join(dir, 'v2.1'), out, {
      imageSize: 4,
      kind: 'play',
      embodiment: 'arm',
    });
    expect(r.imageShape).toEqual([4, 4, 3]);
    const first = (await readEpisodes(out).next()).value!;
    expect(first.meta.kind).toBe('play');
    expect(first.embodiment).toBe('arm');
    expect(Array.from(first.images.subarray(0, 48))).toEqual(
      Array.from(resizeRgb(pixels(0, 0), H, W, 4, 4)),
    );
  });

  it('video features, missing folders and bad metadata are clear errors', async () => {
    const root = join(dir, 'video');
    await v21(root, 'video');
    await expect(importLeRobot(root, join(dir, 'x.arrow'))).rejects.toThrow(
      /'observation.images.top' is stored as video \(mp4\), which selfalign cannot decode/,
    );
    await expect(importLeRobot(join(dir, 'nope'), join(dir, 'x.arrow'))).rejects.toThrow(
      /nope: folder not found/,
    );
    await expect(
      importLeRobot(join(dir, 'v2.1'), join(dir, 'x.arrow'), {
        camera: 'observation.images.wrist',
      }),
    ).rejects.toThrow(
      /no feature 'observation.images.wrist'; image features: observation.images.top/,
    );
    const old = join(dir, 'old');
    await mkdir(join(old, 'meta'), { recursive: true });
    await writeFile(join(old, 'meta', 'info.json'), JSON.stringify({ ...info('v1.6') }));
    await expect(importLeRobot(old, join(dir, 'x.arrow'))).rejects.toThrow(
      /codebase_version "v1.6" is not supported/,
    );
  });
});
