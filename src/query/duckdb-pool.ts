/**
 * A fixed pool of DuckDB connections on one instance, lent to queries by priority.
 *
 * Different connections of one instance run queries in parallel; two queries on one
 * connection serialize, so each query borrows a connection for its whole run. Each
 * running call also holds one libuv thread, hence `UV_THREADPOOL_SIZE` ≥ size + 7
 * (README, "Configuration").
 *
 * Waiting callers are served highest priority first (`critical` > `high` > `normal` >
 * `low`), FIFO within a priority. The queue is bounded: past `maxQueue` waiters a new
 * caller is refused at once with QueryQueueFullError (503 + Retry-After) rather than
 * piling up latency, unless a less urgent caller waits: then the last of the least urgent
 * is refused so instead, and the new caller waits (a full queue of reports does not shut
 * out a dashboard's critical query). A caller's AbortSignal (timeout, client gone) removes it from the
 * queue, or interrupts its running DuckDB statement (`connection.interrupt()`). A caller
 * may have work to finish before it can use a connection (`UseOptions.before`: an S3
 * query's listings and downloads): it waits in the queue meanwhile, and is served in its
 * turn once that work is done, so that slow work holds no connection.
 */
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { NotReadyError, QueryQueueFullError } from '../errors.js';

/** Query priorities, most urgent first. */
export const PRIORITIES = ['critical', 'high', 'normal', 'low'] as const;
/** A query's priority (`x-strata-priority`; default `normal`). */
export type Priority = (typeof PRIORITIES)[number];

/** How a caller borrows a connection. */
export interface UseOptions {
  priority?: Priority;
  /** Aborting removes the caller from the queue (rejecting with `signal.reason`) or interrupts its running statement. */
  signal?: AbortSignal;
  /**
   * Work to finish before the connection is lent (a query's S3 listings and downloads):
   * the caller joins the queue at once, counted in its depth, runs `before` while it
   * waits, and is lent a connection only once `before` has resolved, in its turn; an idle
   * connection does not skip the queue then. The bound counts it beyond the connections
   * idle: with the queue at `maxQueue` plus those, it is refused at once. `before`'s signal aborts when the caller leaves the queue
   * (its own signal aborted, refused in favour of a more urgent caller, shutdown); if
   * `before` rejects, `use` rejects with its error.
   */
  before?: (signal: AbortSignal) => Promise<void>;
}

/** Counters for `GET /api/v1/metrics/query-pool`; times in ms. */
export interface PoolStats {
  size: number;
  inUse: number;
  idle: number;
  maxQueue: number;
  queueDepth: Record<Priority, number>;
  /**
   * Leases granted, and how many of them failed (threw: a query's result that failed or was
   * aborted while it streamed fails its lease too). A caller whose `before` failed (not
   * refused, nor left through its signal) counts as a lease that failed: its query failed as it would have on a
   * connection (on S3 the SQL is checked there, on local storage on the connection).
   */
  totalLeases: number;
  failedLeases: number;
  /** Callers refused because the queue was full. */
  rejected: number;
  /** Callers that left the queue or were interrupted through their signal. */
  aborted: number;
  /**
   * Mean time waited for a connection, ms, over every lease and every caller that left the
   * queue without one (its deadline passed, its client left, a more urgent caller took its
   * place, shutdown, its `before` failed): a saturated queue whose queries all time out
   * waits long, not zero. A caller's `before` counts as waiting.
   */
  avgWaitMs: number;
  /** Mean time a lease was held, ms, over the leases that ended. */
  avgExecMs: number;
  /**
   * Sum and count behind `avgExecMs`: time held, µs, and leases ended (Arc's
   * `query_latency_sum_us` / `_count`), both over the same leases, so a running one
   * counts in neither.
   */
  execSumUs: number;
  execCount: number;
  /** Sum behind `avgWaitMs`, ms (never decreases: Prometheus counters may not). */
  waitSumMs: number;
}

