/**
 * Buffer snapshots as DuckDB temp tables: the one path from Strata's columnar buffers
 * into DuckDB, used by the Parquet writer (then `COPY … TO` a file) and by queries
 * over records not yet flushed (read-your-writes).
 *
 * The columns are copied into DuckDB DataChunks with `memcpy` (`copy_data_to_vector`),
 * tags as ENUMs of the snapshot's dictionary (so the writer's tag columns come out
 * dictionary-encoded), and appended to a connection-local temp table.
 */
import duckdb from '@duckdb/node-bindings';
import {
  BIGINT, BOOLEAN, DOUBLE, DuckDBDataChunk, ENUM, TIMESTAMPTZ, VARCHAR,
  type DuckDBConnection, type DuckDBEnumType, type DuckDBType,
} from '@duckdb/node-api';
import type { FieldColumn, MeasurementRecords, TagColumn } from '../parse/batch.js';

import { quoteIdentifier, quoteLiteral } from '../query/sql-text.js';

// DuckDB's STANDARD_VECTOR_SIZE: the most rows one DataChunk holds.
const CHUNK_ROWS = 2048;
const TWO_32 = 4294967296;

interface PlannedColumn {
  readonly sqlType: string;
  readonly type: DuckDBType;
  fill(vector: duckdb.Vector, from: number, count: number): void;
}

/**
 * Creates connection-local temp table `table` holding `snapshot`'s rows and appends
 * them chunk by chunk (memcpy per column, no per-value conversion). Columns: `time`
 * TIMESTAMPTZ, each tag that has a value as an ENUM of its dictionary (VARCHAR when a
 * value holds NUL), each field that has a value as BIGINT, DOUBLE, VARCHAR or BOOLEAN;
 * absent values are NULL. In that order, tags and fields each by name (`planColumns`).
 * @returns the tag columns created (ENUMs: a reader wanting strings casts them to VARCHAR).
 * @throws whatever DuckDB throws (the caller drops the table).
 */
export async function createSnapshotTable(conn: DuckDBConnection, table: string, snapshot: MeasurementRecords): Promise<string[]> {
  const columns = planColumns(snapshot);
  const ddl = columns.map((c) => `${quoteIdentifier(c.name)} ${c.plan.sqlType}`).join(', ');
  await conn.run(`CREATE TEMP TABLE ${table} (${ddl})`);
  await appendRows(conn, table, columns, snapshot, 0);
  return snapshot.tags.filter((t) => t.dictionary.length > 0).map((t) => t.name);
}

/**
 * Appends rows [from, rowCount) of `snapshot` to `table`, created by `createSnapshotTable`
 * from an earlier view of the same records whose `snapshotShape` equals this one's
 * (same columns, same dictionary sizes, so the same ENUM types).
 * @throws whatever DuckDB throws.
 */
export async function appendSnapshotRows(conn: DuckDBConnection, table: string, snapshot: MeasurementRecords, from: number): Promise<void> {
  await appendRows(conn, table, planColumns(snapshot), snapshot, from);
}

/**
 * What decides the columns `createSnapshotTable` creates for `snapshot` (names, types,
 * tag dictionary sizes), as a string: equal shapes, equal table definitions.
 */
export function snapshotShape(snapshot: MeasurementRecords): string {
  const parts: string[] = [];
  for (const t of snapshot.tags) if (t.dictionary.length > 0) parts.push(`t:${t.name}:${t.dictionary.length}`);
  for (const f of snapshot.fields) if (f.valid.includes(1)) parts.push(`f:${f.name}:${f.type}`);
  return parts.join('\u0000');
}

/** The table's columns: `time`, the tags, the fields, each group by name (`inOrder`). */
function planColumns(snapshot: MeasurementRecords): { name: string; plan: PlannedColumn }[] {
  const { tags, fields } = inOrder(snapshot, (f) => f.valid.includes(1));
  return [
    { name: 'time', plan: timeColumn(snapshot.time) },
    ...tags.map((t) => ({ name: t.name, plan: tagColumn(t) })),
    ...fields.map((f) => ({ name: f.name, plan: fieldColumn(f) })),
  ];
}

/**
 * The names of the columns that tables made of `snapshot`'s rows `rows` have between them,
 * in `createSnapshotTable`'s order: for files written piece by piece and merged by name,
 * which would otherwise put a field first seen in a later piece last.
 */
export function columnNamesOf(snapshot: MeasurementRecords, rows: Int32Array): string[] {
  const { tags, fields } = inOrder(snapshot, (f) => rows.some((row) => f.valid[row] === 1));
  return ['time', ...tags.map((t) => t.name), ...fields.map((f) => f.name)];
}

