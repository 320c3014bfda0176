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
import type { LineErrors } from './line-errors.js';

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
  /**
   * Set when the source does not say whether a string column is a tag (a MessagePack
   * columnar item without a tag list: Arc's columnar form has none, and Telegraf's Arc
   * output sends tags and string fields alike): the buffer stores it as a string field
   * where the measurement's field of that name is one, stored or in the same request
   * (`SchemaRegistry.untag`), instead of rejecting it as a tag with the key of a field.
   */
  readonly mayBeField?: true;
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
  /**
   * Set when the source cannot tell a whole float from an integer (MessagePack, whose
   * JavaScript encoders write 95.0 as the integer 95): the buffer stores the column as
   * float64 where the field is float64, stored or in the same request
   * (`SchemaRegistry.widen`), instead of rejecting it as a field type conflict. Line
   * protocol's `i` integers never are.
   */
  readonly mayBeFloat?: true;
  /**
   * Set when a NaN came among the integers of a MessagePack column: a JavaScript encoder's
   * float column with a gap (its whole numbers go out as integers). A field new to the
   * measurement is then float64 (`SchemaRegistry.widen`); a stored int64 one keeps them.
   */
  readonly sawNaN?: true;
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

/** A field column of any type, told apart by `type`; `values` and `valid` are `rowCount` long. */
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
 * `errors` counts the rejected lines and names the first; their `line` is the 1-based
 * physical line (line protocol) or the 0-based item index (MessagePack); the valid
 * records of the body are in `batches` regardless.
 */
export interface ParseResult {
  batches: ColumnarBatch[];
  errors: LineErrors;
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

/** Bounds of an int64 field value (InfluxDB `i` integers; `u` integers above INT64_MAX are refused). */
export const INT64_MIN = -(2n ** 63n);
/** Largest int64 value, 2^63 − 1. */
export const INT64_MAX = 2n ** 63n - 1n;

/** A copy of typed array `a` with room for `capacity` elements (truncated if smaller). */
export function resized<T extends Uint8Array | Uint32Array | Float64Array | BigInt64Array | Int32Array>(a: T, capacity: number): T {
  const next = new (a.constructor as new (n: number) => T)(capacity);
  next.set(a.subarray(0, Math.min(a.length, capacity)) as never);
  return next;
}

/**
 * A tag column being appended to, shared by `BatchBuilder` and the buffer: `codes`
 * as in `TagColumn`, with room for more rows than are filled; `index` maps each
 * dictionary value to its code.
 */
export interface GrowingTagColumn {
  readonly type: 'tag';
  readonly name: string;
  codes: Uint32Array;
  readonly dictionary: string[];
  readonly index: Map<string, number>;
}

/** A field column being appended to: `valid` and `values` as in `FieldColumn`, with room for more rows than are filled. */
export type GrowingFieldColumn =
  | { readonly type: 'float64'; readonly name: string; valid: Uint8Array; values: Float64Array }
  | { readonly type: 'int64'; readonly name: string; valid: Uint8Array; values: BigInt64Array }
  | { readonly type: 'bool'; readonly name: string; valid: Uint8Array; values: Uint8Array }
  | { readonly type: 'string'; readonly name: string; valid: Uint8Array; values: string[] };

/** A growing column of either kind; `type` is `'tag'` or the field's `FieldType`. */
export type GrowingColumn = GrowingTagColumn | GrowingFieldColumn;

/** An empty (all-NULL) tag column `name` with room for `capacity` rows. */
export function newTagColumn(name: string, capacity: number): GrowingTagColumn {
  return { type: 'tag', name, codes: new Uint32Array(capacity), dictionary: [], index: new Map() };
}

/** An empty (all-NULL) field column `name` of `type` with room for `capacity` rows. */
export function newFieldColumn<T extends FieldType>(name: string, type: T, capacity: number): Extract<GrowingFieldColumn, { type: T }> {
  const valid = new Uint8Array(capacity);
  let col: GrowingFieldColumn;
  if (type === 'float64') col = { type: 'float64', name, valid, values: new Float64Array(capacity) };
  else if (type === 'int64') col = { type: 'int64', name, valid, values: new BigInt64Array(capacity) };
  else if (type === 'bool') col = { type: 'bool', name, valid, values: new Uint8Array(capacity) };
  else col = { type: 'string', name, valid, values: new Array<string>(capacity).fill('') };
  return col as Extract<GrowingFieldColumn, { type: T }>;
}

/** Gives `col` room for `capacity` rows (at least its current room); new rows are NULL. */
export function growColumn(col: GrowingColumn, capacity: number): void {
  if (col.type === 'tag') {
    col.codes = resized(col.codes, capacity);
    return;
  }
  col.valid = resized(col.valid, capacity);
  if (col.type === 'string') while (col.values.length < capacity) col.values.push('');
  else if (col.type === 'float64') col.values = resized(col.values, capacity);
  else if (col.type === 'int64') col.values = resized(col.values, capacity);
  else col.values = resized(col.values, capacity);
}

/** Adds `value`, which `col.index` must not hold yet, to the dictionary; returns its code (≥ 1). */
export function addTagValue(col: GrowingTagColumn, value: string): number {
  col.dictionary.push(value);
  const code = col.dictionary.length;
  col.index.set(value, code);
  return code;
}

/**
 * The first `rows` rows of `col` as a `FieldColumn`: typed arrays are views that later
 * appends past `rows` do not disturb; string values are copied.
 */
export function fieldRecords(col: GrowingFieldColumn, rows: number): FieldColumn {
  const valid = col.valid.subarray(0, rows);
  switch (col.type) {
    case 'string': return { name: col.name, type: 'string', valid, values: col.values.slice(0, rows) };
    case 'float64': return { name: col.name, type: 'float64', valid, values: col.values.subarray(0, rows) };
    case 'int64': return { name: col.name, type: 'int64', valid, values: col.values.subarray(0, rows) };
    case 'bool': return { name: col.name, type: 'bool', valid, values: col.values.subarray(0, rows) };
  }
}

/** `col` as a float64 column, for an integer column stored where the field is float64 (`Int64FieldColumn.mayBeFloat`). */
export function asFloat64(col: Int64FieldColumn): Float64FieldColumn {
  const values = new Float64Array(col.values.length);
  for (let i = 0; i < values.length; i++) if (col.valid[i] === 1) values[i] = Number(col.values[i]);
  return { name: col.name, type: 'float64', valid: col.valid, values };
}

/** `col` as a string field column, for a tag column stored where the field is a string (`TagColumn.mayBeField`). */
export function asStringField(col: TagColumn): StringFieldColumn {
  const n = col.codes.length;
  const valid = new Uint8Array(n);
  const values = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const code = col.codes[i];
    valid[i] = code === 0 ? 0 : 1;
    values[i] = code === 0 ? '' : col.dictionary[code - 1];
  }
  return { name: col.name, type: 'string', valid, values };
}

