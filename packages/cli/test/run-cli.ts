// The tests' way to run `selfalign` in-process in a folder: its exit code, its stdout joined,
// its stderr lines, the last stderr line, and the last stdout line as JSON (for --json).
import { runCli } from '../src/cli.js';

export async function runIn(cwd: string, ...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    raw: () => undefined,
    tty: false,
    cwd,
  });
  return {
    code,
    out: out.join('\n'),
    err,
    last: err.at(-1) ?? '',
    json: () => JSON.parse(out.at(-1) ?? 'null'),
  };
}
