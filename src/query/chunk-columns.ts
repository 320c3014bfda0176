/**
 * Reads DuckDB result DataChunks as plain columns: numeric, boolean, timestamp and
 * date vectors are copied out as typed arrays (`vector_get_data`, one memcpy per
 * column per chunk), strings straight from DuckDB's 16-byte `string_t` entries into
 * one UTF-8 byte buffer with Arrow-style offsets, and validity as an Arrow-style
 * bitmap (DuckDB's mask is little-endian 64-bit words, bit i = row i valid — the
 * same bit order as Arrow's). This is the shared front end of the JSON, CSV and
 * Arrow encoders; going through `getColumns()` instead costs ~20× more
 * (../shared/notes/hot-path.md, "DuckDB from Node").
 *
 * Conversions: TIMESTAMP_S and _MS become µs (±infinity kept), TIMESTAMP_NS stays ns
 * (`timestamp_ns`, so no digit is lost); ENUM becomes its string.
 * With `DecimalMode` `arrow`, as Arc's Arrow path (Grafana cannot read decimals):
 * DECIMAL(p, 0) of any width, HUGEINT and UHUGEINT become int64 (`i64`; Arc sees the
 * 128-bit integers as DECIMAL(38, 0), which DuckDB's `sum` of integers returns), other
 * decimals float64; a value outside int64 fails the query, and BLOB, LIST, ARRAY, MAP and
 * STRUCT are read as Arrow lays them out (`nested-columns.ts`). Types without a fast path
 * (INTERVAL, UUID, and in `exact` mode LIST, STRUCT, …) come out as `other`: node-api's
 * values, one row at a time, as JSON text.
 *
 * What a chunk may hold is bounded (`chunk-budget.ts`): a column too large fails the
 * query before it is read.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import duckdb from '@duckdb/node-bindings';
import { ResultValueError } from '../errors.js';
import type { ChunkBudget } from './chunk-budget.js';
import { jsonValue, microsFromUnit } from './json-result.js';
import { readNested } from './nested-columns.js';
import { nestedText } from './nested-text.js';
import { positionalItems, readByPosition } from './unnamed-structs.js';
import { DuckDBTypeId, DuckDBVector, type DuckDBDataChunk, type DuckDBDecimalType, type DuckDBEnumType, type DuckDBType } from '@duckdb/node-api';

/** Arrow-style validity bitmap (bit i of byte i>>3 = row i valid), or null when every row is valid. */
export type Validity = Uint8Array | null;

/** One result column of one chunk. `valid` applies to every kind but `other` (whose nulls are null texts). */
export type Column =
  | { kind: 'f64'; values: Float64Array; valid: Validity }
  | { kind: 'f32'; values: Float32Array; valid: Validity }
  | { kind: 'i8'; values: Int8Array; valid: Validity }
  | { kind: 'i16'; values: Int16Array; valid: Validity }
  | { kind: 'i32'; values: Int32Array; valid: Validity }
  | { kind: 'u8'; values: Uint8Array; valid: Validity }
  | { kind: 'u16'; values: Uint16Array; valid: Validity }
  | { kind: 'u32'; values: Uint32Array; valid: Validity }
  | { kind: 'i64'; values: BigInt64Array; valid: Validity }
  | { kind: 'u64'; values: BigUint64Array; valid: Validity }
  /** One byte per row, 0 or 1. */
  | { kind: 'bool'; values: Uint8Array; valid: Validity }
  /** µs since the epoch; `tz` when the SQL type is TIMESTAMPTZ. */
  | { kind: 'timestamp'; values: BigInt64Array; valid: Validity; tz: boolean }
  /** ns since the epoch (TIMESTAMP_NS, which has no time zone variant); ±infinity as ±(2^63 − 1). */
  | { kind: 'timestamp_ns'; values: BigInt64Array; valid: Validity }
  /** Days since the epoch. */
  | { kind: 'date'; values: Int32Array; valid: Validity }
  /** UTF-8 bytes of row i are `data[offsets[i] .. offsets[i+1])`. */
  | { kind: 'utf8'; offsets: Int32Array; data: Uint8Array; valid: Validity }
  /** BLOB (read for Arrow only): bytes of row i are `data[offsets[i] .. offsets[i+1])`. */
  | { kind: 'binary'; offsets: Int32Array; data: Uint8Array; valid: Validity }
  /**
   * LIST and MAP (read for Arrow only; a MAP's `child` is a `struct` of key and value): row
   * i's elements are rows `offsets[i] .. offsets[i+1])` of `child`, none for a NULL row.
   */
  | { kind: 'list'; offsets: Int32Array; child: Column; valid: Validity }
  /** ARRAY (read for Arrow only): row i's elements are rows `i·size .. (i+1)·size` of `child`, NULL under a NULL row. */
  | { kind: 'fixed_list'; size: number; child: Column; valid: Validity }
  /** STRUCT (read for Arrow only): one column of as many rows per field, NULL under a NULL row. */
  | { kind: 'struct'; children: Column[]; valid: Validity }
  /**
   * Each row's value as JSON text (`jsonValue`), null for NULL; for nested types (LIST,
   * ARRAY, STRUCT, MAP, UNION) also `plain`, their text for CSV and Arrow (`[1, 2]`).
   */
  | { kind: 'other'; texts: (string | null)[]; plain?: (string | null)[] };

