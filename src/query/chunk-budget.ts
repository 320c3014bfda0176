/**
 * Bounds what reading one result chunk (up to 2,048 rows) may make in Node, measured
 * through DuckDB's C API before anything is converted: a query whose values are too large
 * fails with a `ResultTooLargeError` naming the column, instead of running the V8 heap
 * out of memory and taking the server down with every other query and write (a LIST of
 * 5,000 elements in each of 2,048 rows did so on a 200 MB heap).
 *
 * Counted per chunk, summed over its columns:
 * - values of columns without a fast path (`other` in `chunk-columns.ts`), which
 *   node-api turns into JS values: one per row, and within LIST, MAP, ARRAY, STRUCT,
 *   UNION and VARIANT one per element, field or member at every level;
 * - characters of text the strings among those values become (VARCHAR, BLOB, BIT,
 *   BIGNUM, GEOMETRY), reckoned from their bytes;
 * - bytes of VARCHAR columns, read on the fast path, and of BLOB columns in Arrow results
 *   (`binary`, read the same way).
 *
 * Nested columns of Arrow results (`nested-columns.ts`) are counted as `other` columns,
 * whole, before they are read: they make typed arrays rather than JS values, so this bound
 * is conservative for them, and it keeps one bound for every format.
 *
 * A nested column is measured in O(nesting depth) calls (a LIST's element count is its
 * child vector's size: DuckDB copies each streamed chunk with only the elements its rows
 * reference, whatever filter or LIMIT cut the rows; `chunk-budget.test.ts` checks it), plus one read of the 16-byte entries
 * of each string vector, which happens only while the values counted so far are within
 * the bound, so that measuring never costs more than converting would have.
 */
import duckdb from '@duckdb/node-bindings';
import { ResultTooLargeError } from '../errors.js';
import { isValid, readValidity } from './chunk-columns.js';

/**
 * Values of `other` columns per chunk. Rows are converted one at a time, but one row may
 * hold them all: a single row of 1 M list elements peaked at 115 MB of heap (~110 bytes a
 * value: node-api's objects, then the row's JSON text), 2,048 rows of 450 elements at
 * 18 MB. So ~100 MB per query converting at worst, ~500 MB with all five pooled
 * connections at it: an eighth of Node's default heap on a 64-bit server (4 GiB). A
 * dashboard's lists (a few hundred elements per row) stay far below it.
 */
export const MAX_CHUNK_VALUES = 1_000_000;

/**
 * Characters of text the strings within `other` values become, per chunk. Once converted
 * they cost ~1–6 bytes of heap each (JSON escapes control characters as `\u00XX`), but
 * node-api spells a BLOB, GEOMETRY or BIT value through an array of one string per
 * character, ~17 bytes of heap per character while that value is converted (one 32 MB
 * BLOB peaked at 2.1 GB): a single value at this bound peaks near 270 MB.
 */
export const MAX_CHUNK_NESTED_CHARS = 16_000_000;

/**
 * Bytes of VARCHAR columns per chunk (64 KiB a row of a full chunk). They stay off the V8
 * heap (one byte buffer per column, copied into the JSON body or sent as is in Arrow)
 * but for one string per value where CSV or a JSON escape needs it; the bound keeps the
 * few copies of a chunk (DuckDB's, the buffer, the encoded body) at a few hundred MB,
 * well below the 2 GiB the buffer's int32 offsets can address.
 */
export const MAX_CHUNK_TEXT_BYTES = 128 * 1024 * 1024;

/**
 * DuckDB types whose vectors hold 16-byte `string_t` entries (length, then inline bytes or
 * a pointer), and the most characters of text a byte of them becomes: a BLOB's or
 * GEOMETRY's byte may be a `\xNN` escape, a BIT's byte is 8 bits spelled `0` or `1`, a
 * BIGNUM's byte ~2.4 decimal digits.
 */
const CHARS_PER_BYTE = new Map([[duckdb.Type.VARCHAR, 1], [duckdb.Type.BLOB, 4], [duckdb.Type.GEOMETRY, 4], [duckdb.Type.BIT, 8], [duckdb.Type.BIGNUM, 3]]);

