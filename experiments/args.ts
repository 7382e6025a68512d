import { readFileSync, writeFileSync } from 'node:fs';
// The diagnostic scripts' flags: `--name value`, else the fallback.
export const arg = (name: string, fallback: string): string =>
  process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1]! : fallback;

/** The rows of the raw JSON files (`{ rows: [...] }`) that a flag names, comma-separated. */
export const rowsOf = (files: string): Record<string, unknown>[] =>
  files
    .split(',')
    .filter(Boolean)
    .flatMap(
      (f) => (JSON.parse(readFileSync(f, 'utf8')) as { rows: Record<string, unknown>[] }).rows,
    );

/** A raw row of a results run with retarget's pick: its candidates as tried, in order. */
export interface PickCandidate {
  name: string;
  success: number;
  distance: number;
  /** Mean closest approach (raw rows since `--retarget-pick-by`). */
  approach?: number;
}
export type PickRow = Record<string, unknown> & {
  target: string;
  seed: number;
  method: string;
  success: number;
  pick?: string;
  candidates?: PickCandidate[];
};

/**
 * Writes rows derived from raw files as a raw file `results --merge` reads: the header
 * (checkpoint, step, episodes, task) of the first file `from` names (a flag's comma-separated
 * list), and `command` saying how the rows were derived.
 */
export function writeDerived(out: string, from: string, command: string, rows: unknown[]): void {
  const { rows: _, ...header } = JSON.parse(readFileSync(from.split(',')[0]!, 'utf8')) as Record<
    string,
    unknown
  >;
  writeFileSync(out, `${JSON.stringify({ ...header, command, rows }, null, 1)}\n`);
  console.log(`wrote ${out}: ${rows.length} rows`);
}
