/**
 * The listings of what is stored, in Arc's shapes (../shared/notes/arc-wire-contract.md §5.8;
 * Arc's `internal/api/databases.go`):
 *
 * - `GET /api/v1/measurements[?database=x]` → `{"success":true,"measurements":[{"database",
 *   "measurement","file_count","total_size_mb","storage_path"}],"count":N,"execution_time_ms":T}`,
 *   the stored measurements of `database`, or of every database without it, sorted by database
 *   then measurement (sizes in MiB, as `SHOW TABLES` reports them). Arc walks only a local data
 *   directory and lists nothing on S3; Strata lists either backend. Errors in the query error shape.
 * - `GET /api/v1/databases` → `{"databases":[{"name","measurement_count"}],"count":N}`.
 * - `GET /api/v1/databases/:name` → `{"name","measurement_count"}`, 404 `{"error":"Database 'x'
 *   not found"}` when it has no measurement.
 * - `GET /api/v1/databases/:name/measurements` → `{"database","measurements":[{"name",
 *   "file_count"}],"count":N}`, 404 likewise (`arcctl db list/show` read these).
 *
 * As `SHOW TABLES`, each lists a measurement whose records are all still buffered too, with
 * no file (`QueryService.measurements`); Arc's `POST` and `DELETE` of a database are not
 * served (a database appears with its first write, as with InfluxDB's `CREATE DATABASE`).
 * Errors: 400 for an invalid or repeated database name, 503 when storage cannot list or
 * (503 "starting up") while the write-ahead log replays, 504 past the query timeout
 * (`STRATA_QUERY_TIMEOUT_MS`), as `SHOW TABLES` answers; listing stops when the client leaves.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DatabaseNotFoundError, QueryRejectedError } from '../../errors.js';
import { listing, type ListingLimits } from '../listing.js';
import { megabytes } from '../../query/catalog.js';
import type { QueryService } from '../../query/query-service.js';
import type { ErrorShapeConfig } from '../error-handler.js';

/** What the listings list from (passed by `buildServer`). */
export interface MeasurementRouteOptions extends ListingLimits {
  /** Stored measurements and those only buffered so far. */
  queries: QueryService;
}

/** Registers `GET /api/v1/measurements` and Arc's `GET /api/v1/databases…`. */
export async function measurementRoutes(app: FastifyInstance, o: MeasurementRouteOptions): Promise<void> {
  const list = <T>(request: FastifyRequest, reply: FastifyReply, read: (signal: AbortSignal) => Promise<T>): Promise<T> => listing(o, request, reply, read);

  app.get('/api/v1/measurements', { config: { errorShape: 'arc' } satisfies ErrorShapeConfig }, async (request, reply) => {
    const started = Date.now();
    const asked = (request.query as Record<string, unknown>).database;
    if (Array.isArray(asked)) throw new QueryRejectedError(`query parameter "database" is given ${asked.length} times: give it once`);
    const measurements = await list(request, reply, async (signal) => {
      const databases = typeof asked === 'string' ? [asked] : await o.queries.databases(signal);
      const out = [];
      for (const database of databases) {
        for (const m of await o.queries.measurements(database, signal)) {
          out.push({ database, measurement: m.measurement, file_count: m.fileCount, total_size_mb: megabytes(m.totalBytes), storage_path: m.storagePath });
        }
      }
      return out;
    });
    return { success: true, measurements, count: measurements.length, execution_time_ms: Date.now() - started };
  });

  app.get('/api/v1/databases', async (request, reply) => {
    const databases = await list(request, reply, async (signal) => {
      const out = [];
      for (const name of await o.queries.databases(signal)) out.push({ name, measurement_count: (await o.queries.measurementNames(name, signal)).length });
      return out;
    });
    return { databases, count: databases.length };
  });

  /** `read` of the route's database, which must have a measurement. */
  const ofDatabase = <T extends unknown[]>(request: FastifyRequest, reply: FastifyReply,
    read: (name: string, signal: AbortSignal) => Promise<T>): Promise<{ name: string; measurements: T }> => {
    const { name } = request.params as { name: string };
    return list(request, reply, async (signal) => {
      const measurements = await read(name, signal);
      if (measurements.length === 0) throw new DatabaseNotFoundError(name);
      return { name, measurements };
    });
  };
  app.get('/api/v1/databases/:name', async (request, reply) => {
    const { name, measurements } = await ofDatabase(request, reply, (db, signal) => o.queries.measurementNames(db, signal));
    return { name, measurement_count: measurements.length };
  });
  app.get('/api/v1/databases/:name/measurements', async (request, reply) => {
    const { name, measurements } = await ofDatabase(request, reply, (db, signal) => o.queries.measurements(db, signal));
    return { database: name, measurements: measurements.map((m) => ({ name: m.measurement, file_count: m.fileCount })), count: measurements.length };
  });
}
