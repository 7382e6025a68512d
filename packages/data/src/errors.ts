// Every problem with a data file is a DataError that names the file and, where it can, the
// column and the row (0-based over the whole file), so the message says what to fix.

export class DataError extends Error {
  override name = 'DataError';
  constructor(
    readonly reason: string,
    readonly file: string,
    readonly column?: string,
    readonly row?: number,
  ) {
    const where = [
      column !== undefined ? `column '${column}'` : '',
      row !== undefined ? `row ${row}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    super(`${file}${where ? ` (${where})` : ''}: ${reason}`);
  }
}
