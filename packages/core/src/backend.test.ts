import { describe, expect, it } from 'vitest';
import { BackendError, backendChoiceFromEnv, currentBackend, initBackend } from './backend.js';
import { tf } from './tf.js';

describe('backend', () => {
  it('an explicit backend that cannot load is a clear error; one that loads is what runs', async () => {
    let nativeLoads = true;
    try {
      await import(/* @vite-ignore */ ['@tensorflow', 'tfjs-node-gpu'].join('/'));
    } catch {
      nativeLoads = false;
    }
    if (nativeLoads) {
      // this machine has working native bindings: the choice is made and reported
      const info = await initBackend('tensorflow-gpu');
      expect(info.name).toBe('tensorflow-gpu');
      expect(tf.getBackend()).toBe('tensorflow');
      expect(info.kernels).toBe('stock');
      return;
    }
    await expect(initBackend('tensorflow-gpu')).rejects.toThrow(BackendError);
    await expect(initBackend('tensorflow-gpu')).rejects.toThrow(
      /backend 'tensorflow-gpu' could not load/,
    );
  });

  it('auto picks the first backend that loads and reports the skipped ones', async () => {
    const info = await initBackend('auto');
    expect(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']).toContain(info.name);
    expect(tf.getBackend()).toBe(info.tfName);
    const order = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
    expect(info.skipped.map((s) => s.name)).toEqual(order.slice(0, order.indexOf(info.name)));
    for (const s of info.skipped) expect(s.reason.length).toBeGreaterThan(0);
    expect(currentBackend()).toBe(info);
    expect(await initBackend('auto')).toBe(info);
  });

  it('reads SELFALIGN_BACKEND', () => {
    expect(backendChoiceFromEnv({})).toBe('auto');
    expect(backendChoiceFromEnv({ SELFALIGN_BACKEND: 'wasm' })).toBe('wasm');
    expect(() => backendChoiceFromEnv({ SELFALIGN_BACKEND: 'webgpu' })).toThrow(/not a backend/);
  });
});
