// Streaming reader of selfalign frame files with validation. The file is read in chunks
// (bounded memory); the last 16 bytes are held back as the integrity footer and checked
// against a running CRC-32 at the end. Arrow's RecordBatchReader decodes the stream; every
// batch is checked against the schema metadata (types, list sizes, image size), for nulls and
// non-finite numbers, and for episode order (episodes ascending, frames 0, 1, 2, ... within
// one). Every failure is a DataError naming the file, and the column and row where known.
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { type Data, type RecordBatch, RecordBatchReader, type Vector } from 'apache-arrow';
import { Crc32, decodeFooter, FOOTER_BYTES } from './checksum.js';
import { DataError } from './errors.js';
import { COL, checkSchema, type DatasetMeta, OBJECT_LIMIT, readMeta } from './schema.js';
import type { EpisodeData, FrameColumns } from './writer.js';

export interface FrameBatch extends FrameColumns {
  /** Row index (over the whole file) of the first row. */
  firstRow: number;
}

export interface ReadOptions {
  /** 'require' (default): files must end with selfalign's integrity footer. 'ignore': read foreign Arrow streams. */
  checksum?: 'require' | 'ignore';
  /** Bytes per read (default 1 MiB). */
  chunkBytes?: number;
}

function ioError(err: unknown, path: string): DataError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new DataError('file not found', path);
  if (code === 'EISDIR') return new DataError('is a folder, not a data file', path);
  return new DataError((err as Error).message, path);
}

/**
 * Checks the integrity footer in one streaming pass (constant memory) before anything parses
 * the bytes: Arrow's reader trusts its metadata, and corrupt metadata can make it allocate
 * gigabytes. @returns the length of the Arrow stream (the bytes before the footer)
 */
export async function verifyChecksum(path: string, size: number): Promise<number> {
  if (size < FOOTER_BYTES)
    throw new DataError(
      `truncated: ${size} bytes, less than the ${FOOTER_BYTES}-byte integrity footer`,
      path,
    );
  const end = size - FOOTER_BYTES;
  const tail = new Uint8Array(FOOTER_BYTES);
  const crc = new Crc32();
  let at = 0;
  try {
    for await (const raw of createReadStream(path, {
      highWaterMark: 1 << 22,
    }) as AsyncIterable<Buffer>) {
      const chunk = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
      const body = chunk.subarray(0, Math.max(0, Math.min(chunk.length, end - at)));
      crc.update(body);
      for (let i = body.length; i < chunk.length; i++) tail[at + i - end] = chunk[i]!;
      at += chunk.length;
    }
  } catch (err) {
    throw ioError(err, path);
  }
  const stored = decodeFooter(tail);
  if (stored === undefined) {
    throw new DataError(
      'no selfalign integrity footer: the file is truncated, or was not written by selfalign (read foreign Arrow streams with { checksum: "ignore" })',
      path,
    );
  }
  if (stored !== crc.digest())
    throw new DataError(
      'checksum mismatch: the file is corrupt or was changed after it was written',
      path,
    );
  return end;
}

/** The Arrow stream's bytes in chunks (without a footer). */
async function* fileChunks(
  path: string,
  length: number,
  chunkBytes: number,
): AsyncGenerator<Uint8Array> {
  if (length === 0) return;
  try {
    for await (const raw of createReadStream(path, {
      highWaterMark: chunkBytes,
      end: length - 1,
    }) as AsyncIterable<Buffer>) {
      yield new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    }
  } catch (err) {
    throw ioError(err, path);
  }
}

const first = (v: Vector | null, name: string, file: string): Data => {
  if (v === null) throw new DataError('missing column', file, name);
  if (v.data.length !== 1)
    throw new DataError(`column split into ${v.data.length} chunks in one batch`, file, name);
  return v.data[0]!;
};

function scalars<T extends Int32Array | Float32Array>(
  batch: RecordBatch,
  name: string,
  file: string,
  firstRow: number,
): T {
  const d = first(batch.getChild(name), name, file);
  if (d.nullCount > 0) throw new DataError('null values', file, name, firstRow);
  return (d.values as T).subarray(d.offset, d.offset + d.length) as T;
}

function lists<T extends Uint8Array | Float32Array>(
  batch: RecordBatch,
  name: string,
  size: number,
  file: string,
  firstRow: number,
): T {
  const d = first(batch.getChild(name), name, file);
  if (d.nullCount > 0) throw new DataError('null values', file, name, firstRow);
  const c = d.children[0]!;
  if (c.nullCount > 0) throw new DataError('null list items', file, name, firstRow);
  const start = c.offset + d.offset * size;
  const values = c.values as T;
  if (values.length < start + d.length * size)
    throw new DataError('list values shorter than the rows need', file, name, firstRow);
  return values.subarray(start, start + d.length * size) as T;
}

