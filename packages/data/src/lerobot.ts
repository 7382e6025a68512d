// LeRobot dataset import (codebase v2.0/v2.1 and v3.0) into selfalign frame files.
// Reads meta/info.json (fps, features, robot_type), the tasks (v2: meta/tasks.jsonl, v3:
// meta/tasks.parquet) and every parquet file under data/ (v2: one per episode, v3: many
// episodes per file). Images stored in the parquet (dtype "image": a struct of PNG bytes and a
// path) are decoded and optionally resized; video features (mp4, AV1 by default) are reported
// as unsupported. Rows are grouped into episodes and written atomically.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { decode } from 'fast-png';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { DataError } from './errors.js';
import type { DatasetMeta } from './schema.js';
import { FrameWriter } from './writer.js';

export interface LeRobotImportOptions {
  /** Image feature to import (default: the first image feature). */
  camera?: string;
  /** Resize frames to S x S (default: keep the dataset's size). */
  imageSize?: number;
  /** Embodiment name (default: info.json's robot_type, else "lerobot"). */
  embodiment?: string;
  /** What the actions are (default "demo"). */
  kind?: 'demo' | 'play';
  onProgress?: (episodes: number) => void;
}

export interface LeRobotImportResult {
  version: string;
  camera: string;
  episodes: number;
  rows: number;
  imageShape: [number, number, number];
}

interface Feature {
  dtype: string;
  shape: number[];
  names?: unknown;
}

const SUPPORTED = ['v2.0', 'v2.1', 'v3.0'];

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new DataError(
      (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'file not found (is this a LeRobot dataset folder?)'
        : (err as Error).message,
      path,
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DataError(`bad JSON (${(err as Error).message})`, path);
  }
}

async function listParquet(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else if (e.name.endsWith('.parquet')) out.push(join(d, e.name));
    }
  };
  await walk(dir);
  return out.sort();
}

async function readRows(path: string, columns?: string[]): Promise<Record<string, unknown>[]> {
  try {
    const file = await asyncBufferFromFile(path);
    return (await parquetReadObjects({
      file,
      ...(columns ? { columns } : {}),
      utf8: false,
    })) as Record<string, unknown>[];
  } catch (err) {
    throw new DataError(`cannot read parquet (${(err as Error).message})`, path);
  }
}

/** Task index -> task text. */
async function readTasks(root: string, version: string): Promise<Map<number, string>> {
  const tasks = new Map<number, string>();
  if (version.startsWith('v2')) {
    const path = join(root, 'meta', 'tasks.jsonl');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      throw new DataError('file not found', path);
    }
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      let row: { task_index?: unknown; task?: unknown };
      try {
        row = JSON.parse(line);
      } catch {
        throw new DataError(`line ${i + 1} is not JSON`, path);
      }
      if (typeof row.task !== 'string' || !Number.isInteger(row.task_index))
        throw new DataError(`line ${i + 1} lacks task_index/task`, path);
      tasks.set(row.task_index as number, row.task);
    });
    return tasks;
  }
  const path = join(root, 'meta', 'tasks.parquet');
  for (const row of await readRows(path)) {
    const index = Number(row['task_index']);
    const text = row['task'] ?? row['__index_level_0__'];
    if (!Number.isInteger(index) || typeof text !== 'string')
      throw new DataError(
        'rows need task_index and task (or a pandas index of task strings)',
        path,
      );
    tasks.set(index, text);
  }
  return tasks;
}

function toRgb(
  png: Uint8Array,
  file: string,
  row: number,
  column: string,
): { data: Uint8Array; width: number; height: number } {
  if (!(png[0] === 0x89 && png[1] === 0x50 && png[2] === 0x4e && png[3] === 0x47)) {
    throw new DataError(
      'image bytes are not PNG (only PNG images stored in the parquet are supported)',
      file,
      column,
      row,
    );
  }
  let img: ReturnType<typeof decode>;
  try {
    img = decode(png);
  } catch (err) {
    throw new DataError(`bad PNG (${(err as Error).message})`, file, column, row);
  }
  const { width, height, channels } = img;
  const src = img.data;
  const scale = img.depth === 16 ? 1 / 257 : 1;
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++)
      out[p * 3 + c] = Math.round(src[p * channels + (channels >= 3 ? c : 0)]! * scale);
  }
  return { data: out, width, height };
}

