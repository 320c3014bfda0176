/**
 * `GET /api/v1/metrics/query-pool` — the DuckDB connection pool, in Arc's shape
 * (../shared/notes/arc-wire-contract.md §6.1) plus Strata's queue figures:
 * `{"timestamp","pool":{connections_open, connections_in_use, connections_idle,
 * queries_total, query_errors_total, query_requests, query_success, query_errors,
 * query_rows_returned, query_latency_sum_us, query_latency_count,
 * queue_depth:{critical,high,normal,low}, queue_max, queue_rejected_total,
 * queries_aborted_total, avg_wait_ms, avg_execution_ms, held_tables, held_rows}, "cache":{ttl_ms, max_bytes,
 * entries, bytes, hits, misses, invalidated}}`. A query counts once it holds a
 * connection (a cache hit never does), or once its S3 listing and downloads, done before
 * it takes one, fail (`PoolStats.totalLeases`); latency is the time it held it (µs); waits in ms.
 * `query_requests`, `query_success`, `query_errors`, `query_rows_returned`: per query
 * request, cache hits included (`StrataMetrics.queryTotals`).
 * `held_tables` / `held_rows`: the read-your-writes copies of unflushed records the
 * connections keep (`HeldTables`), summed over connections.
 */
import type { FastifyInstance } from 'fastify';
import type { DuckDBPool } from '../../query/duckdb-pool.js';
import type { HeldTables } from '../../query/held-tables.js';
import type { ResultCache } from '../../query/result-cache.js';
import type { StrataMetrics } from './metrics.js';
import { arcTimestamp } from '../arc-timestamp.js';

/** The components whose counters `GET /api/v1/metrics/query-pool` reports (passed by `buildServer`). */
export interface QueryPoolRouteOptions {
  /** Connection, queue and lease figures (`pool`). */
  pool: DuckDBPool;
  /** Read-your-writes tables kept on the connections (`held_tables`, `held_rows`). */
  held: HeldTables;
  /** The result cache's counters (`cache`). */
  cache: ResultCache;
  /** Per-request query counters (`query_requests`, `query_success`, `query_errors`, `query_rows_returned`). */
  metrics: StrataMetrics;
}

/** Registers the pool metrics route on `app`. */
export async function queryPoolRoutes(app: FastifyInstance, o: QueryPoolRouteOptions): Promise<void> {
  app.get('/api/v1/metrics/query-pool', async () => {
    const s = o.pool.stats();
    const held = o.held.stats();
    const requests = o.metrics.queryTotals();
    return {
      timestamp: arcTimestamp(Date.now()),
      pool: {
        connections_open: s.size, connections_in_use: s.inUse, connections_idle: s.idle,
        queries_total: s.totalLeases, query_errors_total: s.failedLeases,
        query_requests: requests.requests, query_success: requests.success, query_errors: requests.errors, query_rows_returned: requests.rows,
        query_latency_sum_us: s.execSumUs, query_latency_count: s.execCount,
        queue_depth: s.queueDepth, queue_max: s.maxQueue, queue_rejected_total: s.rejected, queries_aborted_total: s.aborted,
        avg_wait_ms: Math.round(s.avgWaitMs * 1000) / 1000, avg_execution_ms: Math.round(s.avgExecMs * 1000) / 1000,
        held_tables: held.tables, held_rows: held.rows,
      },
      cache: o.cache.stats(),
    };
  });
}
