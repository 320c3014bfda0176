/**
 * `GET /health` — liveness: always 200 `{"status":"ok","time":"<RFC 3339>","uptime_sec":N}`.
 * `GET /ready` — readiness: 200 `{"status":"ready",…}` once started; 503
 * `{"status":"not_ready","reason":"…"}` while starting or shutting down.
 * Both shapes follow Arc's (../shared/notes/arc-wire-contract.md §6.1).
 */
import type { FastifyInstance } from 'fastify';

export interface HealthRouteOptions {
  /** Why the server is not ready, or undefined when it is. */
  notReadyReason: () => string | undefined;
}

const startedAt = performance.now();

/** Registers `/health` and `/ready`. */
export async function healthRoutes(app: FastifyInstance, o: HealthRouteOptions): Promise<void> {
  const base = () => ({ time: new Date().toISOString(), uptime_sec: Math.round(performance.now() - startedAt) / 1000 });
  app.get('/health', async () => ({ status: 'ok', ...base() }));
  app.get('/ready', async (_request, reply) => {
    const reason = o.notReadyReason();
    if (reason === undefined) return { status: 'ready', ...base() };
    return reply.code(503).send({ status: 'not_ready', reason, ...base() });
  });
}
