/**
 * `GET /metrics` — every Strata metric in the Prometheus text exposition format 0.0.4
 * (`text/plain; version=0.0.4; charset=utf-8`, https://prometheus.io/docs/instrumenting/exposition_formats/),
 * through `prom-client`, plus prom-client's default `process_*` and `nodejs_*` metrics.
 *
 * Names follow Prometheus' conventions (https://prometheus.io/docs/practices/naming/):
 * a `strata_` prefix, base units (`_bytes`, `_seconds`), `_total` on counters.
 *
 * Most values are read at scrape time (`collect`) from the components' own counters,
 * the ones `/api/v1/write/stats`, `/api/v1/metrics/query-pool` and
 * `/api/v1/storage/stats` serve, so the hot paths carry nothing extra for them. Only
 * what no component counts is counted here: per write protocol, integer additions once
 * per request (`WriteCounters`); per query request, its outcome and duration.
 *
 * The registry is the composition root's own (never prom-client's global one), so
 * several servers in one process keep apart.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { BufferManager } from '../../buffer/buffer-manager.js';
import type { DuckDBPool } from '../../query/duckdb-pool.js';
import type { HeldTables } from '../../query/held-tables.js';
import type { ResultCache } from '../../query/result-cache.js';
import type { Storage } from '../../storage/storage.js';
import type { WriteAheadLog } from '../../wal/wal.js';
import type { ParquetWriter } from '../../write/parquet-writer.js';

/** The write endpoints, as the `protocol` label names them. */
export const WRITE_PROTOCOLS = ['msgpack', 'line_protocol', 'influxdb_v1', 'influxdb_v2'] as const;
/**
 * A write endpoint: `msgpack` (`/api/v1/write/msgpack`), `line_protocol`
 * (`/api/v1/write/line-protocol`), `influxdb_v1` (`/write`), `influxdb_v2` (`/api/v2/write`).
 */
export type WriteProtocol = (typeof WRITE_PROTOCOLS)[number];

/** One write protocol's totals since start; the write route adds to them once per request. */
export interface WriteCounters {
  requests: number;
  /** Request bodies as received (before decompression), bytes. */
  bytes: number;
  /** Records buffered (and, with the WAL on, logged). */
  accepted: number;
  /** Records refused by the parser or the measurement's schema. */
  rejected: number;
}

/**
 * How a query request ended: `ok` (answered in full, from the cache too); `rejected`
 * (4xx: bad request, bad or refused SQL, bad header); `queue_full` (503, queue bound
 * reached); `timeout` (504, before or while streaming); `cancelled` (the client went
 * away); `error` (any other failure, before or while streaming).
 */
export const QUERY_OUTCOMES = ['ok', 'rejected', 'queue_full', 'not_ready', 'timeout', 'cancelled', 'error'] as const;
/** One of `QUERY_OUTCOMES`: the `outcome` label of `strata_queries_total`. */
export type QueryOutcome = (typeof QUERY_OUTCOMES)[number];

/** Upper bounds of the query duration buckets, seconds: from a cache hit to the default 5-minute timeout. */
const QUERY_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** What the metrics are read from. */
export interface MetricSources {
  buffers: BufferManager;
  pool: DuckDBPool;
  heldTables: HeldTables;
  resultCache: ResultCache;
  storage: Storage;
  writer: ParquetWriter;
  /** Undefined when the write-ahead log is disabled (no `strata_wal_*` metrics then). */
  wal: WriteAheadLog | undefined;
}

/** A value read at scrape time: a number, or one number per value of the metric's single label. */
type Reading = number | Readonly<Record<string, number>>;

/**
 * Strata's metrics on one registry: registers them all at construction, and holds what
 * the write and query routes count themselves.
 */
export class StrataMetrics {
  /** The registry every metric is on (the composition root's own); `GET /metrics` serves it. */
  readonly registry: Registry;
  /** Per write protocol; the write route adds to these. */
  readonly writes: Readonly<Record<WriteProtocol, WriteCounters>>;
  private readonly queries: Counter<'outcome'>;
  private readonly queryDuration: Histogram;
  /** Query requests by outcome, and rows answered: what `queryTotals` reports. */
  private readonly queryCounts = Object.fromEntries(QUERY_OUTCOMES.map((o) => [o, 0])) as Record<QueryOutcome, number>;
  private rowsAnswered = 0;

