// @selfalign/cli: the `selfalign` command, usable in-process too (runCli).

export { COMMANDS, runCli } from './cli.js';
export type { Command, CommandResult } from './command.js';
export { type Io, UsageError, UserError } from './io.js';
