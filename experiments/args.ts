// The diagnostic scripts' flags: `--name value`, else the fallback.
export const arg = (name: string, fallback: string): string =>
  process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1]! : fallback;
