// The playground in a real browser: Debian's Chromium driven by playwright-core against a Vite
// dev server on localhost. Loads the page on the tiny config, collects play, aligns, checks the
// plotted held-out losses fell, watches the aligned policy act, takes a screenshot, and checks
// that a simulator frame rendered in the page is bit-identical to the one Node renders.
import { existsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ArmEnv, getPreset } from '@selfalign/sim';
import { type Browser, chromium, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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
  errors: string[];
  losses: { step: number; perception: number; dynamics: number; inverseDynamics: number }[];
  actedFrames: number;
  lastActAdapter: string | undefined;
  renderFrame(name: string, seed: number, size: number): number[];
}
const hooks = (page: Page) =>
  page.evaluate(
    () => (window as unknown as { __selfalign: Omit<Hooks, 'renderFrame'> }).__selfalign,
  );

let server: ViteDevServer;
let browser: Browser;
let page: Page;

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
  page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
  const url = server.resolvedUrls!.local[0]!;
  await page.goto(`${url}?config=tiny&steps=15`);
  await page.waitForFunction(
    () =>
      (window as unknown as { __selfalign?: { ready: boolean; errors: string[] } }).__selfalign
        ?.ready ||
      (window as unknown as { __selfalign?: { errors: string[] } }).__selfalign?.errors.length,
    null,
    { timeout: 180_000 },
  );
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function click(id: string) {
  await page.click(`#${id}`);
  await page.waitForFunction(
    () => !(window as unknown as { __selfalign: { busy: boolean } }).__selfalign.busy,
    null,
    { timeout: 180_000 },
  );
}

describe('playground in Chromium', () => {
  it('loads on the wasm backend with no errors', async () => {
    const h = await hooks(page);
    expect(h.errors).toEqual([]);
    expect(h.ready).toBe(true);
    expect(h.backend).toBe('wasm');
    expect(h.kernels).toBe('fast'); // selfalign's SIMD kernels run in the browser too
    expect(await page.textContent('#status')).toMatch(/policy 'tiny'.*UNTRAINED/);
  });

  it('collects play, aligns with the losses falling in the plot, and acts with the adapter', async () => {
    await page.selectOption('#embodiment', 'perm');
    await click('collect');
    expect(await page.textContent('#status')).toMatch(
      /collected \d+ frames of random play on 'perm'/,
    );
    await click('align');
    const h = await hooks(page);
    expect(h.errors).toEqual([]);
    expect(h.losses.length).toBeGreaterThanOrEqual(3);
    const total = (p: Hooks['losses'][number]) => p.perception + p.dynamics + p.inverseDynamics;
    expect(total(h.losses.at(-1)!)).toBeLessThan(total(h.losses[0]!));
    expect(await page.textContent('#adapters')).toMatch(/perm/);
    await click('act-after');
    const after = await hooks(page);
    expect(after.actedFrames).toBeGreaterThan(1);
    expect(after.lastActAdapter).toBe('perm');
    expect(await page.textContent('#status')).toMatch(
      /acting after alignment on 'perm' with adapter 'perm'/,
    );
    const dir = join(appDir, '.vitest');
    await mkdir(dir, { recursive: true });
    const shot = join(dir, 'playground.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect((await stat(shot)).size).toBeGreaterThan(10_000);
  });

  it('renders simulator frames bit-identical to Node', async () => {
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
  });
});
