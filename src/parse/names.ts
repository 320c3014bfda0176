/**
 * Rules for database, measurement, tag and field names.
 *
 * Databases and measurements become directory names, so the names that would escape
 * the data directory (`.`, `..`, anything with `/` or NUL) are refused; every other
 * character is accepted (Telegraf sends dotted names such as `net.bytes`) and the
 * ones file systems or globs dislike are percent-encoded on disk by
 * `encodePathSegment`.
 */

/** What a name is for; used in error messages. */
export type NameKind = 'database' | 'measurement' | 'tag key' | 'field key';

/** Longest accepted name, in UTF-16 code units. */
export const MAX_NAME_LENGTH = 200;

/**
 * Longest database or measurement directory name in bytes, once encoded: file systems
 * allow 255 bytes per path segment, and a file name is the measurement plus about 60
 * bytes of time stamp, row count, node id and extension.
 */
export const MAX_SEGMENT_BYTES = 180;

/**
 * DuckDB compares identifiers case-insensitively in ASCII only (`"É"` does not match
 * `"é"`): `Usage` and `usage` name one column of a table or Parquet file, `É` and `é` two.
 */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * `time` in any ASCII case (without the `u` flag, `i` maps no other letter to an ASCII
 * one, as `asciiLower`). A test, not `asciiLower(name) === 'time'`: MessagePack row items
 * check every key of every record, and the replace cost a third of their decoding.
 */
const TIME_ANY_CASE = /^time$/i;

/**
 * Returns why `name` is not acceptable as a `kind`, or `undefined` when it is.
 * Tag and field keys may not be `time`, which is the time column, nor any spelling of
 * it in another case (`Time`), which DuckDB takes for the same column.
 */
export function nameError(kind: NameKind, name: string): string | undefined {
  if (name.length === 0) return `empty ${kind}`;
  if (name.length > MAX_NAME_LENGTH) return `${kind} longer than ${MAX_NAME_LENGTH} characters`;
  if (name.includes('\u0000')) return `${kind} contains a NUL character`;
  if (kind === 'database' || kind === 'measurement') {
    if (name === '.' || name === '..') return `${kind} "${name}" is not allowed`;
    if (name.includes('/')) return `${kind} "${name}" contains "/"`;
    if (Buffer.byteLength(encodePathSegment(name)) > MAX_SEGMENT_BYTES) return `${kind} longer than ${MAX_SEGMENT_BYTES} bytes as a directory name`;
  } else if (name === 'time') {
    return `${kind} "time" is reserved for the timestamp`;
  } else if (TIME_ANY_CASE.test(name)) {
    return `${kind} "${name}" clashes with the timestamp column "time" (column names are case-insensitive)`;
  }
  return undefined;
}

// Characters that are unsafe in a path segment on some file system, in an S3 key, or
// in a DuckDB glob; `%` itself so that decoding is unambiguous.
const UNSAFE = /[\u0000-\u001f\u007f%\\:*?"<>|[\]{}#]|^\./g;

/** Encodes a database or measurement name as a directory name (reversible with `decodePathSegment`). */
export function encodePathSegment(name: string): string {
  return name.replace(UNSAFE, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'));
}

/** Inverse of `encodePathSegment`. */
export function decodePathSegment(segment: string): string {
  return segment.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
