// The playground page: the story in five steps. Pick a robot the policy never trained on ->
// the pretrained policy's success on it (fixed seeds, measured here) -> random play (frames
// counted) -> align only the TTT adapter (held-out losses plotted as they fall, wall time) ->
// the aligned policy's success on the same seeds. Adapters of several robots are kept and
// switched with one click. URL options: ?checkpoint=URL (default: the shipped checkpoint),
// ?config=tiny|small (an untrained policy instead), ?steps=N (align steps), ?episodes=N
// (evaluation episodes), ?play=N (play episodes).
import { currentBackend, initBackend } from '@selfalign/core';
import { ArmEnv, describeEmbodiment, getPreset, HELD_OUT, PRESETS } from '@selfalign/sim';
import wasmUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimdUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreadedUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import shippedCheckpoint from '../../../checkpoints/small-reach32.safetensors?url';
import { drawLosses } from './plot.js';
import { SceneView } from './scene.js';
import { type LossPoint, Session } from './session.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const num = (name: string, fallback: number) => {
  const v = Number(params.get(name) ?? fallback);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback;
};
const status: string[] = [];
const say = (line: string) => {
  status.push(line);
  $('status').textContent = status.slice(-7).join('\n');
};

/** A message a person can act on, for the failures a page meets. */
function explain(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (
    /out of memory|Out of memory|allocation|Array buffer allocation|memory access out of bounds|Aborted\(/i.test(
      msg,
    )
  )
    return `Out of memory: the browser could not give this page enough memory (${msg}). Close other tabs or lower ?steps / ?episodes.`;
  return msg;
}
const fail = (err: unknown) => {
  const msg = explain(err);
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
  pretrained: false,
  ready: false,
  busy: false,
  errors: [] as string[],
  losses: [] as LossPoint[],
  actedFrames: 0,
  lastActAdapter: '' as string | undefined,
  activeAdapter: '' as string | undefined,
  successBefore: undefined as { successes: number; episodes: number } | undefined,
  successAfter: undefined as { successes: number; episodes: number } | undefined,
  frames: 0,
  alignSeconds: 0,
  /** A simulator frame rendered by this page's code, to compare with Node's. */
  renderFrame: (name: string, seed: number, size: number) =>
    Array.from(new ArmEnv(getPreset(name), { imageSize: size }).reset(seed, 'reach').render()),
};
(window as unknown as { __selfalign: typeof hooks }).__selfalign = hooks;

/** WebAssembly SIMD (a v128 constant): the fast kernels and tfjs's SIMD build need it. */
function hasWasmSimd(): boolean {
  return WebAssembly.validate(
    new Uint8Array([
      0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253,
      15, 253, 98, 11,
    ]),
  );
}

async function main() {
  if (typeof WebAssembly !== 'object')
    throw new Error('this browser has no WebAssembly: the playground cannot run here');
  if (!hasWasmSimd())
    throw new Error(
      'this browser has no WebAssembly SIMD, which the policy needs: use a current Chrome, Edge, Firefox or Safari (16.4+)',
    );
  const info = await initBackend('wasm', {
    wasmPaths: {
      'tfjs-backend-wasm.wasm': wasmUrl,
      'tfjs-backend-wasm-simd.wasm': wasmSimdUrl,
      'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedUrl,
    },
  });
  hooks.backend = info.name;
  hooks.kernels = info.kernelsReason ? `${info.kernels} (${info.kernelsReason})` : info.kernels;
  const config = params.get('config');
  const checkpointUrl = params.get('checkpoint') ?? (config ? undefined : shippedCheckpoint);
  const progress = $<HTMLProgressElement>('load-progress');
  $('load-text').textContent = checkpointUrl
    ? 'loading the pretrained policy…'
    : 'building the policy…';
  const session = await Session.create({
    ...(config ? { config } : {}),
    ...(checkpointUrl ? { checkpointUrl } : {}),
    onProgress: (f, bytes) => {
      if (Number.isFinite(f)) progress.value = f;
      else progress.removeAttribute('value');
      $('load-text').textContent = `loading the pretrained policy: ${(bytes / 1e6).toFixed(1)} MB`;
    },
  });
  hooks.pretrained = session.pretrained;
  $('loading').hidden = true;
  const steps = num('steps', 150);
  const episodes = num('episodes', 8);
  const nPlay = num('play', 10);
  const seeds = Array.from({ length: episodes }, (_, i) => 20_000 + i);
  const scene = new SceneView($<HTMLCanvasElement>('scene'));
  // span needs two or more source slots to span anything
  if (session.sourceSlots.length < 2) $<HTMLSelectElement>('param').value = 'free';
  // a policy with the state-dynamics task aligns on that task alone (align's default for it)
  $('legend-sdyn').hidden = !session.policy.config.extraAlignmentTasks?.includes('stateDynamics');
  const select = $<HTMLSelectElement>('embodiment');
  for (const name of HELD_OUT) select.add(new Option(name, name));
  select.value = 'sign';
  const target = () => PRESETS[select.value]!;
  say(
    `policy: ${session.pretrained ? `pretrained '${session.policy.config.name}' (${session.sourceSlots.length} source robots)` : `UNTRAINED '${session.policy.config.name}' (load one with ?checkpoint=URL)`}, ${(session.policy.params.count() / 1e6).toFixed(2)} M parameters; backend ${currentBackend()?.name} (${currentBackend()?.kernels} kernels); a new robot is aligned in slot ${session.slot}`,
  );

  const drawFrame = (image: Uint8Array, size: number) => {
    const c = $<HTMLCanvasElement>('sim');
    c.width = size;
    c.height = size;
    const ctx = c.getContext('2d')!;
    const img = ctx.createImageData(size, size);
    for (let i = 0; i < size * size; i++) {
      img.data.set(image.subarray(3 * i, 3 * i + 3), 4 * i);
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  };
  const preview = () => {
    const env = new ArmEnv(target(), { imageSize: session.imageSize }).reset(seeds[0]!, 'reach');
    scene.clearTrail();
    scene.draw(env, `${select.value}: ready`);
    drawFrame(env.render(), session.imageSize);
  };
  const stepState = (current: number) => {
    for (let i = 1; i <= 5; i++) {
      const li = $(`step-${i}`);
      li.classList.toggle('done', i < current);
      li.classList.toggle('current', i === current);
    }
    $<HTMLButtonElement>('act-before').disabled = current < 2;
    $<HTMLButtonElement>('collect').disabled = current < 3;
    $<HTMLButtonElement>('align').disabled = current < 4;
    $<HTMLButtonElement>('act-after').disabled = current < 5;
  };
  const resetStory = () => {
    session.resetSlot();
    hooks.activeAdapter = undefined;
    for (const id of ['success-before', 'frames', 'align-time', 'success-after'])
      $(id).textContent = '–';
    $('shift').textContent = describeEmbodiment(target());
    drawLosses($<HTMLCanvasElement>('plot'), []);
    renderAdapters();
    preview();
    stepState(2);
  };

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
  /** Success over the fixed seeds, then one episode animated in the scene view. */
  const evaluate = async (label: string) => {
    const t0 = performance.now();
    const r = await session.evaluate(target(), seeds);
    let frames = 0;
    scene.clearTrail();
    await session.act(target(), seeds[0]!, async (image, env) => {
      frames++;
      drawFrame(image, session.imageSize);
      scene.draw(env, `${label}: step ${env.steps}`);
      await new Promise((res) => setTimeout(res, 25));
    });
    hooks.actedFrames = frames;
    hooks.lastActAdapter = session.activeAdapter;
    say(
      `${label} on '${select.value}'${session.activeAdapter ? ` with adapter '${session.activeAdapter}'` : ' (no adaptation: the mean of the source slots)'}: ${r.successes}/${r.episodes} episodes reach the target (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
    return r;
  };
  const pct = (r: { successes: number; episodes: number }) =>
    `${r.successes}/${r.episodes} (${Math.round((100 * r.successes) / r.episodes)}%)`;

  function renderAdapters() {
    const box = $('adapters');
    box.innerHTML = '<span class="caption">adapters (click to switch):</span> ';
    const none = document.createElement('button');
    none.type = 'button';
    none.textContent = 'none';
    none.dataset['adapter'] = '';
    if (!session.activeAdapter) none.className = 'active';
    none.onclick = run(async () => {
      session.resetSlot();
      hooks.activeAdapter = undefined;
      renderAdapters();
      say('active adapter: none (the mean of the source slots)');
    });
    box.append(none);
    for (const name of session.adapters.keys()) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = name;
      b.dataset['adapter'] = name;
      if (name === session.activeAdapter) b.className = 'active';
      b.onclick = run(async () => {
        session.switchAdapter(name);
        hooks.activeAdapter = name;
        renderAdapters();
        say(`active adapter: ${name}`);
      });
      box.append(b);
    }
  }

  $('act-before').onclick = run(async () => {
    session.resetSlot();
    renderAdapters();
    const r = await evaluate('the pretrained policy, not adapted');
    hooks.successBefore = r;
    $('success-before').textContent = pct(r);
    stepState(3);
  });
  $('collect').onclick = run(async () => {
    const n = await session.collectPlay(target(), nPlay, 100);
    hooks.frames = n;
    $('frames').textContent = `${n} frames`;
    say(`collected ${n} frames of random play (${nPlay} episodes) on '${select.value}'`);
    stepState(4);
  });
  $('align').onclick = run(async () => {
    drawLosses($<HTMLCanvasElement>('plot'), []);
    const kind = $<HTMLSelectElement>('param').value as 'span' | 'free';
    const t0 = performance.now();
    const r = await session.alignLive({ steps, parametrisation: kind }, (p) => {
      hooks.losses = [...session.history];
      drawLosses($<HTMLCanvasElement>('plot'), session.history);
      $('align-time').textContent =
        `step ${p.step}/${steps}, ${((performance.now() - t0) / 1000).toFixed(0)} s`;
    });
    await session.saveAdapter(select.value);
    hooks.activeAdapter = select.value;
    hooks.losses = [...session.history];
    hooks.alignSeconds = session.lastAlignMs / 1000;
    renderAdapters();
    $('align-time').textContent = `${hooks.alignSeconds.toFixed(1)} s`;
    say(
      `aligned '${select.value}' (${kind} slot, ${steps} steps) in ${hooks.alignSeconds.toFixed(1)} s; held-out loss ${r.before.total.toFixed(3)} -> ${r.after.total.toFixed(3)}; adapter '${select.value}' active`,
    );
    stepState(5);
  });
  $('act-after').onclick = run(async () => {
    const r = await evaluate('the aligned policy');
    hooks.successAfter = r;
    $('success-after').textContent = pct(r);
    stepState(6);
  });
  select.onchange = () => resetStory();
  resetStory();
  hooks.ready = true;
  $('ready').hidden = false;
}

main().catch((err) => {
  $('loading').hidden = true;
  fail(err);
});
