/**
 * Writes buffer snapshots as Parquet with DuckDB's writer.
 *
 * Why DuckDB and not parquet-wasm: measured on this machine (README, "Dependencies")
 * the DuckDB path is faster and keeps the encoding off the event loop. The snapshot
 * is loaded into a connection-local temp table (`snapshot-table.ts`); then one `COPY (… ORDER BY time) TO …
 * (FORMAT parquet)` per UTC hour writes a time-sorted file with statistics into the
 * storage backend's staging directory, and the backend moves it into place atomically.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { BufferSnapshot } from '../buffer/measurement-buffer.js';
import { StorageUnavailableError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { hourOf, HOUR_US, type FileNamer } from './layout.js';
import { quoteLiteral } from '../query/sql-text.js';
import { createSnapshotTable } from './snapshot-table.js';

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
  private readonly written = { files: 0, bytes: 0 };

  /**
   * Keys of the files written, or being written, from `snapshot` (each is registered
   * before its file is put in storage): a query that reads the snapshot from memory
   * skips these files, so no record is counted twice while a flush is under way.
   */
  keysOf(snapshot: BufferSnapshot): string[] {
    return [...(this.keys.get(snapshot)?.values() ?? [])];
  }

  /** Parquet files put in storage since start, and their total size in bytes (`GET /metrics`). */
  stats(): { files: number; bytes: number } {
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
      await createSnapshotTable(conn, table, snapshot);
      const written: WrittenFile[] = [];
      let keys = this.keys.get(snapshot);
      if (keys === undefined) this.keys.set(snapshot, (keys = new Map()));
      // A JSON array: tag keys may hold commas (`m,a\,b=1 …`), which a joined list could not tell apart.
      const tagNames = JSON.stringify(snapshot.tags.map((t) => t.name).sort());
      const extra = Object.entries(this.options.metadata?.(snapshot) ?? {}).map(([k, v]) => `, ${quoteLiteral(k)}: ${quoteLiteral(v)}`).join('');
      for (const [hour, rows] of todo) {
        let key = keys.get(hour);
        if (key === undefined) keys.set(hour, (key = this.options.namer.fileKey(snapshot.database, snapshot.measurement, hour, rows)));
        const staged = join(this.storage.stagingDir, `${table}_${hour}.parquet`);
        try {
          await conn.run(
            `COPY (SELECT * FROM ${table} WHERE epoch_us(time) >= ${hour * HOUR_US} AND epoch_us(time) < ${(hour + 1) * HOUR_US} ORDER BY time) ` +
            `TO ${quoteLiteral(staged)} (FORMAT parquet, COMPRESSION ${this.options.compression}, ROW_GROUP_SIZE ${this.options.rowGroupSize}, ` +
            `KV_METADATA {'strata:tags': ${quoteLiteral(tagNames)}${extra}})`,
          );
        } catch (err) {
          // A partial file would wait for the next start; DuckDB's message names the staging path, clients see the key.
          await rm(staged, { force: true });
          throw new StorageUnavailableError(`writing ${key} failed: ${(err as Error).message.replaceAll(staged, key)}`, { cause: err });
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