  /**
   * Registers every `strata_*` metric on `registry`, reading `sources` at scrape time.
   * The S3 file cache metrics exist only for a backend with a cache, the WAL's only
   * with the log on.
   * @throws Error when a metric of the same name is already registered on `registry`.
   */
  constructor(registry: Registry, sources: MetricSources) {
    this.registry = registry;
    const writes = Object.fromEntries(WRITE_PROTOCOLS.map((p) => [p, { requests: 0, bytes: 0, accepted: 0, rejected: 0 }]));
    this.writes = writes as Record<WriteProtocol, WriteCounters>;
    const perProtocol = (field: keyof WriteCounters) => () => Object.fromEntries(WRITE_PROTOCOLS.map((p) => [p, this.writes[p][field]]));
    const counter = (name: string, help: string, read: () => Reading, label?: string): void => collected(registry, 'counter', name, help, read, label);
    const gauge = (name: string, help: string, read: () => Reading, label?: string): void => collected(registry, 'gauge', name, help, read, label);

    counter('strata_write_requests_total', 'Write requests received, by protocol.', perProtocol('requests'), 'protocol');
    counter('strata_write_request_bytes_total', 'Write request bodies received, as sent (before decompression), by protocol.', perProtocol('bytes'), 'protocol');
    counter('strata_write_records_accepted_total', 'Records (lines, MessagePack rows) accepted, by protocol.', perProtocol('accepted'), 'protocol');
    counter('strata_write_records_rejected_total', 'Records (lines, MessagePack rows) rejected as invalid or conflicting with the schema, by protocol.', perProtocol('rejected'), 'protocol');

    const buffers = perScrape(() => sources.buffers.stats());
    counter('strata_write_refused_total', 'Write requests refused by backpressure (429, or 503 while storage fails).', () => buffers().writes_refused);
    gauge('strata_buffered_records', 'Records in the live per-measurement buffers.', () => buffers().records_buffered);
    gauge('strata_pending_flush_records', 'Records in snapshots queued, being written or waiting for a retry.', () => buffers().records_pending_flush);
    gauge('strata_buffer_held_bytes', 'Bytes held by buffers and snapshots not yet written (the backpressure bound applies to this).', () => buffers().bytes_held);
    gauge('strata_buffer_max_bytes', 'Backpressure bound on held bytes (STRATA_BUFFER_MAX_BYTES).', () => buffers().max_bytes);
    gauge('strata_buffer_measurements', 'Measurements whose buffer holds records.', () => buffers().measurements.length);
    gauge('strata_buffer_oldest_age_seconds', 'Age of the oldest buffered record.', () => buffers().oldest_buffer_age_ms / 1000);
    counter('strata_records_written_total', 'Records written to Parquet files.', () => buffers().records_written);
    counter('strata_flushes_total', 'Snapshots written to storage.', () => buffers().flushes);
    counter('strata_flush_failures_total', 'Snapshot writes that failed (each is retried with backoff).', () => buffers().flush_errors);

    const written = perScrape(() => sources.writer.stats());
    counter('strata_parquet_files_written_total', 'Parquet files put in storage.', () => written().files);
    counter('strata_parquet_written_bytes_total', 'Bytes of the Parquet files put in storage.', () => written().bytes);
    counter('strata_flushes_in_pieces_total', 'Snapshot writes DuckDB could not hold or copy whole (its memory limit, mostly), written again in pieces of 2,048 rows.', () => written().inPieces);

    const wal = sources.wal;
    if (wal !== undefined) {
      const log = perScrape(() => wal.stats());
      counter('strata_wal_appends_total', 'Write requests appended to the write-ahead log.', () => log().appends);
      counter('strata_wal_syncs_total', 'Write-ahead log write (and, per sync mode, fdatasync) rounds; appends/syncs is the group-commit factor.', () => log().syncs);
      gauge('strata_wal_pending_appends', 'Appends waiting to be written to the log.', () => log().pending_appends);
      gauge('strata_wal_segments', 'Write-ahead log segment files.', () => log().segments);
      gauge('strata_wal_bytes', 'Size of the write-ahead log segments.', () => log().bytes);
      counter('strata_wal_segments_deleted_total', 'Segments deleted once all their records were in Parquet files.', () => log().segments_deleted);
    }

    const pool = perScrape(() => sources.pool.stats());
    gauge('strata_query_pool_connections', 'DuckDB connections in the query pool (STRATA_QUERY_POOL_SIZE).', () => pool().size);
    gauge('strata_query_pool_connections_in_use', 'Query pool connections lent to running queries.', () => pool().inUse);
    gauge('strata_query_queue_depth', 'Queries waiting for a connection, by priority.', () => pool().queueDepth, 'priority');
    gauge('strata_query_queue_max', 'Queries that may wait before new ones are refused (STRATA_QUERY_MAX_QUEUE).', () => pool().maxQueue);
    counter('strata_query_queue_rejected_total', 'Queries refused because the queue was full (503).', () => pool().rejected);
    counter('strata_query_pool_leases_total', 'Connections lent to queries.', () => pool().totalLeases);
    counter('strata_query_pool_lease_failures_total', 'Leases whose query failed in DuckDB (errors, interrupts).', () => pool().failedLeases);
    counter('strata_query_pool_aborted_total', 'Queries that left the queue or were interrupted by their timeout or their client leaving.', () => pool().aborted);
    counter('strata_query_pool_wait_seconds_total', 'Time queries waited for a connection, summed, those that left the queue without one included.', () => pool().waitSumMs / 1000);
    counter('strata_query_pool_busy_seconds_total', 'Time connections were lent to queries, summed.', () => pool().execSumUs / 1e6);
    const held = perScrape(() => sources.heldTables.stats());
    gauge('strata_query_held_tables', 'DuckDB temp tables of unflushed records the query connections keep (read-your-writes), over all connections.', () => held().tables);
    gauge('strata_query_held_rows', 'Rows in those tables (a record kept by several connections counts once per connection).', () => held().rows);

    const cache = perScrape(() => sources.resultCache.stats());
    counter('strata_query_cache_hits_total', 'Queries answered from the result cache.', () => cache().hits);
    counter('strata_query_cache_misses_total', 'Result cache lookups that found no current entry (cache enabled only).', () => cache().misses);
    counter('strata_query_cache_invalidations_total', 'Result cache entries dropped because a measurement they read changed.', () => cache().invalidated);
    gauge('strata_query_cache_entries', 'Results held by the result cache.', () => cache().entries);
    gauge('strata_query_cache_bytes', 'Bytes of the results held by the result cache.', () => cache().bytes);
    gauge('strata_query_cache_max_bytes', 'Result cache size bound (STRATA_QUERY_CACHE_MAX_BYTES).', () => cache().max_bytes);

    const storage = perScrape(() => sources.storage.stats());
    gauge('strata_storage_healthy', '1 while the storage backend\'s last operation succeeded, else 0.', () => (storage().health.ok ? 1 : 0));
    gauge('strata_storage_consecutive_failures', 'Storage operations failed since the last success.', () => storage().health.consecutive_failures);
    if (sources.storage.stats().cache !== undefined) {
      const files = () => storage().cache!;
      gauge('strata_s3_cache_bytes', 'Bytes of Parquet files in the local cache of the S3 backend.', () => files().bytes);
      gauge('strata_s3_cache_max_bytes', 'Bound of the local Parquet cache (STRATA_CACHE_MAX_BYTES).', () => files().max_bytes);
      gauge('strata_s3_cache_files', 'Parquet files in the local cache.', () => files().files);
      gauge('strata_s3_cache_pinned_files', 'Cached files pinned by running queries.', () => files().pinned_files);
      counter('strata_s3_cache_hits_total', 'Files a query found in the local cache.', () => files().hits);
      counter('strata_s3_cache_misses_total', 'Files a query had to download.', () => files().misses);
      counter('strata_s3_cache_downloaded_bytes_total', 'Bytes downloaded from S3 into the local cache.', () => files().downloaded_bytes);
      counter('strata_s3_cache_evictions_total', 'Files evicted from the local cache to stay within its bound.', () => files().evictions);
      counter('strata_s3_cache_footer_reads_total', 'Files not cached whose Parquet footer alone was read from S3 (ranged GETs), to learn their columns.', () => files().footer_reads);
    }

    counter('strata_query_rows_returned_total', 'Rows of the query requests answered in full (an /exec page its own rows), from DuckDB or from the result cache.', () => this.rowsAnswered);
    this.queries = new Counter({ name: 'strata_queries_total', help: 'Query requests by outcome (ok, rejected, queue_full, not_ready, timeout, cancelled, error).', labelNames: ['outcome'], registers: [registry] });
    // Every outcome is exported from the start, so rate() sees the first failure.
    for (const outcome of QUERY_OUTCOMES) this.queries.inc({ outcome }, 0);
    this.queryDuration = new Histogram({
      name: 'strata_query_duration_seconds', help: 'Query requests from arrival to the last byte of the answer, every outcome.',
      buckets: QUERY_DURATION_BUCKETS, registers: [registry],
    });
  }

