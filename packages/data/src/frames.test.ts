import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '@selfalign/core/rng';
import {
  Field,
  FixedSizeList,
  Float64,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
} from 'apache-arrow';
import { beforeAll, describe, expect, it } from 'vitest';
import { crc32, encodeFooter } from './checksum.js';
import { DataError } from './errors.js';
import { openFrames, readEpisodes, validateFile } from './reader.js';
import { arrowSchema, COL, type DatasetMeta } from './schema.js';
import { episodeSamples, packBatch } from './window.js';
import {
  buildBatch,
  type EpisodeData,
  episodeColumns,
  FrameWriter,
  writeEpisodes,
} from './writer.js';

const meta: DatasetMeta = {
  format: 'selfalign-frames/1',
  kind: 'play',
  fps: 10,
  imageShape: [4, 4, 3],
  stateDim: 3,
  actionDim: 2,
};

export function fakeEpisode(index: number, length: number, seed = index): EpisodeData {
  const rng = new Rng(seed);
  return {
    episodeIndex: index,
    task: `task ${index % 2}`,
    embodiment: 'source',
    length,
    images: Uint8Array.from({ length: length * 48 }, () => rng.int(256)),
    states: Float32Array.from({ length: length * 3 }, () => rng.normal()),
    actions: Float32Array.from({ length: length * 2 }, () => rng.uniform() * 2 - 1),
  };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'selfalign-data-'));
});

/** Arrow stream bytes for arbitrary batches + a valid footer: only content checks can fail. */
async function writeRaw(path: string, batches: RecordBatch[]): Promise<void> {
  const w = new RecordBatchStreamWriter();
  for (const b of batches) w.write(b);
  w.finish();
  const body = await w.toUint8Array();
  await writeFile(path, Buffer.concat([body, encodeFooter(crc32(body))]));
}

async function errorOf(p: Promise<unknown>): Promise<DataError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DataError) return err;
    throw new Error(`expected a DataError, got ${(err as Error)?.stack ?? err}`);
  }
  throw new Error('expected a DataError, got success');
}

