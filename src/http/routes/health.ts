/**
 * `GET /health` — liveness: always 200 `{"status":"ok","time":"<RFC 3339>","uptime":"1h2m3s","uptime_sec":N}`
 * (`uptime` in whole seconds as Go prints a duration, as Arc's does; `uptime_sec` to the ms).
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

/** `seconds` rounded to whole seconds as Go's `time.Duration.String` prints them: `0s`, `59s`, `1m0s`, `1h2m3s`. */
export function goDuration(seconds: number): string {
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
}

/** Registers `/health` and `/ready`. */
export async function healthRoutes(app: FastifyInstance, o: HealthRouteOptions): Promise<void> {
  const base = () => {
    const seconds = Math.round(performance.now() - startedAt) / 1000;
    return { time: new Date().toISOString(), uptime: goDuration(seconds), uptime_sec: seconds };
  };
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
