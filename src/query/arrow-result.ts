/**
 * Encodes query results as an Arrow IPC *stream* (schema message, one record batch
 * per DuckDB chunk, end-of-stream marker), one chunk at a time so the whole result is
 * never held (../shared/notes/arc-wire-contract.md §5.4; the format: Arrow's "Columnar
 * Format", "Serialization and Interprocess Communication").
 *
 * Types: DOUBLE/FLOAT, signed and unsigned integers and BOOLEAN as themselves;
 * timestamps as `Timestamp(MICROSECOND)`, with time zone `UTC` for TIMESTAMPTZ (the
 * stored `time` column), TIMESTAMP_NS as `Timestamp(NANOSECOND)` (as DuckDB's own Arrow
 * export, so no digit is lost); DATE as `Date(DAY)`; VARCHAR and ENUM as `Utf8`; DECIMAL as
 * Arc does (scale 0 → Int64, else Float64), HUGEINT and UHUGEINT as Int64 (see
 * `chunk-columns.ts`); BLOB as `Binary` (its bytes). Nested types as DuckDB's own Arrow
 * export (which Arc sends) makes them, of any of these types at any depth
 * (`nested-columns.ts` reads them): LIST as `List` (its child named `l`), ARRAY as
 * `FixedSizeList` of its size (child named ``: DuckDB exports an ARRAY so, and a reader
 * gets the size in the type rather than per row), STRUCT as `Struct` of its named fields,
 * MAP as `Map` (a non-nullable `entries` struct of a non-nullable `key` and a `value`, as
 * the format requires of a Map; DuckDB refuses NULL keys). Every other type, alone or
 * within a nested one, as `Utf8` holding its DuckDB text: UUID as DuckDB's export makes it
 * by default (`arrow_lossless_conversion` off); INTERVAL, TIME, TIMETZ, UNION, BIT, BIGNUM,
 * … where DuckDB's export has an Arrow type of their own, left for later. All other fields
 * are nullable.
 *
 * apache-arrow encodes each message's flatbuffer metadata; the batch bodies are laid out
 * here, each batch as one Buffer with one copy of each column's buffers. apache-arrow's
 * own writer (`RecordBatchStreamWriter`) assembled them through its `Data` and visitor
 * objects and then copied them again: that cost about as much per chunk as reading the
 * chunk from DuckDB (bench/README.md, "Arrow record batches laid out directly, strings copied by
 * runs").
 */
import {
  Binary, Bool, DateDay, Field, FixedSizeList, Float32, Float64, Int16, Int32, Int64, Int8, List, Map_, Schema, Struct,
  TimestampMicrosecond, TimestampNanosecond, Uint16, Uint32, Uint64, Uint8, Utf8, type DataType,
} from 'apache-arrow';
import { BufferRegion, FieldNode, Message, RecordBatch as RecordBatchHeader } from 'apache-arrow/ipc/metadata/message';
import { DuckDBTypeId, type DuckDBArrayType, type DuckDBListType, type DuckDBMapType, type DuckDBStructType, type DuckDBType } from '@duckdb/node-api';
import { isValid, kindOf, type Column } from './chunk-columns.js';
import { cellText } from './json-result.js';

/** The Arrow type a DuckDB result type is sent as (see the module comment), nested types with their children's. */
function arrowType(type: DuckDBType): DataType {
  switch (kindOf(type, 'arrow')) {
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
    case 'timestamp': return new TimestampMicrosecond(type.typeId === DuckDBTypeId.TIMESTAMP_TZ ? 'UTC' : null);
    case 'timestamp_ns': return new TimestampNanosecond();
    case 'date': return new DateDay();
    case 'utf8': case 'other': return new Utf8();
    case 'binary': return new Binary();
    case 'list': {
      if (type.typeId === DuckDBTypeId.LIST) return new List(new Field('l', arrowType((type as DuckDBListType).valueType), true));
      const { keyType, valueType } = type as DuckDBMapType;
      const entries = new Struct([new Field('key', arrowType(keyType), false), new Field('value', arrowType(valueType), true)]);
      return new Map_(new Field('entries', entries, false));
    }
    case 'fixed_list': {
      const { valueType, length } = type as DuckDBArrayType;
      return new FixedSizeList(length, new Field('', arrowType(valueType), true));
    }
    case 'struct': {
      const { entryNames, entryTypes } = type as DuckDBStructType;
      return new Struct(entryNames.map((name, k) => new Field(name, arrowType(entryTypes[k]), true)));
    }
  }
}

/** Body buffers start at multiples of 8 bytes (the format's minimum alignment). */
const align8 = (n: number): number => (n + 7) & ~7;

/**
 * One encapsulated message: the continuation marker (0xFFFFFFFF), the metadata's length
 * (int32, padded so the body starts 8-byte aligned), the flatbuffer `metadata`, zero
 * padding, then room for `bodyLength` bytes, which the caller fills, padding included (the
 * memory is not zeroed first, which cost about as much as the rest of a batch); returns
 * the Buffer and where its body starts.
 */
function message(metadata: Uint8Array, bodyLength: number): { out: Buffer; bodyAt: number } {
  const bodyAt = align8(8 + metadata.length);
  const out = Buffer.allocUnsafe(bodyAt + bodyLength);
  out.writeInt32LE(-1, 0);
  out.writeInt32LE(bodyAt - 8, 4);
  out.set(metadata, 8);
  out.fill(0, 8 + metadata.length, bodyAt);
  return { out, bodyAt };
}

const NO_BYTES = new Uint8Array(0);