/** Bilinear uint8 resize (half-pixel centres). */
export function resizeRgb(
  src: Uint8Array,
  h: number,
  w: number,
  dh: number,
  dw: number,
): Uint8Array {
  if (h === dh && w === dw) return src;
  const out = new Uint8Array(dh * dw * 3);
  for (let y = 0; y < dh; y++) {
    const fy = Math.min(h - 1, Math.max(0, (y + 0.5) * (h / dh) - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(h - 1, y0 + 1);
    const wy = fy - y0;
    for (let x = 0; x < dw; x++) {
      const fx = Math.min(w - 1, Math.max(0, (x + 0.5) * (w / dw) - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(w - 1, x0 + 1);
      const wx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const p = (yy: number, xx: number) => src[(yy * w + xx) * 3 + c]!;
        out[(y * dw + x) * 3 + c] = Math.round(
          (p(y0, x0) * (1 - wx) + p(y0, x1) * wx) * (1 - wy) +
            (p(y1, x0) * (1 - wx) + p(y1, x1) * wx) * wy,
        );
      }
    }
  }
  return out;
}

const names = (f: Feature | undefined): string[] | undefined => {
  const n = f?.names;
  if (Array.isArray(n) && n.every((x) => typeof x === 'string')) return n as string[];
  if (n && typeof n === 'object') {
    const first = Object.values(n)[0];
    if (Array.isArray(first) && first.every((x) => typeof x === 'string')) return first as string[];
  }
  return undefined;
};

/** Imports the LeRobot dataset folder `root` into the frame file `outPath`. */
export async function importLeRobot(
  root: string,
  outPath: string,
  opts: LeRobotImportOptions = {},
): Promise<LeRobotImportResult> {
  try {
    if (!(await stat(root)).isDirectory()) throw new DataError('not a folder', root);
  } catch (err) {
    throw err instanceof DataError ? err : new DataError('folder not found', root);
  }
  const infoPath = join(root, 'meta', 'info.json');
  const info = (await readJson(infoPath)) as {
    codebase_version?: string;
    fps?: number;
    features?: Record<string, Feature>;
    robot_type?: string;
  };
  const version = info.codebase_version ?? '';
  if (!SUPPORTED.includes(version))
    throw new DataError(
      `codebase_version ${JSON.stringify(info.codebase_version)} is not supported (${SUPPORTED.join(', ')})`,
      infoPath,
    );
  const fps = info.fps;
  if (!(typeof fps === 'number' && fps > 0))
    throw new DataError('fps must be a positive number', infoPath);
  const features = info.features ?? {};
  const state = features['observation.state'];
  const action = features['action'];
  if (state?.shape?.length !== 1)
    throw new DataError('needs an "observation.state" feature of shape [n]', infoPath);
  if (action?.shape?.length !== 1)
    throw new DataError('needs an "action" feature of shape [n]', infoPath);
  const visual = Object.entries(features).filter(
    ([, f]) => f.dtype === 'image' || f.dtype === 'video',
  );
  const camera = opts.camera ?? visual.find(([, f]) => f.dtype === 'image')?.[0] ?? visual[0]?.[0];
  if (camera === undefined) throw new DataError('has no image feature to import', infoPath);
  const cam = features[camera];
  if (cam === undefined)
    throw new DataError(
      `no feature '${camera}'; image features: ${visual.map(([k]) => k).join(', ') || 'none'}`,
      infoPath,
    );
  if (cam.dtype === 'video') {
    const images = visual.filter(([, f]) => f.dtype === 'image').map(([k]) => k);
    throw new DataError(
      `'${camera}' is stored as video (mp4), which selfalign cannot decode; decode the videos to images first${images.length ? `, or import one of the image features: ${images.join(', ')}` : ''}`,
      infoPath,
    );
  }
  if (cam.dtype !== 'image')
    throw new DataError(`'${camera}' has dtype ${cam.dtype}, not image`, infoPath);
  const tasks = await readTasks(root, version);
  const files = await listParquet(join(root, 'data'));
  if (files.length === 0) throw new DataError('no parquet files under data/', root);
  const ds = state.shape[0]!;
  const da = action.shape[0]!;
  let imageShape: [number, number, number] | undefined;
  let writer: FrameWriter | undefined;
  let episodes = 0;
  const embodiment = opts.embodiment ?? info.robot_type ?? 'lerobot';
  try {
    for (const file of files) {
      const rows = await readRows(file, [
        'episode_index',
        'frame_index',
        'task_index',
        'observation.state',
        'action',
        camera,
      ]);
      // group consecutive rows of one episode
      let start = 0;
      while (start < rows.length) {
        const ep = Number(rows[start]!['episode_index']);
        let end = start;
        while (end < rows.length && Number(rows[end]!['episode_index']) === ep) end++;
        const n = end - start;
        const stateBuf = new Float32Array(n * ds);
        const actionBuf = new Float32Array(n * da);
        let imageBuf: Uint8Array | undefined;
        let task = '';
        for (let r = 0; r < n; r++) {
          const row = rows[start + r]!;
          const s = row['observation.state'] as number[] | undefined;
          const a = row['action'] as number[] | undefined;
          if (!Array.isArray(s) || s.length !== ds)
            throw new DataError(
              `expected ${ds} values, got ${Array.isArray(s) ? s.length : typeof s}`,
              file,
              'observation.state',
              start + r,
            );
          if (!Array.isArray(a) || a.length !== da)
            throw new DataError(
              `expected ${da} values, got ${Array.isArray(a) ? a.length : typeof a}`,
              file,
              'action',
              start + r,
            );
          if (Number(row['frame_index']) !== r) {
            throw new DataError(
              `frame_index ${row['frame_index']} where ${r} was expected (rows of episode ${ep} out of order)`,
              file,
              'frame_index',
              start + r,
            );
          }
          stateBuf.set(s, r * ds);
          actionBuf.set(a, r * da);
          const cell = row[camera] as { bytes?: Uint8Array } | undefined;
          if (!(cell?.bytes instanceof Uint8Array))
            throw new DataError(
              'no image bytes (a struct with "bytes" is expected)',
              file,
              camera,
              start + r,
            );
          const rgb = toRgb(cell.bytes, file, start + r, camera);
          const side = opts.imageSize;
          const frame = side ? resizeRgb(rgb.data, rgb.height, rgb.width, side, side) : rgb.data;
          const shape: [number, number, number] = side
            ? [side, side, 3]
            : [rgb.height, rgb.width, 3];
          if (imageShape === undefined) {
            imageShape = shape;
            const meta: DatasetMeta = {
              format: 'selfalign-frames/1',
              kind: opts.kind ?? 'demo',
              fps,
              imageShape,
              stateDim: ds,
              actionDim: da,
              source: { lerobot: version, dataset: basename(root), camera },
            };
            const sn = names(state);
            const an = names(action);
            if (sn) meta.stateNames = sn;
            if (an) meta.actionNames = an;
            writer = await FrameWriter.open(outPath, meta);
          } else if (shape[0] !== imageShape[0] || shape[1] !== imageShape[1]) {
            throw new DataError(
              `image is ${shape[0]}x${shape[1]}, earlier ones ${imageShape[0]}x${imageShape[1]} (pass imageSize to resize all)`,
              file,
              camera,
              start + r,
            );
          }
          imageBuf ??= new Uint8Array(n * frame.length);
          imageBuf.set(frame, r * frame.length);
          if (r === 0) {
            const ti = Number(row['task_index']);
            const t = tasks.get(ti);
            if (t === undefined)
              throw new DataError(
                `task_index ${ti} is not in the task list`,
                file,
                'task_index',
                start + r,
              );
            task = t;
          }
        }
        writer!.writeEpisode({
          episodeIndex: ep,
          task,
          embodiment,
          length: n,
          images: imageBuf!,
          states: stateBuf,
          actions: actionBuf,
        });
        episodes++;
        opts.onProgress?.(episodes);
        start = end;
      }
    }
    const { rows } = await writer!.close();
    return { version, camera, episodes, rows, imageShape: imageShape! };
  } catch (err) {
    await writer?.abort();
    throw err;
  }
}
