/**
 * What is stored: databases, measurements, their files and stored schemas, read from
 * the storage backend's layout (`write/layout.ts`).
 */
import type { MeasurementSchema } from '../buffer/schema.js';
import { decodePathSegment } from '../parse/names.js';
import type { Storage, StoredObject } from '../storage/storage.js';
import { databasePrefix, measurementPrefix } from '../write/layout.js';
import type { DuckDBPool } from './duckdb-pool.js';
import { readParquetSource } from './sql-rewriter.js';

/** One measurement's files, as listed by `SHOW TABLES`. */
export interface MeasurementInfo {
  database: string;
  measurement: string;
  /** Storage key prefix of its files. */
  storagePath: string;
  fileCount: number;
  /** Total size in bytes. */
  totalBytes: number;
}

export class Catalog {
  private readonly storage: Storage;
  private readonly pool: DuckDBPool;

  constructor(storage: Storage, pool: DuckDBPool) {
    this.storage = storage;
    this.pool = pool;
  }

  /** Database names, sorted. */
  async databases(): Promise<string[]> {
    return (await this.storage.listChildren('')).map(decodePathSegment);
  }

  /** Measurements of `database` with file counts and sizes, sorted by name. */
  async measurements(database: string): Promise<MeasurementInfo[]> {
    const names = await this.storage.listChildren(databasePrefix(database));
    const out: MeasurementInfo[] = [];
    for (const segment of names) {
      const measurement = decodePathSegment(segment);
      const files = await this.files(database, measurement);
      out.push({
        database, measurement, storagePath: measurementPrefix(database, measurement),
        fileCount: files.length, totalBytes: files.reduce((n, f) => n + f.size, 0),
      });
    }
    return out;
  }

  /** Every stored Parquet file of a measurement, in key order. */
  files(database: string, measurement: string): Promise<StoredObject[]> {
    return this.storage.list(measurementPrefix(database, measurement));
  }

  /** Local paths DuckDB can read for the given files. */
  localPaths(files: readonly StoredObject[]): Promise<string[]> {
    return Promise.all(files.map((f) => this.storage.localPath(f.key)));
  }

  /**
   * The column types of a measurement's stored files (empty when it has none), for
   * type-conflict checks after a restart. VARCHAR columns come back as `string`:
   * tags and string fields are both Parquet strings.
   * @throws when DuckDB cannot read the files.
   */
  async storedSchema(database: string, measurement: string): Promise<MeasurementSchema> {
    const schema: MeasurementSchema = new Map();
    const files = await this.files(database, measurement);
    if (files.length === 0) return schema;
    const source = readParquetSource(await this.localPaths(files));
    const reader = await this.pool.use((conn) => conn.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`));
    for (const [name, type] of reader.getRows()) {
      const kind = ({ VARCHAR: 'string', BIGINT: 'int64', DOUBLE: 'float64', BOOLEAN: 'bool' } as const)[String(type) as 'VARCHAR'];
      if (name !== 'time' && kind !== undefined) schema.set(String(name), kind);
    }
    return schema;
  }
}
