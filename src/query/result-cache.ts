/**
 * The query result cache: the encoded body of a result, keyed by (format, database, SQL
 * text), kept for `ttlMs` within a byte budget (`lru-cache`, least recently used first).
 *
 * Never stale for this node's writes (read-your-writes):
 * - every flush that writes files of a measurement calls `changed`, which stamps the
 *   measurement with a new value of a global epoch; an entry remembers the epoch at which
 *   its query began (before it listed files) and is dropped once any measurement it read
 *   was stamped later;
 * - records accepted but not yet in a file are seen through `hasHeld`: an entry is not
 *   served while any measurement it reads holds such records, and a result that read
 *   held records is not stored (the records become files soon, which changes the epoch).
 * Results that read no measurement (`SHOW …`, `SELECT 1`) are not cached, nor those a
 * second run could answer differently (`now()`, `random()`: `OpenQuery.deterministic`),
 * which would otherwise be replayed for the whole `ttlMs`. Files written
 * by other nodes on a shared bucket appear within `ttlMs`, as within `s3.list_ttl_ms`.
 */
import { LRUCache } from 'lru-cache';
import { refKey, type MeasurementRef } from './sql-rewriter.js';

/** Result formats with distinct bodies. */
export type CachedFormat = 'json' | 'csv' | 'arrow' | 'exec';

/** A stored result: the body chunks (without any per-request trailer) and its row count. */
export interface CachedResult {
  readonly chunks: readonly (string | Buffer)[];
  readonly rows: number;
  readonly bytes: number;
  /** What the measurements the result read are checked against on a hit. */
  readonly refs: readonly MeasurementRef[];
  readonly epoch: number;
}

/** Counters for `GET /api/v1/metrics/query-pool` (`cache`). */
export interface ResultCacheStats {
  ttl_ms: number;
  max_bytes: number;
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  invalidated: number;
}

/** Collects one result's body chunks while it streams, up to the largest cacheable size. */
export class ResultRecorder {
  private chunks: (string | Buffer)[] = [];
  private bytes = 0;
  private tooLarge = false;

  constructor(private readonly maxBytes: number, readonly epoch: number) {}

  /** Records `chunk` (unless the result has outgrown the cache) and returns it. */
  add<T extends string | Buffer>(chunk: T): T {
    if (this.tooLarge) return chunk;
    this.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (this.bytes > this.maxBytes) {
      this.tooLarge = true;
      this.chunks = [];
    } else {
      this.chunks.push(chunk);
    }
    return chunk;
  }

  /** The complete result, or undefined when it was too large to keep. */
  result(rows: number, refs: readonly MeasurementRef[]): CachedResult | undefined {
    return this.tooLarge ? undefined : { chunks: this.chunks, rows, bytes: Math.max(this.bytes, 1), refs, epoch: this.epoch };
  }
}

/**
 * The result cache of the query routes (the module comment gives its rules): `get` before
 * a query runs, a `recorder` while it streams, `set` once its body is complete. Created
 * once by the composition root (src/app.ts), which calls `changed` after every flush and
 * passes `hasHeld` from the `BufferManager`. Every method is synchronous. Off (`get`
 * finds nothing, `set` keeps nothing) when `ttlMs` or `maxBytes` is 0.
 */
export class ResultCache {
  /** How long an entry is served, ms (`query.cache_ttl_ms`); 0 = cache off. */
  readonly ttlMs: number;
  /** Budget of the stored bodies, bytes (`query.cache_max_bytes`); one result may take 1/8 of it. */
  readonly maxBytes: number;
  private readonly entries: LRUCache<string, CachedResult> | undefined;
  private readonly hasHeld: (database: string, measurement: string) => boolean;
  private epoch = 0;
  /** Epoch of each measurement's last new file (key `database NUL measurement`). */
  private readonly stamps = new Map<string, number>();
  private readonly counts = { hits: 0, misses: 0, invalidated: 0 };

