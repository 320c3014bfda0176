/**
 * Encodes query results as an Arrow IPC *stream* (schema message, one record batch
 * per DuckDB chunk, end-of-stream marker) with apache-arrow, one chunk at a time so
 * the whole result is never held (../shared/notes/arc-wire-contract.md §5.4).
 *
 * Types: DOUBLE/FLOAT, signed and unsigned integers and BOOLEAN as themselves;
 * timestamps as `Timestamp(MICROSECOND)`, with time zone `UTC` for TIMESTAMPTZ (the
 * stored `time` column), TIMESTAMP_NS as `Timestamp(NANOSECOND)` (as DuckDB's own Arrow
 * export, so no digit is lost); DATE as `Date(DAY)`; VARCHAR and ENUM as `Utf8`; DECIMAL as
 * Arc does (scale 0 → Int64, else Float64), HUGEINT and UHUGEINT as Int64 (see
 * `chunk-columns.ts`); every other type as
 * `Utf8` holding its DuckDB text. All fields are nullable.
 */
import {
  AsyncByteQueue, Bool, DateDay, Field, Float32, Float64, Int16, Int32, Int64, Int8, makeData, RecordBatch,
  RecordBatchStreamWriter, Schema, Struct, TimestampMicrosecond, TimestampNanosecond, Uint16, Uint32, Uint64, Uint8, Utf8, type Data, type DataType,
} from 'apache-arrow';
import type { DuckDBType } from '@duckdb/node-api';
import { kindOf, type Column, type ColumnKind } from './chunk-columns.js';
import { cellText } from './json-result.js';

/** Collects the bytes the writer emits synchronously, instead of queueing them for an async reader. */
class ByteCollector extends AsyncByteQueue {
  parts: Uint8Array[] = [];
  override write(value: Uint8Array): void {
    // No copy: the writer passes freshly built metadata, fresh padding and the batch's own
    // buffers (never written again), and `take` copies everything once into its Buffer.
    this.parts.push(value);
  }
  take(): Buffer {
    const out = Buffer.concat(this.parts);
    this.parts = [];
    return out;
  }
}

function arrowType(kind: ColumnKind): DataType {
  switch (kind) {
    case 'f64': return new Float64();
    case 'f32': return new Float32();
    case 'i8': return new Int8();
    case 'i16': return new Int16();
    case 'i32': return new Int32();
    case 'i64': return new Int64();
    case 'u8': return new Uint8();
    case 'u16': return new Uint16();
    case 'u32': return new Uint32();
    case 'u64': return new Uint64();
    case 'bool': return new Bool();
    case 'timestamp': return new TimestampMicrosecond();
    case 'timestamp_ns': return new TimestampNanosecond();
    case 'date': return new DateDay();
    case 'utf8': case 'other': return new Utf8();
  }
}

/** Writes one result as an Arrow IPC stream, batch by batch. */
export class ArrowStreamEncoder {
  private readonly schema: Schema;
  private readonly sink = new ByteCollector();
  private readonly writer = new RecordBatchStreamWriter();

  /** `names` and `types` are the result's columns, as DuckDB reports them. */
  constructor(names: readonly string[], types: readonly DuckDBType[]) {
    this.schema = new Schema(names.map((name, i) => {
      const kind = kindOf(types[i], 'arrow');
      const type = kind === 'timestamp' && types[i].toString() === 'TIMESTAMP WITH TIME ZONE' ? new TimestampMicrosecond('UTC') : arrowType(kind);
      return new Field(name, type, true);
    }));
  }

  /** The schema message (the stream's first bytes). */
  start(): Buffer {
    this.writer.reset(this.sink, this.schema);
    return this.sink.take();
  }

  /** The record batch message for one chunk's `columns` (read with `'arrow'` decimals), `rowCount` rows. */
  batch(columns: readonly Column[], rowCount: number): Buffer {
    const children = columns.map((col, i) => columnData(col, this.schema.fields[i].type, rowCount));
    const data = makeData({ type: new Struct(this.schema.fields), length: rowCount, children, nullCount: 0 });
    this.writer.write(new RecordBatch(this.schema, data));
    return this.sink.take();
  }

  /** The end-of-stream marker. */
  end(): Buffer {
    this.writer.finish();
    return this.sink.take();
  }
}

/** Set bits of each byte value, so the null count takes one lookup per 8 rows. */
const BITS_SET = Uint8Array.from({ length: 256 }, (_, b) => {
  let count = 0;
  for (let x = b; x !== 0; x >>= 1) count += x & 1;
  return count;
});

function nulls(valid: Uint8Array | null, n: number): number {
  if (valid === null) return 0;
  const whole = n >>> 3;
  let set = 0;
  for (let i = 0; i < whole; i++) set += BITS_SET[valid[i]];
  // The last partial byte: only its low n % 8 bits are rows.
  if ((n & 7) !== 0) set += BITS_SET[valid[whole] & ((1 << (n & 7)) - 1)];
  return n - set;
}

function columnData(col: Column, type: DataType, n: number): Data {
  if (col.kind === 'other') {
    // Slow path for rare types: their text, as JSON shows it, NULL kept.
    const valid = new Uint8Array(Math.ceil(n / 8));
    const bytes: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      if (col.texts[i] !== null) valid[i >>> 3] |= 1 << (i & 7);
      bytes.push(Buffer.from(cellText(col, i, 'csv'), 'utf8'));
    }
    const valueOffsets = new Int32Array(n + 1);
    for (let i = 0; i < n; i++) valueOffsets[i + 1] = valueOffsets[i] + bytes[i].length;
    return makeData({ type: type as Utf8, length: n, valueOffsets, data: Buffer.concat(bytes), nullBitmap: valid, nullCount: nulls(valid, n) });
  }
  const nullBitmap = col.valid ?? undefined;
  const nullCount = nulls(col.valid, n);
  if (col.kind === 'utf8') return makeData({ type: type as Utf8, length: n, valueOffsets: col.offsets, data: col.data, nullBitmap, nullCount });
  if (col.kind === 'bool') {
    // DuckDB keeps one byte per boolean; Arrow one bit.
    const bits = new Uint8Array(Math.ceil(n / 8));
    for (let i = 0; i < n; i++) if (col.values[i] !== 0) bits[i >>> 3] |= 1 << (i & 7);
    return makeData({ type: type as Bool, length: n, data: bits, nullBitmap, nullCount });
  }
  return makeData({ type: type as Float64, length: n, data: col.values as never, nullBitmap, nullCount });
}
