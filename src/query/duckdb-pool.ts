/**
 * A fixed pool of DuckDB connections on one instance.
 *
 * Different connections of one instance run queries in parallel; two queries on one
 * connection serialize, so each query borrows a connection for its whole run. Each
 * running call also holds one libuv thread, hence `UV_THREADPOOL_SIZE` ≥ size + 4
 * (README, "Running").
 */
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';

export class DuckDBPool {
  readonly size: number;
  private readonly idle: DuckDBConnection[] = [];
  private readonly waiters: ((conn: DuckDBConnection) => void)[] = [];
  private readonly all: DuckDBConnection[] = [];

  private constructor(size: number) {
    this.size = size;
  }

  /** Opens `size` connections on `instance`. */
  static async create(instance: DuckDBInstance, size: number): Promise<DuckDBPool> {
    const pool = new DuckDBPool(size);
    for (let i = 0; i < size; i++) {
      const conn = await instance.connect();
      pool.all.push(conn);
      pool.idle.push(conn);
    }
    return pool;
  }

  /** Connections currently lent out. */
  get inUse(): number {
    return this.size - this.idle.length;
  }

  /** Callers waiting for a connection. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Runs `fn` with a borrowed connection (waiting FIFO for one if all are busy) and returns it afterwards. */
  async use<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    const conn = this.idle.pop() ?? (await new Promise<DuckDBConnection>((resolve) => this.waiters.push(resolve)));
    try {
      return await fn(conn);
    } finally {
      const next = this.waiters.shift();
      if (next !== undefined) next(conn);
      else this.idle.push(conn);
    }
  }

  /** Closes every connection; the pool must not be used afterwards. */
  close(): void {
    for (const conn of this.all) conn.closeSync();
  }
}