/** A `Column`'s representation (`f64`, `utf8`, `timestamp`, `other`, …), as the encoders switch on it. */
export type ColumnKind = Column['kind'];

/**
 * How DECIMAL (and 128-bit integer) columns are read: `arrow` converts them as Arc's
 * Arrow path does (scale 0 → int64, else float64); `exact` keeps DuckDB's values (as
 * `other`) so JSON and CSV can print them digit for digit. `arrow` also reads BLOB, LIST,
 * ARRAY, MAP and STRUCT as Arrow lays them out (`binary`, `list`, `fixed_list`, `struct`:
 * `nested-columns.ts`), where `exact` reads them as `other` text.
 */
export type DecimalMode = 'arrow' | 'exact';

/** The column kind a DuckDB result type is read as (stable across chunks, so encoders can plan once). */
export function kindOf(type: DuckDBType, decimals: DecimalMode): ColumnKind {
  switch (type.typeId) {
    case DuckDBTypeId.DOUBLE: return 'f64';
    case DuckDBTypeId.FLOAT: return 'f32';
    case DuckDBTypeId.TINYINT: return 'i8';
    case DuckDBTypeId.SMALLINT: return 'i16';
    case DuckDBTypeId.INTEGER: return 'i32';
    case DuckDBTypeId.UTINYINT: return 'u8';
    case DuckDBTypeId.USMALLINT: return 'u16';
    case DuckDBTypeId.UINTEGER: return 'u32';
    case DuckDBTypeId.BIGINT: return 'i64';
    case DuckDBTypeId.UBIGINT: return 'u64';
    case DuckDBTypeId.BOOLEAN: return 'bool';
    case DuckDBTypeId.TIMESTAMP: case DuckDBTypeId.TIMESTAMP_TZ: case DuckDBTypeId.TIMESTAMP_S:
    case DuckDBTypeId.TIMESTAMP_MS: return 'timestamp';
    case DuckDBTypeId.TIMESTAMP_NS: return 'timestamp_ns';
    case DuckDBTypeId.DATE: return 'date';
    case DuckDBTypeId.VARCHAR: case DuckDBTypeId.ENUM: return 'utf8';
    case DuckDBTypeId.HUGEINT: case DuckDBTypeId.UHUGEINT: return decimals === 'arrow' ? 'i64' : 'other';
    case DuckDBTypeId.DECIMAL:
      if (decimals === 'exact') return 'other';
      return (type as DuckDBDecimalType).scale === 0 ? 'i64' : 'f64';
    case DuckDBTypeId.BLOB: return decimals === 'arrow' ? 'binary' : 'other';
    case DuckDBTypeId.LIST: case DuckDBTypeId.MAP: return decimals === 'arrow' ? 'list' : 'other';
    case DuckDBTypeId.ARRAY: return decimals === 'arrow' ? 'fixed_list' : 'other';
    case DuckDBTypeId.STRUCT: return decimals === 'arrow' ? 'struct' : 'other';
    default: return 'other';
  }
}

