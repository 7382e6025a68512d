import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { encodeParams, loadParams } from './checkpoint.js';
import { readSafetensorsFile, writeFileAtomic } from './node.js';
import { ParamTree } from './params.js';
import {
  CheckpointError,
  decodeSafetensors,
  encodeSafetensors,
  f16ToF32,
  f32ToF16,
  roundToF16,
} from './safetensors.js';
import { tf } from './tf.js';

beforeAll(() => initBackend('wasm'));

const sample = () =>
  encodeSafetensors(
    [
      ['w', { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }],
      ['b', { shape: [3], data: new Float32Array([-1, 0.5, 1e-8]) }],
    ],
    { format: 'pt', note: 'hello' },
  );

/** A file with a hand-written header and data. */
function raw(header: unknown, data: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('safetensors', () => {
  it('round-trips tensors and metadata with an 8-byte aligned data section', () => {
    const bytes = sample();
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLen) % 8).toBe(0);
    const d = decodeSafetensors(bytes);
    expect(d.metadata).toEqual({ format: 'pt', note: 'hello' });
    expect(d.tensors.get('w')).toEqual({
      shape: [2, 3],
      data: new Float32Array([1, 2, 3, 4, 5, 6]),
    });
    expect(Array.from(d.tensors.get('b')!.data)).toEqual(
      Array.from(new Float32Array([-1, 0.5, 1e-8])),
    );
  });

  it('reads F16 and BF16 into float32', () => {
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555, 0x0001]).buffer); // 1, -2, ~1/3, tiny
    const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc0a0]).buffer); // 1, -5
    const data = new Uint8Array([...f16, ...bf16]);
    const d = decodeSafetensors(
      raw(
        {
          h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] },
          g: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] },
        },
        data,
      ),
    );
    const h = d.tensors.get('h')!.data;
    expect(h[0]).toBe(1);
    expect(h[1]).toBe(-2);
    expect(h[2]).toBeCloseTo(1 / 3, 3);
    expect(h[3]).toBeCloseTo(2 ** -24, 30);
    expect(Array.from(d.tensors.get('g')!.data)).toEqual([1, -5]);
  });

  it('writes F16 (half the bytes) that reads back rounded to nearest even', () => {
    const values = [1, -2, 65504, 0.1, 1 / 3, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1e-9, 0, -0];
    const t = { shape: [values.length], data: new Float32Array(values) };
    const f32 = encodeSafetensors([['x', t]]);
    const f16 = encodeSafetensors([['x', t]], {}, { dtype: 'F16' });
    expect(f32.length - f16.length).toBe(2 * values.length);
    const back = Array.from(decodeSafetensors(f16).tensors.get('x')!.data);
    // exact halves stay; 0.1 and 1/3 take the nearest half; 2^-25 is the tie between 0 and the
    // smallest subnormal (even: 0); 3 * 2^-26 rounds up to it; 1e-9 underflows to 0
    expect(back).toEqual([
      1,
      -2,
      65504,
      0.0999755859375,
      0.333251953125,
      2 ** -24,
      0,
      2 ** -24,
      0,
      0,
      -0,
    ]);
    // ties between two normal halves go to the even mantissa: 1 + 2^-11 -> 1, 1 + 3 * 2^-11 -> 1 + 2^-9
    expect(roundToF16(1 + 2 ** -11)).toBe(1);
    expect(roundToF16(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(f32ToF16(Number.NaN) & 0x7c00).toBe(0x7c00);
    expect(f16ToF32(f32ToF16(Number.NEGATIVE_INFINITY))).toBe(Number.NEGATIVE_INFINITY);
  });

  it('refuses to write a value beyond half range as F16', () => {
    const t = { shape: [2], data: new Float32Array([1, 70000]) };
    expect(() => encodeSafetensors([['w', t]], {}, { dtype: 'F16' })).toThrow(
      /70000 is beyond the range of a half float/,
    );
    expect(roundToF16(65519)).toBe(65504); // still rounds down to the largest half
    expect(() => f32ToF16(65520)).toThrow(RangeError);
  });

  const cases: [string, () => Uint8Array, RegExp, string | undefined][] = [
    ['truncated before the header length', () => sample().subarray(0, 5), /truncated/, undefined],
    [
      'truncated inside the data',
      () => sample().subarray(0, sample().length - 4),
      /tensor 'b'.*out of range/,
      'b',
    ],
    [
      'a header larger than the file',
      () => raw('{}', new Uint8Array()).map((v, i) => (i === 0 ? 200 : v)),
      /larger than the file/,
      undefined,
    ],
    ['bad JSON', () => raw('{"w": {', new Uint8Array(8)), /bad JSON/, undefined],
    [
      'offsets out of range',
      () => raw({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 16] } }, new Uint8Array(8)),
      /out of range/,
      'w',
    ],
    [
      'a dtype/shape mismatch',
      () => raw({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /dtype\/shape mismatch/,
      'w',
    ],
    [
      'an unknown dtype',
      () => raw({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /unsupported dtype/,
      'w',
    ],
    [
      'a bad shape',
      () => raw({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(8)),
      /bad shape/,
      'w',
    ],
  ];
  for (const [what, make, message, tensor] of cases) {
    it(`names the file${tensor ? ' and tensor' : ''} for ${what}`, () => {
      let err: unknown;
      try {
        decodeSafetensors(make(), 'model.safetensors');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CheckpointError);
      expect((err as CheckpointError).message).toMatch(/^model\.safetensors/);
      expect((err as CheckpointError).message).toMatch(message);
      expect((err as CheckpointError).tensor).toBe(tensor);
    });
  }
});

describe('parameter checkpoints', () => {
  function tree(v = 0) {
    const t = new ParamTree();
    t.add('enc/w', tf.fill([2, 2], v));
    t.add('ttt/0/W1', tf.fill([3], v));
    return t;
  }

  it('atomic file round trip of a parameter tree; no temporary file is left', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'selfalign-core-'));
    const path = join(dir, 'sub', 'ckpt.safetensors');
    const a = tree(3);
    await writeFileAtomic(path, await encodeParams(a, { step: '12' }));
    await writeFileAtomic(path, await encodeParams(a, { step: '13' }));
    expect(await readdir(join(dir, 'sub'))).toEqual(['ckpt.safetensors']);
    const b = tree(0);
    const meta = loadParams(b, await readSafetensorsFile(path), { file: path });
    expect(meta).toEqual({ step: '13' });
    expect(Array.from(b.get('enc/w').dataSync())).toEqual([3, 3, 3, 3]);
    a.dispose();
    b.dispose();
  });

  it('a mismatched or corrupt checkpoint is an error and leaves the model untouched', async () => {
    const other = new ParamTree();
    other.add('enc/w', tf.fill([2, 3], 1));
    other.add('ttt/0/W1', tf.fill([3], 1));
    const b = tree(0);
    expect(() => loadParams(b, decodeSafetensors(new Uint8Array(0), 'x'))).toThrow(CheckpointError);
    const otherBytes = await encodeParams(other);
    expect(() => loadParams(b, otherBytes, { file: 'o.safetensors' })).toThrow(
      "o.safetensors [tensor 'enc/w']: shape [2,3] in the file, [2,2] in the model",
    );
    expect(Array.from(b.get('enc/w').dataSync())).toEqual([0, 0, 0, 0]);
    await expect(readSafetensorsFile('/nonexistent/model.safetensors')).rejects.toThrow(
      '/nonexistent/model.safetensors: file not found',
    );
    const dir = await mkdtemp(join(tmpdir(), 'selfalign-core-'));
    await writeFile(join(dir, 'bad.safetensors'), 'not a checkpoint at all');
    await expect(readSafetensorsFile(join(dir, 'bad.safetensors'))).rejects.toThrow(
      /larger than the file/,
    );
    expect((await readFile(join(dir, 'bad.safetensors'), 'utf8')).length).toBeGreaterThan(0);
    other.dispose();
    b.dispose();
  });
});