  /**
   * @param ttlMs how long an entry is served, ms; 0 disables the cache.
   * @param maxBytes total size of stored bodies, bytes; one result may take at most 1/8 of it.
   * @param hasHeld whether a measurement has records accepted but not yet in a listed file.
   */
  constructor(ttlMs: number, maxBytes: number, hasHeld: (database: string, measurement: string) => boolean) {
    this.ttlMs = ttlMs;
    this.maxBytes = maxBytes;
    this.hasHeld = hasHeld;
    this.entries = ttlMs > 0 && maxBytes > 0
      ? new LRUCache<string, CachedResult>({ ttl: ttlMs, maxSize: maxBytes, maxEntrySize: Math.floor(maxBytes / 8), sizeCalculation: (e) => e.bytes })
      : undefined;
  }

  /** Whether results are cached at all. */
  get enabled(): boolean {
    return this.entries !== undefined;
  }

  /** Records that `database.measurement` has new files (call after a flush wrote them). */
  changed(database: string, measurement: string): void {
    this.stamps.set(refKey({ database, measurement }), ++this.epoch);
  }

  /** The cached result of `sql`, if present and still current. */
  get(format: CachedFormat, database: string, sql: string): CachedResult | undefined {
    if (this.entries === undefined) return undefined;
    const key = entryKey(format, database, sql);
    const entry = this.entries.get(key);
    if (entry !== undefined && this.current(entry)) {
      this.counts.hits++;
      return entry;
    }
    if (entry !== undefined) {
      this.entries.delete(key);
      this.counts.invalidated++;
    }
    this.counts.misses++;
    return undefined;
  }

  /** A recorder for a query about to start, or undefined when the cache is off. */
  recorder(): ResultRecorder | undefined {
    return this.entries === undefined ? undefined : new ResultRecorder(Math.floor(this.maxBytes / 8), this.epoch);
  }

  /**
   * Stores a complete result, unless it read no measurement, read held records
   * (`bufferedRows` > 0), is not `deterministic`, or a measurement it read changed since it began.
   */
  set(format: CachedFormat, database: string, sql: string, result: CachedResult | undefined, bufferedRows: number, deterministic: boolean): void {
    if (this.entries === undefined || result === undefined || result.refs.length === 0 || bufferedRows > 0 || !deterministic) return;
    if (!this.current(result)) return;
    this.entries.set(entryKey(format, database, sql), { ...result, chunks: [exactCopy(result.chunks)] });
  }

  /** Current counters; `entries` and `bytes` of the entries still servable (expired ones are dropped first). */
  stats(): ResultCacheStats {
    this.entries?.purgeStale();
    return {
      ttl_ms: this.ttlMs, max_bytes: this.maxBytes, entries: this.entries?.size ?? 0, bytes: this.entries?.calculatedSize ?? 0,
      ...this.counts,
    };
  }

  private current(entry: CachedResult): boolean {
    return entry.refs.every((r) => (this.stamps.get(refKey(r)) ?? 0) <= entry.epoch && !this.hasHeld(r.database, r.measurement));
  }
}

/**
 * `chunks` as one Buffer of exactly their bytes: a chunk may be a view of a larger buffer
 * (an encoder's, grown by doubling, or Node's 8 KiB pool for small ones) that a stored
 * result would keep alive beyond the bytes the cache counts.
 */
function exactCopy(chunks: readonly (string | Buffer)[]): Buffer {
  const body = Buffer.allocUnsafeSlow(chunks.reduce((n, c) => n + (typeof c === 'string' ? Buffer.byteLength(c) : c.length), 0));
  let at = 0;
  for (const chunk of chunks) at += typeof chunk === 'string' ? body.write(chunk, at) : chunk.copy(body, at);
  return body;
}

function entryKey(format: CachedFormat, database: string, sql: string): string {
  return `${format}\u0000${database}\u0000${sql}`;
}