const encoder = new TextEncoder();

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Reads column `index` (of SQL type `type`) of `chunk`; its kind is `kindOf(type, decimals)`.
 * `budget` is the chunk's (one for all its columns).
 * @throws ResultTooLargeError when the column brings the chunk over a bound of `budget`;
 *   ResultValueError for a 128-bit value outside int64 in `arrow` mode.
 */
export function readColumn(chunk: DuckDBDataChunk, index: number, type: DuckDBType, decimals: DecimalMode, budget: ChunkBudget): Column {
  return readVector(duckdb.data_chunk_get_vector(chunk.chunk, index), chunk.rowCount, type, decimals, budget, index);
}

/**
 * The first `n` rows of the flat `vector` (of SQL type `type`) as `readColumn` reads a
 * chunk's column `index`. `budget` null: what the vector holds is already counted (the
 * elements of a nested column, `nested-columns.ts`).
 * @throws as `readColumn`.
 */
export function readVector(vector: duckdb.Vector, n: number, type: DuckDBType, decimals: DecimalMode, budget: ChunkBudget | null, index: number): Column {
  const valid = readValidity(vector, n);
  const data = (bytes: number): Uint8Array => duckdb.vector_get_data(vector, bytes);
  // `vector_get_data` already returns a copy (a Buffer of its own, offset 0), detached from
  // DuckDB's chunk memory, which is freed with the chunk: viewed as is, not copied again.
  const copy = <T>(make: new (b: ArrayBuffer, o: number, l: number) => T, width: number): T => {
    const bytes = data(n * width);
    return new make(bytes.buffer as ArrayBuffer, bytes.byteOffset, n);
  };
  switch (type.typeId) {
    case DuckDBTypeId.DOUBLE: return { kind: 'f64', values: copy(Float64Array, 8), valid };
    case DuckDBTypeId.FLOAT: return { kind: 'f32', values: copy(Float32Array, 4), valid };
    case DuckDBTypeId.TINYINT: return { kind: 'i8', values: copy(Int8Array, 1), valid };
    case DuckDBTypeId.SMALLINT: return { kind: 'i16', values: copy(Int16Array, 2), valid };
    case DuckDBTypeId.INTEGER: return { kind: 'i32', values: copy(Int32Array, 4), valid };
    case DuckDBTypeId.UTINYINT: return { kind: 'u8', values: copy(Uint8Array, 1), valid };
    case DuckDBTypeId.USMALLINT: return { kind: 'u16', values: copy(Uint16Array, 2), valid };
    case DuckDBTypeId.UINTEGER: return { kind: 'u32', values: copy(Uint32Array, 4), valid };
    case DuckDBTypeId.BIGINT: return { kind: 'i64', values: copy(BigInt64Array, 8), valid };
    case DuckDBTypeId.UBIGINT: return { kind: 'u64', values: copy(BigUint64Array, 8), valid };
    case DuckDBTypeId.BOOLEAN: return { kind: 'bool', values: copy(Uint8Array, 1), valid };
    case DuckDBTypeId.DATE: return { kind: 'date', values: copy(Int32Array, 4), valid };
    case DuckDBTypeId.TIMESTAMP: case DuckDBTypeId.TIMESTAMP_TZ:
      return { kind: 'timestamp', values: copy(BigInt64Array, 8), valid, tz: type.typeId === DuckDBTypeId.TIMESTAMP_TZ };
    case DuckDBTypeId.TIMESTAMP_S: case DuckDBTypeId.TIMESTAMP_MS: {
      const values = copy(BigInt64Array, 8);
      const unit = type.typeId === DuckDBTypeId.TIMESTAMP_S ? 's' : 'ms';
      for (let i = 0; i < n; i++) values[i] = microsFromUnit(values[i], unit);
      return { kind: 'timestamp', values, valid, tz: false };
    }
    case DuckDBTypeId.TIMESTAMP_NS: return { kind: 'timestamp_ns', values: copy(BigInt64Array, 8), valid };
    case DuckDBTypeId.VARCHAR: return readStrings(data(n * 16), n, valid, budget, index);
    case DuckDBTypeId.ENUM: return readEnum(type as DuckDBEnumType, data, n, valid);
    case DuckDBTypeId.HUGEINT: case DuckDBTypeId.UHUGEINT:
      if (decimals === 'arrow') return { kind: 'i64', values: int64From128(data(n * 16), n, valid, type.typeId === DuckDBTypeId.UHUGEINT), valid };
      break;
    case DuckDBTypeId.DECIMAL: {
      const t = type as DuckDBDecimalType;
      if (decimals === 'exact') break;
      // Wider than 18 digits, the unscaled value is a 128-bit integer.
      if (t.width > 18 && t.scale === 0) return { kind: 'i64', values: int64From128(data(n * 16), n, valid, false), valid };
      if (t.width > 18) return { kind: 'f64', values: Float64Array.from(DuckDBVector.create(vector, n, type).toArray(), (v) => (v === null ? 0 : Number(String(v)))), valid };
      const raw = t.width <= 4 ? copy(Int16Array, 2) : t.width <= 9 ? copy(Int32Array, 4) : copy(BigInt64Array, 8);
      if (t.scale === 0) return { kind: 'i64', values: BigInt64Array.from(raw as ArrayLike<number | bigint>, BigInt), valid };
      const div = 10 ** t.scale;
      const values = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v = raw[i];
        // An exact integer over an exact power of ten is one correctly rounded division. Past
        // 2^53 the integer itself would be rounded first, landing up to 1 ulp off the nearest
        // double (DuckDB's CAST AS DOUBLE); its text is parsed instead.
        values[i] = typeof v === 'number' || (v <= MAX_SAFE && v >= -MAX_SAFE) ? Number(v) / div : Number(`${v}e-${t.scale}`);
      }
      return { kind: 'f64', values, valid };
    }
    case DuckDBTypeId.BLOB:
      if (decimals === 'arrow') return { kind: 'binary', ...copyStrings(data(n * 16), n, valid, budget, index), valid };
      break;
    case DuckDBTypeId.LIST: case DuckDBTypeId.MAP: case DuckDBTypeId.ARRAY: case DuckDBTypeId.STRUCT:
      if (decimals === 'arrow') {
        // Counted whole here, at every level, so their reading counts nothing more.
        budget?.other(vector, index);
        return readNested(vector, n, type, index);
      }
      break;
  }
  budget?.other(vector, index);
  return otherColumn(vector, n, type);
}