interface Waiter {
  /** False while the caller's `before` runs: no connection is handed to it yet. */
  ready: boolean;
  grant(conn: DuckDBConnection): void;
  refuse(err: Error): void;
}

/**
 * How often an aborted call interrupts its connection again: DuckDB clears the interrupt
 * flag when a statement begins, so an abort landing just before the statement starts
 * would otherwise be lost and the query run to its end.
 */
export const REINTERRUPT_MS = 20;

/** Seconds a refused caller is told to wait (Retry-After). */
const RETRY_AFTER_SECONDS = 1;

/**
 * Lends the query connections of the one DuckDB instance (see the module comment for the
 * queueing rules). Created once, with `create`, by the composition root (src/app.ts) and
 * shared by `QueryService`, WAL replay's coverage reads and the idle sweeps of
 * `HeldTables`; the Parquet writer has connections of its own, and so have
 * `Catalog.storedSchema`'s reads (a pool of their own). All state is
 * on the event loop: a connection is lent to one caller at a time. At shutdown, `drain`,
 * then `close`.
 */
export class DuckDBPool {
  /** Connections in the pool (`query.pool_size`); fixed for its lifetime. */
  readonly size: number;
  /** Callers that may wait for a connection before `use` refuses with 503 (`query.max_queue`). */
  readonly maxQueue: number;
  private readonly idle: DuckDBConnection[] = [];
  private readonly queues: Record<Priority, Waiter[]> = { critical: [], high: [], normal: [], low: [] };
  private readonly all: DuckDBConnection[] = [];
  /** `waits`: leases and callers that left the queue without one, the count behind `waitMs`. */
  private readonly totals = { leases: 0, ended: 0, failed: 0, rejected: 0, aborted: 0, waits: 0, waitMs: 0, execMs: 0 };
  /** Set by `drain`: no connection is lent any more. */
  private draining = false;
  /** Set by `stopQueueing` (and `drain`): a caller finding no idle connection is refused instead of waiting. */
  private queueClosed = false;
  /** Wakes `drain` when a connection comes back. */
  private onIdle: (() => void) | undefined;

  private constructor(size: number, maxQueue: number) {
    this.size = size;
    this.maxQueue = maxQueue;
  }

  /** Opens `size` connections on `instance`; at most `maxQueue` callers may wait. */
  static async create(instance: DuckDBInstance, size: number, maxQueue: number): Promise<DuckDBPool> {
    const pool = new DuckDBPool(size, maxQueue);
    for (let i = 0; i < size; i++) {
      const conn = await instance.connect();
      pool.all.push(conn);
      pool.idle.push(conn);
    }
    return pool;
  }

  /** Connections currently lent out (to queries, or for a moment to `eachIdle`). */
  get inUse(): number {
    return this.size - this.idle.length;
  }

  /** Callers waiting for a connection, all priorities, those still running their `before` included. */
  get waiting(): number {
    return PRIORITIES.reduce((n, p) => n + this.queues[p].length, 0);
  }

  /** Callers that would take a connection now (their `before`, if any, done). */
  get waitingReady(): number {
    return PRIORITIES.reduce((n, p) => n + this.queues[p].filter((w) => w.ready).length, 0);
  }

  /** The least urgent priority below `priority` that a caller waits at, if any. */
  private lessUrgentWaiting(priority: Priority): Priority | undefined {
    return PRIORITIES.slice(PRIORITIES.indexOf(priority) + 1).reverse().find((p) => this.queues[p].length > 0);
  }