  /**
   * Counts one query request that ended with `outcome` after `seconds`, having sent `rows`
   * rows: counted as answered only when `outcome` is `ok` (a response cut off by its
   * deadline or a failure, or left by its client, answered nothing).
   */
  query(outcome: QueryOutcome, seconds: number, rows: number): void {
    this.queries.inc({ outcome });
    this.queryDuration.observe(seconds);
    this.queryCounts[outcome]++;
    if (outcome === 'ok') this.rowsAnswered += rows;
  }

  /**
   * Arc's query counters (`GET /api/v1/metrics/query-pool`): query requests; those answered in
   * full; those that failed (4xx, 503 queue full or not ready, 504, 500: not those whose client left); and
   * the rows of the requests answered in full (an /exec page its own rows), from DuckDB or from the result cache.
   */
  queryTotals(): { requests: number; success: number; errors: number; rows: number } {
    const c = this.queryCounts;
    return { requests: QUERY_OUTCOMES.reduce((n, o) => n + c[o], 0), success: c.ok, errors: c.rejected + c.queue_full + c.not_ready + c.timeout + c.error, rows: this.rowsAnswered };
  }
}

/**
 * A reader that calls `read` once per scrape: every metric of one scrape is collected
 * in the same tick, so they share one snapshot (consistent with each other) and a
 * component's `stats()` runs once, not once per metric.
 */
