/**
 * The composition root: creates every component once and wires them along the data
 * path HTTP → parse → buffer → write → storage, and storage → query. Components get
 * their dependencies here; none imports another's instance.
 */
import { join, resolve } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { BufferManager } from './buffer/buffer-manager.js';
import { SchemaRegistry } from './buffer/schema.js';
import { cacheDir, walDir, type StrataConfig } from './config/config.js';
import { NotReadyError } from './errors.js';
import { StrataMetrics } from './http/routes/metrics.js';
import { buildServer } from './http/server.js';
import { Catalog } from './query/catalog.js';
import { DuckDBPool } from './query/duckdb-pool.js';
import { HeldTables, IdleSweeper } from './query/held-tables.js';
import { ResultEncoders } from './query/result-encoders.js';
import { PreparedStatements } from './query/prepared-statements.js';
import { lockDown, QueryService } from './query/query-service.js';
import { ResultCache } from './query/result-cache.js';
import { quoteLiteral } from './query/sql-text.js';
import { DirectoryLocks } from './storage/directory-lock.js';
import { FileCache } from './storage/file-cache.js';
import { LocalStorage } from './storage/local.js';
import { resolveNodeId } from './storage/node-id.js';
import type { Storage } from './storage/storage.js';
import { CoverageIndex, coverageMetadata } from './wal/coverage.js';
import { replayWal } from './wal/replay.js';
import { WriteAheadLog } from './wal/wal.js';
import { FileNamer } from './write/layout.js';
import { ParquetWriter } from './write/parquet-writer.js';

/** Parquet files written concurrently (each holds one DuckDB connection). */
const FLUSH_WORKERS = 2;
/**
 * Stored schemas read at once (a measurement's first write since start), on connections of
 * their own, and how many reads may wait: writes wait for them at most
 * `buffer.schema_timeout_ms` and are bounded by the buffers' byte bound, not by this queue.
 */
const SCHEMA_READERS = 1;
const SCHEMA_READS_WAITING = 100_000;
/** Connections planning the queries of a remote backend while they wait for one of the pool (`QueryService.prefetch`). */
const PLANNERS = 1;
/** libuv threads left for file I/O, zlib and the WAL's syncs besides the DuckDB calls. */
const SPARE_THREADS = 4;
/** libuv's largest thread pool. */
const MAX_LIBUV_THREADS = 1024;

/**
 * The threads libuv starts for `UV_THREADPOOL_SIZE` = `value`: 4 unset, else its `atoi`
 * kept in an unsigned int (a negative value is huge), at least 1 and at most MAX_LIBUV_THREADS.
 */
function libuvThreads(value: string | undefined): number {
  if (value === undefined) return 4;
  const n = Number.parseInt(value, 10) || 0;
  return n < 0 ? MAX_LIBUV_THREADS : Math.min(MAX_LIBUV_THREADS, Math.max(1, n));
}

/** A wired Strata server. */
export interface Strata {
  readonly server: FastifyInstance;
  readonly buffers: BufferManager;
  /** Starts listening; resolves to the bound address (`http://host:port`). */
  start(): Promise<string>;
  /**
   * Stops accepting requests, waits for those in flight, flushes every buffer, closes
   * DuckDB, and last releases the directories' locks (`storage/directory-lock.ts`).
   * @throws FlushError when the final flush fails (the records could not be written).
   */
  stop(): Promise<void>;
}

/**
 * The configured storage backend, not yet initialised. The S3 backend's module is loaded
 * only for it: loading the AWS SDK is a noticeable part of every start, which a local
 * server (the default, and most of the test suite's many starts) never needs.
 */
