// The playground page: pick a target robot, watch the policy act, collect random play, align
// live (losses plotted as they fall), watch the aligned policy act, flip between adapters.
// URL options: ?config=tiny|small (default small), ?checkpoint=URL (a pretrained checkpoint;
// without one the policy is untrained and the page says so), ?steps=N (align steps).
import { currentBackend, initBackend } from '@selfalign/core';
import { Rng } from '@selfalign/core/rng';
import { ArmEnv, getPreset, PRESETS, sampleEmbodiment } from '@selfalign/sim';
import wasmUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimdUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreadedUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { drawLosses } from './plot.js';
import { type LossPoint, Session } from './session.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const status: string[] = [];
const say = (line: string) => {
  status.push(line);
  $('status').textContent = status.slice(-8).join('\n');
};
const fail = (err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  $('error').textContent = `Error: ${msg}`;
  hooks.errors.push(msg);
};
window.addEventListener('error', (e) => fail(e.error ?? e.message));
window.addEventListener('unhandledrejection', (e) => fail(e.reason));

/** State the browser test reads. */
const hooks = {
  backend: '',
  /** Which wasm kernels run: 'fast' (selfalign's SIMD kernels) or 'stock' (and why). */
  kernels: '',
  ready: false,
  busy: false,
  errors: [] as string[],
  losses: [] as LossPoint[],
  actedFrames: 0,
  lastActAdapter: '' as string | undefined,
  /** A simulator frame rendered by this page's code, to compare with Node's. */
  renderFrame: (name: string, seed: number, size: number) =>
    Array.from(new ArmEnv(getPreset(name), { imageSize: size }).reset(seed, 'reach').render()),
};
(window as unknown as { __selfalign: typeof hooks }).__selfalign = hooks;

function drawFrame(image: Uint8Array, size: number) {
  const canvas = $<HTMLCanvasElement>('sim');
  const ctx = canvas.getContext('2d')!;
  const data = new ImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    data.data[4 * i] = image[3 * i]!;
    data.data[4 * i + 1] = image[3 * i + 1]!;
    data.data[4 * i + 2] = image[3 * i + 2]!;
    data.data[4 * i + 3] = 255;
  }
  const tmp = new OffscreenCanvas(size, size);
  tmp.getContext('2d')!.putImageData(data, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

async function main() {
  if (typeof WebAssembly !== 'object')
    throw new Error('this browser has no WebAssembly: the playground cannot run here');
  const info = await initBackend('wasm', {
    wasmPaths: {
      'tfjs-backend-wasm.wasm': wasmUrl,
      'tfjs-backend-wasm-simd.wasm': wasmSimdUrl,
      'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedUrl,
    },
  });
  hooks.backend = info.name;
  hooks.kernels = info.kernelsReason ? `${info.kernels} (${info.kernelsReason})` : info.kernels;
  const checkpointUrl = params.get('checkpoint') ?? undefined;
  const session = await Session.create({
    config: params.get('config') ?? 'small',
    ...(checkpointUrl ? { checkpointUrl } : {}),
  });
  const steps = Number(params.get('steps') ?? 30);
  const select = $<HTMLSelectElement>('embodiment');
  const targets = new Map(Object.entries(PRESETS).filter(([n]) => n !== 'source'));
  targets.set('random', sampleEmbodiment(new Rng(Date.now() >>> 0), 'random'));
  for (const name of targets.keys()) select.add(new Option(name, name));
  const target = () => targets.get(select.value)!;
  say(
    `backend: ${currentBackend()?.name} (${currentBackend()?.kernels} kernels); policy '${session.policy.config.name}' (${(session.policy.params.count() / 1e6).toFixed(2)} M parameters), ${session.pretrained ? 'pretrained' : 'UNTRAINED (load one with ?checkpoint=URL)'}; aligning slot ${session.slot}`,
  );

  const run = (fn: () => Promise<void>) => async () => {
    if (hooks.busy) return;
    hooks.busy = true;
    $('error').textContent = '';
    try {
      await fn();
    } catch (err) {
      fail(err);
    } finally {
      hooks.busy = false;
    }
  };
  const act = async (label: string) => {
    let frames = 0;
    const ok = await session.act(target(), 7, async (image) => {
      frames++;
      drawFrame(image, session.imageSize);
      await new Promise((r) => setTimeout(r, 30));
    });
    hooks.actedFrames = frames;
    hooks.lastActAdapter = session.activeAdapter;
    say(
      `${label} on '${select.value}'${session.activeAdapter ? ` with adapter '${session.activeAdapter}'` : ''}: ${ok ? 'success' : 'no success'} in ${frames - 1} steps`,
    );
  };
  const renderAdapters = () => {
    const box = $('adapters');
    box.innerHTML = '<span class="muted">adapters:</span> ';
    for (const name of session.adapters.keys()) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = name;
      b.dataset['adapter'] = name;
      if (name === session.activeAdapter) b.className = 'active';
      b.onclick = run(async () => {
        session.switchAdapter(name);
        renderAdapters();
        say(`active adapter: ${name}`);
      });
      box.append(b);
    }
  };
  $('act-before').onclick = run(() => act('acting before alignment'));
  $('collect').onclick = run(async () => {
    const n = await session.collectPlay(target(), 4, 100);
    say(`collected ${n} frames of random play on '${select.value}'`);
  });
  $('align').onclick = run(async () => {
    drawLosses($<HTMLCanvasElement>('plot'), []);
    const r = await session.alignLive({ steps }, (p) => {
      hooks.losses = [...session.history];
      drawLosses($<HTMLCanvasElement>('plot'), session.history);
      say(
        `align step ${p.step}: perception ${p.perception.toFixed(3)}, dynamics ${p.dynamics.toFixed(3)}, inverse ${p.inverseDynamics.toFixed(3)}`,
      );
    });
    await session.saveAdapter(select.value);
    hooks.losses = [...session.history];
    renderAdapters();
    say(
      `aligned '${select.value}' in ${(session.lastAlignMs / 1000).toFixed(1)} s (total held-out loss ${r.before.total.toFixed(3)} -> ${r.after.total.toFixed(3)}); adapter '${select.value}' active`,
    );
  });
  $('act-after').onclick = run(() => act('acting after alignment'));
  drawFrame(
    new ArmEnv(target(), { imageSize: session.imageSize }).reset(7, 'reach').render(),
    session.imageSize,
  );
  select.onchange = () =>
    drawFrame(
      new ArmEnv(target(), { imageSize: session.imageSize }).reset(7, 'reach').render(),
      session.imageSize,
    );
  hooks.ready = true;
  $('ready').hidden = false;
}

main().catch(fail);
