#!/usr/bin/env node
// The whole test suite: every package's vitest through turbo (the playground's in Chromium), then one plain summary line
// summed over all packages ("N passed, N failed, N skipped"), read from the JSON report that
// vitest.shared.ts makes each package write to .vitest/report.json. Exit code: turbo's, or 1
// when a package that has tests wrote no report (it crashed before reporting).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

// The playground's browser test drives Debian's Chromium. Where it is missing and we may install
// it (root, apt), do so; anywhere else the test says how.
// The kernel test rebuilds the committed wasm kernels with Debian's clang + lld and checks the
// bytes; install them the same way.
const CHROMIUM = '/usr/bin/chromium';
const toInstall = [
  ...(existsSync(CHROMIUM) ? [] : ['chromium']),
  ...(existsSync('/usr/bin/clang') && existsSync('/usr/bin/wasm-ld') ? [] : ['clang', 'lld']),
];
if (toInstall.length > 0 && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
  console.log(`installing Debian packages for the tests: apt-get install ${toInstall.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  spawnSync('apt-get', ['install', '-y', '-qq', ...toInstall], { stdio: 'inherit', env });
}
const packageDirs = ['packages', 'apps'].flatMap((group) =>
  existsSync(join(root, group))
    ? readdirSync(join(root, group)).map((name) => join(root, group, name))
    : [],
);
const withTests = packageDirs.filter((dir) => {
  const manifest = join(dir, 'package.json');
  return existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).scripts?.test;
});
for (const dir of withTests) rmSync(join(dir, '.vitest'), { recursive: true, force: true });

const turbo = spawnSync(
  'pnpm',
  ['exec', 'turbo', 'run', 'test', '--concurrency=1', '--continue', ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit' },
);

let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
// Repository hygiene, counted as one test: every changeset parses (a formatter once turned
// single-package front matter into a markdown heading, and nothing noticed).
const changesets = spawnSync('pnpm', ['exec', 'changeset', 'status'], {
  cwd: root,
  encoding: 'utf8',
});
if (changesets.status === 0) passed += 1;
else {
  failed += 1;
  console.log(`changesets do not parse:\n${changesets.stdout}${changesets.stderr}`);
}
for (const dir of withTests) {
  const report = join(dir, '.vitest', 'report.json');
  if (!existsSync(report)) {
    missing.push(dir.slice(root.length));
    continue;
  }
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + r.numTodoTests;
  if (r.numFailedTestSuites > 0 && r.numFailedTests === 0) failed += r.numFailedTestSuites;
}
if (missing.length > 0 && !process.argv.some((a) => a.startsWith('--filter'))) {
  console.log(`no test report from: ${missing.join(', ')} (counted as failed)`);
  failed += missing.length;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(turbo.status !== 0 || failed > 0 ? 1 : 0);