function strings(batch: RecordBatch, name: string, file: string, firstRow: number): string[] {
  const v = batch.getChild(name);
  const d = first(v, name, file);
  if (d.nullCount > 0) throw new DataError('null values', file, name, firstRow);
  return v!.toArray() as string[];
}

function checkFinite(
  values: Float32Array,
  per: number,
  name: string,
  file: string,
  firstRow: number,
): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) {
      throw new DataError(
        `${values[i]} at value ${i % per} (NaN and infinities are not allowed)`,
        file,
        name,
        firstRow + Math.floor(i / per),
      );
    }
  }
}

/** Object image positions: NaN (absent) or finite within ±OBJECT_LIMIT (schema.ts). */
function checkObjects(values: Float32Array, per: number, file: string, firstRow: number): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) continue;
    if (!Number.isFinite(v) || Math.abs(v) > OBJECT_LIMIT)
      throw new DataError(
        `${v} at value ${i % per} (object positions are image coordinates within ±${OBJECT_LIMIT}, NaN where an object is absent)`,
        file,
        COL.objects,
        firstRow + Math.floor(i / per),
      );
  }
}

const describe = (err: unknown) =>
  err instanceof Error ? err.message : `unexpected ${JSON.stringify(err) ?? String(err)}`;

/** Opens a frame file: its metadata, then validated batches as typed arrays (views into Arrow's buffers). */
export async function openFrames(
  path: string,
  opts: ReadOptions = {},
): Promise<{ meta: DatasetMeta; batches: AsyncGenerator<FrameBatch> }> {
  let size: number;
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw new DataError('is a folder, not a data file', path);
    size = info.size;
  } catch (err) {
    throw err instanceof DataError ? err : ioError(err, path);
  }
  let length = size;
  if ((opts.checksum ?? 'require') === 'require') {
    length = await verifyChecksum(path, size);
  } else if (size >= FOOTER_BYTES) {
    // a foreign reader of our own file: leave the footer out
    const fh = await open(path, 'r');
    const tail = new Uint8Array(FOOTER_BYTES);
    await fh.read(tail, 0, FOOTER_BYTES, size - FOOTER_BYTES);
    await fh.close();
    if (decodeFooter(tail) !== undefined) length = size - FOOTER_BYTES;
  }
  const chunks = fileChunks(path, length, opts.chunkBytes ?? 1 << 20);
  /** A DataError passes through; anything Arrow threw is wrapped. */
  const verdict = async (err: unknown): Promise<never> => {
    if (err instanceof DataError) throw err;
    throw new DataError(`not a valid Arrow IPC stream (${describe(err)})`, path);
  };
  let reader: RecordBatchReader;
  let meta: DatasetMeta;
  try {
    reader = await RecordBatchReader.from(chunks);
    await reader.open();
    if (reader.schema === undefined || reader.schema === null) throw new Error('no schema');
    meta = readMeta(reader.schema, path);
    checkSchema(reader.schema, meta, path);
  } catch (err) {
    return verdict(err);
  }
  const [h, w, c] = meta.imageShape;
  let row = 0;
  let lastEpisode = -1;
  let lastFrame = -1;
  async function* batches(): AsyncGenerator<FrameBatch> {
    const it = reader[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<RecordBatch>;
      let out: FrameBatch;
      try {
        next = await it.next();
        if (next.done) break;
        out = decode(next.value);
      } catch (err) {
        return verdict(err);
      }
      yield out;
    }
  }
  function decode(batch: RecordBatch): FrameBatch {
    const n = batch.numRows;
    const episode = scalars<Int32Array>(batch, COL.episode, path, row);
    const frame = scalars<Int32Array>(batch, COL.frame, path, row);
    const timestamp = scalars<Float32Array>(batch, COL.timestamp, path, row);
    checkFinite(timestamp, 1, COL.timestamp, path, row);
    for (let i = 0; i < n; i++) {
      const e = episode[i]!;
      const f = frame[i]!;
      if (e < lastEpisode) {
        throw new DataError(
          `episodes out of order: episode ${e} after episode ${lastEpisode}`,
          path,
          COL.episode,
          row + i,
        );
      }
      if (e === lastEpisode && f !== lastFrame + 1) {
        throw new DataError(
          `frames out of order in episode ${e}: frame ${f} after frame ${lastFrame}`,
          path,
          COL.frame,
          row + i,
        );
      }
      if (e > lastEpisode && f !== 0) {
        throw new DataError(`episode ${e} starts at frame ${f}, not 0`, path, COL.frame, row + i);
      }
      lastEpisode = e;
      lastFrame = f;
    }
    const states = lists<Float32Array>(batch, COL.state, meta.stateDim, path, row);
    const actions = lists<Float32Array>(batch, COL.action, meta.actionDim, path, row);
    checkFinite(states, meta.stateDim, COL.state, path, row);
    checkFinite(actions, meta.actionDim, COL.action, path, row);
    const out: FrameBatch = {
      length: n,
      firstRow: row,
      episode,
      frame,
      timestamp,
      task: strings(batch, COL.task, path, row),
      embodiment: strings(batch, COL.embodiment, path, row),
      images: lists<Uint8Array>(batch, COL.image, h * w * c, path, row),
      states,
      actions,
    };
    if (meta.featureDim !== undefined) {
      out.features = lists<Float32Array>(batch, COL.features, meta.featureDim, path, row);
      checkFinite(out.features, meta.featureDim, COL.features, path, row);
    }
    if (meta.objectDim !== undefined) {
      out.objects = lists<Float32Array>(batch, COL.objects, meta.objectDim, path, row);
      checkObjects(out.objects, meta.objectDim, path, row);
    }
    if (meta.effectorDim !== undefined) {
      out.effector = lists<Float32Array>(batch, COL.effector, meta.effectorDim, path, row);
      checkFinite(out.effector, meta.effectorDim, COL.effector, path, row);
    }
    row += n;
    return out;
  }
  return { meta, batches: batches() };
}