  /**
   * Runs `fn` with a borrowed connection and returns it afterwards.
   * @throws NotReadyError once `drain` began, or when it would wait once `stopQueueing` was called; QueryQueueFullError when it would wait and `maxQueue` callers
   *   already wait beyond the idle connections (those in `before` count), none less urgent
   *   (or later, while waiting, when a more urgent caller takes this one's place);
   *   `signal.reason` when aborted while waiting; whatever `before` or `fn` throws (an
   *   interrupted DuckDB statement throws "INTERRUPT Error").
   */
  async use<T>(fn: (conn: DuckDBConnection) => Promise<T>, options: UseOptions = {}): Promise<T> {
    const { signal } = options;
    signal?.throwIfAborted();
    if (this.draining) throw new NotReadyError('shutting down');
    const asked = performance.now();
    const conn = (options.before === undefined ? this.idle.pop() : undefined) ?? (await this.wait(options.priority ?? 'normal', signal, options.before));
    const started = performance.now();
    this.totals.leases++;
    this.totals.waits++;
    this.totals.waitMs += started - asked;
    const onAbort = (): void => {
      this.totals.aborted++;
      conn.interrupt();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await fn(conn);
    } catch (err) {
      this.totals.failed++;
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.totals.execMs += performance.now() - started;
      this.totals.ended++;
      this.release(conn);
    }
  }

  /**
   * Runs `fn` on each connection for which `wanted` holds, if it is idle when its turn
   * comes: one connection at a time, never waiting for one lent to a query (a DuckDB
   * connection runs one thing at a time; a query keeps its connection until its result
   * is closed). For upkeep such as dropping stale temp tables, so it counts as no lease,
   * wait or busy time in `stats()` (only `inUse` shows the connection while `fn` runs). A caller queued meanwhile (its `before` done) gets the connection as soon as `fn` settles, so
   * `fn` should run short statements only (it may check `waitingReady` to stop early). With
   * nobody waiting, the connection goes back to its place in the idle stack: queries
   * keep getting the most recently used connection, whose kept tables and statements
   * are the warm ones.
   * @returns how many connections `wanted` were lent out, hence skipped.
   * @throws whatever `fn` throws (the connection is returned first; later ones are skipped).
   */
  async eachIdle(wanted: (conn: DuckDBConnection) => boolean, fn: (conn: DuckDBConnection) => Promise<void>): Promise<number> {
    let busy = 0;
    for (const conn of this.all) {
      if (this.draining) break;
      if (!wanted(conn)) continue;
      const at = this.idle.indexOf(conn);
      if (at === -1) {
        busy++;
        continue;
      }
      this.idle.splice(at, 1);
      try {
        await fn(conn);
      } finally {
        // Meanwhile queries only took from and returned to the top, so what lay below is still there.
        if (!this.handOver(conn)) this.idle.splice(Math.min(at, this.idle.length), 0, conn);
        this.onIdle?.();
      }
    }
    return busy;
  }

  /** Current counters. */
  stats(): PoolStats {
    const t = this.totals;
    return {
      size: this.size, inUse: this.inUse, idle: this.idle.length, maxQueue: this.maxQueue,
      queueDepth: { critical: this.queues.critical.length, high: this.queues.high.length, normal: this.queues.normal.length, low: this.queues.low.length },
      totalLeases: t.leases, failedLeases: t.failed, rejected: t.rejected, aborted: t.aborted,
      avgWaitMs: t.waits === 0 ? 0 : t.waitMs / t.waits,
      avgExecMs: t.ended === 0 ? 0 : t.execMs / t.ended,
      execSumUs: Math.round(t.execMs * 1000),
      execCount: t.ended,
      waitSumMs: t.waitMs,
    };
  }

  /**
   * Refuses the callers waiting for a connection, and from now on every caller that would
   * wait, with NotReadyError (503 + Retry-After); idle connections are still lent. At
   * shutdown the queries running may hold their connections up to the drain deadline, and
   * one waiting behind them would then be cut off with no answer to retry on. A caller
   * still in its `before` stays, and so is let in a new one while a connection is idle:
   * once done, it takes an idle connection, or is refused if none is.
   */
  stopQueueing(): void {
    this.queueClosed = true;
    this.refuseWaiters((waiter) => waiter.ready);
  }

  /** Refuses the waiting callers `which` picks with NotReadyError. */
  private refuseWaiters(which: (waiter: Waiter) => boolean): void {
    const refused = new NotReadyError('shutting down');
    for (const p of PRIORITIES) for (const waiter of this.queues[p].filter(which)) waiter.refuse(refused);
  }

