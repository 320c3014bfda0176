/**
 * The write and read components wired as `src/app.ts` wires them (local storage, one
 * DuckDB instance, query pool, catalog, Parquet writer, buffers), on a fresh in-memory
 * DuckDB and a temporary directory, for tests that drive them directly instead of over
 * HTTP. Nothing is mocked; a test may pass its own `Catalog` and `LocalStorage` subclasses.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { BufferManager } from '../src/buffer/buffer-manager.js';
import { SchemaRegistry } from '../src/buffer/schema.js';
import { Catalog } from '../src/query/catalog.js';
import { DuckDBPool } from '../src/query/duckdb-pool.js';
import { LocalStorage } from '../src/storage/local.js';
import { FileNamer } from '../src/write/layout.js';
import { ParquetWriter } from '../src/write/parquet-writer.js';
import { removeDir, tempDir } from './harness.js';

/** The wired components `wireComponents` returns; the test owns them and must `close()` them. */
export interface Components<C extends Catalog> {
  readonly pool: DuckDBPool;
  readonly catalog: C;
  readonly writer: ParquetWriter;
  readonly buffers: BufferManager;
  /** Closes the pool and removes the directory. */
  close(): void;
}

/** How `wireComponents` wires them (everything else is fixed; see there). */
export interface ComponentOptions<C extends Catalog> {
  /** Prefix of the temporary directory's name. */
  prefix: string;
  /** Query pool connections. */
  poolSize: number;
  /** The storage to use, in directory `dir` (default: `LocalStorage`). */
  storage?: (dir: string) => LocalStorage;
  /** The catalog to use (default: `Catalog` with cached listings, as on local storage). */
  catalog?: (storage: LocalStorage, schemaReaders: DuckDBPool) => C;
  /** Awaited before each snapshot write starts (to hold writes back). */
  beforeWrite?: () => Promise<void>;
}

/** Wires the components (buffers of up to 1 M records or 1 GiB, flushed only when asked). */
export async function wireComponents<C extends Catalog = Catalog>(o: ComponentOptions<C>): Promise<Components<C>> {
  const dir = tempDir(o.prefix);
  const storage = o.storage?.(dir) ?? new LocalStorage(dir);
  await storage.init();
  const instance = await DuckDBInstance.create(':memory:');
  const pool = await DuckDBPool.create(instance, o.poolSize, 10);
  // Stored schemas are read on a connection of their own, as in src/app.ts.
  const schemaReaders = await DuckDBPool.create(instance, 1, 1000);
  const catalog = o.catalog?.(storage, schemaReaders) ?? (new Catalog(storage, schemaReaders, { cacheListings: true }) as C);
  const writer = new ParquetWriter([await instance.connect()], storage, { compression: 'snappy', rowGroupSize: 122_880, namer: new FileNamer('test') });
  const buffers = new BufferManager({
    maxRecords: 1_000_000, maxAgeMs: 3_600_000, maxBytes: 1 << 30, maxColumns: 500, schemaTimeoutMs: 60_000, workers: 1,
    schemas: new SchemaRegistry((db, m) => catalog.storedSchema(db, m)),
    write: async (snapshot, doneHours) => {
      await o.beforeWrite?.();
      try {
        await writer.write(snapshot, doneHours);
      } finally {
        catalog.changed(snapshot.database, snapshot.measurement);
      }
    },
    onFlushError: () => undefined,
  });
  return {
    pool, catalog, writer, buffers,
    close: () => {
      pool.close();
      schemaReaders.close();
      removeDir(dir);
    },
  };
}
