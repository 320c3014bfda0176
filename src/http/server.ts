/**
 * Builds the Fastify server: logging (pino, through Fastify), the error handler and
 * the route plugins. Receives every component it serves; owns none of them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { BufferManager } from '../buffer/buffer-manager.js';
import type { DuckDBPool } from '../query/duckdb-pool.js';
import type { HeldTables } from '../query/held-tables.js';
import type { ResultEncoders } from '../query/result-encoders.js';
import type { QueryService } from '../query/query-service.js';
import type { ResultCache } from '../query/result-cache.js';
import type { Storage } from '../storage/storage.js';
import { NotReadyError } from '../errors.js';
import { installErrorHandler } from './error-handler.js';
import { whenGone } from './exchange.js';
import { healthRoutes } from './routes/health.js';
import { influxdbRoutes } from './routes/influxdb.js';
import { metricsRoutes, type StrataMetrics } from './routes/metrics.js';
import { queryRoutes } from './routes/query.js';
import { measurementRoutes } from './routes/measurements.js';
import { queryPoolRoutes } from './routes/query-pool.js';
import { storageRoutes } from './routes/storage.js';
import { writeRoutes } from './routes/write.js';
import type { WriteAheadLog } from '../wal/wal.js';

/** Every component the routes serve, created by the composition root (src/app.ts). */
export interface ServerDependencies {
  /** pino level (`fatal` … `trace`, `silent`). */
  logLevel: string;
  /** The write path's buffers (write routes). */
  buffers: BufferManager;
  /** Runs SQL for the query routes and lists measurements (`GET /api/v1/measurements`). */
  queries: QueryService;
  /** Encodes the query routes' JSON and CSV results, partly on worker threads. */
  resultEncoders: ResultEncoders;
  /** Served by `GET /api/v1/metrics/query-pool`. */
  queryPool: DuckDBPool;
  /** The read-your-writes tables of the pool's connections (their counts are served with the pool's). */
  heldTables: HeldTables;
  /** The query result cache (its counters are served with the pool's). */
  resultCache: ResultCache;
  /** Longest a query may take, queueing included, ms. */
  queryTimeoutMs: number;
  /** A streamed result's client taking nothing for this long is cut off, ms (0: never). */
  queryStallMs: number;
  /** Cap on a write's raw body, bytes (413 above). */
  maxBodyBytes: number;
  /** Cap on a write's body after decompression, bytes (413 above). */
  maxDecompressedBytes: number;
  /**
   * How long `app.close()` lets requests in flight finish before it cuts their
   * connections, ms (`server.shutdown_drain_ms`): a client that stopped sending in the
   * middle of its body would otherwise hold shutdown, and the final flush, for ever.
   */
  shutdownDrainMs: number;
  /** Reported by `/ready` and `GET /api/v1/storage/stats`. */
  storage: Storage;
  /** The write-ahead log, or undefined when disabled. */
  wal: WriteAheadLog | undefined;
  /** Served by `GET /metrics`; the write and query routes count into it. */
  metrics: StrataMetrics;
  /** Why the server is not ready (undefined when it is). */
  notReadyReason: () => string | undefined;
  /** Throws NotReadyError when writes must not be taken. */
  assertAccepting: () => void;
  /** Throws NotReadyError when queries must not be answered (the write-ahead log replaying). */
  assertQueryable: () => void;
}

/** Returns a configured, not yet listening, Fastify instance. */
export function buildServer(d: ServerDependencies): FastifyInstance {
  // Per-request access logs cost more than a small write; errors are still logged.
  const app = Fastify({
    logger: { level: d.logLevel },
    logController: new LogController({ disableRequestLogging: true }),
    // Fastify's own 503 while closing has no Retry-After and not the route's error shape.
    return503OnClosing: false,
  });
  installErrorHandler(app);
  refuseWhileClosing(app);
  closeConnectionsWhenDrained(app, d.shutdownDrainMs);
  void app.register(healthRoutes, { notReadyReason: d.notReadyReason, storage: d.storage });
  void app.register(storageRoutes, { storage: d.storage });
  void app.register(writeRoutes, {
    buffers: d.buffers, maxBodyBytes: d.maxBodyBytes, maxDecompressedBytes: d.maxDecompressedBytes, assertAccepting: d.assertAccepting,
    wal: d.wal, counters: d.metrics.writes,
  });
  void app.register(influxdbRoutes, { queries: d.queries, timeoutMs: d.queryTimeoutMs, assertQueryable: d.assertQueryable });
  void app.register(queryRoutes, { queries: d.queries, encoders: d.resultEncoders, cache: d.resultCache, timeoutMs: d.queryTimeoutMs, stallMs: d.queryStallMs, metrics: d.metrics, assertQueryable: d.assertQueryable });
  void app.register(queryPoolRoutes, { pool: d.queryPool, held: d.heldTables, cache: d.resultCache, metrics: d.metrics });
  void app.register(measurementRoutes, { queries: d.queries, timeoutMs: d.queryTimeoutMs, assertQueryable: d.assertQueryable });
  void app.register(metricsRoutes, { registry: d.metrics.registry });
  return app;
}

/**
 * Answers every request that reaches a route once `app.close()` has begun (one pipelined,
 * or sent on a keep-alive connection whose previous request is still being served) with
 * NotReadyError: 503, `Retry-After` and the route's error shape, so that Telegraf and the
 * InfluxDB clients send it again, to this server once restarted or to another one.
 */
function refuseWhileClosing(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', (_request, _reply, done) => {
    done(closing ? new NotReadyError('shutting down') : undefined);
  });
}

/**
 * Makes `app.close()` end every remaining connection as soon as no request is being
 * served. Node's `server.close()` ends only the connections idle at that moment, so a
 * keep-alive connection whose request finishes later, or one a vanished client left
 * open, would hold `close()` (and shutdown) until `keepAliveTimeout` (72 s). A request
 * in flight is cut only past `drainMs`; until then its connection ends once its
 * exchange is over (`whenGone`: response complete or aborted, or client gone, which a
 * pipelined response never sees).
 */
function closeConnectionsWhenDrained(app: FastifyInstance, drainMs: number): void {
  let inFlight = 0;
  let closing = false;
  const closeIfDrained = (): void => {
    if (closing && inFlight === 0) app.server.closeAllConnections();
  };
  app.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    inFlight++;
    whenGone(request, response, () => {
      inFlight--;
      closeIfDrained();
    });
  });
  app.addHook('preClose', (done) => {
    closing = true;
    // After Fastify's server.close(), which follows this hook, so no connection slips in between.
    setImmediate(closeIfDrained);
    setTimeout(() => app.server.closeAllConnections(), drainMs).unref();
    done();
  });
}
