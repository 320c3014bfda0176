/**
 * `GET /health` — liveness: always 200 `{"status":"ok","time":"<RFC 3339>","uptime_sec":N}`.
 * `GET /ready` — readiness: 200 `{"status":"ready",…}` once started; 503
 * `{"status":"not_ready","reason":"…"}` with `Retry-After: 5` while starting or shutting down.
 * Both shapes follow Arc's (../shared/notes/arc-wire-contract.md §6.1); `/ready` adds
 * `storage`: `{backend, ok, last_error, since, cache?}`. A failing storage backend does
 * not make the node unready (writes are still buffered and queries of cached files
 * work); the write path answers 503 itself once its memory bound is reached.
 */
import type { FastifyInstance } from 'fastify';
import type { Storage } from '../../storage/storage.js';
import { RETRY_AFTER_DEFAULT_S } from '../error-handler.js';

/** What `/health` and `/ready` report on (passed by `buildServer`). */
export interface HealthRouteOptions {
  /** Why the server is not ready, or undefined when it is. */
  notReadyReason: () => string | undefined;
  /** Its backend name, health and cache figures make `/ready`'s `storage`. */
  storage: Storage;
}

const startedAt = performance.now();

/** Registers `/health` and `/ready`. */
export async function healthRoutes(app: FastifyInstance, o: HealthRouteOptions): Promise<void> {
  const base = () => ({ time: new Date().toISOString(), uptime_sec: Math.round(performance.now() - startedAt) / 1000 });
  app.get('/health', async () => ({ status: 'ok', ...base() }));
  const storage = () => {
    const s = o.storage.stats();
    const cache = s.cache === undefined ? {} : { cache: { bytes: s.cache.bytes, max_bytes: s.cache.max_bytes, files: s.cache.files } };
    return { backend: s.backend, ...s.health, ...cache };
  };
  app.get('/ready', async (_request, reply) => {
    const reason = o.notReadyReason();
    if (reason === undefined) return { status: 'ready', ...base(), storage: storage() };
    return reply.code(503).header('Retry-After', String(RETRY_AFTER_DEFAULT_S)).send({ status: 'not_ready', reason, ...base(), storage: storage() });
  });
}
