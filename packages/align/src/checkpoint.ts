// Checkpoint files: the bytes of checkpoint-codec.ts, written atomically and read with a clear
// error for a missing or corrupt file.
import { readSafetensorsFile, writeFileAtomic } from '@selfalign/core/node';
import type { Policy } from '@selfalign/experts';
import {
  type CheckpointDtype,
  decodeCheckpoint,
  encodeCheckpoint,
  type LoadedCheckpoint,
  type TrainingState,
  type WeightsChoice,
} from './checkpoint-codec.js';

export {
  CHECKPOINT_FORMAT,
  type CheckpointDtype,
  decodeCheckpoint,
  encodeCheckpoint,
  type LoadedCheckpoint,
  restoreOptimizer,
  restoreParams,
  type TrainingState,
} from './checkpoint-codec.js';

/** Writes policy + training state to `path` atomically. */
export async function saveCheckpoint(
  path: string,
  policy: Policy,
  state: TrainingState = {},
  opts: { dtype?: CheckpointDtype } = {},
): Promise<void> {
  await writeFileAtomic(path, await encodeCheckpoint(policy, state, opts));
}

/**
 * Reads a checkpoint into a new policy (and the training state to resume from). The policy holds
 * the file's moving average of the weights where it has one, unless `weights` is `raw`.
 */
export async function loadCheckpoint(
  path: string,
  opts: { weights?: WeightsChoice } = {},
): Promise<LoadedCheckpoint> {
  return decodeCheckpoint(await readSafetensorsFile(path), path, opts);
}
