// What every command shares: the output streams, user errors (one line, exit code 2 for bad
// usage, 1 for bad input or a failed run; never a stack trace), typed flag access, and a
// progress bar with rate and ETA on stderr (only on a terminal, never with --json).
import { CheckpointError } from '@selfalign/core';
import { DataError } from '@selfalign/data';

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Raw text to stderr (progress bars). */
  raw: (text: string) => void;
  /** stderr is a terminal (progress bars are drawn). */
  tty: boolean;
  cwd: string;
}

/** A mistake in the command line: exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A failure the user can fix (bad file, mismatch): exit code 1. */
export class UserError extends Error {
  override name = 'UserError';
}

export type Flags = Record<string, string | boolean | undefined>;

export class Args {
  constructor(
    readonly command: string,
    readonly flags: Flags,
    readonly positionals: string[],
    /** The command line after `selfalign`, as given (recorded in checkpoints). */
    readonly argv: readonly string[] = [],
  ) {}

  has(name: string): boolean {
    return this.flags[name] !== undefined && this.flags[name] !== false;
  }

  str(name: string, fallback?: string): string {
    const v = this.flags[name];
    if (typeof v === 'string') return v;
    if (fallback !== undefined) return fallback;
    throw new UsageError(
      `${this.command}: --${name} is required (see selfalign ${this.command} --help)`,
    );
  }

  optStr(name: string): string | undefined {
    const v = this.flags[name];
    return typeof v === 'string' ? v : undefined;
  }

  num(
    name: string,
    fallback?: number,
    check: (n: number) => boolean = Number.isFinite,
    what = 'a number',
  ): number {
    const v = this.flags[name];
    if (v === undefined) {
      if (fallback !== undefined) return fallback;
      throw new UsageError(
        `${this.command}: --${name} is required (see selfalign ${this.command} --help)`,
      );
    }
    const n = Number(v);
    if (typeof v !== 'string' || v.trim() === '' || !check(n))
      throw new UsageError(`${this.command}: --${name} must be ${what}, got '${v}'`);
    return n;
  }

  /** A learning rate: finite, in (0, 1]. */
  lr(name: string, fallback?: number): number {
    return this.num(
      name,
      fallback,
      (n) => Number.isFinite(n) && n > 0 && n <= 1,
      'a number in (0, 1]',
    );
  }

  /** A share: a number in [0, 1]. */
  share(name: string, fallback?: number): number {
    return this.num(name, fallback, (n) => n >= 0 && n <= 1, 'a share in [0, 1]');
  }

  int(name: string, fallback?: number, min = 0): number {
    return this.num(name, fallback, (n) => Number.isInteger(n) && n >= min, `an integer >= ${min}`);
  }

  choice<T extends string>(name: string, choices: readonly T[], fallback?: T): T {
    const v = this.str(name, fallback);
    if (!choices.includes(v as T))
      throw new UsageError(
        `${this.command}: --${name} must be one of ${choices.join(', ')}, got '${v}'`,
      );
    return v as T;
  }

  list(name: string, fallback?: string[]): string[] {
    const v = this.optStr(name);
    if (v === undefined) {
      if (fallback) return fallback;
      throw new UsageError(
        `${this.command}: --${name} is required (see selfalign ${this.command} --help)`,
      );
    }
    return v
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  }
}

/** Turns any error into (exit code, one line). */
export function explain(err: unknown): [number, string] {
  if (err instanceof UsageError) return [2, err.message];
  if (err instanceof UserError || err instanceof DataError || err instanceof CheckpointError)
    return [1, err.message];
  const e = err as Error;
  if (e?.name === 'BackendError' || e?.name === 'ShapeError') return [1, e.message];
  return [
    1,
    `internal error: ${e?.message ?? String(err)} (please report it with the command line)`,
  ];
}

/**
 * Progress of a long step on stderr: a bar with rate and ETA on a terminal; elsewhere (a log
 * file, `nohup`) a plain line at most once a minute, and a last one at the end when any was
 * written, so a background run shows where it is without flooding its log. Never with --json:
 * callers pass `enabled` false then.
 */
export class Progress {
  private done = 0;
  private readonly start = performance.now();
  private last = 0;
  private lines = 0;
  private closed = false;

  constructor(
    private readonly io: Io,
    private readonly label: string,
    private readonly total: number,
    private readonly enabled: boolean,
    /** Least time between two plain lines off a terminal (default one minute). */
    private readonly lineEveryMs = 60_000,
  ) {}

  tick(n = 1, note = ''): void {
    this.done += n;
    if (!this.enabled) return;
    const now = performance.now();
    const finished = this.done >= this.total;
    const secs = (now - this.start) / 1000;
    const rate = this.done / Math.max(secs, 1e-9);
    const eta = rate > 0 ? (this.total - this.done) / rate : Number.POSITIVE_INFINITY;
    const etaText = Number.isFinite(eta) ? `${eta.toFixed(0)}s` : '?';
    if (!this.io.tty) {
      const since = now - (this.lines > 0 ? this.last : this.start);
      const due = since >= this.lineEveryMs || (finished && this.lines > 0);
      if (!due || this.closed) return;
      this.last = now;
      this.lines++;
      this.closed = finished;
      this.io.err(
        `${this.label}: ${this.done}/${this.total} after ${secs.toFixed(0)}s (${rate.toFixed(2)}/s, ETA ${etaText})${note ? ` ${note}` : ''}`,
      );
      return;
    }
    if (now - this.last < 100 && !finished) return;
    this.last = now;
    const width = 24;
    const filled = Math.round((width * this.done) / Math.max(1, this.total));
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    this.io.raw(
      `\r${this.label} [${bar}] ${this.done}/${this.total} ${rate.toFixed(1)}/s ETA ${etaText} ${note}`.padEnd(
        100,
      ),
    );
  }

  end(): void {
    if (this.enabled && this.io.tty) this.io.raw('\n');
  }
}