/** Whole episodes, in file order (episodes may span record batches). */
export async function* readEpisodes(
  path: string,
  opts: ReadOptions = {},
): AsyncGenerator<EpisodeData & { meta: DatasetMeta }> {
  const { meta, batches } = await openFrames(path, opts);
  const [h, w, c] = meta.imageShape;
  const img = h * w * c;
  let parts: { b: FrameBatch; from: number; to: number }[] = [];
  const emit = (): EpisodeData & { meta: DatasetMeta } => {
    const length = parts.reduce((n, p) => n + p.to - p.from, 0);
    const join = <T extends Uint8Array | Float32Array>(
      pick: (b: FrameBatch) => T,
      per: number,
      make: (n: number) => T,
    ): T => {
      const out = make(length * per);
      let k = 0;
      for (const p of parts) {
        out.set(pick(p.b).subarray(p.from * per, p.to * per), k);
        k += (p.to - p.from) * per;
      }
      return out;
    };
    const head = parts[0]!;
    const ep: EpisodeData & { meta: DatasetMeta } = {
      meta,
      episodeIndex: head.b.episode[head.from]!,
      task: head.b.task[head.from]!,
      embodiment: head.b.embodiment[head.from]!,
      length,
      images: join(
        (b) => b.images,
        img,
        (n) => new Uint8Array(n),
      ),
      states: join(
        (b) => b.states,
        meta.stateDim,
        (n) => new Float32Array(n),
      ),
      actions: join(
        (b) => b.actions,
        meta.actionDim,
        (n) => new Float32Array(n),
      ),
    };
    if (meta.featureDim !== undefined)
      ep.features = join(
        (b) => b.features!,
        meta.featureDim,
        (n) => new Float32Array(n),
      );
    if (meta.objectDim !== undefined)
      ep.objects = join(
        (b) => b.objects!,
        meta.objectDim,
        (n) => new Float32Array(n),
      );
    if (meta.effectorDim !== undefined)
      ep.effector = join(
        (b) => b.effector!,
        meta.effectorDim,
        (n) => new Float32Array(n),
      );
    parts = [];
    return ep;
  };
  for await (const b of batches) {
    let from = 0;
    for (let i = 1; i <= b.length; i++) {
      if (i === b.length || b.episode[i] !== b.episode[i - 1]) {
        const continues =
          parts.length > 0 && parts[0]!.b.episode[parts[0]!.from] === b.episode[from];
        if (parts.length > 0 && !continues) yield emit();
        parts.push({ b, from, to: i });
        from = i;
      }
    }
  }
  if (parts.length > 0) yield emit();
}

/** Reads and validates a whole file. */
export async function validateFile(
  path: string,
  opts: ReadOptions = {},
): Promise<{ meta: DatasetMeta; rows: number; episodes: number }> {
  const { meta, batches } = await openFrames(path, opts);
  let rows = 0;
  const episodes = new Set<number>();
  for await (const b of batches) {
    rows += b.length;
    for (const e of b.episode) episodes.add(e);
  }
  return { meta, rows, episodes: episodes.size };
}
