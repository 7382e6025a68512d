// Streaming, atomic writer of selfalign frame files. Columns are built straight from typed
// arrays (no per-row objects); each call appends one Arrow record batch; bytes go to a
// temporary file beside the target while their CRC-32 is computed; `close` writes the Arrow
// end-of-stream marker and the integrity footer, fsyncs and renames. Until then the target
// path is untouched, and `abort` (or a failed write) removes the temporary file.
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { createTemporary, releaseTemporary } from '@selfalign/core/node';
import {
  type Data,
  Field,
  FixedSizeList,
  Float32,
  Int32,
  makeData,
  RecordBatch,
  RecordBatchStreamWriter,
  Struct,
  Uint8,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { Crc32, encodeFooter } from './checksum.js';
import { DataError } from './errors.js';
import { arrowSchema, COL, type DatasetMeta, OBJECT_LIMIT } from './schema.js';

/** Rows of one or more episodes as flat typed arrays (row-major). */
export interface FrameColumns {
  /** rows */
  length: number;
  episode: Int32Array;
  frame: Int32Array;
  timestamp: Float32Array;
  task: readonly string[];
  embodiment: readonly string[];
  /** [rows * H * W * 3] */
  images: Uint8Array;
  /** [rows * Ds] */
  states: Float32Array;
  /** [rows * A] */
  actions: Float32Array;
  /** [rows * F] when the file has features */
  features?: Float32Array;
  /** [rows * 2G] when the file has object positions (NaN where an object is absent) */
  objects?: Float32Array;
  /** [rows * E] when the file has the end effector's position */
  effector?: Float32Array;
}

/** One episode, as the simulator and importers produce it. */
export interface EpisodeData {
  episodeIndex: number;
  task: string;
  embodiment: string;
  length: number;
  images: Uint8Array;
  states: Float32Array;
  actions: Float32Array;
  features?: Float32Array;
  /** [T * 2G] image positions of the task objects (NaN where absent) */
  objects?: Float32Array;
  /** [T * E] the end effector's position (world frame) */
  effector?: Float32Array;
}

/** Columns of one episode (frame index 0.., timestamps frame / fps). */
export function episodeColumns(ep: EpisodeData, fps: number): FrameColumns {
  const n = ep.length;
  const cols: FrameColumns = {
    length: n,
    episode: new Int32Array(n).fill(ep.episodeIndex),
    frame: Int32Array.from({ length: n }, (_, i) => i),
    timestamp: Float32Array.from({ length: n }, (_, i) => i / fps),
    task: new Array(n).fill(ep.task),
    embodiment: new Array(n).fill(ep.embodiment),
    images: ep.images,
    states: ep.states,
    actions: ep.actions,
  };
  if (ep.features) cols.features = ep.features;
  if (ep.objects) cols.objects = ep.objects;
  if (ep.effector) cols.effector = ep.effector;
  return cols;
}

// makeData's overloads do not type a FixedSizeList built from a child; the props are right.
const makeAny = makeData as unknown as (props: Record<string, unknown>) => Data;

const listData = (
  size: number,
  rows: number,
  child: Float32 | Uint8,
  values: Float32Array | Uint8Array,
): Data =>
  makeAny({
    type: new FixedSizeList(size, new Field('item', child, false)),
    length: rows,
    nullCount: 0,
    child: makeAny({ type: child, length: rows * size, data: values }),
  });

export class FrameWriter {
  private readonly crc = new Crc32();
  private writer = new RecordBatchStreamWriter();
  private chain: Promise<unknown> = Promise.resolve();
  private failure: unknown;
  private closed = false;
  rows = 0;
  bytes = 0;

  private constructor(
    readonly path: string,
    readonly meta: DatasetMeta,
    private readonly tmp: string,
    private readonly fh: FileHandle,
  ) {
    const stream = this.writer.toNodeStream();
    stream.on('data', (chunk: Uint8Array) => {
      this.crc.update(chunk);
      this.bytes += chunk.length;
      this.chain = this.chain
        .then(() => this.fh.write(chunk))
        .catch((err) => {
          this.failure ??= err;
        });
    });
    this.ended = new Promise((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    // abort() rejects the stream on purpose; close() still awaits and reports real failures
    this.ended.catch(() => undefined);
  }

  private readonly ended: Promise<unknown>;

  /** Opens a temporary file beside `path`. */
  static async open(path: string, meta: DatasetMeta): Promise<FrameWriter> {
    const tmp = await createTemporary(path);
    const fh = await open(tmp, 'w');
    return new FrameWriter(path, meta, tmp, fh);
  }

  /** Appends rows (one record batch). @throws DataError when sizes do not match the metadata. */
  write(cols: FrameColumns): void {
    if (this.closed) throw new DataError('writer is closed', this.path);
    const m = this.meta;
    const n = cols.length;
    const [h, w, c] = m.imageShape;
    const check = (name: string, got: number, per: number) => {
      if (got !== n * per)
        throw new DataError(`${got} values for ${n} rows of ${per}`, this.path, name);
    };
    check(COL.episode, cols.episode.length, 1);
    check(COL.frame, cols.frame.length, 1);
    check(COL.timestamp, cols.timestamp.length, 1);
    check(COL.task, cols.task.length, 1);
    check(COL.embodiment, cols.embodiment.length, 1);
    check(COL.image, cols.images.length, h * w * c);
    check(COL.state, cols.states.length, m.stateDim);
    check(COL.action, cols.actions.length, m.actionDim);
    if (m.featureDim !== undefined) {
      if (cols.features === undefined)
        throw new DataError('missing: the file has features', this.path, COL.features);
      check(COL.features, cols.features.length, m.featureDim);
    }
    if (m.objectDim !== undefined) {
      if (cols.objects === undefined)
        throw new DataError('missing: the file has object positions', this.path, COL.objects);
      check(COL.objects, cols.objects.length, m.objectDim);
      const i = cols.objects.findIndex((v) => !Number.isNaN(v) && !(Math.abs(v) <= OBJECT_LIMIT));
      if (i >= 0)
        throw new DataError(
          `${cols.objects[i]} at value ${i % m.objectDim} (object positions are image coordinates within ±${OBJECT_LIMIT}; NaN marks an absent object)`,
          this.path,
          COL.objects,
          this.rows + Math.floor(i / m.objectDim),
        );
    }
    if (m.effectorDim !== undefined) {
      if (cols.effector === undefined)
        throw new DataError(
          "missing: the file has the end effector's position",
          this.path,
          COL.effector,
        );
      check(COL.effector, cols.effector.length, m.effectorDim);
    }
    const finite = (name: string, values: Float32Array, per: number) => {
      const i = values.findIndex((v) => !Number.isFinite(v));
      if (i >= 0)
        throw new DataError(
          `${values[i]} at value ${i % per} (NaN and infinities are not allowed)`,
          this.path,
          name,
          this.rows + Math.floor(i / per),
        );
    };
    finite(COL.timestamp, cols.timestamp, 1);
    finite(COL.state, cols.states, m.stateDim);
    finite(COL.action, cols.actions, m.actionDim);
    if (cols.features) finite(COL.features, cols.features, m.featureDim ?? 1);
    if (cols.effector) finite(COL.effector, cols.effector, m.effectorDim ?? 1);
    this.writer.write(buildBatch(m, cols));
    this.rows += n;
  }

  writeEpisode(ep: EpisodeData): void {
    this.write(episodeColumns(ep, this.meta.fps));
  }

  /** Waits for pending bytes to reach the temporary file. */
  async flush(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    await this.chain;
    if (this.failure) throw this.failure;
  }

  /** Finishes the stream, appends the footer, fsyncs and renames onto `path`. */
  async close(): Promise<{ rows: number; bytes: number }> {
    if (this.closed) throw new DataError('writer is closed', this.path);
    this.closed = true;
    try {
      if (this.rows === 0) this.writer.write(emptyBatch(this.meta)); // so the schema is written
      this.writer.finish();
      await this.ended;
      await this.chain;
      if (this.failure) throw this.failure;
      await this.fh.write(encodeFooter(this.crc.digest()));
      await this.fh.sync();
      await this.fh.close();
      await rename(this.tmp, this.path);
      return { rows: this.rows, bytes: this.bytes + 16 };
    } catch (err) {
      await this.fh.close().catch(() => undefined);
      await rm(this.tmp, { force: true });
      throw err;
    } finally {
      releaseTemporary(this.tmp);
    }
  }

  /** Drops everything written; the target path is untouched. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.writer.finish(); // end the stream normally: its bytes go to a file we delete
    await this.ended.catch(() => undefined);
    await this.chain.catch(() => undefined);
    await this.fh.close().catch(() => undefined);
    await rm(this.tmp, { force: true });
    releaseTemporary(this.tmp);
  }
}

function emptyBatch(meta: DatasetMeta): RecordBatch {
  const cols: FrameColumns = {
    length: 0,
    episode: new Int32Array(0),
    frame: new Int32Array(0),
    timestamp: new Float32Array(0),
    task: [],
    embodiment: [],
    images: new Uint8Array(0),
    states: new Float32Array(0),
    actions: new Float32Array(0),
  };
  if (meta.featureDim !== undefined) cols.features = new Float32Array(0);
  if (meta.objectDim !== undefined) cols.objects = new Float32Array(0);
  if (meta.effectorDim !== undefined) cols.effector = new Float32Array(0);
  return buildBatch(meta, cols);
}

/** Writes whole episodes to `path` atomically. */
export async function writeEpisodes(
  path: string,
  meta: DatasetMeta,
  episodes: Iterable<EpisodeData>,
): Promise<{ rows: number; bytes: number }> {
  const w = await FrameWriter.open(path, meta);
  try {
    for (const ep of episodes) w.writeEpisode(ep);
    return await w.close();
  } catch (err) {
    await w.abort();
    throw err;
  }
}

/** One Arrow record batch from typed-array columns (sizes already checked). */
export function buildBatch(m: DatasetMeta, cols: FrameColumns): RecordBatch {
  const n = cols.length;
  const [h, w, c] = m.imageShape;
  const schema = arrowSchema(m);
  const children: Data[] = [
    makeData({ type: new Int32(), length: n, data: cols.episode }),
    makeData({ type: new Int32(), length: n, data: cols.frame }),
    makeData({ type: new Float32(), length: n, data: cols.timestamp }),
    vectorFromArray(cols.task as string[], new Utf8()).data[0]!,
    vectorFromArray(cols.embodiment as string[], new Utf8()).data[0]!,
    listData(h * w * c, n, new Uint8(), cols.images),
    listData(m.stateDim, n, new Float32(), cols.states),
    listData(m.actionDim, n, new Float32(), cols.actions),
  ];
  if (m.featureDim !== undefined)
    children.push(listData(m.featureDim, n, new Float32(), cols.features!));
  if (m.objectDim !== undefined)
    children.push(listData(m.objectDim, n, new Float32(), cols.objects!));
  if (m.effectorDim !== undefined)
    children.push(listData(m.effectorDim, n, new Float32(), cols.effector!));
  return new RecordBatch(
    schema,
    makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children }),
  );
}
