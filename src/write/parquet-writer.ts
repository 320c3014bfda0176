/**
 * Writes buffer snapshots as Parquet with DuckDB's writer.
 *
 * Why DuckDB and not parquet-wasm: measured on this machine (README, "Dependencies")
 * the DuckDB path is faster and keeps the encoding off the event loop. The snapshot
 * is loaded into a connection-local temp table (`snapshot-table.ts`); then one `COPY (… ORDER BY time) TO …
 * (FORMAT parquet)` per UTC hour writes a time-sorted file with statistics into the
 * storage backend's staging directory, and the backend moves it into place atomically.
 *
 * DuckDB holds that table whole in memory and cannot spill it; past 2,048 rows each
 * column takes 256 KiB blocks whatever its values (500 columns do not fit under a 100 MB
 * limit: test/flush-lifecycle).
 * A snapshot DuckDB cannot hold under its memory limit would fail every retry, and the
 * write path with it, so an hour whose table or COPY fails is written again in pieces
 * of PIECE_ROWS time-sorted rows, each its own small table and staged file, then merged
 * by one streaming COPY into the hour's one file (one file per hour keeps the WAL's
 * exactly-once rule, `wal/coverage.ts`).
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { BufferSnapshot } from '../buffer/measurement-buffer.js';
import { StorageUnavailableError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { KeyLog, type ListingCut } from './key-log.js';
import { hourOf, HOUR_US, type FileNamer } from './layout.js';
import { quoteIdentifier, quoteLiteral } from '../query/sql-text.js';
import { selectRows } from '../parse/batch.js';
import { columnNamesOf, createSnapshotTable } from './snapshot-table.js';

// One DuckDB vector: a table of up to this many rows takes small segments, not blocks.
const PIECE_ROWS = 2048;

/** Parquet compression codecs offered by configuration. */
export type Compression = 'snappy' | 'zstd';

/** File format settings and hooks of a `ParquetWriter` (from `parquet.*` in src/app.ts). */
export interface ParquetWriterOptions {
  /** Codec of every column chunk (`parquet.compression`). */
  compression: Compression;
  /** Rows per Parquet row group. */
  rowGroupSize: number;
  /** Names new files (carries the node id). */
  namer: FileNamer;
  /** Key/value metadata added to every file of a snapshot (the WAL coverage, `wal/coverage.ts`). */
  metadata?: (snapshot: BufferSnapshot) => Readonly<Record<string, string>>;
  /** Called once per `write` that falls back to pieces, with DuckDB's error that caused it. */
  onPieces?: (snapshot: BufferSnapshot, err: unknown) => void;
}

/** A file written by a flush. */
export interface WrittenFile {
  readonly key: string;
  readonly rows: number;
  readonly hour: number;
}

let tableSequence = 0;

