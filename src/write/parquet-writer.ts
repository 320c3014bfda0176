/**
 * Writes buffer snapshots as Parquet with DuckDB's writer.
 *
 * Why DuckDB and not parquet-wasm: measured on this machine (README, "Dependencies")
 * the DuckDB path is faster and keeps the encoding off the event loop. The columns
 * are copied into DuckDB DataChunks with `memcpy` (`copy_data_to_vector`), tags as
 * ENUMs of the snapshot's dictionary (so tag columns come out dictionary-encoded),
 * appended to a connection-local temp table; then one `COPY (… ORDER BY time) TO …
 * (FORMAT parquet)` per UTC hour writes a time-sorted file with statistics into the
 * storage backend's staging directory, and the backend moves it into place atomically.
 */
import { join } from 'node:path';
import duckdb from '@duckdb/node-bindings';
import {
  BIGINT, BOOLEAN, DOUBLE, DuckDBDataChunk, ENUM, TIMESTAMPTZ, VARCHAR,
  type DuckDBConnection, type DuckDBEnumType, type DuckDBType,
} from '@duckdb/node-api';
import type { FieldColumn, TagColumn } from '../parse/batch.js';
import type { BufferSnapshot } from '../buffer/measurement-buffer.js';
import type { Storage } from '../storage/storage.js';
import { hourOf, HOUR_US, type FileNamer } from './layout.js';
import { quoteIdentifier, quoteLiteral } from '../query/sql-text.js';

/** Parquet compression codecs offered by configuration. */
export type Compression = 'snappy' | 'zstd';

export interface ParquetWriterOptions {
  compression: Compression;
  /** Rows per Parquet row group. */
  rowGroupSize: number;
  /** Names new files (carries the node id). */
  namer: FileNamer;
  /** Key/value metadata added to every file of a snapshot (the WAL coverage, `wal/coverage.ts`). */
  metadata?: (snapshot: BufferSnapshot) => Readonly<Record<string, string>>;
}

/** A file written by a flush. */
export interface WrittenFile {
  readonly key: string;
  readonly rows: number;
  readonly hour: number;
}

// DuckDB's STANDARD_VECTOR_SIZE: the most rows one DataChunk holds.
const CHUNK_ROWS = 2048;
const TWO_32 = 4294967296;

interface PlannedColumn {
  readonly sqlType: string;
  readonly type: DuckDBType;
  fill(vector: duckdb.Vector, from: number, count: number): void;
}

let tableSequence = 0;

export class ParquetWriter {
  private readonly free: DuckDBConnection[];
  private readonly storage: Storage;
  private readonly options: ParquetWriterOptions;
  /**
   * Keys chosen for a snapshot's hours, reused when a failed write is retried: a put
   * that failed from the client's point of view may still have stored the object
   * (e.g. S3 answered after the timeout), and writing the same key again replaces it
   * instead of leaving a duplicate file.
   */
  private readonly keys = new WeakMap<BufferSnapshot, Map<number, string>>();

  /** @param connections one connection per concurrent `write` (temp tables are connection-local). */
  constructor(connections: DuckDBConnection[], storage: Storage, options: ParquetWriterOptions) {
    this.free = [...connections];
    this.storage = storage;
    this.options = options;
  }

