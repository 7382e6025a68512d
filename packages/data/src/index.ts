// @selfalign/data: robot data in and out of the model.
// Everything of ./browser.ts, plus what needs Node (files, onnxruntime-node).
export * from './browser.js';
export { Crc32, crc32, decodeFooter, encodeFooter, FOOTER_BYTES, FOOTER_TAG } from './checksum.js';
export { defaultEncoderModel } from './encoder.js';
export { DataError } from './errors.js';
export {
  addFeatures,
  defaultFeatureExtractor,
  type FeatureExtractor,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type OnnxExtractorOptions,
  OnnxFeatureExtractor,
  preprocess,
} from './features.js';
export {
  importLeRobot,
  type LeRobotImportOptions,
  type LeRobotImportResult,
  resizeRgb,
} from './lerobot.js';
export {
  type FrameBatch,
  openFrames,
  type ReadOptions,
  readEpisodes,
  validateFile,
  verifyChecksum,
} from './reader.js';
export { type SampleStreamOptions, sampleStream } from './sample-stream.js';
export { arrowSchema, COL, checkSchema, type DatasetMeta, readMeta } from './schema.js';
export { computeNormStats, loadNormStats, saveNormStats } from './stats.js';
export {
  buildBatch,
  type EpisodeData,
  episodeColumns,
  type FrameColumns,
  FrameWriter,
  writeEpisodes,
} from './writer.js';