describe('frame files', () => {
  it('round-trip episodes through a file, bit for bit, across record batches', async () => {
    const path = join(dir, 'round.arrow');
    const eps = [fakeEpisode(0, 5), fakeEpisode(1, 3), fakeEpisode(2, 7)];
    const w = await FrameWriter.open(path, meta);
    // episode 2 split over two batches
    w.writeEpisode(eps[0]!);
    w.writeEpisode(eps[1]!);
    const c = episodeColumns(eps[2]!, 10);
    const half = (k: number, from: number, to: number) => ({
      length: to - from,
      episode: c.episode.subarray(from, to),
      frame: c.frame.subarray(from, to),
      timestamp: c.timestamp.subarray(from, to),
      task: c.task.slice(from, to),
      embodiment: c.embodiment.slice(from, to),
      images: c.images.subarray(from * 48, to * 48),
      states: c.states.subarray(from * 3, to * 3),
      actions: c.actions.subarray(from * 2, to * 2),
      k,
    });
    w.write(half(0, 0, 4));
    w.write(half(1, 4, 7));
    const { rows } = await w.close();
    expect(rows).toBe(15);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const back = [];
    for await (const ep of readEpisodes(path)) back.push(ep);
    expect(back.map((e) => e.length)).toEqual([5, 3, 7]);
    back.forEach((e, i) => {
      expect(e.meta).toEqual(meta);
      expect(e.task).toBe(eps[i]!.task);
      expect(Buffer.from(e.images).equals(Buffer.from(eps[i]!.images))).toBe(true);
      expect(Array.from(e.states)).toEqual(Array.from(eps[i]!.states));
      expect(Array.from(e.actions)).toEqual(Array.from(eps[i]!.actions));
    });
    expect(await validateFile(path)).toEqual({ meta, rows: 15, episodes: 3 });
  });

  it('an aborted writer leaves the target untouched; a write of the wrong size is refused', async () => {
    const path = join(dir, 'keep.arrow');
    await writeEpisodes(path, meta, [fakeEpisode(0, 2)]);
    const before = await readFile(path);
    const w = await FrameWriter.open(path, meta);
    w.writeEpisode(fakeEpisode(0, 4));
    expect(() => w.writeEpisode({ ...fakeEpisode(1, 2), states: new Float32Array(5) })).toThrow(
      /column 'observation.state'.*5 values for 2 rows of 3/,
    );
    const nan = fakeEpisode(1, 2);
    nan.actions[3] = Number.POSITIVE_INFINITY;
    expect(() => w.writeEpisode(nan)).toThrow(/column 'action', row 5\): Infinity at value 1/);
    await w.abort();
    expect((await readFile(path)).equals(before)).toBe(true);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('object positions round-trip with NaN for absent objects and reach samples and batches', async () => {
    const path = join(dir, 'objects.arrow');
    const m: DatasetMeta = { ...meta, objectDim: 4 };
    const ep = {
      ...fakeEpisode(0, 3),
      objects: Float32Array.from([0.1, -0.2, NaN, NaN, 0.3, 0.4, NaN, NaN, -0.5, 0.6, 0.7, -0.8]),
    };
    await writeEpisodes(path, m, [ep]);
    const eps = [];
    for await (const e of readEpisodes(path)) eps.push(e);
    const back = eps[0];
    expect(back!.meta.objectDim).toBe(4);
    expect(Array.from(back!.objects!)).toEqual(Array.from(ep.objects));
    const samples = [...episodeSamples(back!, m, 2)];
    expect(Array.from(samples[2]!.objects!)).toEqual(Array.from(ep.objects.subarray(8, 12)));
    const batch = packBatch(samples, m.imageShape);
    expect(batch.objectDim).toBe(4);
    expect(Array.from(batch.objects!)).toEqual(Array.from(ep.objects));
    // a sample without objects does not pack with samples that have them
    const { objects: _drop, ...plain } = samples[0]!;
    expect(() => packBatch([samples[1]!, plain], m.imageShape)).toThrow(/other shapes/);
    // infinities are refused, the row is named; a file without objects needs none
    const w = await FrameWriter.open(join(dir, 'objects-bad.arrow'), m);
    expect(() =>
      w.writeEpisode({ ...ep, objects: ep.objects.map((v, i) => (i === 5 ? Infinity : v)) }),
    ).toThrow(/column 'observation.objects', row 1\): Infinity/);
    // so are absurd positions (3e38 once reached pretraining as a non-finite loss)
    expect(() =>
      w.writeEpisode({ ...ep, objects: ep.objects.map((v, i) => (i === 2 ? 3e38 : v)) }),
    ).toThrow(
      /row 0\): 3\.0+\d*e\+38 at value 2 \(object positions are image coordinates within ±10/,
    );
    expect(() => w.writeEpisode(fakeEpisode(1, 2))).toThrow(
      /missing: the file has object positions/,
    );
    await w.abort();
  });

  it("the end effector's positions round-trip across record batches; NaN, wrong sizes and a missing column are refused", async () => {
    const path = join(dir, 'effector.arrow');
    const m: DatasetMeta = { ...meta, effectorDim: 2 };
    const eps = [0, 1].map((i) => ({
      ...fakeEpisode(i, 3),
      effector: Float32Array.from({ length: 6 }, (_, k) => 0.1 * k - 0.2 * i),
    }));
    // the second episode split over two batches: readEpisodes joins its rows again
    const w = await FrameWriter.open(path, m);
    w.writeEpisode(eps[0]!);
    const cols = episodeColumns(eps[1]!, m.fps);
    const rows = (from: number, to: number) => ({
      length: to - from,
      episode: cols.episode.subarray(from, to),
      frame: cols.frame.subarray(from, to),
      timestamp: cols.timestamp.subarray(from, to),
      task: cols.task.slice(from, to),
      embodiment: cols.embodiment.slice(from, to),
      images: cols.images.subarray(from * 48, to * 48),
      states: cols.states.subarray(from * 3, to * 3),
      actions: cols.actions.subarray(from * 2, to * 2),
      effector: cols.effector!.subarray(from * 2, to * 2),
    });
    w.write(rows(0, 1));
    w.write(rows(1, 3));
    await w.close();
    const back = [];
    for await (const e of readEpisodes(path)) back.push(e);
    expect(back.map((e) => e.meta.effectorDim)).toEqual([2, 2]);
    expect(back.map((e) => Array.from(e.effector!))).toEqual(
      eps.map((e) => Array.from(e.effector)),
    );
    const bad = await FrameWriter.open(join(dir, 'effector-bad.arrow'), m);
    expect(() =>
      bad.writeEpisode({
        ...eps[0]!,
        effector: eps[0]!.effector.map((v, i) => (i === 3 ? NaN : v)),
      }),
    ).toThrow(/column 'observation.effector', row 1\): NaN at value 1/);
    expect(() => bad.writeEpisode({ ...eps[0]!, effector: new Float32Array(4) })).toThrow(
      /4 values for 3 rows of 2/,
    );
    expect(() => bad.writeEpisode(fakeEpisode(2, 2))).toThrow(
      /missing: the file has the end effector's position/,
    );
    await bad.abort();
    // a file whose metadata names no effector keeps none (the column is not written)
    const plain = join(dir, 'effector-none.arrow');
    await writeEpisodes(plain, meta, [eps[0]!]);
    for await (const e of readEpisodes(plain)) expect(e.effector).toBeUndefined();
  });

  it('an empty file still carries its schema', async () => {
    const path = join(dir, 'empty.arrow');
    await writeEpisodes(path, meta, []);
    expect(await validateFile(path)).toEqual({ meta, rows: 0, episodes: 0 });
  });
});

