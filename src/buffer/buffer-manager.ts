/**
 * Buffers records per (database, measurement) and hands full or old buffers to the
 * Parquet writer.
 *
 * A buffer is flushed when it holds `maxRecords` records or its oldest record is
 * `maxAgeMs` old. A flush detaches the buffer as a snapshot (the buffer starts empty
 * again at once, so writes never wait for Parquet) and queues it; `workers` snapshots
 * are written concurrently. A snapshot whose write fails stays queued and is retried
 * with exponential backoff: accepted records are never dropped.
 */
import type { ColumnarBatch } from '../parse/batch.js';
import { FlushError, type LineError } from '../errors.js';
import { MeasurementBuffer, type BufferSnapshot } from './measurement-buffer.js';
import { SchemaRegistry } from './schema.js';

/** Writes one snapshot durably; `doneHours` records the hour partitions already written, so a retry skips them. */
export type SnapshotWriter = (snapshot: BufferSnapshot, doneHours: Set<number>) => Promise<void>;

export interface BufferManagerOptions {
  /** Records per buffer that trigger a flush. */
  maxRecords: number;
  /** Age in ms of a buffer's oldest record that triggers a flush. */
  maxAgeMs: number;
  /** Snapshots written concurrently. */
  workers: number;
  schemas: SchemaRegistry;
  write: SnapshotWriter;
  /** Called with each failed flush attempt (for logs); the snapshot is retried. */
  onFlushError: (err: unknown, snapshot: BufferSnapshot, attempt: number) => void;
}

/** Result of `ingest`. */
export interface IngestResult {
  accepted: number;
  errors: LineError[];
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
  measurements: { database: string; measurement: string; records: number; bytes: number; age_ms: number }[];
}

interface QueuedFlush {
  snapshot: BufferSnapshot;
  doneHours: Set<number>;
  attempts: number;
}

const MAX_BACKOFF_MS = 30_000;

export class BufferManager {
  private readonly o: BufferManagerOptions;
  private readonly buffers = new Map<string, MeasurementBuffer>();
  private readonly queue: QueuedFlush[] = [];
  private readonly retrying = new Set<QueuedFlush>();
  private inFlight = 0;
  private idleWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly counters = { written: 0, rejected: 0, flushes: 0, flushErrors: 0 };

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
   * Buffers `batches` for `database`. Rows whose fields conflict with the measurement's
   * schema are rejected (returned in `errors`, by source line); all other rows are held
   * and will be written.
   */
  async ingest(database: string, batches: readonly ColumnarBatch[]): Promise<IngestResult> {
    let accepted = 0;
    const errors: LineError[] = [];
    for (const batch of batches) {
      if (batch.rowCount === 0) continue;
      const schema = await this.o.schemas.get(database, batch.measurement);
      const check = SchemaRegistry.check(schema, batch);
      errors.push(...check.errors);
      const buffer = this.bufferFor(database, batch.measurement);
      accepted += buffer.append(batch, check.rejected, check.skip);
      if (buffer.rowCount >= this.o.maxRecords) this.enqueue(buffer);
    }
    this.counters.rejected += errors.length;
    if (errors.length > 1) errors.sort((a, b) => a.line - b.line);
    return { accepted, errors };
  }

  /** Counts records a parser rejected before they reached `ingest`, for `stats()`. */
  countRejected(records: number): void {
    this.counters.rejected += records;
  }

  /**
   * Flushes every buffer and resolves when everything accepted so far is written.
   * @throws FlushError when a write fails meanwhile; the records stay queued for retry.
   */
  async flushAll(): Promise<void> {
    for (const buffer of this.buffers.values()) if (buffer.rowCount > 0) this.enqueue(buffer);
    for (const item of this.retrying) {
      this.retrying.delete(item);
      this.queue.push(item);
    }
    this.pump();
    if (this.isIdle()) return;
    await new Promise<void>((resolve, reject) => this.idleWaiters.push({ resolve, reject }));
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
      records_pending_flush: pending + this.inFlightRows,
      records_written: this.counters.written,
      records_rejected: this.counters.rejected,
      bytes_buffered: measurements.reduce((n, m) => n + m.bytes, 0),
      flushes: this.counters.flushes,
      flush_errors: this.counters.flushErrors,
      oldest_buffer_age_ms: measurements.reduce((n, m) => Math.max(n, m.age_ms), 0),
      measurements,
    };
  }

  private inFlightRows = 0;

  private bufferFor(database: string, measurement: string): MeasurementBuffer {
    const key = `${database}\u0000${measurement}`;
    let buffer = this.buffers.get(key);
    if (buffer === undefined) {
      buffer = new MeasurementBuffer(database, measurement);
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

  private enqueue(buffer: MeasurementBuffer): void {
    this.queue.push({ snapshot: buffer.snapshot(), doneHours: new Set(), attempts: 0 });
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.o.workers && this.queue.length > 0) {
      const item = this.queue.shift()!;
      this.inFlight++;
      this.inFlightRows += item.snapshot.rowCount;
      void this.o.write(item.snapshot, item.doneHours).then(
        () => {
          this.counters.flushes++;
          this.counters.written += item.snapshot.rowCount;
          this.settle(item);
        },
        (err: unknown) => {
          this.counters.flushErrors++;
          item.attempts++;
          this.o.onFlushError(err, item.snapshot, item.attempts);
          this.retryLater(item);
          this.settle(item);
          this.failWaiters(err);
        },
      );
    }
  }

  private settle(item: QueuedFlush): void {
    this.inFlight--;
    this.inFlightRows -= item.snapshot.rowCount;
    this.pump();
    if (this.isIdle()) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w.resolve();
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

  private failWaiters(err: unknown): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    const error = new FlushError(`flush failed, records kept for retry: ${(err as Error).message}`, { cause: err });
    for (const w of waiters) w.reject(error);
  }

  private isIdle(): boolean {
    return this.inFlight === 0 && this.queue.length === 0;
  }
}