/**
 * Types whose one value can be large (nested, or of variable length), of those read as
 * `other`: node-api vectors of them keep every item read, so they are read through a
 * slice of one row, which costs a few hundred ns a row; the others (INTERVAL, UUID,
 * HUGEINT, …) straight.
 */
const LARGE_VALUE_TYPES = new Set([DuckDBTypeId.LIST, DuckDBTypeId.MAP, DuckDBTypeId.ARRAY, DuckDBTypeId.STRUCT, DuckDBTypeId.UNION,
  DuckDBTypeId.VARIANT, DuckDBTypeId.BLOB, DuckDBTypeId.BIT, DuckDBTypeId.BIGNUM, DuckDBTypeId.GEOMETRY]);

/** Nested types (and VARIANT, which may hold one): JSON arrays and objects in JSON, their text form in CSV and Arrow. */
const NESTED_TYPES = new Set([DuckDBTypeId.LIST, DuckDBTypeId.ARRAY, DuckDBTypeId.STRUCT, DuckDBTypeId.MAP, DuckDBTypeId.UNION, DuckDBTypeId.VARIANT]);

/**
 * The `n` rows of `vector` (of SQL type `type`) as an `other` column, converted by node-api
 * one row at a time, so that one row's values are alive at once, not the chunk's: they take
 * ~35–110 bytes of heap per value (element, field) against ~5–15 for their text (2,048 rows
 * of 450-element lists peaked at 18 MB of heap, 53 MB read whole).
 */