/**
 * Turns buffer snapshots into hour-partitioned Parquet files in storage (see the module
 * comment): one staged file per UTC hour, moved into place by `Storage.putFile`. Created
 * once by the composition root (src/app.ts) with the flush connections (one per
 * concurrent `write`, so at most as many writes at once as connections: the
 * `BufferManager` runs that many workers) and the storage backend. Its `keysOf` lets
 * queries skip the files of a flush still under way, and its `cut` the files of flushes
 * that started after a query took the held records.
 */
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
  private readonly keyLog = new KeyLog();
  private readonly written = { files: 0, bytes: 0, inPieces: 0 };

  /**
   * Keys of the files written, or being written, from `snapshot` (each is registered
   * before its file is put in storage): a query that reads the snapshot from memory
   * skips these files, so no record is counted twice while a flush is under way.
   */
  keysOf(snapshot: BufferSnapshot): string[] {
    return [...(this.keys.get(snapshot)?.values() ?? [])];
  }

  /**
   * A cut of the files written from now on (`key-log.ts`): a query takes it with the held
   * records, in the same synchronous step, and leaves out of its listing the files it hides.
   */
  cut(): ListingCut {
    return this.keyLog.cut();
  }

  /**
   * Since start (`GET /metrics`): Parquet files put in storage, their total size in bytes,
   * and `write` calls that fell back to pieces (each once, whether it then succeeded or not).
   */
  stats(): { files: number; bytes: number; inPieces: number } {
    return { ...this.written };
  }

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
   * @throws StorageUnavailableError (503) when DuckDB cannot write a staged file (its message names the key,
   *   not the staging path) or the backend cannot store it; other DuckDB errors as thrown. Nothing is half-written.
   */
  async write(snapshot: BufferSnapshot, doneHours: Set<number> = new Set()): Promise<WrittenFile[]> {
    const hours = countHours(snapshot.time);
    const todo = [...hours].filter(([h]) => !doneHours.has(h));
    if (todo.length === 0) return [];
    const conn = this.free.pop();
    if (conn === undefined) throw new Error('ParquetWriter: more concurrent writes than connections');
    const table = `strata_flush_${tableSequence++}`;
    try {
      // DuckDB could not hold or copy `rows` rows of `table`: the rest of the snapshot is
      // written in pieces, unless `rows` fit in one piece, which would fail the same way.
      const fallBack = async (err: unknown, rows: number): Promise<false> => {
        if (rows <= PIECE_ROWS) throw err;
        await conn.run(`DROP TABLE IF EXISTS ${table}`);
        this.written.inPieces++;
        this.options.onPieces?.(snapshot, err);
        return false;
      };
      // Whether `table` holds the snapshot.
      let whole = await createSnapshotTable(conn, table, snapshot).then(() => true, (err: unknown) => fallBack(err, snapshot.rowCount));
      const written: WrittenFile[] = [];
      let keys = this.keys.get(snapshot);
      if (keys === undefined) this.keys.set(snapshot, (keys = new Map()));
      // A JSON array: tag keys may hold commas (`m,a\,b=1 …`), which a joined list could not tell apart.
      const tagNames = JSON.stringify(snapshot.tags.map((t) => t.name).sort());
      const extra = Object.entries(this.options.metadata?.(snapshot) ?? {}).map(([k, v]) => `, ${quoteLiteral(k)}: ${quoteLiteral(v)}`).join('');
      const metadata = `KV_METADATA {'strata:tags': ${quoteLiteral(tagNames)}${extra}}`;
      const dictionaries = !holdsBothZeros(snapshot);
      for (const [hour, rows] of todo) {
        let key = keys.get(hour);
        if (key === undefined) {
          keys.set(hour, (key = this.options.namer.fileKey(snapshot.database, snapshot.measurement, hour, rows)));
          this.keyLog.note(key);
        }
        const staged = join(this.storage.stagingDir, `${table}_${hour}.parquet`);
        try {
          // Made again if removed while running (a tmp cleaner): every flush would fail until a restart.
          await mkdir(this.storage.stagingDir, { recursive: true });
          if (whole) {
            whole = await conn.run(
              `COPY (SELECT * FROM ${table} WHERE epoch_us(time) >= ${hour * HOUR_US} AND epoch_us(time) < ${(hour + 1) * HOUR_US} ORDER BY time) ` +
              `TO ${quoteLiteral(staged)} (${this.format(this.options.rowGroupSize, dictionaries)}, ${metadata})`,
            ).then(() => true, async (err: unknown) => {
              await rm(staged, { force: true });
              return fallBack(err, rows);
            });
          }
          if (!whole) await this.copyInPieces(conn, `${table}_piece`, snapshot, hour, staged, metadata, dictionaries);
        } catch (err) {
          // A partial file would wait for the next start (removed best effort: the error to report is
          // `err`); DuckDB's message names the staging path, clients see the key.
          await rm(staged, { force: true }).catch(() => undefined);
          const message = (err as Error).message.replaceAll(staged, key).replaceAll(this.storage.stagingDir, 'the staging directory');
          throw new StorageUnavailableError(`writing ${key} failed: ${message}`, { cause: err });
        }
        // Measured by the backend, inside the put that removes the staged file on failure.
        const size = await this.storage.putFile(key, staged);
        // Counted with `doneHours`: a retry skips this hour, so each key counts once.
        this.written.files++;
        this.written.bytes += size;
        doneHours.add(hour);
        written.push({ key, rows, hour });
      }
      return written;
    } finally {
      await conn.run(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      this.free.push(conn);
    }
  }

  /**
   * The COPY options of every file: format, compression, `rowGroupSize` rows per row group;
   * without `dictionaries`, no column is dictionary-encoded (`holdsBothZeros`).
   */
  private format(rowGroupSize: number, dictionaries: boolean): string {
    return `FORMAT parquet, COMPRESSION ${this.options.compression}, ROW_GROUP_SIZE ${rowGroupSize}${dictionaries ? '' : ', DICTIONARY_SIZE_LIMIT 0'}`;
  }

  /**
   * Writes the rows of `snapshot` in UTC hour `hour` to `staged` as one time-sorted file
   * with `metadata`, holding no more than PIECE_ROWS of them in DuckDB at a time: each
   * piece goes through temp table `name` into a staged file of its own, and one COPY
   * streams those files, in order, into `staged` (row groups of PIECE_ROWS at most:
   * DuckDB's writer holds a row group of every column in memory).
   * @throws whatever DuckDB throws; the piece files are removed.
   */
  private async copyInPieces(conn: DuckDBConnection, name: string, snapshot: BufferSnapshot, hour: number, staged: string, metadata: string,
    dictionaries: boolean): Promise<void> {
    const rows = rowsOfHour(snapshot.time, hour);
    const pieces: string[] = [];
    try {
      for (let at = 0; at < rows.length; at += PIECE_ROWS) {
        // Named after `staged`, so that an error message naming it names the key once mapped.
        const piece = `${staged}.piece${pieces.length}`;
        pieces.push(piece);
        try {
          await createSnapshotTable(conn, name, selectRows(snapshot, rows.subarray(at, at + PIECE_ROWS)));
          await conn.run(`COPY (SELECT * FROM ${name}) TO ${quoteLiteral(piece)} (${this.format(PIECE_ROWS, dictionaries)})`);
        } finally {
          await conn.run(`DROP TABLE IF EXISTS ${name}`);
        }
      }
      // Pieces lack the columns they hold no value of; DuckDB keeps the files' order, so the rows stay sorted.
      const columns = columnNamesOf(snapshot, rows).map(quoteIdentifier).join(', ');
      await conn.run(
        `COPY (SELECT ${columns} FROM read_parquet([${pieces.map(quoteLiteral).join(', ')}], union_by_name = true)) ` +
        `TO ${quoteLiteral(staged)} (${this.format(Math.min(this.options.rowGroupSize, PIECE_ROWS), dictionaries)}, ${metadata})`,
      );
    } finally {
      await Promise.all(pieces.map((piece) => rm(piece, { force: true })));
    }
  }
}

