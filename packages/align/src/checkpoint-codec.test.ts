// Checkpoints refuse corrupt or edited files: every metadata field against its schema, and a
// checksum over metadata, names and tensor data. A property test flips, truncates and edits
// generated checkpoints: each case is a CheckpointError naming the file, never a crash, a hang
// or a silently accepted file.
import {
  CheckpointError,
  createOptimizer,
  decodeSafetensors,
  encodeSafetensors,
  initBackend,
  Rng,
  tf,
} from '@selfalign/core';
import { createPolicy, tiny } from '@selfalign/experts';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint } from './checkpoint-codec.js';

let good: Uint8Array;
beforeAll(async () => {
  await initBackend('wasm');
  const p = createPolicy(tiny, 4);
  good = await encodeCheckpoint(p, {
    step: 7,
    rng: new Rng(3),
    opt: createOptimizer({ lr: 1e-3 }),
    info: { slots: { 'src-0': 0, 'src-1': 1 } },
  });
  p.dispose();
});

/** The checkpoint with metadata edited (keeps the stored checksum unless `resum`). */
function edited(edit: (m: Record<string, string>) => void): Uint8Array {
  const d = decodeSafetensors(good);
  const m = { ...d.metadata };
  edit(m);
  return encodeSafetensors(
    [...d.tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }]),
    m,
  );
}

function refuse(bytes: Uint8Array, pattern: RegExp) {
  let err: unknown;
  try {
    decodeCheckpoint(bytes, 'c.safetensors').policy.dispose();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(CheckpointError);
  expect((err as Error).message).toMatch(/c\.safetensors/);
  expect((err as Error).message).toMatch(pattern);
}

describe('checkpoint validation', () => {
  it('a good file loads with no notice; one without a checksum loads with a notice', () => {
    const ok = decodeCheckpoint(good, 'c.safetensors');
    expect(ok.notices).toEqual([]);
    expect(ok.step).toBe(7);
    ok.policy.dispose();
    const foreign = decodeCheckpoint(
      edited((m) => {
        delete m['data_checksum'];
      }),
      'c.safetensors',
    );
    expect(foreign.notices[0]).toMatch(/no data checksum/);
    foreign.policy.dispose();
  });

  it("stores the state width; an old file without it takes its norm stats' width; a bad one is refused", async () => {
    const stats = { mean: [0, 0, 0], std: [1, 1, 1], q01: [-1, -1, -1], q99: [1, 1, 1] };
    const normStats = { state: stats, actions: stats };
    const p = createPolicy(tiny, { seed: 1, normStats, stateDims: 3 });
    const bytes = await encodeCheckpoint(p, {});
    p.dispose();
    const back = decodeCheckpoint(bytes, 'c.safetensors');
    expect(back.policy.stateDims).toBe(3);
    back.policy.dispose();
    const d = decodeSafetensors(bytes);
    const reencode = (edit: (m: Record<string, string>) => void) => {
      const m = { ...d.metadata };
      edit(m);
      delete m['data_checksum'];
      return encodeSafetensors(
        [...d.tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }]),
        m,
      );
    };
    const old = decodeCheckpoint(
      reencode((m) => delete m['state_dims']),
      'c.safetensors',
    );
    expect(old.policy.stateDims).toBe(3);
    old.policy.dispose();
    refuse(
      reencode((m) => (m['state_dims'] = '5')),
      /state_dims "5" is not a state width of this policy \(1\.\.\d+, 3 by its norm stats\)/,
    );
    refuse(
      reencode((m) => (m['state_dims'] = 'x')),
      /state_dims "x"/,
    );
  });

  it('each metadata field is checked against its schema', () => {
    const without = (f: (m: Record<string, string>) => void) =>
      edited((m) => {
        f(m);
        delete m['data_checksum'];
      });
    refuse(
      without((m) => (m['norm_mode'] = 'banana')),
      /'norm_mode' must be zscore or quantile/,
    );
    refuse(
      without((m) => (m['step'] = 'abc')),
      /'step' must be a whole number/,
    );
    refuse(
      without((m) => (m['opt_step'] = '-3')),
      /'opt_step' must be a whole number/,
    );
    refuse(
      without((m) => (m['info'] = '{"slots": {"src-0": 99}}')),
      /maps 'src-0' to 99, not a slot/,
    );
    refuse(
      without((m) => (m['info'] = '[1,2]')),
      /'info' must be a JSON object/,
    );
    refuse(
      without((m) => (m['rng'] = '"seed"')),
      /'rng' is not a generator state/,
    );
    refuse(
      without((m) => (m['fingerprint'] = 'x')),
      /fingerprint/,
    );
    // with the checksum kept, any edit is caught by it
    refuse(
      edited((m) => (m['step'] = '8')),
      /do not match the checksum/,
    );
  });

  it('property: 1,200 flipped, truncated or edited files are each a CheckpointError', () => {
    const rng = new Rng(2026);
    const header = 8 + Number(new DataView(good.buffer, good.byteOffset).getBigUint64(0, true));
    let cases = 0;
    const t0 = performance.now();
    for (let i = 0; i < 1200; i++) {
      const kind = i % 4;
      let bytes: Uint8Array;
      if (kind === 0) {
        // one flipped byte in the tensor data
        bytes = good.slice();
        const at = header + rng.int(good.length - header);
        bytes[at] = bytes[at]! ^ (1 + rng.int(255));
      } else if (kind === 1) {
        // one flipped byte in the header
        bytes = good.slice();
        const at = 8 + rng.int(header - 8);
        bytes[at] = bytes[at]! ^ (1 + rng.int(255));
      } else if (kind === 2) {
        bytes = good.slice(0, rng.int(good.length));
      } else {
        // a metadata value replaced by random text (checksum kept)
        const keys = Object.keys(decodeSafetensors(good).metadata).filter(
          (k) => k !== 'data_checksum',
        );
        const key = keys[rng.int(keys.length)]!;
        const junk = String.fromCharCode(
          ...Array.from({ length: 1 + rng.int(12) }, () => 32 + rng.int(90)),
        );
        bytes = edited((m) => (m[key] = junk));
      }
      let err: unknown;
      try {
        decodeCheckpoint(bytes, 'c.safetensors').policy.dispose();
      } catch (e) {
        err = e;
      }
      expect(err, `case ${i} (kind ${kind})`).toBeInstanceOf(CheckpointError);
      cases++;
    }
    expect(cases).toBe(1200);
    expect(performance.now() - t0).toBeLessThan(120_000);
    expect(tf.memory().numTensors).toBeLessThan(10_000);
  });
});

