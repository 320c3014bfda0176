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
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { BufferSnapshot } from '../buffer/measurement-buffer.js';
import { appendSnapshotRows, createSnapshotTable, snapshotShape } from '../write/snapshot-table.js';

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

let sequence = 0;

/** The held-records tables of one connection. */
class ConnectionTables {
  private readonly detached = new Map<BufferSnapshot, Entry>();
  private readonly live = new Map<string, Entry>();

  constructor(private readonly conn: DuckDBConnection) {}

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
          await this.drop(known.table);
          throw err;
        }
        known.rows = snapshot.rowCount;
      }
      return known;
    }
    if (known !== undefined) {
      this.live.delete(key);
      await this.drop(known.table);
    }
    const entry = await this.create(snapshot, generation);
    this.live.set(key, entry);
    return entry;
  }

  /** Drops the tables of snapshots written since and of live buffers detached since. */
  async sweep(state: HeldState): Promise<void> {
    for (const [snapshot, entry] of this.detached) {
      if (state.isHeld(snapshot)) continue;
      this.detached.delete(snapshot);
      await this.drop(entry.table);
    }
    for (const [key, entry] of this.live) {
      if (state.liveGeneration(entry.database, entry.measurement) === entry.generation) continue;
      this.live.delete(key);
      await this.drop(entry.table);
    }
  }

  private async create(snapshot: BufferSnapshot, generation: number): Promise<Entry> {
    const table = `strata_held_${sequence++}`;
    try {
      const tags = await createSnapshotTable(this.conn, table, snapshot);
      return {
        table, tags, snapshot: snapshot.liveGeneration === undefined ? snapshot : undefined,
        database: snapshot.database, measurement: snapshot.measurement, generation, shape: snapshotShape(snapshot), rows: snapshot.rowCount,
      };
    } catch (err) {
      await this.drop(table);
      throw err;
    }
  }

  private async drop(table: string): Promise<void> {
    await this.conn.run(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  }
}

/**
 * Held-records tables of every pool connection. `tableFor` gives a query the table of one
 * held snapshot on its connection; `sweep` (before a query plans) drops what was written.
 */
export class HeldTables {
  private readonly byConnection = new WeakMap<DuckDBConnection, ConnectionTables>();

  constructor(private readonly state: HeldState) {}

  /**
   * The table holding exactly `snapshot`'s rows on `conn`, made or brought up to date.
   * @throws whatever DuckDB throws (the table is then dropped).
   */
  tableFor(conn: DuckDBConnection, snapshot: BufferSnapshot): Promise<HeldTable> {
    return this.of(conn).tableFor(snapshot);
  }

  /** Drops `conn`'s tables whose records are written (best effort: a failed drop is left). */
  sweep(conn: DuckDBConnection): Promise<void> {
    return this.of(conn).sweep(this.state);
  }

  private of(conn: DuckDBConnection): ConnectionTables {
    let tables = this.byConnection.get(conn);
    if (tables === undefined) this.byConnection.set(conn, (tables = new ConnectionTables(conn)));
    return tables;
  }
}
