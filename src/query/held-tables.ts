/**
 * DuckDB tables of the records queries read before they are flushed (read-your-writes),
 * kept per pool connection from one query to the next instead of copied for each query:
 * copying costs ~0.25–0.3 µs a record (bench/read-your-writes.ts), and a dashboard
 * queries the same measurements again and again.
 *
 * - A detached snapshot (queued, being written, retrying) never changes: its table is
 *   made once per connection and dropped once the snapshot is written.
 * - The live buffer only grows within a generation (`BufferSnapshot.liveGeneration`):
 *   its table gets the rows added since the connection's last query appended. A new
 *   generation, a new column or a new tag value (tags are ENUMs of the dictionary)
 *   makes the table again.
 *
 * Tables are connection-local temp tables, and a connection runs one query at a time,
 * so nothing here is shared between concurrent queries.
 *
 * A DROP can fail: the pool interrupts a query's connection when its signal aborts, and
 * that may land on a DROP its planning sweep runs (`test/held-tables-drop.test.ts` makes
 * it happen). Such a table is kept in mind and dropped again by the
 * connection's next sweep, or it would hold its copy for the life of the process.
 *
 * A query sweeps its own connection before planning, but the pool lends connections
 * LIFO, so one left idle after a burst would keep its copies of written records (DuckDB
 * memory outside the buffer bound, shared with the Parquet writer) indefinitely:
 * `IdleSweeper` sweeps idle connections too, after each flush.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { BufferSnapshot } from '../buffer/measurement-buffer.js';
import { appendSnapshotRows, createSnapshotTable, snapshotShape } from '../write/snapshot-table.js';
import type { DuckDBPool } from './duckdb-pool.js';

/** What the held tables need to know of the buffers (`BufferManager` implements it). */
export interface HeldState {
  /** Whether a detached snapshot still waits to be written. */
  isHeld(snapshot: BufferSnapshot): boolean;
  /** The live buffer's current generation; undefined when there is none. */
  liveGeneration(database: string, measurement: string): number | undefined;
}

/** A held-records table ready for one query: its name and its tag columns (ENUMs). */
export interface HeldTable {
  readonly table: string;
  readonly tags: readonly string[];
}

interface Entry extends HeldTable {
  /** The detached snapshot it holds, or undefined for a live buffer's table. */
  readonly snapshot: BufferSnapshot | undefined;
  readonly database: string;
  readonly measurement: string;
  readonly generation: number;
  readonly shape: string;
  rows: number;
}

/**
 * What the held tables of every connection keep (`GET /api/v1/metrics/query-pool`, `GET /metrics`).
 * A table counts from its creation until a DROP of it succeeds: one whose DROP failed
 * still holds its rows, so it counts until the sweep that drops it.
 */
export interface HeldTablesStats {
  /**
   * Tables kept, over all pool connections: those queries read, and those waiting for a
   * DROP that failed to be tried again (a failed create's leftover included, though
   * its CREATE may have failed before the table existed).
   */
  tables: number;
  /**
   * Rows known to be in them (a record held by several connections counts once per
   * connection). A table whose create or append failed is counted with the rows it had
   * before: what the failed statement appended is not known.
   */
  rows: number;
}

let sequence = 0;

/** Whether an entry's records are no longer held: its snapshot written, or its live buffer detached since. */
function written(state: HeldState, entry: Entry): boolean {
  return entry.snapshot !== undefined
    ? !state.isHeld(entry.snapshot)
    : state.liveGeneration(entry.database, entry.measurement) !== entry.generation;
}

/** The held-records tables of one connection. */
class ConnectionTables {
  private readonly detached = new Map<BufferSnapshot, Entry>();
  private readonly live = new Map<string, Entry>();
  /** Tables whose DROP failed, with the rows counted for them: in no map above, dropped again by `sweep`. */
  private readonly undropped = new Map<string, number>();

  constructor(private readonly conn: DuckDBConnection, private readonly counts: HeldTablesStats) {}

  async tableFor(snapshot: BufferSnapshot): Promise<HeldTable> {
    const generation = snapshot.liveGeneration;
    if (generation === undefined) {
      const known = this.detached.get(snapshot);
      if (known !== undefined) return known;
      const entry = await this.create(snapshot, -1);
      this.detached.set(snapshot, entry);
      return entry;
    }
    const key = `${snapshot.database}\u0000${snapshot.measurement}`;
    const known = this.live.get(key);
    if (known !== undefined && known.generation === generation && known.rows <= snapshot.rowCount && known.shape === snapshotShape(snapshot)) {
      if (known.rows < snapshot.rowCount) {
        try {
          await appendSnapshotRows(this.conn, known.table, snapshot, known.rows);
        } catch (err) {
          this.live.delete(key);
          await this.forget(known);
          throw err;
        }
        this.counts.rows += snapshot.rowCount - known.rows;
        known.rows = snapshot.rowCount;
      }
      return known;
    }
    if (known !== undefined) {
      this.live.delete(key);
      await this.forget(known);
    }
    const entry = await this.create(snapshot, generation);
    this.live.set(key, entry);
    return entry;
  }

  /**
   * Drops the tables whose DROP failed before (those failing again are kept for the next
   * sweep), then the tables of snapshots written since and of live buffers detached
   * since, until `stop()` (asked before each drop) says to leave the rest.
   */
  async sweep(state: HeldState, stop: () => boolean = () => false): Promise<void> {
    // A copy: a DROP failing again puts its table back, and the next sweep retries it.
    for (const [table, rows] of [...this.undropped]) {
      if (stop()) return;
      await this.drop(table, rows);
    }
    for (const entries of [this.detached, this.live] as Map<unknown, Entry>[]) {
      for (const [key, entry] of entries) {
        if (!written(state, entry)) continue;
        if (stop()) return;
        entries.delete(key);
        await this.forget(entry);
      }
    }
  }