function otherColumn(vector: duckdb.Vector, n: number, type: DuckDBType): Column {
  const values = DuckDBVector.create(vector, n, type);
  const sliced = LARGE_VALUE_TYPES.has(type.typeId);
  const texts = new Array<string | null>(n);
  const plain = NESTED_TYPES.has(type.typeId) ? new Array<string | null>(n) : undefined;
  if (readByPosition(type)) {
    const items = positionalItems(vector, n, type);
    for (let i = 0; i < n; i++) {
      texts[i] = items.valid(i) ? items.json(i) : null;
      plain![i] = items.valid(i) ? items.text(i) : null;
    }
    return { kind: 'other', texts, plain };
  }
  for (let i = 0; i < n; i++) {
    const v = sliced ? values.slice(i, 1).getItem(0) : values.getItem(i);
    texts[i] = v === null ? null : jsonValue(v, type);
    if (plain !== undefined) plain[i] = v === null ? null : nestedText(v, type);
  }
  return plain === undefined ? { kind: 'other', texts } : { kind: 'other', texts, plain };
}

const TWO_63 = 1n << 63n;

/**
 * 128-bit integers (DuckDB's `hugeint_t`/`uhugeint_t`: low 64 bits unsigned, then the
 * high 64 bits) as int64, for Arrow, as Arc narrows them.
 * @throws ResultValueError for a valid row outside the int64 range: narrowing it
 *   would be a wrong number.
 */
function int64From128(entries: Uint8Array, n: number, valid: Validity, unsigned: boolean): BigInt64Array {
  const words = new BigUint64Array(entries.buffer, entries.byteOffset, n * 2);
  const values = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    if (!isValid(valid, i)) continue;
    const low = words[2 * i];
    const high = words[2 * i + 1];
    // Within int64: high is all zeros (low < 2^63) or, for a negative signed value, all ones (low ≥ 2^63).
    if (high === 0n ? low >= TWO_63 : unsigned || high !== 0xffffffffffffffffn || low < TWO_63) {
      throw new ResultValueError('a 128-bit integer or DECIMAL(p, 0) value is outside the int64 range Arrow results use for it (as Arc does); cast it in the query, e.g. ::DOUBLE or ::VARCHAR');
    }
    values[i] = BigInt.asIntN(64, low);
  }
  return values;
}

/** DuckDB's validity words of the first `n` rows of `vector` as an Arrow bitmap; null when every row is valid. */
export function readValidity(vector: duckdb.Vector, n: number): Validity {
  const words = Math.ceil(n / 64);
  const mask = duckdb.vector_get_validity(vector, words * 8);
  if (!mask) return null;
  // A copy already (as `vector_get_data`'s), so a view of it is enough.
  const bytes = mask.subarray(0, Math.ceil(n / 8));
  // A mask may exist with every bit set: report that as "all valid" so encoders skip checks.
  for (let i = 0; i < bytes.length; i++) {
    const full = i === bytes.length - 1 && n % 8 !== 0 ? (1 << n % 8) - 1 : 0xff;
    if ((bytes[i] & full) !== full) return bytes;
  }
  return null;
}

/**
 * Reads VARCHAR `string_t` entries (`copyStrings`) as a `utf8` column, each invalid UTF-8
 * sequence replaced by U+FFFD.
 * @throws ResultTooLargeError beyond the budget.
 */
function readStrings(stringEntries: Uint8Array, n: number, valid: Validity, budget: ChunkBudget | null, index: number): Column {
  const { offsets, data } = copyStrings(stringEntries, n, valid, budget, index);
  // DuckDB checks text it reads, but a function may make invalid UTF-8 (printf('%c', 200)):
  // JSON (RFC 8259 §8.1), CSV and Arrow's Utf8 all promise UTF-8. One check of the column's
  // bytes a chunk; valid as a whole, a value is invalid alone only where a sequence crosses
  // into the next value, which then starts with a continuation byte (none in ASCII).
  if (!isAscii(data) && (!isUtf8(data) || startsMidSequence(offsets, data, n))) return withReplacementCharacters(offsets, data, valid, budget, index);
  return { kind: 'utf8', offsets, data, valid };
}