/**
 * Rows `rows` (indexes into `records`, in the order given) of `records` as new records:
 * columns copied, tag dictionaries shared.
 */
export function selectRows(records: MeasurementRecords, rows: Int32Array): MeasurementRecords {
  const n = rows.length;
  const time = new Float64Array(n);
  for (let i = 0; i < n; i++) time[i] = records.time[rows[i]];
  const tags = records.tags.map((t): TagColumn => {
    const codes = new Uint32Array(n);
    for (let i = 0; i < n; i++) codes[i] = t.codes[rows[i]];
    return { name: t.name, codes, dictionary: t.dictionary };
  });
  const fields = records.fields.map((f): FieldColumn => {
    const valid = new Uint8Array(n);
    for (let i = 0; i < n; i++) valid[i] = f.valid[rows[i]];
    if (f.type === 'string') return { name: f.name, type: f.type, valid, values: Array.from(rows, (row) => f.values[row]) };
    const values = new (f.values.constructor as new (n: number) => typeof f.values)(n);
    for (let i = 0; i < n; i++) values[i] = f.values[rows[i]];
    return { name: f.name, type: f.type, valid, values } as FieldColumn;
  });
  return { measurement: records.measurement, rowCount: n, time, tags, fields };
}

type ColumnOf<T extends FieldType> = Extract<GrowingFieldColumn, { type: T }>;

// A batch's columns are dense: `columns × rows` slots for the values given. A batch whose
// slots outgrow SPARSE_FACTOR × (values + rows) + SPARSE_SLACK is closed and the next
// row starts another, so that lines each bringing a new key (`m f1=1`, `m f2=1`, …)
// cost memory and time in proportion to what they hold, not rows × keys. Input of up to
// SPARSE_FACTOR columns, or whose lines each carry a SPARSE_FACTOR-th of its keys, never
// reaches it.
const SPARSE_FACTOR = 16;
const SPARSE_SLACK = 256;

/**
 * Builds `ColumnarBatch`es one record at a time, for row-oriented input (line
 * protocol, MessagePack row items; `RowStage.emit` feeds it). Columns are created on
 * first use and are NULL in earlier rows. Setting the same key twice in one row keeps
 * the last value, as InfluxDB does for duplicate field keys; setting it with another
 * type makes a second column of that name, which the buffer resolves against the
 * measurement's schema. Sparse rows are split into several batches (see SPARSE_FACTOR),
 * in row order.
 *
 * Usage: `addRow(timeUs, line)`, then `setTag`/`setFloat`/... for that row.
 */
export class BatchBuilder {
  /** Measurement of every batch built (one builder per measurement of a request). */
  readonly measurement: string;
  private readonly initialCapacity: number;
  private capacity: number;
  private rows = 0;
  /** Values set in the current batch, and its columns. */
  private cells = 0;
  private columns = 0;
  /** Batches closed for being sparse, and their rows. */
  private readonly closed: ColumnarBatch[] = [];
  private closedRows = 0;
  private time: Float64Array;
  private sourceLine: Int32Array;
  private readonly tagColumns = new Map<string, GrowingTagColumn>();
  // One map per type, so that a lookup is by the key as given, without building a
  // composite key per value.
  private readonly floatColumns = new Map<string, ColumnOf<'float64'>>();
  private readonly intColumns = new Map<string, ColumnOf<'int64'>>();
  private readonly boolColumns = new Map<string, ColumnOf<'bool'>>();
  private readonly stringColumns = new Map<string, ColumnOf<'string'>>();
  /** Field columns in creation order: the buffer gives a new column the type seen first in a request. */
  private readonly fieldColumns: GrowingFieldColumn[] = [];

