// The `selfalign` command: dispatch, --help, --json, one-line errors and exit codes
// (0 ok, 1 bad input or failed run, 2 bad usage).
import { parseArgs } from 'node:util';
import { backendChoiceFromEnv, initBackend } from '@selfalign/core';
import { COMMON_OPTIONS, type Command } from './command.js';
import { adapters } from './commands/adapters.js';
import { alignCommand } from './commands/align.js';
import { bench } from './commands/bench.js';
import { collect } from './commands/collect.js';
import { demo } from './commands/demo.js';
import { diagnose } from './commands/diagnose.js';
import { evalCommand } from './commands/eval.js';
import { exportCommand } from './commands/export.js';
import { features } from './commands/features.js';
import { inspect } from './commands/inspect.js';
import { judgeCommand } from './commands/judge.js';
import { practiceCommand } from './commands/practice.js';
import { pretrainCommand } from './commands/pretrain.js';
import { results } from './commands/results.js';
import { retargetCommand } from './commands/retarget.js';
import { sample } from './commands/sample.js';
import { Args, explain, type Io, UsageError } from './io.js';

export const COMMANDS: readonly Command[] = [
  collect,
  features,
  pretrainCommand,
  alignCommand,
  practiceCommand,
  retargetCommand,
  judgeCommand,
  evalCommand,
  exportCommand,
  sample,
  adapters,
  inspect,
  bench,
  demo,
  results,
  diagnose,
];

function help(): string {
  return [
    'selfalign: robot policies that adapt themselves to a new robot (TTT-only alignment)',
    '',
    'usage: selfalign COMMAND [options]   (selfalign COMMAND --help for its options)',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    'every command takes --json (machine output) and --help; SELFALIGN_BACKEND picks the tfjs backend',
  ].join('\n');
}

/**
 * `--lr -1` -> `--lr=-1` for string options, so that a negative number reaches the command's
 * range check ("must be ...") instead of node's "argument is ambiguous".
 */
function joinNegativeValues(
  argv: readonly string[],
  options: Record<string, { type: string }>,
): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    const opt = a.startsWith('--') ? options[a.slice(2)] : undefined;
    if (opt?.type === 'string' && next !== undefined && /^-\d|^-\.\d|^-Infinity$/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

export async function runCli(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(help());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  try {
    if (command === undefined)
      throw new UsageError(
        `unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(', ')})`,
      );
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({
        args: joinNegativeValues(rest, { ...COMMON_OPTIONS, ...command.options }),
        options: { ...COMMON_OPTIONS, ...command.options },
        allowPositionals: true,
        strict: true,
      });
    } catch (err) {
      throw new UsageError(
        `${name}: ${(err as Error).message.split('\n')[0]} (see selfalign ${name} --help)`,
      );
    }
    const args = new Args(
      name,
      parsed.values as Record<string, string | boolean | undefined>,
      parsed.positionals,
      argv,
    );
    if (args.has('help')) {
      io.out(
        `${command.summary}\n\n${command.usage}\n  --json               machine-readable output\n  --help               this text`,
      );
      return 0;
    }
    if (parsed.positionals.length > (command.positionals ?? 0))
      throw new UsageError(`${name}: unexpected argument '${parsed.positionals.at(-1)}'`);
    await initBackend(backendChoiceFromEnv());
    const result = await command.run(args, io);
    if (args.has('json')) io.out(JSON.stringify(result.json));
    else for (const l of result.lines) io.out(l);
    return 0;
  } catch (err) {
    const [code, message] = explain(err);
    io.err(`selfalign: ${message}`);
    return code;
  }
}