/** A typed array's first `count` elements as bytes (a view, no copy). */
function bytesOf(values: ArrayBufferView & { readonly BYTES_PER_ELEMENT: number }, count: number): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, count * values.BYTES_PER_ELEMENT);
}

/** Writes one result as an Arrow IPC stream, batch by batch. */
export class ArrowStreamEncoder {
  private readonly schema: Schema;

  /** `names` and `types` are the result's columns, as DuckDB reports them. */
  constructor(names: readonly string[], types: readonly DuckDBType[]) {
    this.schema = new Schema(names.map((name, i) => new Field(name, arrowType(types[i]), true)));
  }

  /** The schema message (the stream's first bytes). */
  start(): Buffer {
    return message(Message.encode(Message.from(this.schema)), 0).out;
  }

  /**
   * The record batch message for one chunk's `columns` (read with `'arrow'` decimals),
   * `rowCount` rows: per column a validity bitmap (empty when no row is NULL), then its
   * values (booleans as bits), or its int32 offsets and UTF-8 or binary bytes, or (nested
   * types) its int32 offsets (LIST, MAP) and its children's buffers. Field nodes and
   * buffers come in pre-order, a column before its children (the IPC format's "Record
   * batch message").
   */
  batch(columns: readonly Column[], rowCount: number): Buffer {
    const nodes: FieldNode[] = [];
    const buffers: Uint8Array[] = [];
    for (const col of columns) appendColumn(col, rowCount, nodes, buffers);
    const regions: BufferRegion[] = [];
    let bodyLength = 0;
    for (const b of buffers) {
      regions.push(new BufferRegion(bodyLength, b.length));
      bodyLength += align8(b.length);
    }
    const metadata = Message.encode(Message.from(new RecordBatchHeader(rowCount, nodes, regions, null), bodyLength));
    const { out, bodyAt } = message(metadata, bodyLength);
    for (let i = 0; i < buffers.length; i++) {
      const at = bodyAt + regions[i].offset;
      out.set(buffers[i], at);
      // Every padding byte zero: no stale memory is sent.
      out.fill(0, at + buffers[i].length, at + align8(buffers[i].length));
    }
    return out;
  }

  /** The end-of-stream marker: a continuation marker and a zero metadata length. */
  end(): Buffer {
    return Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
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

/**
 * Appends the field node of one column of `n` rows to `nodes`, and its Arrow buffers in the
 * format's order for its layout to `buffers`; then its children's, in pre-order.
 */
function appendColumn(col: Column, n: number, nodes: FieldNode[], buffers: Uint8Array[]): void {
  const { nullCount, parts } = columnBuffers(col, n);
  nodes.push(new FieldNode(n, nullCount));
  buffers.push(...parts);
  switch (col.kind) {
    case 'list': return appendColumn(col.child, col.offsets[n], nodes, buffers);
    case 'fixed_list': return appendColumn(col.child, n * col.size, nodes, buffers);
    case 'struct': for (const child of col.children) appendColumn(child, n, nodes, buffers);
  }
}

/** The Arrow buffers of one column of `n` rows (not its children's), in the format's order for its layout, and its NULL count. */
function columnBuffers(col: Column, n: number): { nullCount: number; parts: Uint8Array[] } {
  if (col.kind === 'other') {
    // Slow path for rare types: their text, as JSON shows it, NULL kept.
    const valid = new Uint8Array(Math.ceil(n / 8));
    const bytes: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      if (col.texts[i] !== null) valid[i >>> 3] |= 1 << (i & 7);
      bytes.push(Buffer.from(cellText(col, i, 'csv'), 'utf8'));
    }
    const offsets = new Int32Array(n + 1);
    for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i] + bytes[i].length;
    const nullCount = nulls(valid, n);
    return { nullCount, parts: [nullCount === 0 ? NO_BYTES : valid, bytesOf(offsets, n + 1), Buffer.concat(bytes)] };
  }
  const nullCount = nulls(col.valid, n);
  const validity = nullCount === 0 || col.valid === null ? NO_BYTES : col.valid.subarray(0, Math.ceil(n / 8));
  // A NULL string has no bytes (`copyStrings`), its offsets none between them; nor has a
  // NULL list elements (`nested-columns.ts`).
  switch (col.kind) {
    case 'utf8': case 'binary': return { nullCount, parts: [validity, bytesOf(col.offsets, n + 1), col.data.subarray(0, col.offsets[n])] };
    case 'list': return { nullCount, parts: [validity, bytesOf(col.offsets, n + 1)] };
    case 'fixed_list': case 'struct': return { nullCount, parts: [validity] };
  }
  if (col.kind === 'bool') {
    // DuckDB keeps one byte per boolean; Arrow one bit (0 for a NULL row).
    const bits = new Uint8Array(Math.ceil(n / 8));
    for (let i = 0; i < n; i++) if (col.values[i] !== 0 && isValid(col.valid, i)) bits[i >>> 3] |= 1 << (i & 7);
    return { nullCount, parts: [validity, bits] };
  }
  const values = bytesOf(col.values, n);
  if (nullCount === 0) return { nullCount, parts: [validity, values] };
  // A NULL row's slot holds whatever DuckDB's vector memory held before, maybe another
  // query's values: zeros are sent instead (in a copy; the column is the caller's).
  const zeroed = values.slice();
  const width = col.values.BYTES_PER_ELEMENT;
  for (let i = 0; i < n; i++) if (!isValid(col.valid, i)) zeroed.fill(0, i * width, (i + 1) * width);
  return { nullCount, parts: [validity, zeroed] };
}
