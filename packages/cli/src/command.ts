// The shape of a command: its options for node:util.parseArgs, a help text, and a run that
// returns what to print (human lines, and the object printed with --json).
import type { ParseArgsConfig } from 'node:util';
import type { Args, Io } from './io.js';

export interface CommandResult {
  lines: string[];
  json: unknown;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** Positional arguments allowed (default 0). */
  positionals?: number;
  run(args: Args, io: Io): Promise<CommandResult>;
}

export const COMMON_OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;
