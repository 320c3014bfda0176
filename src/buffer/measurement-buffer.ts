/**
 * The in-memory buffer of one (database, measurement): records held as columns
 * (typed arrays, dictionary-encoded tags), never as one object per record.
 *
 * `snapshot()` detaches the buffered columns as an immutable `BufferSnapshot` for the
 * Parquet writer and starts a fresh buffer. Snapshots have the same column shapes as
 * `ColumnarBatch`, so a later reader (queries over unflushed records) can consume
 * the live buffer and pending snapshots alike.
 */
import {
  addTagValue, fieldRecords, growColumn, newFieldColumn, newTagColumn, resized,
  type ColumnarBatch, type FieldColumn, type FieldType, type GrowingColumn, type GrowingFieldColumn, type GrowingTagColumn,
  type MeasurementRecords, type TagColumn,
} from '../parse/batch.js';

/** Buffered records of one measurement, detached for writing; `time` is in arrival order (the writer sorts). */
export interface BufferSnapshot extends MeasurementRecords {
  readonly database: string;
  /** Approximate heap bytes held. */
  readonly bytes: number;
  /** LSNs of the write-ahead-log entries whose records it holds, ascending; empty without a WAL. */
  readonly lsns: readonly number[];
  /**
   * Set only on a view of a live buffer (`BufferManager.heldRecords`): the buffer's
   * generation, bumped by each `snapshot()`. Within one generation the buffer only
   * grows, so a later view's first `rowCount` rows are this view's rows.
   */
  readonly liveGeneration?: number;
}

/** Bytes per row a column kind costs, for the memory estimate (strings counted at append). */
const ROW_BYTES: Record<ColumnKind, number> = { tag: 4, float64: 9, int64: 9, bool: 2, string: 9 };

/** Rows a buffer reserves when it first grows. */
const MIN_ROWS = 1024;


/**
 * The growing columns of one (database, measurement) (see the module comment); created on
 * its first records and owned by `BufferManager`, which alone calls `append` and
 * `snapshot`. Columns grow by doubling from `MIN_ROWS` rows; a refill after a snapshot
 * reserves up to `maxInitialRows` rows at once. Every method is synchronous.
 */
export class MeasurementBuffer {
  /** Database the records were written to. */
  readonly database: string;
  /** Measurement name, as written (case-sensitive). */
  readonly measurement: string;
  private rows = 0;
  private capacity = 0;
  private time = new Float64Array(0);
  private columns = new Map<string, GrowingColumn>();
  private stringBytes = 0;
  /** `performance.now()` when the oldest buffered record arrived; NaN when empty. */
  private oldestAt = NaN;
  /** WAL entries with records here, in the order they were first appended. */
  private lsns: number[] = [];
  /** Rows the next allocation reserves at least. */
  private initialRows = MIN_ROWS;
  private readonly maxInitialRows: number;
  /** Snapshots detached so far (`generation`). */
  private detached = 0;

  /**
   * @param maxInitialRows most rows to reserve for a refill after a snapshot (the owner's
   *   flush threshold, say): a buffer refilled at the rate it was last filled then skips
   *   regrowing from MIN_ROWS, while a buffer that only sees a few rows stays small.
   */
  constructor(database: string, measurement: string, maxInitialRows = MIN_ROWS) {
    this.database = database;
    this.measurement = measurement;
    this.maxInitialRows = Math.max(MIN_ROWS, maxInitialRows);
  }

  /** Records held. */
  get rowCount(): number {
    return this.rows;
  }

  /** How many snapshots were detached: rows [0, rowCount) only grow while it stays the same. */
  get generation(): number {
    return this.detached;
  }

  /** Age of the oldest held record in ms (0 when empty). */
  ageMs(now = performance.now()): number {
    return this.rows === 0 ? 0 : now - this.oldestAt;
  }

  /** Approximate heap bytes held. */
  get bytes(): number {
    let perRow = 8;
    for (const c of this.columns.values()) perRow += ROW_BYTES[c.type];
    return this.rows * perRow + this.stringBytes;
  }

  /**
   * Records that the rows just appended came from WAL entry `lsn`.
   * @returns true when `lsn` is new to this buffer (the caller then holds its segment).
   */
  noteLsn(lsn: number): boolean {
    if (this.lsns[this.lsns.length - 1] === lsn) return false;
    this.lsns.push(lsn);
    return true;
  }


