// The playground in a real browser: Debian's Chromium driven by playwright-core against a Vite
// dev server on localhost. The five-step story on the shipped pretrained policy (reduced budget)
// on a held-out robot with a large shift: success before, play, align with the plotted held-out
// losses falling, success after, adapter switching, a screenshot of each step. The same story on
// an untrained tiny policy, and a simulator frame rendered in the page bit-identical to Node's.
import { existsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ArmEnv, getPreset } from '@selfalign/sim';
import { type Browser, chromium, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LossPoint } from '../src/session.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const appDir = join(import.meta.dirname, '..');

interface Hooks {
  ready: boolean;
  busy: boolean;
  backend: string;
  kernels: string;
  pretrained: boolean;
  errors: string[];
  losses: LossPoint[];
  actedFrames: number;
  lastActAdapter: string | undefined;
  activeAdapter: string | undefined;
  successBefore: { successes: number; episodes: number } | undefined;
  successAfter: { successes: number; episodes: number } | undefined;
  frames: number;
  alignSeconds: number;
  renderFrame(name: string, seed: number, size: number): number[];
}
const hooks = (page: Page) =>
  page.evaluate(
    () => (window as unknown as { __selfalign: Omit<Hooks, 'renderFrame'> }).__selfalign,
  );

let server: ViteDevServer;
let browser: Browser;
let url: string;
const shots = join(appDir, '.vitest');

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: .ci/run installs Debian's chromium (apt-get install chromium)`,
    );
  server = await createServer({
    root: appDir,
    configFile: join(appDir, 'vite.config.ts'),
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0, strictPort: false },
  });
  await server.listen();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  url = server.resolvedUrls!.local[0]!;
  await mkdir(shots, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function open(query: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await page.goto(`${url}?${query}`);
  await page.waitForFunction(
    () =>
      (window as unknown as { __selfalign?: { ready: boolean; errors: string[] } }).__selfalign
        ?.ready ||
      (window as unknown as { __selfalign?: { errors: string[] } }).__selfalign?.errors.length,
    null,
    { timeout: 240_000 },
  );
  return page;
}

async function click(page: Page, selector: string) {
  await page.click(selector);
  await page.waitForFunction(
    () => !(window as unknown as { __selfalign: { busy: boolean } }).__selfalign.busy,
    null,
    { timeout: 300_000 },
  );
  const h = await hooks(page);
  expect(h.errors, `after ${selector}`).toEqual([]);
}

async function shot(page: Page, name: string) {
  const path = join(shots, `playground-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  expect((await stat(path)).size).toBeGreaterThan(10_000);
}

// the objective align minimises (the shipped policy's default: the state-dynamics task alone)
const total = (p: Hooks['losses'][number]) => p.total;

describe('playground in Chromium', () => {
  it('the story on the shipped policy: fail, play, align, act again, switch adapters', async () => {
    const page = await open('steps=20&episodes=4&play=4');
    const h0 = await hooks(page);
    expect(h0.errors).toEqual([]);
    expect(h0.backend).toBe('wasm');
    expect(h0.kernels).toBe('fast'); // selfalign's SIMD kernels run in the browser too
    expect(h0.pretrained).toBe(true);
    expect(await page.textContent('#status')).toMatch(/pretrained 'small'/);
    await page.selectOption('#embodiment', 'sign'); // a large shift: two joints turn the other way
    expect(await page.textContent('#shift')).toMatch(/joints 1, 2 turn the other way/);
    await shot(page, '1-pick');
    await click(page, '#act-before');
    const before = (await hooks(page)).successBefore!;
    expect(before.episodes).toBe(4);
    expect(await page.textContent('#success-before')).toBe(
      `${before.successes}/4 (${Math.round(25 * before.successes)}%)`,
    );
    await shot(page, '2-before');
    await click(page, '#collect');
    expect((await hooks(page)).frames).toBeGreaterThan(20);
    expect(await page.textContent('#frames')).toMatch(/^\d+ frames$/);
    await shot(page, '3-play');
    await click(page, '#align');
    const h = await hooks(page);
    expect(h.losses.length).toBeGreaterThanOrEqual(3);
    expect(total(h.losses.at(-1)!)).toBeLessThan(total(h.losses[0]!));
    expect(h.alignSeconds).toBeGreaterThan(0);
    expect(h.activeAdapter).toBe('sign');
    await shot(page, '4-align');
    await click(page, '#act-after');
    const after = (await hooks(page)).successAfter!;
    expect(after.episodes).toBe(4);
    expect(await page.textContent('#success-after')).toMatch(/^\d\/4 \(\d+%\)$/);
    expect((await hooks(page)).lastActAdapter).toBe('sign');
    await shot(page, '5-after');
    // the adapter switch changes which adapter acts
    await click(page, '#adapters button[data-adapter=""]');
    expect((await hooks(page)).activeAdapter).toBeUndefined();
    await click(page, '#adapters button[data-adapter="sign"]');
    expect((await hooks(page)).activeAdapter).toBe('sign');
    expect(await page.getAttribute('#adapters button[data-adapter="sign"]', 'class')).toBe(
      'active',
    );
    await page.close();
  }, 600_000);

  it('the same story on an untrained tiny policy, and frames bit-identical to Node', async () => {
    const page = await open('config=tiny&steps=15&episodes=2&play=4');
    const h0 = await hooks(page);
    expect(h0.pretrained).toBe(false);
    expect(await page.textContent('#status')).toMatch(/UNTRAINED 'tiny'/);
    await page.selectOption('#embodiment', 'perm');
    await click(page, '#act-before');
    await click(page, '#collect');
    await click(page, '#align');
    const h = await hooks(page);
    expect(h.losses.length).toBeGreaterThanOrEqual(2);
    expect(total(h.losses.at(-1)!)).toBeLessThan(total(h.losses[0]!));
    await click(page, '#act-after');
    expect((await hooks(page)).actedFrames).toBeGreaterThan(1);
    expect((await hooks(page)).lastActAdapter).toBe('perm');
    for (const [name, seed, size] of [
      ['perm', 3, 16],
      ['combo', 11, 64],
    ] as const) {
      const inPage = await page.evaluate(
        ([n, s, z]) =>
          (window as unknown as { __selfalign: Hooks }).__selfalign.renderFrame(n, s, z),
        [name, seed, size] as const,
      );
      const inNode = Array.from(
        new ArmEnv(getPreset(name), { imageSize: size }).reset(seed, 'reach').render(),
      );
      expect(inPage.length).toBe(size * size * 3);
      expect(inPage).toEqual(inNode);
    }
    await page.close();
  }, 300_000);
});
