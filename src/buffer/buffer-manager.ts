/**
 * Buffers records per (database, measurement) and hands full or old buffers to the
 * Parquet writer.
 *
 * A buffer is flushed when it holds `maxRecords` records or its oldest record is
 * `maxAgeMs` old. A flush detaches the buffer as a snapshot (the buffer starts empty
 * again at once, so writes never wait for Parquet) and queues it; `workers` snapshots
 * are written concurrently. A snapshot whose write fails stays queued and is retried
 * with exponential backoff: accepted records are never dropped.
 *
 * Backpressure: the bytes held (live buffers plus snapshots not yet written) are
 * bounded by `maxBytes`. `admit()`, called by the write path before it takes a
 * request, refuses with 429 above the bound, or 503 while flushes are failing (the
 * storage backend is the cause); the bound can be overshot by the requests admitted
 * concurrently, never more. Live buffers holding half the bound are flushed, largest
 * first, down to a quarter of it, whatever their record counts and ages: the bound is
 * then only reached while writes outpace storage, with a flush under way that frees
 * room, rather than until the oldest buffer's age comes due (records wide enough to
 * fill the bound below `maxRecords` would otherwise stall every write for `maxAgeMs`).
 *
 * Write-ahead log: `ingest` may name the WAL entry (LSN) the batches came from. All
 * records of one entry for one measurement are appended in one synchronous step (no
 * flush can cut between them), so they land in one snapshot, which lists the entry in
 * `lsns`; `lsns.retain` is called when a buffer first takes records of an entry and
 * `lsns.release` with a snapshot's LSNs once it is written (see `wal/coverage.ts`).
 */
import type { ColumnarBatch } from '../parse/batch.js';
import { BackpressureError, FlushError } from '../errors.js';
import { LineErrors } from '../parse/line-errors.js';
import { untilAborted } from '../storage/abortable.js';
import { MeasurementBuffer, type BufferSnapshot } from './measurement-buffer.js';
import { SchemaRegistry } from './schema.js';

// Cap on the rows a buffer reserves for a refill (~9 MB for TSBS's 10 tags + 10 fields):
// a huge flush threshold should not turn into a huge allocation per measurement.
const MAX_INITIAL_ROWS = 65536;

/** Segment holds of the write-ahead log (`WriteAheadLog` implements it). */
export interface LsnTracker {
  /** A buffer took records of entry `lsn`. */
  retain(lsn: number): void;
  /** The records of entries `lsns` of one snapshot are written. */
  release(lsns: readonly number[]): void;
}

/** Where the records of `ingest` came from, and which of them to leave out. */
export interface IngestOptions {
  /** WAL entry of the batches. */
  lsn?: number;
  /** Per batch, rows (1) already stored, to skip silently (WAL replay). */
  omit?: ReadonlyMap<ColumnarBatch, Uint8Array>;
  /** A tag and a string field of one key may share a column (WAL replay of an entry logged so: `DecodedWrite.sharedRoles`). */
  sharedRoles?: boolean;
}

/** Writes one snapshot durably; `doneHours` records the hour partitions already written, so a retry skips them. */
export type SnapshotWriter = (snapshot: BufferSnapshot, doneHours: Set<number>) => Promise<void>;

/** Thresholds, bounds and collaborators of a `BufferManager` (set from `buffer.*` in src/app.ts). */
export interface BufferManagerOptions {
  /** Records per buffer that trigger a flush. */
  maxRecords: number;
  /** Age in ms of a buffer's oldest record that triggers a flush. */
  maxAgeMs: number;
  /** Snapshots written concurrently. */
  workers: number;
  /** Bound on bytes held (approximate heap bytes of buffers and unwritten snapshots). */
  maxBytes: number;
  /** Most columns a measurement may have, `time` included; rows that would add more are rejected (`SchemaRegistry.check`). */
  maxColumns: number;
  /** Longest a write waits for the stored schemas of its measurements (`loadSchemas`), ms. */
  schemaTimeoutMs: number;
  /** The write-ahead log to hold segments of while their records are buffered; absent without a WAL. */
  lsns?: LsnTracker;
  /** Per-measurement schemas every batch is checked against before it is buffered. */
  schemas: SchemaRegistry;
  /** Writes a snapshot to storage (the Parquet writer); a rejection is retried with backoff. */
  write: SnapshotWriter;
  /** Called with each failed flush attempt (for logs); the snapshot is retried. */
  onFlushError: (err: unknown, snapshot: BufferSnapshot, attempt: number) => void;
}