  /**
   * Appends the rows of `batch` whose `rejected[row]` is 0 (all rows when `rejected`
   * is null), skipping the columns in `skip` (the losers of a type clash, whose rows
   * were all rejected). Tag and string columns convert into each other (both are
   * Parquet strings); every other column must already match the buffered type.
   * @returns the number of records appended.
   */
  append(batch: ColumnarBatch, rejected: Uint8Array | null, skip: ReadonlySet<object>): number {
    const rowsIdx = acceptedRows(batch.rowCount, rejected);
    const n = rowsIdx === null ? batch.rowCount : rowsIdx.length;
    if (n === 0) return 0;
    if (this.rows === 0) this.oldestAt = performance.now();
    this.reserve(this.rows + n);
    const base = this.rows;
    const src = (i: number): number => (rowsIdx === null ? i : rowsIdx[i]);

    for (let i = 0; i < n; i++) this.time[base + i] = batch.time[src(i)];
    for (const t of batch.tags) {
      if (skip.has(t)) continue;
      const col = this.column(t.name, 'tag');
      if (col.type === 'tag') {
        const remap = new Uint32Array(t.dictionary.length + 1);
        for (let k = 0; k < t.dictionary.length; k++) remap[k + 1] = intern(col, t.dictionary[k]);
        for (let i = 0; i < n; i++) col.codes[base + i] = remap[t.codes[src(i)]];
      } else if (col.type === 'string') {
        for (let i = 0; i < n; i++) {
          const code = t.codes[src(i)];
          if (code !== 0) this.setString(col, base + i, t.dictionary[code - 1]);
        }
      }
    }
    for (const f of batch.fields) {
      if (skip.has(f)) continue;
      const col = this.column(f.name, f.type);
      if (col.type === 'tag' && f.type === 'string') {
        for (let i = 0; i < n; i++) if (f.valid[src(i)] === 1) col.codes[base + i] = intern(col, f.values[src(i)]);
        continue;
      }
      if (col.type === 'string' && f.type === 'string') {
        for (let i = 0; i < n; i++) if (f.valid[src(i)] === 1) this.setString(col, base + i, f.values[src(i)]);
        continue;
      }
      if (col.type !== f.type || f.type === 'string') continue;
      if (rowsIdx === null) {
        col.valid.set(f.valid, base);
        (col.values as Float64Array).set(f.values as Float64Array, base);
      } else {
        const values = col.values as Float64Array;
        const from = f.values as Float64Array;
        for (let i = 0; i < n; i++) {
          col.valid[base + i] = f.valid[rowsIdx[i]];
          values[base + i] = from[rowsIdx[i]];
        }
      }
    }
    this.rows += n;
    return n;
  }

  /** Detaches everything buffered as a snapshot and empties the buffer. */
  snapshot(): BufferSnapshot {
    const snap = this.peek();
    this.initialRows = Math.min(this.maxInitialRows, Math.max(MIN_ROWS, snap.rowCount));
    this.rows = 0;
    this.capacity = 0;
    this.time = new Float64Array(0);
    this.columns = new Map();
    this.stringBytes = 0;
    this.oldestAt = NaN;
    this.lsns = [];
    this.detached++;
    return snap;
  }

  /**
   * The records held now, as a snapshot, without detaching them (for queries over
   * unflushed records). Cheap: typed arrays are views, since appends only write rows
   * past the current count and growing reallocates; only string values and tag
   * dictionaries, which later appends extend in place, are copied.
   */
  peek(): BufferSnapshot {
    const n = this.rows;
    const tags: TagColumn[] = [];
    const fields: FieldColumn[] = [];
    for (const c of this.columns.values()) {
      if (c.type === 'tag') tags.push({ name: c.name, codes: c.codes.subarray(0, n), dictionary: c.dictionary.slice() });
      else fields.push(fieldRecords(c, n));
    }
    return {
      database: this.database, measurement: this.measurement, rowCount: n,
      time: this.time.subarray(0, n), tags, fields, bytes: this.bytes,
      lsns: [...this.lsns].sort((a, b) => a - b),
    };
  }

  private setString(col: Extract<GrowingFieldColumn, { type: 'string' }>, row: number, value: string): void {
    col.values[row] = value;
    col.valid[row] = 1;
    this.stringBytes += 16 + value.length * 2;
  }

  /** The buffered column `name`, created as `kind` when new (then NULL in the rows before). */
  private column(name: string, kind: ColumnKind): GrowingColumn {
    const existing = this.columns.get(name);
    if (existing !== undefined) return existing;
    const col = kind === 'tag' ? newTagColumn(name, this.capacity) : newFieldColumn(name, kind, this.capacity);
    this.columns.set(name, col);
    return col;
  }

  private reserve(rows: number): void {
    if (rows <= this.capacity) return;
    const cap = Math.max(rows, this.capacity * 2, this.initialRows);
    this.capacity = cap;
    this.time = resized(this.time, cap);
    for (const c of this.columns.values()) growColumn(c, cap);
  }
}

function intern(col: GrowingTagColumn, value: string): number {
  return col.index.get(value) ?? addTagValue(col, value);
}

/** Indexes of accepted rows, or null when every row is accepted. */
function acceptedRows(rowCount: number, rejected: Uint8Array | null): Int32Array | null {
  if (rejected === null) return null;
  let n = 0;
  for (let i = 0; i < rowCount; i++) if (rejected[i] === 0) n++;
  if (n === rowCount) return null;
  const out = new Int32Array(n);
  for (let i = 0, j = 0; i < rowCount; i++) if (rejected[i] === 0) out[j++] = i;
  return out;
}

/** What a buffer column holds: a tag, or a field of one of the field types. */
export type ColumnKind = 'tag' | FieldType;