describe('validation names file, column and row', () => {
  const good = () => buildBatch(meta, episodeColumns(fakeEpisode(0, 4), 10));

  it('missing column', async () => {
    const b = good();
    const schema = new Schema(
      b.schema.fields.filter((f) => f.name !== COL.action),
      b.schema.metadata,
    );
    const path = join(dir, 'missing.arrow');
    await writeRaw(path, [new RecordBatch(schema, b.data)]);
    const e = await errorOf(openFrames(path));
    expect(e.column).toBe(COL.action);
    expect(e.message).toBe(`${path} (column 'action'): missing column`);
  });

  it('wrong type', async () => {
    const m2 = { ...meta };
    const schema = arrowSchema(m2);
    const fields = schema.fields.map((f) =>
      f.name === COL.state
        ? new Field(COL.state, new FixedSizeList(3, new Field('item', new Float64(), false)), false)
        : f,
    );
    const path = join(dir, 'type.arrow');
    const w = new RecordBatchStreamWriter();
    w.reset(undefined, new Schema(fields, schema.metadata));
    w.finish();
    const body = await w.toUint8Array();
    await writeFile(path, Buffer.concat([body, encodeFooter(crc32(body))]));
    const e = await errorOf(openFrames(path));
    expect(e.column).toBe(COL.state);
    expect(e.reason).toMatch(
      /wrong type FixedSizeList\[3\]<Float64>, expected FixedSizeList\[3\]<Float32>/,
    );
  });

  it('wrong list size and image size mismatch', async () => {
    const path = join(dir, 'size.arrow');
    await writeEpisodes(path, meta, [fakeEpisode(0, 2)]);
    // the same data claimed to hold a 5-dim state / a 5x5 image
    for (const [change, col, what] of [
      [{ stateDim: 5 }, COL.state, /wrong list size: 3 values per row, the metadata implies 5/],
      [
        { imageShape: [5, 5, 3] },
        COL.image,
        /image size mismatch: 48 values per row, the metadata implies 75/,
      ],
    ] as const) {
      const b = buildBatch(meta, episodeColumns(fakeEpisode(0, 2), 10));
      const lie = new Schema(
        b.schema.fields,
        new Map([['selfalign', JSON.stringify({ ...meta, ...change })]]),
      );
      const p2 = join(dir, `lie-${col}.arrow`);
      await writeRaw(p2, [new RecordBatch(lie, b.data)]);
      const e = await errorOf(openFrames(p2));
      expect(e.column).toBe(col);
      expect(e.reason).toMatch(what);
    }
  });

  it('NaN and infinities, with the row', async () => {
    const ep = fakeEpisode(0, 4);
    ep.actions[5] = Number.NaN; // row 2, value 1
    const path = join(dir, 'nan.arrow');
    await writeRaw(path, [
      buildBatch(meta, episodeColumns(fakeEpisode(0, 1), 10)),
      buildBatch(meta, episodeColumns({ ...ep, episodeIndex: 1 }, 10)),
    ]);
    const { batches } = await openFrames(path);
    const e = await errorOf(
      (async () => {
        for await (const _ of batches) void _;
      })(),
    );
    expect(e.column).toBe(COL.action);
    expect(e.row).toBe(3); // 1 row before + row 2 of the second batch
    expect(e.reason).toMatch(/NaN at value 1/);
  });

  it('episodes and frames out of order', async () => {
    const path = join(dir, 'order.arrow');
    await writeRaw(path, [
      buildBatch(meta, episodeColumns(fakeEpisode(1, 2), 10)),
      buildBatch(meta, episodeColumns(fakeEpisode(0, 2), 10)),
    ]);
    const e = await errorOf(validateFile(path));
    expect(e.message).toBe(
      `${path} (column 'episode_index', row 2): episodes out of order: episode 0 after episode 1`,
    );
    const c = episodeColumns(fakeEpisode(0, 3), 10);
    c.frame = Int32Array.from([0, 2, 1]);
    const p2 = join(dir, 'frames.arrow');
    await writeRaw(p2, [buildBatch(meta, c)]);
    expect((await errorOf(validateFile(p2))).reason).toMatch(/frame 2 after frame 0/);
  });

  it('missing files, folders, foreign files and bad metadata', async () => {
    expect((await errorOf(openFrames(join(dir, 'nope.arrow')))).message).toMatch(
      /nope.arrow: file not found/,
    );
    expect((await errorOf(openFrames(dir))).reason).toMatch(/is a folder/);
    const path = join(dir, 'foreign.arrow');
    const b = good();
    const w = new RecordBatchStreamWriter();
    w.write(b);
    w.finish();
    await writeFile(path, await w.toUint8Array()); // no footer
    expect((await errorOf(validateFile(path))).reason).toMatch(/no selfalign integrity footer/);
    expect((await validateFile(path, { checksum: 'ignore' })).rows).toBe(4);
    const p2 = join(dir, 'nometa.arrow');
    await writeRaw(p2, [new RecordBatch(new Schema(b.schema.fields), b.data)]);
    expect((await errorOf(openFrames(p2))).reason).toMatch(/no "selfalign" schema metadata/);
  });
});

