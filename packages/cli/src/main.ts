#!/usr/bin/env node
// Entry point of the `selfalign` binary.
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2), {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
  raw: (t) => process.stderr.write(t),
  tty: Boolean(process.stderr.isTTY),
  cwd: process.cwd(),
});
process.exitCode = code;