/**
 * Whether a float64 column of `snapshot` holds both zeros, −0.0 and +0.0. DuckDB's Parquet
 * writer (1.5.5) dedups a dictionary with `==`, for which they are equal, so every zero of
 * a dictionary-encoded column comes back with the sign of the first one written
 * (duckdb/duckdb#25781); such a snapshot's files are written without dictionaries (tags,
 * ENUMs in the snapshot table, keep theirs: DuckDB writes an ENUM with its dictionary
 * whatever the limit). Rare in measurements, so other files keep their fields' too.
 */
function holdsBothZeros(snapshot: BufferSnapshot): boolean {
  for (const f of snapshot.fields) {
    if (f.type !== 'float64') continue;
    let negative = false;
    let positive = false;
    for (let i = 0; i < f.values.length; i++) {
      const v = f.values[i];
      if (v !== 0 || f.valid[i] !== 1) continue;
      if (Object.is(v, -0)) negative = true;
      else positive = true;
      if (negative && positive) return true;
    }
  }
  return false;
}

/** Indexes of the rows of `time` (µs) in UTC hour `hour`, sorted by time (ties in row order). */
function rowsOfHour(time: Float64Array, hour: number): Int32Array {
  let n = 0;
  for (let i = 0; i < time.length; i++) if (hourOf(time[i]) === hour) n++;
  const rows = new Int32Array(n);
  for (let i = 0, j = 0; i < time.length; i++) if (hourOf(time[i]) === hour) rows[j++] = i;
  return rows.sort((a, b) => time[a] - time[b] || a - b);
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
