// The Arrow schema of selfalign's robot data: one row per frame (DESIGN 5).
//   episode_index int32, frame_index int32, timestamp float32, task utf8, embodiment utf8,
//   observation.image  fixed_size_list<uint8>[H*W*3]
//   observation.state  fixed_size_list<float32>[Ds]
//   action             fixed_size_list<float32>[A]
//   observation.features fixed_size_list<float32>[F]   (optional, added by addFeatures)
//   observation.objects  fixed_size_list<float32>[2G]  (optional: image positions (u, v) in
//     [-1, 1] of G task objects, NaN where absent; a pretraining label, never a policy input)
//   observation.effector fixed_size_list<float32>[E] (optional: where the end effector was, in
//     the world frame, e.g. a tracker's reading; retarget's body pick reads it, never the policy)
// Schema metadata `selfalign` holds a JSON DatasetMeta (shapes, fps, names, kind).
import { Field, FixedSizeList, Float32, Int32, Schema, Uint8, Utf8 } from 'apache-arrow';
import { DataError } from './errors.js';

export const COL = Object.freeze({
  episode: 'episode_index',
  frame: 'frame_index',
  timestamp: 'timestamp',
  task: 'task',
  embodiment: 'embodiment',
  image: 'observation.image',
  state: 'observation.state',
  action: 'action',
  features: 'observation.features',
  objects: 'observation.objects',
  effector: 'observation.effector',
});

export interface DatasetMeta {
  format: 'selfalign-frames/1';
  /** demo: expert actions (all losses); play: exploration (alignment losses only). */
  kind: 'demo' | 'play';
  fps: number;
  /** [H, W, 3] */
  imageShape: [number, number, number];
  stateDim: number;
  actionDim: number;
  /** Present once features were added. */
  featureDim?: number;
  stateNames?: string[];
  actionNames?: string[];
  /** Present when the file has object image positions: 2 values (u, v) per object slot. */
  objectDim?: number;
  /** Present when the file has the end effector's position per frame (2 for the planar arm). */
  effectorDim?: number;
  /** Where the features came from (model name / file). */
  featureModel?: string;
  /** Free-form provenance (simulator, LeRobot repo, ...). */
  source?: Record<string, unknown>;
}

const list = (n: number, child: Float32 | Uint8) =>
  new FixedSizeList(n, new Field('item', child, false));

export function arrowSchema(meta: DatasetMeta): Schema {
  const [h, w, c] = meta.imageShape;
  const fields = [
    new Field(COL.episode, new Int32(), false),
    new Field(COL.frame, new Int32(), false),
    new Field(COL.timestamp, new Float32(), false),
    new Field(COL.task, new Utf8(), false),
    new Field(COL.embodiment, new Utf8(), false),
    new Field(COL.image, list(h * w * c, new Uint8()), false),
    new Field(COL.state, list(meta.stateDim, new Float32()), false),
    new Field(COL.action, list(meta.actionDim, new Float32()), false),
  ];
  if (meta.featureDim !== undefined)
    fields.push(new Field(COL.features, list(meta.featureDim, new Float32()), false));
  if (meta.objectDim !== undefined)
    fields.push(new Field(COL.objects, list(meta.objectDim, new Float32()), false));
  if (meta.effectorDim !== undefined)
    fields.push(new Field(COL.effector, list(meta.effectorDim, new Float32()), false));
  return new Schema(fields, new Map([['selfalign', JSON.stringify(meta)]]));
}

const positiveInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;

/** Reads and checks the DatasetMeta of a schema. */
export function readMeta(schema: Schema, file: string): DatasetMeta {
  const raw = schema.metadata.get('selfalign');
  if (raw === undefined)
    throw new DataError('no "selfalign" schema metadata: not a selfalign data file', file);
  let meta: DatasetMeta;
  try {
    meta = JSON.parse(raw);
  } catch (err) {
    throw new DataError(`schema metadata is not JSON (${(err as Error).message})`, file);
  }
  const bad = (what: string) => new DataError(`schema metadata: ${what}`, file);
  if (meta === null || typeof meta !== 'object') throw bad('not an object');
  if (meta.format !== 'selfalign-frames/1')
    throw bad(`unknown format ${JSON.stringify(meta.format)}`);
  if (meta.kind !== 'demo' && meta.kind !== 'play')
    throw bad(`kind must be "demo" or "play", got ${JSON.stringify(meta.kind)}`);
  if (!(typeof meta.fps === 'number' && meta.fps > 0)) throw bad('fps must be a positive number');
  if (
    !Array.isArray(meta.imageShape) ||
    meta.imageShape.length !== 3 ||
    !meta.imageShape.every(positiveInt) ||
    meta.imageShape[2] !== 3
  ) {
    throw bad(`imageShape must be [H, W, 3], got ${JSON.stringify(meta.imageShape)}`);
  }
  if (!positiveInt(meta.stateDim)) throw bad('stateDim must be a positive integer');
  if (!positiveInt(meta.actionDim)) throw bad('actionDim must be a positive integer');
  if (meta.featureDim !== undefined && !positiveInt(meta.featureDim))
    throw bad('featureDim must be a positive integer');
  if (meta.objectDim !== undefined && !(positiveInt(meta.objectDim) && meta.objectDim % 2 === 0))
    throw bad('objectDim must be a positive even integer');
  if (meta.effectorDim !== undefined && !positiveInt(meta.effectorDim))
    throw bad('effectorDim must be a positive integer');
  return meta;
}

/** @throws DataError naming the column when the schema does not match the metadata. */
export function checkSchema(schema: Schema, meta: DatasetMeta, file: string): void {
  const want = arrowSchema(meta);
  for (const f of want.fields) {
    const got = schema.fields.find((g) => g.name === f.name);
    if (got === undefined) throw new DataError('missing column', file, f.name);
    if (String(got.type) !== String(f.type)) {
      const sizeOf = (t: unknown) => (t instanceof FixedSizeList ? t.listSize : undefined);
      const ws = sizeOf(f.type);
      const gs = sizeOf(got.type);
      if (
        ws !== undefined &&
        gs !== undefined &&
        got.type.children[0]?.type.toString() === f.type.children[0]?.type.toString()
      ) {
        const what = f.name === COL.image ? 'image size mismatch' : 'wrong list size';
        throw new DataError(
          `${what}: ${gs} values per row, the metadata implies ${ws}`,
          file,
          f.name,
        );
      }
      throw new DataError(`wrong type ${got.type}, expected ${f.type}`, file, f.name);
    }
  }
  const extra = schema.fields.find((g) => g.name === COL.features);
  if (extra !== undefined && meta.featureDim === undefined) {
    throw new DataError('column present but the metadata has no featureDim', file, COL.features);
  }
  if (schema.fields.some((g) => g.name === COL.objects) && meta.objectDim === undefined)
    throw new DataError('column present but the metadata has no objectDim', file, COL.objects);
  if (schema.fields.some((g) => g.name === COL.effector) && meta.effectorDim === undefined)
    throw new DataError('column present but the metadata has no effectorDim', file, COL.effector);
}

/**
 * Object image positions are in image half-widths ([-1, 1] on the image; objects off the image
 * lie outside): anything beyond ±OBJECT_LIMIT is refused as corrupt. NaN marks an absent object.
 */
export const OBJECT_LIMIT = 10;