  /**
   * Writes `snapshot` as one Parquet file per UTC hour it spans, skipping hours in
   * `doneHours` and adding each hour to it once its file is in storage (so a retry
   * after a partial failure writes no duplicates).
   * @throws whatever DuckDB or the storage backend throws; nothing is half-written.
   */
  async write(snapshot: BufferSnapshot, doneHours: Set<number> = new Set()): Promise<WrittenFile[]> {
    const hours = countHours(snapshot.time);
    const todo = [...hours].filter(([h]) => !doneHours.has(h));
    if (todo.length === 0) return [];
    const conn = this.free.pop();
    if (conn === undefined) throw new Error('ParquetWriter: more concurrent writes than connections');
    const table = `strata_flush_${tableSequence++}`;
    try {
      await this.load(conn, table, snapshot);
      const written: WrittenFile[] = [];
      let keys = this.keys.get(snapshot);
      if (keys === undefined) this.keys.set(snapshot, (keys = new Map()));
      for (const [hour, rows] of todo) {
        let key = keys.get(hour);
        if (key === undefined) keys.set(hour, (key = this.options.namer.fileKey(snapshot.database, snapshot.measurement, hour, rows)));
        const staged = join(this.storage.stagingDir, `${table}_${hour}.parquet`);
        const tagNames = snapshot.tags.map((t) => t.name).sort().join(',');
        const extra = Object.entries(this.options.metadata?.(snapshot) ?? {}).map(([k, v]) => `, ${quoteLiteral(k)}: ${quoteLiteral(v)}`).join('');
        await conn.run(
          `COPY (SELECT * FROM ${table} WHERE epoch_us(time) >= ${hour * HOUR_US} AND epoch_us(time) < ${(hour + 1) * HOUR_US} ORDER BY time) ` +
          `TO ${quoteLiteral(staged)} (FORMAT parquet, COMPRESSION ${this.options.compression}, ROW_GROUP_SIZE ${this.options.rowGroupSize}, ` +
          `KV_METADATA {'strata:tags': ${quoteLiteral(tagNames)}${extra}})`,
        );
        await this.storage.putFile(key, staged);
        doneHours.add(hour);
        written.push({ key, rows, hour });
      }
      return written;
    } finally {
      await conn.run(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      this.free.push(conn);
    }
  }

  /** Creates temp table `table` and appends the snapshot into it, chunk by chunk. */
  private async load(conn: DuckDBConnection, table: string, snapshot: BufferSnapshot): Promise<void> {
    const columns: { name: string; plan: PlannedColumn }[] = [{ name: 'time', plan: timeColumn(snapshot.time) }];
    for (const t of snapshot.tags) if (t.dictionary.length > 0) columns.push({ name: t.name, plan: tagColumn(t) });
    for (const f of snapshot.fields) if (f.valid.includes(1)) columns.push({ name: f.name, plan: fieldColumn(f) });
    const ddl = columns.map((c) => `${quoteIdentifier(c.name)} ${c.plan.sqlType}`).join(', ');
    await conn.run(`CREATE TEMP TABLE ${table} (${ddl})`);
    const appender = await conn.createAppender(table);
    try {
      const types = columns.map((c) => c.plan.type);
      for (let from = 0; from < snapshot.rowCount; from += CHUNK_ROWS) {
        const count = Math.min(CHUNK_ROWS, snapshot.rowCount - from);
        const chunk = DuckDBDataChunk.create(types, count);
        columns.forEach((c, i) => c.plan.fill(duckdb.data_chunk_get_vector(chunk.chunk, i), from, count));
        appender.appendDataChunk(chunk);
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
  }
}

/** Rows per hour partition, in ascending hour order. */
function countHours(time: Float64Array): Map<number, number> {
  const counts = new Map<number, number>();
  let last = NaN;
  let run = 0;
  for (let i = 0; i < time.length; i++) {
    const h = hourOf(time[i]);
    if (h === last) {
      run++;
      continue;
    }
    if (run > 0) counts.set(last, (counts.get(last) ?? 0) + run);
    last = h;
    run = 1;
  }
  if (run > 0) counts.set(last, (counts.get(last) ?? 0) + run);
  return new Map([...counts].sort((a, b) => a[0] - b[0]));
}

/** Copies `count` bytes-per-row values of `src` from row `from` into `vector`. */
function copyRows(vector: duckdb.Vector, src: ArrayBufferView & { BYTES_PER_ELEMENT: number }, from: number, count: number): void {
  const width = src.BYTES_PER_ELEMENT;
  duckdb.copy_data_to_vector(vector, 0, src.buffer as ArrayBuffer, src.byteOffset + from * width, count * width);
}

/**
 * Writes DuckDB's validity bitmask (bit i of 64-bit little-endian words = row i is
 * valid) for rows [from, from+count) where `isValid` says so; untouched when all are valid.
 */
function copyValidity(vector: duckdb.Vector, isValid: (row: number) => boolean, from: number, count: number): void {
  let allValid = true;
  for (let i = 0; i < count && allValid; i++) allValid = isValid(from + i);
  if (allValid) return;
  const mask = new Uint8Array(Math.ceil(count / 64) * 8);
  for (let i = 0; i < count; i++) if (isValid(from + i)) mask[i >>> 3] |= 1 << (i & 7);
  duckdb.vector_ensure_validity_writable(vector);
  duckdb.copy_data_to_vector_validity(vector, 0, mask.buffer, 0, mask.byteLength);
}

function timeColumn(time: Float64Array): PlannedColumn {
  // TIMESTAMPTZ is int64 µs; split each (safe-integer) number into 32-bit halves
  // instead of allocating a BigInt per row.
  const halves = new Int32Array(CHUNK_ROWS * 2);
  return {
    sqlType: 'TIMESTAMPTZ',
    type: TIMESTAMPTZ,
    fill(vector, from, count) {
      for (let i = 0; i < count; i++) {
        const t = time[from + i];
        const hi = Math.floor(t / TWO_32);
        halves[2 * i] = t - hi * TWO_32;
        halves[2 * i + 1] = hi;
      }
      duckdb.copy_data_to_vector(vector, 0, halves.buffer, 0, count * 8);
    },
  };
}

function tagColumn(tag: TagColumn): PlannedColumn {
  const type: DuckDBEnumType = ENUM(tag.dictionary as string[]);
  const n = tag.dictionary.length;
  // DuckDB stores an ENUM's index in the narrowest unsigned type that holds its size.
  const indexes = n <= 0xff ? new Uint8Array(CHUNK_ROWS) : n <= 0xffff ? new Uint16Array(CHUNK_ROWS) : new Uint32Array(CHUNK_ROWS);
  return {
    sqlType: `ENUM(${tag.dictionary.map(quoteLiteral).join(', ')})`,
    type,
    fill(vector, from, count) {
      for (let i = 0; i < count; i++) {
        const code = tag.codes[from + i];
        indexes[i] = code === 0 ? 0 : code - 1;
      }
      copyRows(vector, indexes, 0, count);
      copyValidity(vector, (row) => tag.codes[row] !== 0, from, count);
    },
  };
}

function fieldColumn(field: FieldColumn): PlannedColumn {
  const isValid = (row: number): boolean => field.valid[row] === 1;
  if (field.type === 'string') {
    return {
      sqlType: 'VARCHAR',
      type: VARCHAR,
      fill(vector, from, count) {
        for (let i = 0; i < count; i++) if (field.valid[from + i] === 1) duckdb.vector_assign_string_element(vector, i, field.values[from + i]);
        copyValidity(vector, isValid, from, count);
      },
    };
  }
  const [sqlType, type] = field.type === 'float64' ? ['DOUBLE', DOUBLE] : field.type === 'int64' ? ['BIGINT', BIGINT] : ['BOOLEAN', BOOLEAN];
  return {
    sqlType,
    type,
    fill(vector, from, count) {
      copyRows(vector, field.values, from, count);
      copyValidity(vector, isValid, from, count);
    },
  };
}
