/**
 * Prepared statements kept per pool connection, by rewritten SQL text.
 *
 * Every query is streamed, and the C API streams only a prepared statement. DuckDB binds
 * a statement that reads files once when it is prepared and again each time it runs
 * (the files could have changed), so a statement prepared anew for each query is bound
 * twice: ~0.4–1 ms of a 10 ms dashboard query (bench/README.md, "Queries"). A dashboard
 * repeats its queries, and the rewritten text is the same as long as the files it lists
 * and the held-records tables it names (`held-tables.ts`, kept per connection) are, so a
 * statement kept from the last time runs with one bind. Running it again is correct for
 * files that changed in between: a statement reading files is bound (and planned) afresh
 * on every run. Not so one reading only tables: DuckDB runs its plan as made, and the
 * optimizer pruned that plan with the tables' statistics then (`x > 5` over a table whose
 * values were all below 5 came back empty after rows above it were appended). So each
 * statement is kept with the row counts of the held-records tables it reads (`version`),
 * and one whose tables grew is prepared again; a table made again has a new name (new text).
 *
 * The cost: a kept statement holds an open handle on the first Parquet file it reads, so
 * the space of a file deleted meanwhile (a local copy evicted from the S3 cache) is freed
 * once the statement leaves its connection's cache (least recently used first, at most
 * `perConnection` statements).
 *
 * A connection runs one query at a time and statements are only made, run and destroyed
 * by the query holding it, so nothing here is shared between concurrent queries.
 */
import type { DuckDBConnection, DuckDBPreparedStatement, DuckDBResult } from '@duckdb/node-api';
import { LRUCache } from 'lru-cache';

interface Kept {
  readonly prepared: DuckDBPreparedStatement;
  readonly version: string;
}

/**
 * The per-connection caches of prepared statements the module comment describes: an LRU of
 * `perConnection` statements per DuckDB connection (a WeakMap: a connection's cache goes
 * with it), a statement destroyed when it is evicted. Created once by the composition root
 * (src/app.ts) and used by `QueryService` on the connection a query holds.
 */
export class PreparedStatements {
  private readonly byConnection = new WeakMap<DuckDBConnection, LRUCache<string, Kept>>();

  /** @param perConnection statements kept per connection; 0 prepares every query anew. */
  constructor(private readonly perConnection: number) {}

  /**
   * Starts `sql` (exactly one statement) on `conn` as a streaming result, preparing it
   * unless `conn` kept it with the same `version` (what the tables it reads hold, e.g.
   * their row counts; '' for none). A statement whose run fails is not kept, nor one
   * the caller says not to `keep` (it is prepared anew, and a kept one of the same text is
   * not used).
   * @throws whatever DuckDB throws when preparing or starting it.
   */
  async stream(conn: DuckDBConnection, sql: string, version: string, keep = true): Promise<DuckDBResult> {
    if (this.perConnection === 0 || !keep) {
      const prepared = await conn.prepare(sql);
      try {
        return await prepared.stream();
      } finally {
        prepared.destroySync();
      }
    }
    const kept = this.of(conn);
    let entry = kept.get(sql);
    if (entry?.version !== version) {
      kept.delete(sql);
      entry = { prepared: await conn.prepare(sql), version };
      kept.set(sql, entry);
    }
    try {
      return await entry.prepared.stream();
    } catch (err) {
      kept.delete(sql);
      throw err;
    }
  }

  private of(conn: DuckDBConnection): LRUCache<string, Kept> {
    let kept = this.byConnection.get(conn);
    if (kept === undefined) {
      kept = new LRUCache({ max: this.perConnection, dispose: (entry) => entry.prepared.destroySync() });
      this.byConnection.set(conn, kept);
    }
    return kept;
  }
}