/**
 * Decodes `string_t` entries (16 bytes, little-endian; VARCHAR and BLOB): length (u32), then
 * ≤ 12 bytes inline, or a 4-byte prefix and a pointer, into Arrow-style int32 `offsets` and
 * one byte buffer (a NULL row has no bytes). Their total is counted in `budget` (as column
 * `index`) before any is copied.
 *
 * Inline strings are copied in 32-bit words. Pointed-to strings are copied one run at a time:
 * DuckDB usually keeps a vector's strings one after the other in memory (a Parquet page, a
 * string heap), and each copy through the bindings (`get_data_from_pointer`) costs ~0.9 µs
 * whatever its length, so copying them one by one took ~750 ns a string. A run only spans
 * bytes of its own strings, so no memory outside them is read.
 * @throws ResultTooLargeError beyond the budget (which also keeps the int32 offsets from wrapping).
 */
function copyStrings(stringEntries: Uint8Array, n: number, valid: Validity, budget: ChunkBudget | null, index: number): { offsets: Int32Array; data: Uint8Array } {
  // 32-bit words need a 4-byte aligned view (`vector_get_data` returns a Buffer of its own, at 0).
  const entries = stringEntries.byteOffset % 4 === 0 ? stringEntries : new Uint8Array(stringEntries);
  const words = new Uint32Array(entries.buffer, entries.byteOffset, n * 4);
  const offsets = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (valid === null || (valid[i >>> 3] & (1 << (i & 7))) !== 0) total += words[i * 4];
    offsets[i + 1] = total;
  }
  budget?.text(total, index);
  // Room for a whole last word past the end of the last inline string.
  const bytes = new Uint8Array(total + 12);
  const view = new DataView(bytes.buffer);
  // The run of pointed-to strings being gathered: its first and last rows (every string over
  // 12 bytes between them belongs to it: another would have ended it), its bytes' next
  // address in DuckDB's memory and their length, and whether they also follow each other in
  // `bytes`. First -1: none.
  let runFirst = -1;
  let runLast = -1;
  let runEnd = 0;
  let runLength = 0;
  let together = true;
  const copyRun = (): void => {
    const from = duckdb.get_data_from_pointer(entries.buffer as ArrayBuffer, entries.byteOffset + runFirst * 16 + 8, runLength);
    if (together) return bytes.set(from, offsets[runFirst]);
    for (let r = runFirst, at = 0; r <= runLast; r++) {
      const len = offsets[r + 1] - offsets[r];
      if (len <= 12) continue;
      bytes.set(from.subarray(at, at + len), offsets[r]);
      at += len;
    }
  };
  for (let i = 0; i < n; i++) {
    const to = offsets[i];
    const len = offsets[i + 1] - to;
    if (len === 0) continue;
    const w = i * 4;
    if (len <= 12) {
      view.setUint32(to, words[w + 1], true);
      if (len > 4) view.setUint32(to + 4, words[w + 2], true);
      if (len > 8) view.setUint32(to + 8, words[w + 3], true);
      continue;
    }
    // Below 2^53: user-space addresses are.
    const pointer = words[w + 2] + words[w + 3] * 4294967296;
    if (runFirst >= 0 && pointer === runEnd) {
      together &&= to === offsets[runFirst] + runLength;
      runLast = i;
      runEnd += len;
      runLength += len;
      continue;
    }
    if (runFirst >= 0) copyRun();
    runFirst = runLast = i;
    runEnd = pointer + len;
    runLength = len;
    together = true;
  }
  if (runFirst >= 0) copyRun();
  return { offsets, data: bytes.subarray(0, total) };
}

