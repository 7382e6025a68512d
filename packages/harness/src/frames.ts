// Simulator episodes as frame data (what frame files hold), with the robot's dimensions taken
// from its embodiment: nothing here assumes a 3-link arm.
import type { DatasetMeta, EpisodeData } from '@selfalign/data/browser';
import type { Embodiment, Episode } from '@selfalign/sim';

/** Proprioceptive state (angles, velocities, commands: 3 per joint) and action sizes of a robot. */
export function robotDims(e: Pick<Embodiment, 'links'>): { stateDim: number; actionDim: number } {
  const n = e.links.length;
  return { stateDim: 3 * n, actionDim: n };
}

/** Frame-file metadata for episodes of `e` at `imageSize` px. */
export function framesMeta(
  e: Pick<Embodiment, 'links'>,
  kind: DatasetMeta['kind'],
  imageSize: number,
  featureDim?: number,
  featureModel?: string,
): DatasetMeta {
  return {
    format: 'selfalign-frames/1',
    kind,
    fps: 10,
    imageShape: [imageSize, imageSize, 3],
    ...robotDims(e),
    ...(featureDim !== undefined ? { featureDim } : {}),
    ...(featureModel !== undefined ? { featureModel } : {}),
  };
}

/** A recorded episode as frame data; `features` are the next-observation features per frame. */
export function episodeData(
  ep: Episode,
  episodeIndex: number,
  features?: Float32Array,
): EpisodeData {
  return {
    episodeIndex,
    task: ep.instruction,
    embodiment: ep.embodiment,
    length: ep.length,
    images: ep.frames,
    states: ep.states,
    actions: ep.actions,
    objects: ep.objects,
    ...(ep.effector ? { effector: ep.effector } : {}),
    ...(features ? { features } : {}),
  };
}
