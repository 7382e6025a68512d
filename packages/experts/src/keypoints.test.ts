// The vision tower's keypoint tokens (spatial soft-argmax) and the auxiliary keypoint loss.
import {
  createOptimizer,
  disposeOptimizer,
  initBackend,
  optimizerStep,
  ParamTree,
  Rng,
  ShapeError,
  tf,
} from '@selfalign/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actionStateInput } from './action-suffix.js';
import { disposeBatch, randomBatch } from './batch.js';
import { computeLoss, disposeLoss } from './compute-loss.js';
import { tiny } from './config.js';
import { createPolicy, type Policy } from './policy.js';
import { disposePrefixCache, embedPrefix, encodePrefix } from './prefix.js';
import { addVisionParams, encodeImages, keypointPositions } from './vision.js';

beforeAll(() => initBackend('wasm'));

describe('keypointPositions', () => {
  it('a heatmap that peaks on one patch gives that patch centre (within half a patch)', () => {
    const c = { ...tiny.vision, keypoints: 2 };
    const tree = new ParamTree();
    addVisionParams(tree, c, 32, new Rng(0));
    // 4 patches (2x2 grid); keypoint 0 reads feature 0, keypoint 1 feature 1
    const logit = new Float32Array(32 * 2);
    logit[0 * 2 + 0] = 1;
    logit[1 * 2 + 1] = 1;
    tree.get('vision/keypoints/logit').assign(tf.tensor2d(logit, [32, 2]));
    tree.get('vision/keypoints/offset').assign(tf.zeros([32, 4]));
    const x = tf.buffer([1, 4, 32]);
    x.set(40, 0, 3, 0); // keypoint 0 -> patch 3 (bottom right)
    x.set(40, 0, 1, 1); // keypoint 1 -> patch 1 (top right)
    const uv = keypointPositions(tree, c, x.toTensor()).arraySync() as number[][][];
    expect(uv[0]![0]![0]).toBeCloseTo(0.5, 4);
    expect(uv[0]![0]![1]).toBeCloseTo(0.5, 4);
    expect(uv[0]![1]![0]).toBeCloseTo(0.5, 4);
    expect(uv[0]![1]![1]).toBeCloseTo(-0.5, 4);
    // with offsets the position stays inside the peak patch
    tree.get('vision/keypoints/offset').assign(tf.fill([32, 4], 10));
    const moved = keypointPositions(tree, c, x.toTensor()).arraySync() as number[][][];
    expect(moved[0]![0]![0]).toBeCloseTo(1, 3);
    tree.dispose();
  });

  it('adds K tokens per camera after the patch tokens; no keypoints, no tokens', () => {
    const images = tf.randomUniform([2, 1, 16, 16, 3], 0, 255, 'int32');
    for (const k of [0, 3]) {
      const c = { ...tiny.vision, keypoints: k };
      const tree = new ParamTree();
      addVisionParams(tree, c, 32, new Rng(1));
      const enc = encodeImages(tree, c, images);
      expect(enc.tokens.shape).toEqual([2, 4 + k, 32]);
      if (k === 0) expect(enc.keypoints).toBeUndefined();
      else {
        expect(enc.keypoints!.shape).toEqual([2, 1, k, 2]);
        const v = enc.keypoints!.dataSync();
        expect(v.every((a) => Math.abs(a) <= 1)).toBe(true);
      }
      tf.dispose(Object.values(enc));
      tree.dispose();
    }
    images.dispose();
  });

  it('returns the final patch tokens on request, the soft-argmax input, without changing the rest', () => {
    const images = tf.randomUniform([2, 1, 16, 16, 3], 0, 255, 'int32');
    const c = { ...tiny.vision, keypoints: 3 };
    const tree = new ParamTree();
    addVisionParams(tree, c, 32, new Rng(2));
    const plain = encodeImages(tree, c, images);
    expect(plain.patches).toBeUndefined();
    const live = tf.memory().numTensors;
    const enc = encodeImages(tree, c, images, { patches: true });
    expect(tf.memory().numTensors - live).toBe(3); // tokens, keypoints, patches: nothing else kept
    expect(enc.patches!.shape).toEqual([2, 4, c.width]);
    expect([...enc.tokens.dataSync()]).toEqual([...plain.tokens.dataSync()]);
    const uv = keypointPositions(tree, c, enc.patches!);
    expect(uv.reshape([2, 1, 3, 2]).arraySync()).toEqual(enc.keypoints!.arraySync());
    tf.dispose([...Object.values(plain), ...Object.values(enc), uv, images]);
    tree.dispose();
  });
});

