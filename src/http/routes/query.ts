/**
 * `POST /api/v1/query` — SQL over HTTP in Arc's JSON shape.
 *
 * Request: JSON `{"sql": "…"}` (a `format` key is accepted and ignored, as Arc does);
 * header `x-arc-database` sets the database of unqualified measurement names.
 * Response 200: `{"success":true,"columns":[…],"data":[[…]],"row_count":N,
 * "execution_time_ms":T,"timestamp":"<RFC 3339 request start>"}`; errors
 * `{"success":false,"error":"…"}` with 400 (bad or refused SQL) or 500 (engine failure).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { QueryRejectedError } from '../../errors.js';
import type { QueryService } from '../../query/query-service.js';
import { databaseOf } from '../database.js';
import type { ErrorShapeConfig } from '../error-handler.js';

const body = z.object({ sql: z.string(), format: z.string().optional() });

export interface QueryRouteOptions {
  queries: QueryService;
}

/** Registers the query routes on `app`. */
export async function queryRoutes(app: FastifyInstance, o: QueryRouteOptions): Promise<void> {
  const config: ErrorShapeConfig = { errorShape: 'query' };
  app.post('/api/v1/query', { config }, async (request, reply) => {
    const started = Date.now();
    const parsed = body.safeParse(request.body);
    if (!parsed.success) throw new QueryRejectedError('request body must be JSON {"sql": "<statement>"}');
    const result = await o.queries.execute(parsed.data.sql, databaseOf(request));
    const elapsed = Date.now() - started;
    const timestamp = new Date(started).toISOString().replace(/\.\d{3}Z$/, 'Z');
    void reply.type('application/json').send(
      `{"success":true,"columns":${JSON.stringify(result.columns)},"data":${result.dataJson},` +
      `"row_count":${result.rowCount},"execution_time_ms":${elapsed},"timestamp":"${timestamp}"}`,
    );
  });
}
