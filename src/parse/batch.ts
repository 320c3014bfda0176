/**
 * The one columnar batch type that every write protocol parses into.
 *
 * Line protocol, InfluxDB v1/v2 and Arc MessagePack all end here; nothing downstream
 * (buffer, Parquet writer, query) knows which protocol a batch came from. A batch
 * holds the records of one measurement as columns: a time column in microseconds,
 * dictionary-encoded tag columns and typed field columns, each with its own
 * validity (a column absent from a row is NULL there, as in InfluxDB's sparse
 * series model).
 */
import type { LineError } from '../errors.js';

/** Physical type of a field column; maps 1:1 to Parquet INT64, DOUBLE, BYTE_ARRAY (UTF8), BOOLEAN. */
export type FieldType = 'int64' | 'float64' | 'string' | 'bool';

/**
 * A tag column: strings stored as dictionary codes. `codes[row]` is 0 where the row
 * has no such tag (NULL) and `k > 0` for `dictionary[k - 1]`, so a zero-filled array
 * is an all-NULL column.
 */
export interface TagColumn {
  readonly name: string;
  readonly codes: Uint32Array;
  readonly dictionary: readonly string[];
}

interface FieldColumnBase {
  readonly name: string;
  /** One byte per row: 1 = value present, 0 = NULL. */
  readonly valid: Uint8Array;
}

/** float64 field; `values[row]` is meaningful only where `valid[row] === 1`. */
export interface Float64FieldColumn extends FieldColumnBase {
  readonly type: 'float64';
  readonly values: Float64Array;
}

/** int64 field (InfluxDB `i` and `u` integers, MessagePack integer families). */
export interface Int64FieldColumn extends FieldColumnBase {
  readonly type: 'int64';
  readonly values: BigInt64Array;
}

/** Boolean field: `values[row]` is 1 for true, 0 for false. */
export interface BoolFieldColumn extends FieldColumnBase {
  readonly type: 'bool';
  readonly values: Uint8Array;
}

/** String field (quoted line-protocol strings; not dictionary-encoded: often unique, such as log lines). */
export interface StringFieldColumn extends FieldColumnBase {
  readonly type: 'string';
  readonly values: string[];
}

export type FieldColumn = Float64FieldColumn | Int64FieldColumn | BoolFieldColumn | StringFieldColumn;

/**
 * The records of one measurement as columns; every array is exactly `rowCount` long.
 * Shared by parsed batches and by the buffer's snapshots.
 */
export interface MeasurementRecords {
  readonly measurement: string;
  readonly rowCount: number;
  /** Microseconds since the Unix epoch, UTC; integral and within ±2^53. */
  readonly time: Float64Array;
  readonly tags: readonly TagColumn[];
  readonly fields: readonly FieldColumn[];
}

/**
 * Records of one measurement, column-major. Every array is exactly `rowCount` long.
 *
 * `fields` may hold two columns of the same name with different types when one
 * request disagrees with itself (`x=1i` on one line, `x=1.5` on another); the buffer
 * resolves such clashes against the measurement's schema and rejects the losing rows
 * by `sourceLine`.
 */
export interface ColumnarBatch extends MeasurementRecords {
  /** Per row, where it came from for error messages: 1-based line number (line protocol) or item index (MessagePack). */
  readonly sourceLine: Int32Array;
}

/**
 * What every protocol parser returns for one request body.
 * `errors[i].line` is the 1-based physical line (line protocol) or the 0-based item
 * index (MessagePack); the valid records of the body are in `batches` regardless.
 */
export interface ParseResult {
  batches: ColumnarBatch[];
  errors: LineError[];
  /** Records accepted, summed over `batches`. */
  accepted: number;
}

/**
 * Returns a copy of `s` that does not share memory with a larger string.
 *
 * V8 represents substrings of 13+ characters as slices that keep the whole request
 * body alive; values that outlive the request (dictionary entries, string fields)
 * go through here first.
 */
export function flatString(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8');
}

interface TagBuilder {
  name: string;
  codes: Uint32Array;
  dictionary: string[];
  index: Map<string, number>;
}

type FieldBuilder =
  | { name: string; type: 'float64'; valid: Uint8Array; values: Float64Array }
  | { name: string; type: 'int64'; valid: Uint8Array; values: BigInt64Array }
  | { name: string; type: 'bool'; valid: Uint8Array; values: Uint8Array }
  | { name: string; type: 'string'; valid: Uint8Array; values: string[] };

/** A copy of typed array `a` with room for `capacity` elements (truncated if smaller). */
export function resized<T extends Uint8Array | Uint32Array | Float64Array | BigInt64Array | Int32Array>(a: T, capacity: number): T {
  const next = new (a.constructor as new (n: number) => T)(capacity);
  next.set(a.subarray(0, Math.min(a.length, capacity)) as never);
  return next;
}

/**
 * Builds a `ColumnarBatch` one record at a time, for row-oriented input (line
 * protocol, MessagePack row items). Columns are created on first use and are NULL
 * in earlier rows. Setting the same key twice in one row keeps the last value, as
 * InfluxDB does for duplicate field keys.
 *
 * Usage: `addRow(timeUs, line)`, then `setTag`/`setFloat`/... for that row; call
 * `discardRow()` to drop the current row when a later part of its line is invalid.
 */
export class BatchBuilder {
  readonly measurement: string;
  private capacity: number;
  private rows = 0;
  private time: Float64Array;
  private sourceLine: Int32Array;
  private readonly tagColumns = new Map<string, TagBuilder>();
  private readonly fieldColumns = new Map<string, FieldBuilder>();

