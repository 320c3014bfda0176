/**
 * `GET /api/v1/measurements[?database=x]` (Arc, ../shared/notes/arc-wire-contract.md §5.8):
 * `{"success":true,"measurements":[{"database","measurement","file_count","total_size_mb",
 * "storage_path"}],"count":N,"execution_time_ms":T}`, the stored measurements of `database`,
 * or of every database without it, sorted by database then measurement (sizes in MiB, as
 * `SHOW TABLES` reports them). Arc walks only a local data directory and lists nothing on
 * S3; Strata lists either backend, and, as `SHOW TABLES`, a measurement whose records are
 * all still buffered too, with no file (`QueryService.measurements`).
 * Errors in the query error shape: 400 for an invalid or repeated `database`, 503 when
 * storage cannot list or (503 "starting up") while the write-ahead log replays, 504 past the query timeout (`STRATA_QUERY_TIMEOUT_MS`), as
 * `SHOW TABLES` answers; listing stops when the client leaves.
 */
import type { FastifyInstance } from 'fastify';
import { QueryCancelledError, QueryRejectedError, QueryTimeoutError } from '../../errors.js';
import { whenGone } from '../exchange.js';
import { megabytes } from '../../query/catalog.js';
import type { QueryService } from '../../query/query-service.js';
import type { ErrorShapeConfig } from '../error-handler.js';

/** What `GET /api/v1/measurements` lists from (passed by `buildServer`). */
export interface MeasurementRouteOptions {
  /** Stored measurements and those only buffered so far. */
  queries: QueryService;
  /** Longest the listing may take, ms (the query timeout). */
  timeoutMs: number;
  /** Throws NotReadyError while the write-ahead log replays (its flushes add files), as the query routes do. */
  assertQueryable: () => void;
}

/** Registers `GET /api/v1/measurements`. */
export async function measurementRoutes(app: FastifyInstance, o: MeasurementRouteOptions): Promise<void> {
  app.get('/api/v1/measurements', { config: { errorShape: 'query' } satisfies ErrorShapeConfig }, async (request, reply) => {
    o.assertQueryable();
    const started = Date.now();
    const asked = (request.query as Record<string, unknown>).database;
    if (Array.isArray(asked)) throw new QueryRejectedError(`query parameter "database" is given ${asked.length} times: give it once`);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new QueryTimeoutError(o.timeoutMs)), o.timeoutMs).unref();
    const stopWatching = whenGone(request.raw, reply.raw, () => controller.abort(new QueryCancelledError()));
    try {
      const databases = typeof asked === 'string' ? [asked] : await o.queries.databases(controller.signal);
      const measurements = [];
      for (const database of databases) {
        for (const m of await o.queries.measurements(database, controller.signal)) {
          measurements.push({ database, measurement: m.measurement, file_count: m.fileCount, total_size_mb: megabytes(m.totalBytes), storage_path: m.storagePath });
        }
      }
      return { success: true, measurements, count: measurements.length, execution_time_ms: Date.now() - started };
    } finally {
      clearTimeout(timer);
      stopWatching();
    }
  });
}