  /** Whether `sweep` has anything to drop. */
  stale(state: HeldState): boolean {
    if (this.undropped.size > 0) return true;
    for (const entries of [this.detached, this.live]) for (const entry of entries.values()) if (written(state, entry)) return true;
    return false;
  }

  private async create(snapshot: BufferSnapshot, generation: number): Promise<Entry> {
    const table = `strata_held_${sequence++}`;
    try {
      const tags = await createSnapshotTable(this.conn, table, snapshot);
      this.counts.tables++;
      this.counts.rows += snapshot.rowCount;
      return {
        table, tags, snapshot: snapshot.liveGeneration === undefined ? snapshot : undefined,
        database: snapshot.database, measurement: snapshot.measurement, generation, shape: snapshotShape(snapshot), rows: snapshot.rowCount,
      };
    } catch (err) {
      // Counted like any table until dropped: the failed statement may have left it, with rows.
      this.counts.tables++;
      await this.drop(table, 0);
      throw err;
    }
  }

  /** Drops an entry's table, already removed from the maps. */
  private forget(entry: Entry): Promise<void> {
    return this.drop(entry.table, entry.rows);
  }

  /**
   * Drops `table`, counted in `counts` with `rows`, and uncounts it; if the DROP fails
   * (it never throws) the table stays counted, in `undropped`.
   */
  private async drop(table: string, rows: number): Promise<void> {
    try {
      await this.conn.run(`DROP TABLE IF EXISTS ${table}`);
    } catch {
      this.undropped.set(table, rows);
      return;
    }
    this.undropped.delete(table);
    this.counts.tables--;
    this.counts.rows -= rows;
  }
}

/**
 * Held-records tables of every pool connection. `tableFor` gives a query the table of one
 * held snapshot on its connection; `sweep` (before a query plans) drops what was written
 * and what a failed DROP left; `sweepIdle` does the same on the pool's idle connections.
 */
export class HeldTables {
  private readonly byConnection = new WeakMap<DuckDBConnection, ConnectionTables>();
  private readonly counts: HeldTablesStats = { tables: 0, rows: 0 };

  constructor(private readonly state: HeldState) {}

  /**
   * The table holding exactly `snapshot`'s rows on `conn`, made or brought up to date.
   * @throws whatever DuckDB throws (the table is then dropped, or left to a later sweep if that fails too).
   */
  tableFor(conn: DuckDBConnection, snapshot: BufferSnapshot): Promise<HeldTable> {
    return this.of(conn).tableFor(snapshot);
  }

  /**
   * Drops `conn`'s tables whose records are written. Never throws: a table whose DROP
   * fails stays counted and is dropped by the next `sweep` or `sweepIdle` of `conn`.
   */
  sweep(conn: DuckDBConnection): Promise<void> {
    return this.of(conn).sweep(this.state);
  }

  /**
   * Sweeps the connections of `pool` that hold tables to drop and are idle, borrowing
   * each in turn (`DuckDBPool.eachIdle`: no query's connection is touched). A query
   * queued meanwhile waits for one DROP at most: the sweep of that connection stops
   * there, and the query's own sweep drops the rest.
   * @returns how many connections with tables to drop were busy or left unfinished
   *   (0: nothing stale is left on an idle connection).
   */
  async sweepIdle(pool: DuckDBPool): Promise<number> {
    let unfinished = 0;
    const busy = await pool.eachIdle(
      (conn) => this.byConnection.get(conn)?.stale(this.state) ?? false,
      async (conn) => {
        const tables = this.of(conn);
        await tables.sweep(this.state, () => pool.waitingReady > 0);
        if (tables.stale(this.state)) unfinished++;
      },
    );
    return busy + unfinished;
  }

  /** Tables kept and their rows, over all connections. */
  stats(): HeldTablesStats {
    return { ...this.counts };
  }

  private of(conn: DuckDBConnection): ConnectionTables {
    let tables = this.byConnection.get(conn);
    if (tables === undefined) this.byConnection.set(conn, (tables = new ConnectionTables(conn, this.counts)));
    return tables;
  }
}

/** Delay before connections a sweep had to skip (lent to a query) are tried again, ms. */
const RETRY_MS = 1_000;

/**
 * Runs `HeldTables.sweepIdle` when asked (after each flush), one sweep at a time, and
 * again every `retryMs` while some connection with tables to drop was busy: one a
 * query held through the flush may otherwise sit idle with them for good.
 */
export class IdleSweeper {
  private running: Promise<void> | undefined;
  private scheduled = false;
  private again = false;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  /** `onError` gets what a sweep threw (it is not retried then). */
  constructor(
    private readonly tables: HeldTables,
    private readonly pool: DuckDBPool,
    private readonly onError: (err: unknown) => void,
    private readonly retryMs = RETRY_MS,
  ) {}

  /**
   * Asks for a sweep, run in a later macrotask: called from a snapshot's write callback,
   * the snapshot is only settled (no longer held) once the callback's promise resolves.
   * Requests made while a sweep runs make one more sweep after it. No-op once stopped.
   */
  request(): void {
    if (this.stopped || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.start();
    });
  }

  /** Starts no further sweep and resolves once the one running (if any) has ended, so the pool may be closed. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.running;
  }

  private start(): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    clearTimeout(this.retry);
    this.retry = undefined;
    this.running = this.tables.sweepIdle(this.pool).catch((err: unknown) => {
      this.onError(err);
      return 0;
    }).then((left) => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.start();
      } else if (left > 0 && !this.stopped) {
        this.retry = setTimeout(() => this.start(), this.retryMs).unref();
      }
    });
  }
}