/** Result of `ingest`. */
export interface IngestResult {
  accepted: number;
  /** The rows rejected for their schema (counted; the first named, by source line). */
  errors: LineErrors;
}

/** Counters exposed by `GET /api/v1/write/stats`. */
export interface BufferStats {
  records_buffered: number;
  records_pending_flush: number;
  records_written: number;
  records_rejected: number;
  bytes_buffered: number;
  flushes: number;
  flush_errors: number;
  oldest_buffer_age_ms: number;
  /** Bytes held by buffers and snapshots not yet written, against `max_bytes`. */
  bytes_held: number;
  max_bytes: number;
  /** `ok`, `buffers_full` (writes get 429) or `storage_failing` (writes get 503 once full). */
  backpressure: 'ok' | 'buffers_full' | 'storage_failing';
  /** Write requests refused by backpressure. */
  writes_refused: number;
  measurements: { database: string; measurement: string; records: number; bytes: number; age_ms: number }[];
}

interface QueuedFlush {
  snapshot: BufferSnapshot;
  doneHours: Set<number>;
  attempts: number;
}

const MAX_BACKOFF_MS = 30_000;
/** Retry-After, seconds: buffers full (a flush is under way), storage failing (retries back off). */
const RETRY_AFTER_FULL_S = 1;
const RETRY_AFTER_FAILING_S = 5;

/**
 * The write path's hold on accepted records between parsing and Parquet: one
 * `MeasurementBuffer` per (database, measurement), a queue of detached snapshots written by
 * `workers` concurrent calls of `write`, retries, and the byte bound writes are admitted
 * against (see the module comment). Created once by the composition root (src/app.ts) and
 * shared by the write routes, WAL replay and the query side (`heldRecords`, read-your-writes).
 * Single-threaded: `ingest` appends synchronously once the schemas are loaded, so no flush
 * splits a request's records of one measurement. Lifetime: `start`, then at shutdown
 * `stop`, `flushAll`, `drain`.
 */
export class BufferManager {
  private readonly o: BufferManagerOptions;
  private readonly buffers = new Map<string, MeasurementBuffer>();
  private readonly queue: QueuedFlush[] = [];
  private readonly retrying = new Set<QueuedFlush>();
  /** Snapshots handed to `write` and not settled yet. */
  private readonly writing = new Set<QueuedFlush>();
  /**
   * Each pending `flushAll`: the snapshots it waits for (those queued, retried or being
   * written when it was called; a snapshot leaves the set once tried), and the first of
   * their writes that failed.
   */
  private flushWaiters: { pending: Set<QueuedFlush>; resolve: () => void; reject: (err: Error) => void; failure?: FlushError }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly counters = { written: 0, rejected: 0, flushes: 0, flushErrors: 0, refused: 0 };
  private heldBytes = 0;
  /** The part of `heldBytes` in live buffers (not yet detached as snapshots). */
  private liveBytes = 0;

  constructor(options: BufferManagerOptions) {
    this.o = options;
  }

  /** Starts the age check (every quarter of `maxAgeMs`, at most every second). */
  start(): void {
    const every = Math.max(10, Math.min(1000, Math.floor(this.o.maxAgeMs / 4)));
    this.timer = setInterval(() => this.flushOld(), every);
    this.timer.unref();
  }