async function createStorage(config: StrataConfig, nodeId: string): Promise<Storage> {
  if (config.storage.backend === 'local') return new LocalStorage(config.storage.data_dir);
  const { S3Storage } = await import('./storage/s3.js');
  const s3 = config.s3;
  return new S3Storage({
    bucket: s3.bucket, prefix: s3.prefix, endpoint: s3.endpoint, region: s3.region, forcePathStyle: s3.force_path_style,
    accessKeyId: s3.access_key_id, secretAccessKey: s3.secret_access_key, maxAttempts: s3.max_attempts,
    requestTimeoutMs: s3.request_timeout_ms, listTtlMs: s3.list_ttl_ms, nodeId,
    cache: new FileCache(cacheDir(config), config.cache.max_bytes),
  });
}

/**
 * Creates the components for `config` (creating the data directory); does not listen yet.
 * First of all it locks the data and WAL directories (and the S3 backend's cache
 * directory), held until `stop` or the process ends (a failed start exits).
 * @throws DirectoryLockError when another live Strata server uses one of them; nothing
 *   has been read or written there.
 * @throws StorageUnavailableError when the storage backend is unreachable or not writable.
 */
export async function createStrata(config: StrataConfig): Promise<Strata> {
  // Before the node id, the staging directory's clean-up and the WAL: a second server
  // would replay the first's log into Parquet while the first flushes the same records.
  // The WAL directory is locked even in the data directory, so that it is also refused
  // as another server's STRATA_WAL_DIR.
  // So is the S3 cache's: a second server would drop the first's downloads in progress at its start.
  const locks = await DirectoryLocks.acquire([
    { dir: config.storage.data_dir, setting: 'STRATA_DATA_DIR' },
    ...(config.wal.enabled ? [{ dir: walDir(config), setting: 'STRATA_WAL_DIR' }] : []),
    ...(config.storage.backend === 's3' ? [{ dir: cacheDir(config), setting: 'STRATA_CACHE_DIR' }] : []),
  ]);
  const nodeId = await resolveNodeId(config.storage.node_id, config.storage.data_dir);
  const storage = await createStorage(config, nodeId);
  await storage.init();
  const duckdbOptions: Record<string, string> = { temp_directory: join(config.storage.data_dir, '.duckdb-tmp') };
  if (config.query.threads > 0) duckdbOptions.threads = String(config.query.threads);
  if (config.query.memory_limit !== '') duckdbOptions.memory_limit = config.query.memory_limit;
  const instance = await DuckDBInstance.create(':memory:', duckdbOptions);
  const pool = await DuckDBPool.create(instance, config.query.pool_size, config.query.max_queue);
  const lockConnection = await instance.connect();
  // A SET, not a `create` option: DuckDB (1.5.5) reports max_temp_directory_size given
  // there but does not enforce it, and spills on up to its default, 90 % of free disk.
  if (config.query.max_spill !== '') await lockConnection.run(`SET GLOBAL max_temp_directory_size = ${quoteLiteral(config.query.max_spill)}`);
  // Parquet footers kept parsed between queries: Strata never rewrites a file (every flush
  // writes new keys), and DuckDB's object cache is an LRU counted against its memory limit.
  // A dashboard's repeated query over the same files then skips parsing every footer again.
  // (A SET: as a `create` option DuckDB refuses it before the parquet extension is loaded.)
  await lockConnection.run('SET GLOBAL parquet_metadata_cache = true');
  // From here on DuckDB touches no file outside Strata's own directories, whatever SQL runs.
  await lockDown(lockConnection, [
    resolve(config.storage.data_dir), resolve(storage.stagingDir), resolve(duckdbOptions.temp_directory),
    ...(config.storage.backend === 'local' ? [] : [resolve(cacheDir(config))]),
  ]);
  lockConnection.closeSync();
  const schemaReaders = await DuckDBPool.create(instance, SCHEMA_READERS, SCHEMA_READS_WAITING);
  // The S3 backend's queries list and download while they wait for a query connection
  // (`QueryService.prefetch`); this one parses them and evaluates their time bounds first.
  // Its calls are short (no file is read on it), so its thread is one of SPARE_THREADS.
  // Its callers are the query pool's waiters, which that pool bounds (`max_queue` beyond its idle connections).
  const planner = config.storage.backend === 'local' ? undefined
    : await DuckDBPool.create(instance, PLANNERS, config.query.max_queue + config.query.pool_size);
  const catalog = new Catalog(storage, schemaReaders, { cacheListings: config.storage.backend === 'local' });
  const writerConnections = await Promise.all(Array.from({ length: FLUSH_WORKERS }, () => instance.connect()));
  // The logger exists only once the server does; flush and WAL errors are reported through it.
  let server: FastifyInstance | undefined;
  const wal = config.wal.enabled
    ? new WriteAheadLog({
      dir: walDir(config),
      sync: config.wal.sync, syncIntervalMs: config.wal.sync_interval_ms, segmentBytes: config.wal.segment_bytes,
      log: { warn: (obj, msg) => server?.log.warn(obj, msg), error: (obj, msg) => server?.log.error(obj, msg) },
    })
    : undefined;
  await wal?.open();
  const writer = new ParquetWriter(writerConnections, storage, {
    compression: config.parquet.compression, rowGroupSize: config.parquet.row_group_size, namer: new FileNamer(nodeId),
    metadata: wal === undefined ? undefined : (snapshot) => coverageMetadata(wal.id, snapshot.lsns),
    // Slower, and a sign that STRATA_QUERY_MEMORY_LIMIT is tight for the measurement's width.
    onPieces: (snapshot, err) => server?.log.warn(
      { err, database: snapshot.database, measurement: snapshot.measurement, rows: snapshot.rowCount },
      'flush could not be written whole by DuckDB; writing it in pieces of 2,048 rows',
    ),
  });

  const resultCache = new ResultCache(config.query.cache_ttl_ms, config.query.cache_max_bytes,
    (db, m) => buffers.heldRecords(db, m).some((s) => s.rowCount > 0));

  let phase: 'starting' | 'ready' | 'stopping' = 'starting';
  const notReadyReason = (): string | undefined =>
    phase === 'ready' ? undefined : phase === 'starting' ? 'starting up' : 'shutting down';

  const buffers = new BufferManager({
    maxRecords: config.buffer.max_records,
    maxAgeMs: config.buffer.max_age_ms,
    maxBytes: config.buffer.max_bytes,
    maxColumns: config.buffer.max_columns,
    schemaTimeoutMs: config.buffer.schema_timeout_ms,
    lsns: wal,
    workers: FLUSH_WORKERS,
    schemas: new SchemaRegistry((db, m) => catalog.storedSchema(db, m)),
    write: async (snapshot, doneHours) => {
      try {
        await writer.write(snapshot, doneHours);
      } finally {
        // Even a partly failed write may have added files: cached listings and results over them are stale.
        catalog.changed(snapshot.database, snapshot.measurement);
        resultCache.changed(snapshot.database, snapshot.measurement);
        // Idle query connections may hold copies of these records (read-your-writes) that only a query of theirs would drop.
        sweeper.request();
      }
    },
    onFlushError: (err, snapshot, attempt) => server?.log.error(
      { err, database: snapshot.database, measurement: snapshot.measurement, records: snapshot.rowCount, attempt },
      'flush failed; records kept and retried',
    ),
  });
  const heldTables = new HeldTables(buffers);
  const sweeper = new IdleSweeper(heldTables, pool, (err) => server?.log.warn({ err }, 'dropping read-your-writes tables of idle query connections failed'));
  // This server's own registry, not prom-client's global one: servers sharing a process stay apart.
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const resultEncoders = new ResultEncoders(config.query.encode_workers);
  const metrics = new StrataMetrics(registry, { buffers, pool, heldTables, resultCache, storage, writer, wal });
  server = buildServer({
    logLevel: config.log.level,
    metrics,
    buffers,
    resultEncoders,
    queries: new QueryService(pool, catalog, { held: (db, m) => buffers.heldRecords(db, m), heldMeasurements: () => buffers.heldMeasurements(), filesOf: (snapshot) => writer.keysOf(snapshot), cut: () => writer.cut() }, heldTables, new PreparedStatements(config.query.prepared_statements), planner),
    queryPool: pool,
    heldTables,
    resultCache,
    queryTimeoutMs: config.query.timeout_ms,
    queryStallMs: config.query.stall_timeout_ms,
    maxBodyBytes: config.server.max_body_bytes,
    maxDecompressedBytes: config.server.max_decompressed_bytes,
    shutdownDrainMs: config.server.shutdown_drain_ms,
    storage,
    wal,
    notReadyReason,
    assertAccepting: () => {
      const reason = notReadyReason();
      if (reason !== undefined) throw new NotReadyError(reason);
    },
    // Until the log is replayed, an answer would miss records acknowledged before a crash.
    // Queries in flight at shutdown still read all (those arriving then are refused: src/http/server.ts).
    assertQueryable: () => {
      if (phase === 'starting') throw new NotReadyError('starting up: the write-ahead log is being replayed and flushed, and an answer now could miss its records; retry later');
    },
  });
  const app = server;

  return {
    server: app,
    buffers,
    async start() {
      const address = await app.listen({ host: config.server.host, port: config.server.port });
      app.log.info({ storage: storage.description, nodeId }, 'storage ready');
      // Each running DuckDB call holds a libuv thread: with too few, writes, WAL syncs and
      // flushes wait behind queries. libuv reads the variable before this code runs (the
      // module loader uses its threads), so it can only be reported, not set, here.
      const threads = libuvThreads(process.env.UV_THREADPOOL_SIZE);
      const needed = config.query.pool_size + FLUSH_WORKERS + SCHEMA_READERS + SPARE_THREADS;
      if (threads < needed) {
        const advice = needed > MAX_LIBUV_THREADS
          ? `libuv allows at most ${MAX_LIBUV_THREADS}: lower STRATA_QUERY_POOL_SIZE`
          : `start Node with UV_THREADPOOL_SIZE=${needed} or more (npm start sets 12)`;
        app.log.warn({ UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? null, threads, needed },
          `libuv has ${threads} threads (UV_THREADPOOL_SIZE), below the query pool size + ${needed - config.query.pool_size} = ${needed}: ` +
          `writes and flushes may wait behind running queries; ${advice}`);
      }
      if (!locks.held) app.log.warn({ platform: process.platform }, 'directories not locked (Linux only): nothing stops another Strata server from using them at the same time');
      buffers.start();
      if (wal !== undefined) {
        // Writes are refused (not ready) until the log is replayed and appends start.
        const summary = await replayWal({ wal, buffers, coverage: new CoverageIndex(storage, pool, wal.id), log: app.log });
        await buffers.flushAll().catch((err: unknown) => app.log.error({ err }, 'WAL replay: flush failed; records kept in the log and retried'));
        await wal.startAppending();
        app.log.info({ ...summary, wal: wal.options.dir, sync: wal.options.sync }, 'WAL replayed');
      }
      phase = 'ready';
      return address;
    },
    async stop() {
      phase = 'stopping';
      pool.stopQueueing();
      planner?.stopQueueing();
      await app.close();
      buffers.stop();
      try {
        await buffers.flushAll();
      } finally {
        await buffers.drain();
        // Leaves an empty log after a complete flush, the records' segments otherwise.
        await wal?.close();
        for (const c of writerConnections) c.closeSync();
        // A sweep may be running a statement on a pool connection.
        await sweeper.stop();
        // Queries cut off by app.close() may still run in DuckDB: closing under them hangs or crashes the process.
        if (pool.inUse > 0) app.log.info({ queries: pool.inUse }, 'shutting down: waiting for queries still running in DuckDB');
        await Promise.all([pool.drain(), schemaReaders.drain(), planner?.drain()]);
        pool.close();
        schemaReaders.close();
        planner?.close();
        instance.closeSync();
        await resultEncoders.close();
        // Only once nothing more is written: another server may take the directories now.
        // Should a step above throw, the locks are kept until the process exits.
        await locks.release();
      }
    },
  };
}
