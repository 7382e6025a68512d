// Benchmark: peak resident memory of `selfalign collect` against the number of episodes. Runs the
// real command in a child process (tiny images, no features, the random play policy) and reads
// its peak RSS (VmHWM) from /proc. Memory should stay flat as episodes grow: collect simulates
// and writes episodes in groups. Run: pnpm --filter @selfalign/cli exec tsx --conditions=@selfalign/source bench/collect-memory.bench.ts
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

const main = join(import.meta.dirname, '..', 'src', 'main.ts');

function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function run(episodes: number, dir: string) {
  const out = join(dir, `c${episodes}.arrow`);
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=@selfalign/source',
      main,
      'collect',
      '--episodes',
      String(episodes),
      '--image-size',
      '16',
      '--out',
      out,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, peakRss(child.pid!));
  }, 50);
  const t0 = performance.now();
  const code: number = await new Promise((r) => child.on('exit', (c) => r(c ?? 1)));
  clearInterval(timer);
  if (code !== 0) throw new Error(`collect exited ${code}`);
  return {
    episodes,
    peakMb: peak / 2 ** 20,
    seconds: (performance.now() - t0) / 1000,
    fileMb: (await stat(out)).size / 2 ** 20,
  };
}

const dir = await mkdtemp(join(tmpdir(), 'selfalign-collect-bench-'));
try {
  console.log(
    `collect, 16 px, random play, no features; ${cpus()[0]?.model} x${cpus().length}, node ${process.version}`,
  );
  console.log('| episodes | peak RSS (MiB) | file (MiB) | wall (s) |');
  console.log('|---|---|---|---|');
  for (const n of [100, 1000, 3000]) {
    const r = await run(n, dir);
    console.log(
      `| ${r.episodes} | ${r.peakMb.toFixed(0)} | ${r.fileMb.toFixed(1)} | ${r.seconds.toFixed(1)} |`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
