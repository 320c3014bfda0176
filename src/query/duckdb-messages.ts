/**
 * DuckDB error messages as clients see them: DuckDB names the local files it read (in
 * the data directory, the S3 cache, or footer stubs) and echoes the statement Strata
 * generated; neither is the client's business, the storage key of a file is.
 */

/**
 * A DuckDB error message without the excerpt of the statement it may end with: DuckDB
 * echoes the rewritten SQL ("LINE 1: … read_parquet(['/data/…"), internal paths the
 * user never wrote.
 */
export function withoutSqlExcerpt(message: string): string {
  return message.split('\n\nLINE ')[0].split('\nLINE ')[0];
}

/**
 * `text` with each local path in `keys` replaced by its storage key
 * (`db/measurement/YYYY/MM/DD/HH/x.parquet`): the data or cache directory a file lies
 * in is the server's own, the key is all a user needs to report a damaged file.
 */
export function withKeys(text: string, keys: ReadonlyMap<string, string>): string {
  // Every stored file is a .parquet: most texts (column names) are passed over at once.
  if (!text.includes('.parquet')) return text;
  let out = text;
  for (const [path, key] of keys) out = out.replaceAll(path, key);
  return out;
}

/**
 * The bound DuckDB names (`976.5 KiB`) when `message` is its error for a spill beyond
 * `max_temp_directory_size` ("Out of Memory Error: failed to offload data block of size
 * 256.0 KiB (768.0 KiB/976.5 KiB used). This limit was set by the
 * 'max_temp_directory_size' setting. …"); undefined for any other message.
 */
export function spillLimitOf(message: string): string | undefined {
  return message.startsWith('Out of Memory Error: failed to offload data block ') && message.includes("'max_temp_directory_size'")
    ? limitNamed(message) : undefined;
}

/**
 * The memory limit DuckDB names (`61.0 MiB`) when `message` is its error for an
 * allocation past `memory_limit`, by a query ("Out of Memory Error: failed to allocate
 * data of size 16.0 MiB (50.2 MiB/61.0 MiB used)") or an appender ("Failed to append:
 * could not allocate block of size 256.0 KiB (60.8 MiB/61.0 MiB used)"), either followed
 * by advice to SET settings the sandbox locks; undefined for any other message.
 */
export function memoryLimitOf(message: string): string | undefined {
  return message.startsWith('Out of Memory Error: failed to allocate data of size ') || message.startsWith('Failed to append: could not allocate block of size ')
    ? limitNamed(message) : undefined;
}

/** The bound in the "(used/bound used)" of the first line of DuckDB's out-of-memory `message`. */
function limitNamed(message: string): string | undefined {
  return /^[^\n]*\([^/\n]*\/([^()\n]*) used\)/.exec(message)?.[1];
}