function perScrape<T>(read: () => T): () => T {
  let value: T | undefined;
  return () => {
    if (value === undefined) {
      value = read();
      setImmediate(() => { value = undefined; });
    }
    return value;
  };
}

/** Registers a metric whose value is `read` at each scrape (a counter's from a total kept elsewhere). */
function collected(registry: Registry, type: 'counter' | 'gauge', name: string, help: string, read: () => Reading, label?: string): void {
  const labelNames = label === undefined ? [] : [label];
  const values = (): [Record<string, string>, number][] => {
    const reading = read();
    return typeof reading === 'number' ? [[{}, reading]] : Object.entries(reading).map(([k, v]) => [{ [label!]: k }, v]);
  };
  if (type === 'gauge') {
    new Gauge({ name, help, labelNames, registers: [registry], collect() { for (const [labels, v] of values()) this.set(labels, v); } });
  } else {
    // prom-client counters only add: start each scrape from zero and add the total.
    new Counter({ name, help, labelNames, registers: [registry], collect() { this.reset(); for (const [labels, v] of values()) this.inc(labels, v); } });
  }
}

/** What `GET /metrics` serves (passed by `buildServer`). */
export interface MetricsRouteOptions {
  /** Serialised whole at each scrape, in the registry's content type (text format 0.0.4). */
  registry: Registry;
}

/** Registers `GET /metrics` on `app`. */
export async function metricsRoutes(app: FastifyInstance, o: MetricsRouteOptions): Promise<void> {
  app.get('/metrics', async (_request, reply) => reply.type(o.registry.contentType).send(await o.registry.metrics()));
}
