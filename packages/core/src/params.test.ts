import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { disposeSnapshot, globToRegExp, ParamTree } from './params.js';
import { tf } from './tf.js';

beforeAll(() => initBackend('wasm'));

function tree() {
  const t = new ParamTree();
  t.add('vlm/layers/0/attn/q', tf.ones([2, 2]));
  t.add('action/layers/0/mlp/gate', tf.ones([2, 3]));
  t.add('ttt/0/W1', tf.zeros([2, 1, 2, 2]));
  t.add('ttt/0/b1', tf.zeros([2, 1, 1, 2]));
  t.add('ttt/0/q', tf.zeros([2, 2]));
  return t;
}

describe('ParamTree', () => {
  it('globs select by path segments', () => {
    expect(globToRegExp('ttt/*/W1').test('ttt/12/W1')).toBe(true);
    expect(globToRegExp('ttt/*/W1').test('ttt/1/2/W1')).toBe(false);
    expect(globToRegExp('**/W1').test('ttt/1/2/W1')).toBe(true);
    const t = tree();
    expect(t.select(['ttt/*/W1', 'ttt/*/b1']).map(([p]) => p)).toEqual(['ttt/0/W1', 'ttt/0/b1']);
    expect(t.select(/^vlm\//).map(([p]) => p)).toEqual(['vlm/layers/0/attn/q']);
    expect(t.select((p) => p.includes('mlp')).length).toBe(1);
    t.dispose();
  });

  it('counts scalars, in total and by filter', () => {
    const t = tree();
    expect(t.count()).toBe(4 + 6 + 8 + 4 + 4);
    expect(t.count('ttt/**')).toBe(16);
    t.dispose();
  });

  it('snapshot/restore round-trips values and checks shapes', () => {
    const t = tree();
    const snap = t.snapshot('ttt/**');
    t.get('ttt/0/W1').assign(tf.fill([2, 1, 2, 2], 7));
    t.restore(snap);
    expect(Array.from(t.get('ttt/0/W1').dataSync())).toEqual(new Array(8).fill(0));
    const bad = new Map([['ttt/0/W1', tf.zeros([3])]]);
    expect(() => t.restore(bad)).toThrow(/shape/);
    disposeSnapshot(snap);
    t.dispose();
  });

  it('rejects duplicate paths and unknown lookups; dispose frees every tensor', () => {
    const before = tf.memory().numTensors;
    const t = tree();
    expect(() => t.add('ttt/0/W1', tf.zeros([1]))).toThrow(/twice/);
    expect(() => t.get('nope')).toThrow(/no parameter 'nope'/);
    expect(t.flatten()['ttt/0/b1']?.shape).toEqual([2, 1, 1, 2]);
    t.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('two trees with the same paths coexist', () => {
    const a = tree();
    const b = tree();
    a.get('ttt/0/W1').assign(tf.ones([2, 1, 2, 2]));
    expect(b.get('ttt/0/W1').dataSync()[0]).toBe(0);
    a.dispose();
    b.dispose();
  });
});
