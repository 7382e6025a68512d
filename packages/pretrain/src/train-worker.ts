// One data-parallel gradient worker (data-parallel.ts): a replica of the policy on its own
// wasm backend. Per step it reads the published parameters, computes the loss and gradients of
// its row shard and writes the gradients into its SharedArrayBuffer.
import { parentPort, workerData } from 'node:worker_threads';
import { decodeCheckpoint } from '@selfalign/align';
import { initBackend, type KernelSet, tf } from '@selfalign/core';
import type { LossDenominators } from '@selfalign/experts';
import { checksum, type HostFields, type ShardLossConfig, shardLoss } from './data-parallel.js';

interface Init {
  checkpoint: Uint8Array;
  paths: string[];
  params: Float32Array;
  grad: Float32Array;
  kernels: KernelSet;
}

const port = parentPort!;
const init = workerData as Init;

try {
  await initBackend('wasm', { kernels: init.kernels });
  const { policy } = decodeCheckpoint(init.checkpoint, '<main thread policy>');
  const vars = init.paths.map((p) => policy.params.get(p) as tf.Variable);

  const readParams = () => {
    let o = 0;
    for (const v of vars) {
      v.assign(tf.tensor(init.params.subarray(o, o + v.size), v.shape));
      o += v.size;
    }
  };

  port.on(
    'message',
    (m: {
      type: string;
      id: number;
      fields: HostFields;
      den: LossDenominators;
      share: number;
      cfg: ShardLossConfig;
    }) => {
      try {
        if (m.type === 'checksum') {
          tf.tidy(readParams);
          port.postMessage({
            type: 'done',
            id: m.id,
            loss: checksum(vars.map((v) => v.dataSync() as Float32Array)),
            terms: {},
          });
          return;
        }
        if (m.type === 'memory') {
          const n = tf.memory().numTensors;
          port.postMessage({ type: 'done', id: m.id, loss: n, terms: {} });
          return;
        }
        const t0 = performance.now();
        tf.tidy(readParams);
        const t1 = performance.now();
        const terms: Record<string, number> = {};
        const { value, grads } = tf.variableGrads(
          () => shardLoss(policy, m.fields, m.den, m.share, m.cfg, terms),
          vars,
        );
        const loss = value.dataSync()[0]!;
        const t2 = performance.now();
        let o = 0;
        for (const v of vars) {
          const g = grads[v.name];
          if (g === undefined) init.grad.fill(0, o, o + v.size);
          else init.grad.set(g.dataSync() as Float32Array, o);
          o += v.size;
        }
        value.dispose();
        tf.dispose(Object.values(grads));
        const timing = `read ${(t1 - t0).toFixed(0)}, shard ${(t2 - t1).toFixed(0)}, write ${(performance.now() - t2).toFixed(0)}`;
        port.postMessage({ type: 'done', id: m.id, loss, terms, timing });
      } catch (err) {
        port.postMessage({ type: 'error', id: m.id, error: (err as Error).message });
      }
    },
  );
  port.postMessage({ type: 'ready' });
} catch (err) {
  port.postMessage({ type: 'error', error: (err as Error).message });
}