/** Whether a non-empty value of the `n` in `data` starts with a UTF-8 continuation byte (10xxxxxx). */
function startsMidSequence(offsets: Int32Array, data: Uint8Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (offsets[i + 1] > offsets[i] && (data[offsets[i]] & 0xc0) === 0x80) return true;
  return false;
}

/**
 * The strings `data[offsets[i], offsets[i + 1])` with each invalid UTF-8 sequence replaced
 * by U+FFFD, as a UTF-8 decoder does (WHATWG); the bytes this adds are counted in `budget`.
 */
function withReplacementCharacters(offsets: Int32Array, data: Uint8Array, valid: Validity, budget: ChunkBudget | null, index: number): Column {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const strings = Array.from({ length: offsets.length - 1 }, (_, i) => Buffer.from(bytes.toString('utf8', offsets[i], offsets[i + 1]), 'utf8'));
  const fixed = new Int32Array(offsets.length);
  strings.forEach((s, i) => (fixed[i + 1] = fixed[i] + s.length));
  budget?.text(fixed[fixed.length - 1] - data.length, index);
  return { kind: 'utf8', offsets: fixed, data: Buffer.concat(strings), valid };
}

/** ENUM indexes (u8/u16/u32 by dictionary size) resolved to their strings. */
function readEnum(type: DuckDBEnumType, data: (bytes: number) => Uint8Array, n: number, valid: Validity): Column {
  const width = type.internalTypeId === DuckDBTypeId.UTINYINT ? 1 : type.internalTypeId === DuckDBTypeId.USMALLINT ? 2 : 4;
  const raw = data(n * width);
  const indexes = width === 1 ? raw : width === 2 ? new Uint16Array(raw.buffer, raw.byteOffset, n) : new Uint32Array(raw.buffer, raw.byteOffset, n);
  const dictionary = type.values.map((v) => encoder.encode(v));
  const offsets = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (valid === null || (valid[i >>> 3] & (1 << (i & 7))) !== 0) total += dictionary[indexes[i]].length;
    offsets[i + 1] = total;
  }
  const bytes = new Uint8Array(total);
  for (let i = 0; i < n; i++) if (offsets[i + 1] > offsets[i]) bytes.set(dictionary[indexes[i]], offsets[i]);
  return { kind: 'utf8', offsets, data: bytes, valid };
}

/** Whether row `i` of a column with validity `valid` is non-NULL. */
export function isValid(valid: Validity, i: number): boolean {
  return valid === null || (valid[i >>> 3] & (1 << (i & 7))) !== 0;
}

/**
 * Rows [start, end) of a chunk's `columns`, as columns of their own: typed arrays and
 * string and list offsets as views of the same memory (offsets still index the whole `data`
 * or `child`, as the encoders read them), validity as a new bitmap starting at bit 0.
 */
export function sliceColumns(columns: readonly Column[], start: number, end: number): Column[] {
  return columns.map((col): Column => {
    switch (col.kind) {
      case 'other': return col.plain === undefined ? { kind: 'other', texts: col.texts.slice(start, end) }
        : { kind: 'other', texts: col.texts.slice(start, end), plain: col.plain.slice(start, end) };
      case 'utf8': case 'binary': case 'list': return { ...col, offsets: col.offsets.subarray(start, end + 1), valid: sliceValidity(col.valid, start, end) };
      case 'fixed_list': return { ...col, child: sliceColumns([col.child], start * col.size, end * col.size)[0], valid: sliceValidity(col.valid, start, end) };
      case 'struct': return { ...col, children: sliceColumns(col.children, start, end), valid: sliceValidity(col.valid, start, end) };
      default: return { ...col, values: col.values.subarray(start, end), valid: sliceValidity(col.valid, start, end) } as Column;
    }
  });
}

function sliceValidity(valid: Validity, start: number, end: number): Validity {
  if (valid === null) return null;
  const out = new Uint8Array(Math.ceil((end - start) / 8));
  for (let i = start; i < end; i++) if (isValid(valid, i)) out[(i - start) >>> 3] |= 1 << ((i - start) & 7);
  return out;
}
