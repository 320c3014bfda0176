/**
 * `GET /api/v1/storage/stats` — the storage backend and its health, plus the local
 * Parquet cache's counters for a remote backend:
 * `{"status":"success","stats":{"backend":"s3","description":"s3://bucket/prefix/ at …",
 * "health":{"ok":true,"last_error":null,"since":"…","consecutive_failures":0},
 * "cache":{"dir","max_bytes","bytes","files","pinned_files","hits","misses",
 * "downloaded_bytes","evictions","footer_reads"}}}` (bytes in bytes, counts in files).
 */
import type { FastifyInstance } from 'fastify';
import type { Storage } from '../../storage/storage.js';

/** What `GET /api/v1/storage/stats` reports on (passed by `buildServer`). */
export interface StorageRouteOptions {
  /** The backend whose `stats()` is served as `stats`. */
  storage: Storage;
}

/** Registers `GET /api/v1/storage/stats`. */
export async function storageRoutes(app: FastifyInstance, o: StorageRouteOptions): Promise<void> {
  app.get('/api/v1/storage/stats', async () => ({ status: 'success', stats: o.storage.stats() }));
}