describe('keypoints in the state token', () => {
  it('the state token reads [state, first N keypoints of camera 0], with a cache too', () => {
    const policy = createPolicy(tiny, 0);
    expect(policy.params.get('action/state_proj/w').shape).toEqual([
      tiny.stateDim + 2 * tiny.vision.keypointsToState!,
      tiny.action.width,
    ]);
    const batch = randomBatch(policy, 2, new Rng(6));
    const kp = tf.tidy(() => embedPrefix(policy, batch).keypoints!);
    const state = tf.ones([2, tiny.stateDim]);
    const input = actionStateInput(policy, state, kp);
    const k = kp.arraySync() as number[][][][];
    const row = (input.arraySync() as number[][])[1]!;
    expect(row.slice(0, tiny.stateDim)).toEqual(new Array(tiny.stateDim).fill(1));
    expect(row[tiny.stateDim]).toBeCloseTo(k[1]![0]![0]![0]!, 6);
    expect(row[tiny.stateDim + 3]).toBeCloseTo(k[1]![0]![1]![1]!, 6);
    expect(() => actionStateInput(policy, state, undefined)).toThrow(/reads keypoints/);
    // the action loss through a prefix cache equals the one with the prefix in the forward
    const cache = encodePrefix(policy, batch);
    expect(cache.keypoints!.shape).toEqual(kp.shape);
    const opts = { streams: ['action'] as const, rng: new Rng(3) };
    const a = computeLoss(policy, batch, { ...opts, rng: new Rng(3) });
    const b = computeLoss(policy, batch, { ...opts, rng: new Rng(3), prefixCache: cache });
    expect(b.action.dataSync()[0]).toBeCloseTo(a.action.dataSync()[0]!, 5);
    disposeLoss(a);
    disposeLoss(b);
    disposePrefixCache(cache);
    tf.dispose([kp, state, input]);
    disposeBatch(batch);
    policy.dispose();
  });
});

describe('auxiliary keypoint loss', () => {
  let policy: Policy;
  beforeAll(() => {
    policy = createPolicy(tiny, 0);
  });
  afterAll(() => policy.dispose());

  it('is the masked MSE of the first G keypoints against the present objects, and 0 by default weight', () => {
    const batch = randomBatch(policy, 3, new Rng(2));
    batch.objects = tf.tensor3d(
      [0.2, -0.4, Number.NaN, Number.NaN, -0.7, 0.1, 0.3, 0.3, Number.NaN, Number.NaN, 0.9, -0.9],
      [3, 2, 2],
    );
    const kp = tf.tidy(() => embedPrefix(policy, batch).keypoints!.arraySync()) as number[][][][];
    const obj = batch.objects.arraySync() as number[][][];
    let sum = 0;
    let n = 0;
    for (let i = 0; i < 3; i++)
      for (let g = 0; g < 2; g++)
        for (let d = 0; d < 2; d++) {
          const o = obj[i]![g]![d]!;
          if (Number.isNaN(o)) continue;
          sum += (kp[i]![0]![g]![d]! - o) ** 2;
          n++;
        }
    const plain = computeLoss(policy, batch, { rng: new Rng(5) });
    const weighted = computeLoss(policy, batch, { rng: new Rng(5), weights: { keypoints: 2 } });
    expect(plain.keypoints.dataSync()[0]).toBeCloseTo(sum / n, 5);
    expect(weighted.total.dataSync()[0]! - plain.total.dataSync()[0]!).toBeCloseTo(
      (2 * sum) / n,
      4,
    );
    disposeLoss(plain);
    disposeLoss(weighted);
    disposeBatch(batch);
  });

  it('more objects than keypoints is a ShapeError; a few steps on it move the keypoints to the objects', () => {
    const bad = randomBatch(policy, 2, new Rng(3));
    bad.objects = tf.zeros([2, 3, 2]);
    expect(() => computeLoss(policy, bad)).toThrow(ShapeError);
    disposeBatch(bad);

    const batch = randomBatch(policy, 4, new Rng(4));
    batch.objects = tf.tensor3d([0.5, 0.5, -0.5, -0.5], [1, 2, 2]).tile([4, 1, 1]);
    const opt = createOptimizer({ lr: 3e-3 });
    const params = policy.params.select('vision/**');
    const kpLoss = () => {
      const t = computeLoss(policy, batch, { streams: ['action'], rng: new Rng(1) });
      const v = t.keypoints.dataSync()[0]!;
      disposeLoss(t);
      return v;
    };
    const before = kpLoss();
    for (let s = 0; s < 30; s++)
      optimizerStep(opt, params, () => {
        const t = computeLoss(policy, batch, {
          streams: ['action'],
          rng: new Rng(1),
          weights: { action: 0, keypoints: 1 },
        });
        return t.total;
      });
    expect(kpLoss()).toBeLessThan(before * 0.2);
    disposeOptimizer(opt);
    disposeBatch(batch);
  });
});