/**
 * The tags that have a value and the fields `hasValue` keeps, each by name (UTF-16 code
 * units). Not in the order the buffer first saw them, which changes with whichever line
 * came first after a start: `SELECT *` takes its order from the files (`union_by_name`),
 * and files whose columns differ only in order would also lose the faster same-columns scan.
 */
function inOrder(snapshot: MeasurementRecords, hasValue: (f: FieldColumn) => boolean): { tags: TagColumn[]; fields: FieldColumn[] } {
  const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return { tags: snapshot.tags.filter((t) => t.dictionary.length > 0).sort(byName), fields: snapshot.fields.filter(hasValue).sort(byName) };
}

async function appendRows(conn: DuckDBConnection, table: string, columns: { name: string; plan: PlannedColumn }[], snapshot: MeasurementRecords, start: number): Promise<void> {
  const appender = await conn.createAppender(table);
  try {
    // One chunk for the whole load: creating one rebuilds every logical type, and the
    // ENUM of a 1,000-host dictionary rebuilt per step cost 6.6 % of the event loop. The
    // appender copies each chunk's rows, so the chunk can be refilled; reset() drops the
    // previous step's validity masks and strings, so every step starts all-valid.
    const chunk = DuckDBDataChunk.create(columns.map((c) => c.plan.type));
    for (let from = start; from < snapshot.rowCount; from += CHUNK_ROWS) {
      const count = Math.min(CHUNK_ROWS, snapshot.rowCount - from);
      chunk.reset();
      chunk.rowCount = count;
      columns.forEach((c, i) => c.plan.fill(duckdb.data_chunk_get_vector(chunk.chunk, i), from, count));
      appender.appendDataChunk(chunk);
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
}

/** Copies `count` bytes-per-row values of `src` from row `from` into `vector`. */
function copyRows(vector: duckdb.Vector, src: ArrayBufferView & { BYTES_PER_ELEMENT: number }, from: number, count: number): void {
  const width = src.BYTES_PER_ELEMENT;
  duckdb.copy_data_to_vector(vector, 0, src.buffer as ArrayBuffer, src.byteOffset + from * width, count * width);
}

/**
 * Writes DuckDB's validity bitmask (bit i of 64-bit little-endian words = row i is
 * valid) for rows [from, from+count), where `present[row]` is 0 for NULL (a tag's codes
 * or a field's valid flags); untouched when all are valid, the common case, which
 * `indexOf` finds natively.
 */
function copyValidity(vector: duckdb.Vector, present: Uint8Array | Uint32Array, from: number, count: number): void {
  if (present.subarray(from, from + count).indexOf(0) === -1) return;
  const mask = new Uint8Array(Math.ceil(count / 64) * 8);
  for (let i = 0; i < count; i++) if (present[from + i] !== 0) mask[i >>> 3] |= 1 << (i & 7);
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
  // An ENUM's values reach DuckDB as C strings (in the DDL text and through `ENUM()` alike),
  // which end at a NUL: a dictionary holding one would break the CREATE (every flush and
  // query of the measurement failing until restart) or cut the value. Such a tag is VARCHAR.
  if (tag.dictionary.some((v) => v.includes('\u0000'))) {
    return stringColumn(tag.codes, (row) => tag.dictionary[tag.codes[row] - 1]);
  }
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
      copyValidity(vector, tag.codes, from, count);
    },
  };
}

/** A VARCHAR column whose row is NULL where `present[row]` is 0, else `value(row)`. */
function stringColumn(present: Uint8Array | Uint32Array, value: (row: number) => string): PlannedColumn {
  return {
    sqlType: 'VARCHAR',
    type: VARCHAR,
    fill(vector, from, count) {
      for (let i = 0; i < count; i++) if (present[from + i] !== 0) duckdb.vector_assign_string_element(vector, i, value(from + i));
      copyValidity(vector, present, from, count);
    },
  };
}

function fieldColumn(field: FieldColumn): PlannedColumn {
  if (field.type === 'string') {
    const values = field.values;
    return stringColumn(field.valid, (row) => values[row]);
  }
  const [sqlType, type] = field.type === 'float64' ? ['DOUBLE', DOUBLE] : field.type === 'int64' ? ['BIGINT', BIGINT] : ['BOOLEAN', BOOLEAN];
  return {
    sqlType,
    type,
    fill(vector, from, count) {
      copyRows(vector, field.values, from, count);
      copyValidity(vector, field.valid, from, count);
    },
  };
}
