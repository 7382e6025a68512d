import {
  CheckpointError,
  encodeSafetensors,
  initBackend,
  ParamTree,
  Rng,
  tf,
} from '@selfalign/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeAdapter, fingerprint, loadAdapter, TTT_FAST_WEIGHTS } from './adapter.js';
import { TttLinear } from './ttt-linear.js';

beforeAll(() => initBackend('wasm'));

function model(width = 8, seed = 1) {
  const tree = new ParamTree();
  const rng = new Rng(seed);
  const cfg = { width, heads: 2, slots: 3, inner: 'dual' as const, baseLr: 1, alpha: 0.1 };
  const modules = [0, 1].map((l) => new TttLinear(tree, `ttt/${l}`, cfg, rng));
  return { tree, modules, fp: fingerprint({ cfg, layers: 2 }) };
}
const slotOf = (v: tf.Tensor, s: number) => Array.from(tf.slice(v, [s], [1]).dataSync());

describe('adapter files', () => {
  it('the TTT filter selects W1 and b1 and nothing else', () => {
    const { tree } = model();
    expect(tree.select(TTT_FAST_WEIGHTS).map(([p]) => p)).toEqual([
      'ttt/0/W1',
      'ttt/0/b1',
      'ttt/1/W1',
      'ttt/1/b1',
    ]);
    tree.dispose();
  });

  it('fingerprints ignore key order and see every value', () => {
    expect(fingerprint({ a: 1, b: [1, 2] })).toBe(fingerprint({ b: [1, 2], a: 1 }));
    expect(fingerprint({ a: 1, b: [1, 2] })).not.toBe(fingerprint({ a: 1, b: [1, 3] }));
  });

  it('round-trips one slot into another slot of another instance; other slots untouched', async () => {
    const a = model(8, 1);
    const b = model(8, 2);
    const bytes = await encodeAdapter(a.modules, 2, {
      fingerprint: a.fp,
      slotName: 'arm-perm',
      stats: { loss: 0.5 },
    });
    expect(bytes.length).toBeLessThan(2000);
    const slot0 = slotOf(b.tree.get('ttt/1/W1'), 0);
    const info = loadAdapter(b.modules, bytes, 1, b.fp, 'arm.safetensors');
    expect(info.slotName).toBe('arm-perm');
    expect(info.stats).toEqual({ loss: 0.5 });
    for (const p of ['ttt/0/W1', 'ttt/1/W1', 'ttt/0/b1']) {
      expect(slotOf(b.tree.get(p), 1)).toEqual(slotOf(a.tree.get(p), 2));
    }
    expect(slotOf(b.tree.get('ttt/1/W1'), 0)).toEqual(slot0);
    a.tree.dispose();
    b.tree.dispose();
  });

  it('a mismatched, foreign or corrupt adapter is a clear error and changes nothing', async () => {
    const a = model(8);
    const wide = model(16);
    const bytes = await encodeAdapter(a.modules, 0, {
      fingerprint: a.fp,
      slotName: 's',
      stats: {},
    });
    const before = Array.from(wide.tree.get('ttt/0/W1').dataSync());
    expect(() => loadAdapter(wide.modules, bytes, 0, wide.fp, 'a.safetensors')).toThrow(
      /made for another model/,
    );
    expect(() => loadAdapter(wide.modules, bytes, 0, a.fp, 'a.safetensors')).toThrow(
      "a.safetensors [tensor 'ttt/0/W1']: shape [2,4,4] in the adapter, [2,8,8] in the model",
    );
    expect(Array.from(wide.tree.get('ttt/0/W1').dataSync())).toEqual(before);
    expect(() =>
      loadAdapter(a.modules, bytes.subarray(0, bytes.length - 10), 0, a.fp, 'cut.safetensors'),
    ).toThrow(CheckpointError);
    const plain = encodeSafetensors([['x', { shape: [1], data: new Float32Array([1]) }]]);
    expect(() => loadAdapter(a.modules, plain, 0, a.fp, 'p.safetensors')).toThrow(
      /not a selfalign adapter/,
    );
    expect(() => loadAdapter(a.modules, bytes, 7, a.fp)).toThrow(/slot 7 is out of range/);
    a.tree.dispose();
    wide.tree.dispose();
  });
});