  constructor(measurement: string, initialCapacity = 64) {
    this.measurement = measurement;
    this.initialCapacity = Math.max(1, initialCapacity);
    this.capacity = this.initialCapacity;
    this.time = new Float64Array(this.capacity);
    this.sourceLine = new Int32Array(this.capacity);
  }

  /** Number of rows added so far (including the current one). */
  get rowCount(): number {
    return this.closedRows + this.rows;
  }

  /** Starts a new record at `timeUs` (integral µs since the epoch) from source line/item `sourceLine`. */
  addRow(timeUs: number, sourceLine: number): void {
    if (this.columns * this.rows > SPARSE_FACTOR * (this.cells + this.rows) + SPARSE_SLACK) this.close();
    if (this.rows === this.capacity) this.growTo(this.capacity * 2);
    this.time[this.rows] = timeUs;
    this.sourceLine[this.rows] = sourceLine;
    this.rows++;
  }

  /** Sets tag `key` of the current row. */
  setTag(key: string, value: string): void {
    let col = this.tagColumns.get(key);
    if (col === undefined) {
      col = newTagColumn(flatString(key), this.capacity);
      this.tagColumns.set(col.name, col);
      this.columns++;
    }
    let code = col.index.get(value);
    if (code === undefined) code = addTagValue(col, flatString(value));
    col.codes[this.rows - 1] = code;
    this.cells++;
  }

  /** Sets float64 field `key` of the current row. */
  setFloat(key: string, value: number): void {
    const col = this.floatColumns.get(key) ?? this.addField(this.floatColumns, key, 'float64');
    col.values[this.rows - 1] = value;
    col.valid[this.rows - 1] = 1;
    this.cells++;
  }

  /** Sets int64 field `key` of the current row; a `number` must be a safe integer, a `bigint` within int64. */
  setInt(key: string, value: number | bigint): void {
    const col = this.intColumns.get(key) ?? this.addField(this.intColumns, key, 'int64');
    col.values[this.rows - 1] = typeof value === 'bigint' ? value : BigInt(value);
    col.valid[this.rows - 1] = 1;
    this.cells++;
  }

  /** Sets boolean field `key` of the current row. */
  setBool(key: string, value: boolean): void {
    const col = this.boolColumns.get(key) ?? this.addField(this.boolColumns, key, 'bool');
    col.values[this.rows - 1] = value ? 1 : 0;
    col.valid[this.rows - 1] = 1;
    this.cells++;
  }

  /** Sets string field `key` of the current row. */
  setString(key: string, value: string): void {
    const col = this.stringColumns.get(key) ?? this.addField(this.stringColumns, key, 'string');
    col.values[this.rows - 1] = flatString(value);
    col.valid[this.rows - 1] = 1;
    this.cells++;
  }

  /** Returns the finished batches (one unless rows were sparse), in row order; the builder must not be used afterwards. */
  build(): ColumnarBatch[] {
    return this.rows === 0 ? this.closed : [...this.closed, this.current()];
  }

  private current(): ColumnarBatch {
    const n = this.rows;
    const tags: TagColumn[] = [];
    for (const t of this.tagColumns.values()) tags.push({ name: t.name, codes: t.codes.subarray(0, n), dictionary: t.dictionary });
    return {
      measurement: this.measurement,
      rowCount: n,
      time: this.time.subarray(0, n),
      tags,
      fields: this.fieldColumns.map((f) => fieldRecords(f, n)),
      sourceLine: this.sourceLine.subarray(0, n),
    };
  }

  /** Closes the current batch; the next row starts a new one without columns. */
  private close(): void {
    this.closed.push(this.current());
    this.closedRows += this.rows;
    this.rows = 0;
    this.cells = 0;
    this.columns = 0;
    this.tagColumns.clear();
    this.floatColumns.clear();
    this.intColumns.clear();
    this.boolColumns.clear();
    this.stringColumns.clear();
    this.fieldColumns.length = 0;
    this.capacity = this.initialCapacity;
    this.time = new Float64Array(this.capacity);
    this.sourceLine = new Int32Array(this.capacity);
  }

  private addField<T extends FieldType>(columns: Map<string, ColumnOf<T>>, key: string, type: T): ColumnOf<T> {
    const col = newFieldColumn(flatString(key), type, this.capacity);
    columns.set(col.name, col);
    this.fieldColumns.push(col);
    this.columns++;
    return col;
  }

  private growTo(capacity: number): void {
    this.capacity = capacity;
    this.time = resized(this.time, capacity);
    this.sourceLine = resized(this.sourceLine, capacity);
    for (const t of this.tagColumns.values()) growColumn(t, capacity);
    for (const f of this.fieldColumns) growColumn(f, capacity);
  }
}
