// Samples straight from frame files, shuffled across episodes and files (Node: reads files).
import { type ReadOptions, readEpisodes } from './reader.js';
import { episodeSamples, type Sample, shuffled } from './window.js';

export interface SampleStreamOptions extends ReadOptions {
  /** Ha */
  horizon: number;
  /** Shuffle buffer size in samples (0 = file order). */
  shuffle?: number;
  seed?: number;
  /** Passes over the files (default 1). */
  epochs?: number;
}

/** Samples from frame files, shuffled across episodes and files. */
export async function* sampleStream(
  paths: readonly string[],
  opts: SampleStreamOptions,
): AsyncGenerator<Sample> {
  async function* ordered(): AsyncGenerator<Sample> {
    for (let epoch = 0; epoch < (opts.epochs ?? 1); epoch++) {
      for (const path of paths) {
        for await (const ep of readEpisodes(path, opts))
          yield* episodeSamples(ep, ep.meta, opts.horizon);
      }
    }
  }
  yield* opts.shuffle ? shuffled(ordered(), opts.shuffle, opts.seed ?? 0) : ordered();
}