  constructor(measurement: string, initialCapacity = 64) {
    this.measurement = measurement;
    this.capacity = Math.max(1, initialCapacity);
    this.time = new Float64Array(this.capacity);
    this.sourceLine = new Int32Array(this.capacity);
  }

  /** Number of rows added so far (including the current one). */
  get rowCount(): number {
    return this.rows;
  }

  /** Starts a new record at `timeUs` (integral µs since the epoch) from source line/item `sourceLine`. */
  addRow(timeUs: number, sourceLine: number): void {
    if (this.rows === this.capacity) this.growTo(this.capacity * 2);
    this.time[this.rows] = timeUs;
    this.sourceLine[this.rows] = sourceLine;
    this.rows++;
  }

  /** Removes the current (last) row and every value set on it. */
  discardRow(): void {
    if (this.rows === 0) return;
    const row = --this.rows;
    for (const t of this.tagColumns.values()) t.codes[row] = 0;
    for (const f of this.fieldColumns.values()) {
      f.valid[row] = 0;
      if (f.type === 'string') f.values[row] = '';
    }
  }

  /** Sets tag `key` of the current row. */
  setTag(key: string, value: string): void {
    let col = this.tagColumns.get(key);
    if (col === undefined) {
      col = { name: flatString(key), codes: new Uint32Array(this.capacity), dictionary: [], index: new Map() };
      this.tagColumns.set(col.name, col);
    }
    let code = col.index.get(value);
    if (code === undefined) {
      const flat = flatString(value);
      col.dictionary.push(flat);
      code = col.dictionary.length;
      col.index.set(flat, code);
    }
    col.codes[this.rows - 1] = code;
  }

  /** True when the current row already has tag `key` (used to rename clashing fields, as Arc does). */
  hasTag(key: string): boolean {
    const col = this.tagColumns.get(key);
    return col !== undefined && col.codes[this.rows - 1] !== 0;
  }

  /** Sets float64 field `key` of the current row. */
  setFloat(key: string, value: number): void {
    const col = this.field(key, 'float64');
    col.values[this.rows - 1] = value;
    col.valid[this.rows - 1] = 1;
  }

  /** Sets int64 field `key` of the current row; a `number` must be a safe integer. */
  setInt(key: string, value: number | bigint): void {
    const col = this.field(key, 'int64');
    col.values[this.rows - 1] = typeof value === 'bigint' ? value : BigInt(value);
    col.valid[this.rows - 1] = 1;
  }

  /** Sets boolean field `key` of the current row. */
  setBool(key: string, value: boolean): void {
    const col = this.field(key, 'bool');
    col.values[this.rows - 1] = value ? 1 : 0;
    col.valid[this.rows - 1] = 1;
  }

  /** Sets string field `key` of the current row. */
  setString(key: string, value: string): void {
    const col = this.field(key, 'string');
    col.values[this.rows - 1] = flatString(value);
    col.valid[this.rows - 1] = 1;
  }

  /** Returns the finished batch; the builder must not be used afterwards. */
  build(): ColumnarBatch {
    const n = this.rows;
    const tags: TagColumn[] = [];
    for (const t of this.tagColumns.values()) tags.push({ name: t.name, codes: t.codes.subarray(0, n), dictionary: t.dictionary });
    const fields: FieldColumn[] = [];
    for (const f of this.fieldColumns.values()) {
      const valid = f.valid.subarray(0, n);
      if (f.type === 'string') fields.push({ name: f.name, type: 'string', valid, values: f.values.slice(0, n) });
      else if (f.type === 'float64') fields.push({ name: f.name, type: 'float64', valid, values: f.values.subarray(0, n) });
      else if (f.type === 'int64') fields.push({ name: f.name, type: 'int64', valid, values: f.values.subarray(0, n) });
      else fields.push({ name: f.name, type: 'bool', valid, values: f.values.subarray(0, n) });
    }
    return {
      measurement: this.measurement,
      rowCount: n,
      time: this.time.subarray(0, n),
      tags,
      fields,
      sourceLine: this.sourceLine.subarray(0, n),
    };
  }

  private field<T extends FieldType>(key: string, type: T): Extract<FieldBuilder, { type: T }> {
    const mapKey = type === 'float64' ? key : `${key}\u0000${type}`;
    let col = this.fieldColumns.get(mapKey);
    if (col === undefined) {
      const name = flatString(key);
      const valid = new Uint8Array(this.capacity);
      if (type === 'float64') col = { name, type: 'float64', valid, values: new Float64Array(this.capacity) };
      else if (type === 'int64') col = { name, type: 'int64', valid, values: new BigInt64Array(this.capacity) };
      else if (type === 'bool') col = { name, type: 'bool', valid, values: new Uint8Array(this.capacity) };
      else col = { name, type: 'string', valid, values: new Array<string>(this.capacity).fill('') };
      this.fieldColumns.set(mapKey, col);
    }
    return col as Extract<FieldBuilder, { type: T }>;
  }

  private growTo(capacity: number): void {
    this.capacity = capacity;
    this.time = resized(this.time, capacity);
    this.sourceLine = resized(this.sourceLine, capacity);
    for (const t of this.tagColumns.values()) t.codes = resized(t.codes, capacity);
    for (const f of this.fieldColumns.values()) {
      f.valid = resized(f.valid, capacity);
      if (f.type === 'string') {
        while (f.values.length < capacity) f.values.push('');
      } else if (f.type === 'float64') f.values = resized(f.values, capacity);
      else if (f.type === 'int64') f.values = resized(f.values, capacity);
      else f.values = resized(f.values, capacity);
    }
  }
}