  /** Stops the age check; call `flushAll` afterwards to write what is held. */
  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * Starts no further write (queued snapshots and retries stay held) and resolves once
   * the writes in flight have settled. Call before closing what the writer uses: a
   * DuckDB instance closed under a running COPY hangs or crashes the process.
   */
  async drain(): Promise<void> {
    this.draining = true;
    while (this.writing.size > 0) await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Refuses a write while the bytes held are at or above `maxBytes`.
   * @throws BackpressureError 503 when flushes are failing (records wait for the
   *   storage backend), else 429; with Retry-After seconds.
   */
  admit(): void {
    if (!this.full) return;
    this.counters.refused++;
    if (this.storageFailing()) {
      throw new BackpressureError(`storage is failing and ${this.heldBytes} bytes wait to be written (limit ${this.o.maxBytes}); retry later`, 503, RETRY_AFTER_FAILING_S);
    }
    throw new BackpressureError(`write buffers full (${this.heldBytes} bytes held, limit ${this.o.maxBytes}); retry later`, 429, RETRY_AFTER_FULL_S);
  }

  /** True when the bytes held by buffers and unwritten snapshots reach `maxBytes`. */
  get full(): boolean {
    return this.heldBytes >= this.o.maxBytes;
  }

  /**
   * Loads the stored schema of each measurement in `batches` (cached: once per
   * measurement), waiting at most `schemaTimeoutMs` and only until `watch` stops it (e.g.
   * because the write's client left). `watch` is called only when there is something to
   * wait for, with a function that stops the wait, and returns a function that stops
   * watching. A write calls it before its WAL append and buffering, so that a storage
   * failure, a stalled storage or a client gone answers before anything was made durable:
   * an entry whose write was refused or abandoned must not be replayed into the data after
   * a restart, nor records the client will send again be buffered. A load the write stops
   * waiting for runs on, shared with the writes of the same measurement (it is bounded by
   * the storage client's own timeouts), so that a retry finds it done rather than starting
   * over.
   * @throws BackpressureError 503 with Retry-After (a refused write) when the loads take
   *   longer than `schemaTimeoutMs`; the reason `watch` stops the wait with; whatever
   *   loading a measurement's stored schema throws (StorageUnavailableError,
   *   DamagedFileError).
   */
  async loadSchemas(database: string, batches: readonly ColumnarBatch[], watch?: (stop: (reason: unknown) => void) => () => void): Promise<void> {
    // Every write comes here: most find their schemas loaded, and need no timer nor watcher.
    const loading = batches.filter((b) => b.rowCount > 0 && !this.o.schemas.loaded(database, b.measurement));
    if (loading.length === 0) return;
    const pending = new Set<string>();
    const loads = Promise.all(loading.map(async (b) => {
      pending.add(b.measurement);
      await this.o.schemas.get(database, b.measurement);
      pending.delete(b.measurement);
    }));
    const deadline = new AbortController();
    const timer = setTimeout(() => {
      const names = [...pending].slice(0, 3).map((m) => JSON.stringify(m)).join(', ') + (pending.size > 3 ? ', …' : '');
      deadline.abort(new BackpressureError(
        `storage did not answer within ${this.o.schemaTimeoutMs} ms while the stored schema of measurement ${names} in database ${JSON.stringify(database)} was read; retry later`,
        503, RETRY_AFTER_FAILING_S,
      ));
    }, this.o.schemaTimeoutMs);
    const stopWatching = watch?.((reason) => deadline.abort(reason));
    try {
      await untilAborted(loads, deadline.signal);
    } catch (err) {
      if (err instanceof BackpressureError) this.counters.refused++;
      throw err;
    } finally {
      clearTimeout(timer);
      stopWatching?.();
    }
  }

  /**
   * Buffers `batches` for `database`. Rows whose fields conflict with the measurement's
   * schema are rejected (returned in `errors`, by source line), except integers that may
   * be whole floats of a float64 field, which are stored as floats (`SchemaRegistry.widen`);
   * rows in `options.omit`
   * are skipped; all other rows are held and will be written.
   * @throws whatever loading a measurement's stored schema throws (nothing is buffered then).
   */
  async ingest(database: string, batches: readonly ColumnarBatch[], options: IngestOptions = {}): Promise<IngestResult> {
    const live = batches.filter((b) => b.rowCount > 0);
    const schemas = await Promise.all(live.map((b) => this.o.schemas.get(database, b.measurement)));
    // From here on synchronous: all records of the request reach their buffers before
    // any of those buffers can be snapshotted (see the module comment).
    let accepted = 0;
    const errors = new LineErrors();
    const full = new Set<MeasurementBuffer>();
    const widened = SchemaRegistry.untag(schemas, SchemaRegistry.widen(schemas, live));
    widened.forEach((batch, i) => {
      const check = SchemaRegistry.check(schemas[i], batch, this.o.maxColumns, errors, options.sharedRoles === true);
      const rejected = orMasks(check.rejected, options.omit?.get(live[i]));
      const buffer = this.bufferFor(database, batch.measurement);
      const before = buffer.bytes;
      let n: number;
      try {
        n = buffer.append(batch, rejected, check.skip);
      } finally {
        // Also when append throws part-way (out of memory): what it added stays held.
        this.heldBytes += buffer.bytes - before;
        this.liveBytes += buffer.bytes - before;
      }
      accepted += n;
      if (n > 0 && options.lsn !== undefined && buffer.noteLsn(options.lsn)) this.o.lsns?.retain(options.lsn);
      if (buffer.rowCount >= this.o.maxRecords) full.add(buffer);
    });
    for (const buffer of full) this.enqueue(buffer);
    if (this.liveBytes >= this.o.maxBytes / 2) this.flushLargest();
    this.counters.rejected += errors.count;
    return { accepted, errors };
  }

  /**
   * Every record of (database, measurement) accepted and not yet known to be written:
   * a copy of the live buffer (not detached) plus the snapshots queued, being written
   * or waiting for a retry. Synchronous, so the set is consistent: a snapshot leaves
   * it only after all its files are in storage. Rows of a snapshot already partly
   * written appear both here and in files; the query side removes those files by key
   * (`ParquetWriter.keysOf`), and those of flushes that start later, the live view's
   * records among them, by the cut it takes with this set (`ParquetWriter.cut`).
   */
  heldRecords(database: string, measurement: string): BufferSnapshot[] {
    const held: BufferSnapshot[] = [];
    const mine = (s: BufferSnapshot): boolean => s.database === database && s.measurement === measurement;
    for (const item of [...this.writing, ...this.queue, ...this.retrying]) if (mine(item.snapshot)) held.push(item.snapshot);
    const live = this.buffers.get(`${database}\u0000${measurement}`);
    if (live !== undefined && live.rowCount > 0) held.push({ ...live.peek(), liveGeneration: live.generation });
    return held;
  }

  /**
   * The (database, measurement) pairs with records accepted and not yet known to be
   * written (`heldRecords` not empty), in no particular order: what a listing of stored
   * measurements lacks until their first flush ends.
   */
  heldMeasurements(): { database: string; measurement: string }[] {
    const seen = new Map<string, { database: string; measurement: string }>();
    const note = (database: string, measurement: string): void => {
      seen.set(`${database}\u0000${measurement}`, { database, measurement });
    };
    for (const item of [...this.writing, ...this.queue, ...this.retrying]) note(item.snapshot.database, item.snapshot.measurement);
    for (const b of this.buffers.values()) if (b.rowCount > 0) note(b.database, b.measurement);
    return [...seen.values()];
  }

  /** Whether detached `snapshot` still waits to be written (queued, being written or retrying). */
  isHeld(snapshot: BufferSnapshot): boolean {
    for (const items of [this.writing, this.queue, this.retrying]) for (const item of items) if (item.snapshot === snapshot) return true;
    return false;
  }

  /** The generation of the live buffer of (database, measurement); undefined when it has none. */
  liveGeneration(database: string, measurement: string): number | undefined {
    return this.buffers.get(`${database}\u0000${measurement}`)?.generation;
  }

  /** Counts records a parser rejected before they reached `ingest`, for `stats()`. */
  countRejected(records: number): void {
    this.counters.rejected += records;
  }

  /**
   * Flushes every buffer and resolves when everything accepted so far is written. Records
   * accepted after the call are not waited for: under a steady stream of writes the
   * queue is never empty, and a flush waiting for that would never answer.
   * @throws FlushError, once each snapshot it waits for has been tried, when one of their
   *   writes failed; the failed records stay held for retry.
   */
  async flushAll(): Promise<void> {
    for (const buffer of this.buffers.values()) if (buffer.rowCount > 0) this.enqueue(buffer);
    for (const item of this.retrying) {
      this.retrying.delete(item);
      this.queue.push(item);
    }
    this.pump();
    const pending = new Set([...this.writing, ...this.queue]);
    if (pending.size === 0) return;
    await new Promise<void>((resolve, reject) => this.flushWaiters.push({ pending, resolve, reject }));
  }

  /** Current counters and per-measurement buffer sizes. */
  stats(): BufferStats {
    const now = performance.now();
    const measurements = [...this.buffers.values()]
      .filter((b) => b.rowCount > 0)
      .map((b) => ({ database: b.database, measurement: b.measurement, records: b.rowCount, bytes: b.bytes, age_ms: Math.round(b.ageMs(now)) }));
    const pending = [...this.queue, ...this.retrying].reduce((n, q) => n + q.snapshot.rowCount, 0);
    return {
      records_buffered: measurements.reduce((n, m) => n + m.records, 0),
      records_pending_flush: [...this.writing].reduce((n, q) => n + q.snapshot.rowCount, pending),
      records_written: this.counters.written,
      records_rejected: this.counters.rejected,
      bytes_buffered: measurements.reduce((n, m) => n + m.bytes, 0),
      flushes: this.counters.flushes,
      flush_errors: this.counters.flushErrors,
      oldest_buffer_age_ms: measurements.reduce((n, m) => Math.max(n, m.age_ms), 0),
      bytes_held: this.heldBytes,
      max_bytes: this.o.maxBytes,
      backpressure: this.storageFailing() ? 'storage_failing' : this.heldBytes >= this.o.maxBytes ? 'buffers_full' : 'ok',
      writes_refused: this.counters.refused,
      measurements,
    };
  }

  private draining = false;
  private drainWaiters: (() => void)[] = [];

  private bufferFor(database: string, measurement: string): MeasurementBuffer {
    const key = `${database}\u0000${measurement}`;
    let buffer = this.buffers.get(key);
    if (buffer === undefined) {
      buffer = new MeasurementBuffer(database, measurement, Math.min(this.o.maxRecords, MAX_INITIAL_ROWS));
      this.buffers.set(key, buffer);
    }
    return buffer;
  }

  private flushOld(): void {
    const now = performance.now();
    for (const buffer of this.buffers.values()) {
      if (buffer.rowCount > 0 && buffer.ageMs(now) >= this.o.maxAgeMs) this.enqueue(buffer);
    }
  }

  /** Flushes the largest live buffers until they hold at most a quarter of `maxBytes` (see the module comment). */
  private flushLargest(): void {
    // `bytes` sums the columns: read once per buffer, not per comparison.
    const bySize = [...this.buffers.values()].filter((b) => b.rowCount > 0).map((b) => ({ buffer: b, bytes: b.bytes })).sort((a, b) => b.bytes - a.bytes);
    for (const { buffer } of bySize) {
      if (this.liveBytes <= this.o.maxBytes / 4) break;
      this.enqueue(buffer);
    }
  }

  private enqueue(buffer: MeasurementBuffer): void {
    const snapshot = buffer.snapshot();
    this.liveBytes -= snapshot.bytes;
    this.queue.push({ snapshot, doneHours: new Set(), attempts: 0 });
    this.pump();
  }

  private pump(): void {
    while (!this.draining && this.writing.size < this.o.workers && this.queue.length > 0) {
      const item = this.queue.shift()!;
      this.writing.add(item);
      void this.o.write(item.snapshot, item.doneHours).then(
        () => {
          this.counters.flushes++;
          this.counters.written += item.snapshot.rowCount;
          this.heldBytes -= item.snapshot.bytes;
          if (item.snapshot.lsns.length > 0) this.o.lsns?.release(item.snapshot.lsns);
          this.settle(item);
        },
        (err: unknown) => {
          this.counters.flushErrors++;
          item.attempts++;
          this.o.onFlushError(err, item.snapshot, item.attempts);
          this.retryLater(item);
          // Before settle: settle resolves the flush waiters, which must learn of the failure.
          this.failWaiters(err, item);
          this.settle(item);
        },
      );
    }
  }

  private settle(item: QueuedFlush): void {
    this.writing.delete(item);
    for (const wake of this.drainWaiters.splice(0)) wake();
    this.pump();
    const done = this.flushWaiters.filter((w) => w.pending.delete(item) && w.pending.size === 0);
    if (done.length === 0) return;
    this.flushWaiters = this.flushWaiters.filter((w) => w.pending.size > 0);
    for (const w of done) {
      if (w.failure === undefined) w.resolve();
      else w.reject(w.failure);
    }
  }

  private retryLater(item: QueuedFlush): void {
    this.retrying.add(item);
    // Full jitter so that several failing snapshots do not retry in lockstep.
    const delay = Math.random() * Math.min(MAX_BACKOFF_MS, 100 * 2 ** item.attempts);
    setTimeout(() => {
      if (!this.retrying.delete(item)) return;
      this.queue.push(item);
      this.pump();
    }, delay).unref();
  }

  /** Marks each pending `flushAll` waiting for `item` as failed; each still waits for the rest of its snapshots. */
  private failWaiters(err: unknown, item: QueuedFlush): void {
    const error = new FlushError(`flush failed, records kept for retry: ${(err as Error).message}`, { cause: err });
    for (const w of this.flushWaiters) if (w.pending.has(item)) w.failure ??= error;
  }

  /**
   * Whether a snapshot's write failed and has not succeeded since: waiting for its retry,
   * or retried right now (so the state does not flip to "full" while a retry runs).
   */
  private storageFailing(): boolean {
    if (this.retrying.size > 0) return true;
    for (const items of [this.writing, this.queue]) for (const item of items) if (item.attempts > 0) return true;
    return false;
  }

}

/** Rows set in either mask (null = none set); `a` is not modified. */
function orMasks(a: Uint8Array | null, b: Uint8Array | undefined): Uint8Array | null {
  if (b === undefined) return a;
  if (a === null) return b;
  const out = a.slice();
  for (let i = 0; i < out.length; i++) out[i] |= b[i];
  return out;
}