describe('fuzz: corrupted bytes always give a clear error', () => {
  it('200 corrupted copies: one or more flipped bytes, truncations, junk', async () => {
    const path = join(dir, 'fuzz-src.arrow');
    await writeEpisodes(path, { ...meta, featureDim: undefined }, [
      fakeEpisode(0, 6),
      fakeEpisode(1, 5),
    ]);
    const clean = new Uint8Array(await readFile(path));
    const rng = new Rng(99);
    for (let k = 0; k < 200; k++) {
      const bytes = clean.slice();
      let data: Uint8Array = bytes;
      const mode = k % 4;
      if (mode === 0) {
        const at = rng.int(bytes.length);
        bytes[at] = bytes[at]! ^ (1 << rng.int(8));
      } else if (mode === 1)
        for (let j = 0; j < 8; j++) bytes[rng.int(bytes.length)] = rng.int(256);
      else if (mode === 2) data = bytes.subarray(0, rng.int(bytes.length));
      else data = Uint8Array.from({ length: rng.int(2000) }, () => rng.int(256));
      const p = join(dir, `fuzz-${k}.arrow`);
      await writeFile(p, data);
      const started = Date.now();
      const e = await errorOf(validateFile(p));
      expect(e.file).toBe(p);
      expect(Date.now() - started).toBeLessThan(5000);
    }
  });
});