  /**
   * Lends no connection any more (waiting callers and later ones are refused with
   * NotReadyError), interrupts the statements running on those lent (and those they begin
   * meanwhile), and resolves once every one is back. Closing a connection, or the
   * instance, while a statement runs on it
   * makes that statement's thread deadlock on its own context (the process then hangs in
   * exit) or crash the process, so shutdown waits for them. A statement DuckDB cannot
   * interrupt (a scalar function building a huge value) is waited for to its end.
   */
  async drain(): Promise<void> {
    this.draining = true;
    this.queueClosed = true;
    this.refuseWaiters(() => true);
    while (this.idle.length < this.all.length) {
      // Again and again (REINTERRUPT_MS): a statement beginning after an interrupt would not see it.
      for (const conn of this.all) if (!this.idle.includes(conn)) conn.interrupt();
      await new Promise<void>((resolve) => {
        this.onIdle = resolve;
        setTimeout(resolve, REINTERRUPT_MS).unref();
      });
    }
  }

  /** Closes every connection; the pool must not be used afterwards (`drain` first). */
  close(): void {
    for (const conn of this.all) conn.closeSync();
  }

  private wait(priority: Priority, signal: AbortSignal | undefined, before?: (signal: AbortSignal) => Promise<void>): Promise<DuckDBConnection> {
    if (this.queueClosed && (before === undefined || this.idle.length === 0)) return Promise.reject(new NotReadyError('shutting down'));
    // Callers with `before` queue even with connections idle, which a plain caller would take
    // at once: up to that many of them are not waiting for a busy pool.
    if (this.waiting >= this.maxQueue + this.idle.length) {
      this.totals.rejected++;
      const full = new QueryQueueFullError(this.waiting, RETRY_AFTER_SECONDS);
      // The least urgent queue below this caller's priority gives up its last waiter, if any.
      const lower = this.lessUrgentWaiting(priority);
      if (lower === undefined) return Promise.reject(full);
      this.queues[lower].pop()!.refuse(full);
    }
    const queued = performance.now();
    return new Promise<DuckDBConnection>((resolve, reject) => {
      const queue = this.queues[priority];
      const left = new AbortController();
      const leave = (): void => {
        const i = queue.indexOf(waiter);
        if (i !== -1) queue.splice(i, 1);
        signal?.removeEventListener('abort', onAbort);
        this.totals.waits++;
        this.totals.waitMs += performance.now() - queued;
      };
      const onAbort = (): void => {
        leave();
        this.totals.aborted++;
        left.abort(signal!.reason);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        ready: before === undefined,
        grant: (conn) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(conn);
        },
        refuse: (err) => {
          leave();
          left.abort(err);
          reject(err);
        },
      };
      queue.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (before === undefined) return;
      // Called from a promise, so that a synchronous throw rejects it too.
      Promise.resolve(left.signal).then(before).then(() => {
        if (!queue.includes(waiter)) return;
        const conn = this.idle.pop();
        if (conn === undefined && this.queueClosed) {
          waiter.refuse(new NotReadyError('shutting down'));
          return;
        }
        waiter.ready = true;
        if (conn !== undefined && !this.handOver(conn)) this.idle.push(conn);
      }, (err: unknown) => {
        // Not refused nor left (either took it from the queue): its query failed, as on a connection.
        if (!queue.includes(waiter)) return;
        this.totals.leases++;
        this.totals.failed++;
        leave();
        reject(err);
      });
    });
  }

  private release(conn: DuckDBConnection): void {
    if (!this.handOver(conn)) this.idle.push(conn);
    this.onIdle?.();
  }

  /** Gives `conn` to the first waiter whose `before` is done, most urgent first; false when none is. */
  private handOver(conn: DuckDBConnection): boolean {
    for (const p of PRIORITIES) {
      const at = this.queues[p].findIndex((w) => w.ready);
      if (at !== -1) {
        this.queues[p].splice(at, 1)[0].grant(conn);
        return true;
      }
    }
    return false;
  }
}