describe('older checkpoints', () => {
  it('a tensor the policy no longer has (vlm/final_norm, removed as dead) is ignored', () => {
    const d = decodeSafetensors(good);
    const m = { ...d.metadata };
    delete m['data_checksum'];
    const tensors = [...d.tensors].map(
      ([k, t]) =>
        [k, { shape: t.shape, data: t.data as Float32Array }] as [
          string,
          { shape: number[]; data: Float32Array },
        ],
    );
    tensors.push([
      'params/vlm/final_norm',
      { shape: [tiny.vlm.width], data: new Float32Array(tiny.vlm.width) },
    ]);
    const old = decodeCheckpoint(encodeSafetensors(tensors, m), 'old.safetensors');
    expect(old.policy.params.has('vlm/final_norm')).toBe(false);
    old.policy.dispose();
  });
});

describe('the moving average of the weights', () => {
  it('is the policy unless raw is asked for; a bad entry is refused like a bad parameter', async () => {
    const p = createPolicy(tiny, 4);
    const [path, w] = p.params.select('action/**')[0]!;
    const shifted = tf.add(w, 1);
    const bytes = await encodeCheckpoint(p, { extra: [[`ema/${path}`, shifted]] });
    const avg = decodeCheckpoint(bytes, 'c.safetensors');
    const raw = decodeCheckpoint(bytes, 'c.safetensors', { weights: 'raw' });
    expect([avg.weights, raw.weights]).toEqual(['ema', 'raw']);
    expect(avg.policy.params.get(path).dataSync()).toEqual(shifted.dataSync());
    expect(raw.policy.params.get(path).dataSync()).toEqual(w.dataSync());
    // parameters without an average keep their raw values
    const [other, o] = p.params.select('vlm/**')[0]!;
    expect(avg.policy.params.get(other).dataSync()).toEqual(o.dataSync());
    const d = decodeSafetensors(bytes);
    const m = { ...d.metadata };
    delete m['data_checksum'];
    const bad: [string, { shape: number[]; data: Float32Array }][] = [...d.tensors].map(
      ([k, t]) => [
        k,
        k === `extra/ema/${path}`
          ? { shape: [t.data.length], data: new Float32Array(t.data.length).fill(Number.NaN) }
          : { shape: t.shape, data: t.data as Float32Array },
      ],
    );
    refuse(encodeSafetensors(bad, m), /shape|NaN/);
    for (const l of [avg, raw]) l.policy.dispose();
    tf.dispose(shifted);
    p.dispose();
  });
});