/** Total length in bytes of the non-NULL strings among the first `n` entries of `vector`, a vector of a CHARS_PER_BYTE type. */
function stringBytes(vector: duckdb.Vector, n: number): number {
  const entries = duckdb.vector_get_data(vector, n * 16);
  const view = new DataView(entries.buffer, entries.byteOffset, entries.byteLength);
  const valid = readValidity(vector, n);
  let total = 0;
  // The entry's first 4 bytes are the length, whether the bytes are inline or behind a pointer.
  for (let i = 0; i < n; i++) if (isValid(valid, i)) total += view.getUint32(i * 16, true);
  return total;
}

/** What converting a nested column can do instead; `column` is its name. */
function nestedAdvice(column: string): string {
  return `aggregate its elements (len(), list_aggregate(), list_slice()), unnest() them into rows, or CAST(${column} AS VARCHAR) in the query`;
}

/** `n` with thousands separators (`1,000,000`): bounds and counts read at a glance. */
function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** Running totals of one chunk against the bounds above. Make one per chunk. */
export class ChunkBudget {
  private values = 0;
  private nestedChars = 0;
  private textBytes = 0;

  /** `names`: the result's column names, for the error; `rows`: the chunk's row count. */
  constructor(private readonly names: readonly string[], private readonly rows: number) {}

  /**
   * Counts the values (and characters of text within them) node-api would make of column
   * `column`, whose vector is `vector`, one of the chunk's `other` columns.
   * @throws ResultTooLargeError once the chunk's values or characters exceed their bound.
   */
  other(vector: duckdb.Vector, column: number): void {
    this.measure(vector, this.rows, column);
  }

  /**
   * Counts `bytes` of VARCHAR text of column `column`, read on the fast path.
   * @throws ResultTooLargeError once the chunk's text exceeds MAX_CHUNK_TEXT_BYTES.
   */
  text(bytes: number, column: number): void {
    this.textBytes += bytes;
    if (this.textBytes <= MAX_CHUNK_TEXT_BYTES) return;
    const name = this.names[column];
    this.fail(column, `${count(this.textBytes)} bytes of text`, `${count(MAX_CHUNK_TEXT_BYTES)} (128 MiB)`,
      `select less of it (left(${name}, n)) or fewer rows (LIMIT)`);
  }

  /** Adds `n` entries of `vector` (of column `column`) and, recursively, what they hold. */
  private measure(vector: duckdb.Vector, n: number, column: number): void {
    this.values += n;
    if (this.values > MAX_CHUNK_VALUES) {
      this.fail(column, `${count(this.values)} values (rows, elements, fields)`, count(MAX_CHUNK_VALUES), nestedAdvice(this.names[column]));
    }
    const type = duckdb.vector_get_column_type(vector);
    const id = duckdb.get_type_id(type);
    switch (id) {
      case duckdb.Type.LIST: case duckdb.Type.MAP:
        this.measure(duckdb.list_vector_get_child(vector), duckdb.list_vector_get_size(vector), column);
        return;
      case duckdb.Type.ARRAY:
        this.measure(duckdb.array_vector_get_child(vector), n * duckdb.array_type_array_size(type), column);
        return;
      // A UNION's first child is its tag; a VARIANT is a STRUCT of four lists and a BLOB.
      case duckdb.Type.STRUCT: case duckdb.Type.UNION: case duckdb.Type.VARIANT: {
        const children = duckdb.struct_type_child_count(type);
        for (let i = 0; i < children; i++) this.measure(duckdb.struct_vector_get_child(vector, i), n, column);
        return;
      }
    }
    const chars = CHARS_PER_BYTE.get(id);
    if (chars === undefined || n === 0) return;
    this.nestedChars += chars * stringBytes(vector, n);
    if (this.nestedChars > MAX_CHUNK_NESTED_CHARS) {
      this.fail(column, `${count(this.nestedChars)} characters of text within its values`, count(MAX_CHUNK_NESTED_CHARS), nestedAdvice(this.names[column]));
    }
  }

  /**
   * Throws for column `column`, which brought the chunk to `what` (counting stops there,
   * hence "at least"), over `bound`; `advice` says how to reshape the query.
   */
  private fail(column: number, what: string, bound: string, advice: string): never {
    const rows = `${count(this.rows)} row${this.rows === 1 ? '' : 's'}`;
    throw new ResultTooLargeError(`result column "${this.names[column]}" is too large to send: at least ${what} in one chunk of ${rows}, `
      + `over the ${bound} Strata converts per chunk; ${advice}`);
  }
}
