#!/usr/bin/env node
// Entry point of the `selfalign` binary.
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2), {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
  raw: (t) => process.stderr.write(t),
  tty: Boolean(process.stderr.isTTY),
  // `pnpm selfalign ...` runs in the repository root; INIT_CWD is where the user typed it, so
  // relative paths mean what the user meant
  cwd:
    process.env['npm_lifecycle_event'] === 'selfalign' && process.env['INIT_CWD']
      ? process.env['INIT_CWD']
      : process.cwd(),
});
process.exitCode = code;
