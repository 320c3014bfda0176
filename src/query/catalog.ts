/**
 * What is stored: databases, measurements, their files and stored schemas, read from
 * the storage backend's layout (`write/layout.ts`).
 *
 * Listings come from the backend, so with S3 they may lag other nodes' writes by up
 * to `s3.list_ttl_ms` (see `storage/storage.ts`). When this process is the only writer
 * (the local backend), each measurement's listing is also kept in memory until `changed`
 * reports a new file in it, or a file deleted from outside: every query plans with a
 * listing, and re-reading the hour directories cost more than the rest of planning
 * together.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { LRUCache } from 'lru-cache';
import type { MeasurementSchema } from '../buffer/schema.js';
import { DamagedFileError, QueryExecutionError, QueryRejectedError, StrataError } from '../errors.js';
import { asciiLower, decodePathSegment, nameError } from '../parse/names.js';
import { forEachLimit } from '../storage/concurrency.js';
import type { LocalFiles, Storage, StoredObject } from '../storage/storage.js';
import { databasePrefix, hourOfKey, measurementPrefix } from '../write/layout.js';
import { withKeys, withoutSqlExcerpt } from './duckdb-messages.js';
import type { DuckDBPool } from './duckdb-pool.js';
import { quoteIdentifier, quoteLiteral } from './sql-text.js';
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

/** `bytes` in MiB, to three decimals: what `SHOW TABLES` and `GET /api/v1/measurements` report. */
export function megabytes(bytes: number): number {
  return Math.round((bytes / 1048576) * 1000) / 1000;
}

/** An inclusive range of hour partitions (hours since the epoch, `layout.ts` `hourOf`). */
export interface HourRange {
  from: number;
  to: number;
}

/**
 * The files of `files` that may hold rows in the hour partitions of `hours`, in their
 * order: those of these partitions, and any whose key is outside the layout (its hours
 * are not known).
 */
export function inHours(files: readonly StoredObject[], hours: HourRange): StoredObject[] {
  return files.filter((f) => {
    // A listing's objects are kept while it is cached, and pruned by every query reading it.
    let hour = hourOfObject.get(f);
    if (hour === undefined) hourOfObject.set(f, (hour = hourOfKey(f.key) ?? null));
    return hour === null || (hour >= hours.from && hour <= hours.to);
  });
}

/** The hour partition of each stored object `inHours` has seen (`hourOfKey`; null for a key outside the layout). */
const hourOfObject = new WeakMap<StoredObject, number | null>();

/** Stored objects (summed over listings) the in-memory listing cache may hold. */
const MAX_CACHED_OBJECTS = 2_000_000;
/** Files `columns` opens at once to read their signatures (on S3, pinned cached copies or footer stubs). */
const SIGNATURE_SLICE = 64;
/** Files whose column signature (`sameColumns`) is remembered. */
const MAX_CACHED_SIGNATURES = 200_000;
/** Sets of differing signatures whose widened columns are remembered. */
const MAX_CACHED_WIDENINGS = 1_000;
/** Measurements whose files `measurements` lists at once (S3 LIST requests in flight for one database). */
const MEASUREMENT_LISTINGS = 8;

/** Options of `Catalog`. */
export interface CatalogOptions {
  /**
   * Keep listings in memory until `changed` (or `forget`) drops them. Only sound when
   * every file of the store is written by this process (the local backend).
   */
  readonly cacheListings: boolean;
  /** Files whose column signature is remembered (default 200,000). */
  readonly cachedSignatures?: number;
}

/**
 * Answers what is stored for the query side and the write path's schema checks: database
 * and measurement listings (`SHOW`), a measurement's files in key order, the columns
 * `read_parquet` binds over them, and a measurement's stored schema. Created once by the
 * composition root (src/app.ts) over the storage backend (listings, local copies) and a
 * pool of its own for `storedSchema` (`columns` and `sameColumns` run on the caller's
 * connection): a write reading a stored schema never waits behind queries, nor takes a
 * query's place in the query pool's bounded queue. Shared by concurrent queries and writes: its caches
 * (listings until `changed`, per-file signatures, widenings; all LRU-bounded) hold only
 * facts about immutable files, and the write path calls `changed` after every flush.
 */
export class Catalog {
  private readonly storage: Storage;
  private readonly pool: DuckDBPool;
  /** Listings by measurement prefix. */
  private readonly listings: LRUCache<string, readonly StoredObject[]> | undefined;
  /** Listings in progress per prefix, and the prefixes dropped while one was: those results may be incomplete. */
  private readonly listing = new Map<string, number>();
  private readonly dropped = new Set<string>();
  /** Ordered column names and types per file key: a stored file never changes, so entries never go stale. */
  private readonly signatures: LRUCache<string, string>;
  /** `widened` columns per set of distinct signatures. */
  private readonly widenings = new LRUCache<string, { name: string; type: string }[]>({ max: MAX_CACHED_WIDENINGS });

  /** @param pool the connections `storedSchema` reads on (not the query pool: see the class comment). */
  constructor(storage: Storage, pool: DuckDBPool, options: CatalogOptions) {
    this.storage = storage;
    this.pool = pool;
    this.signatures = new LRUCache({ max: options.cachedSignatures ?? MAX_CACHED_SIGNATURES });
    this.listings = options.cacheListings
      ? new LRUCache({ maxSize: MAX_CACHED_OBJECTS, sizeCalculation: (files) => files.length + 1 })
      : undefined;
  }

  /**
   * Reports that a measurement's stored files changed, so its cached listing is dropped
   * and the next one reads storage: files were added (or may have been, after a failed
   * write), or a query found a listed file missing (deleted from outside Strata). After
   * a write, call it once the files are visible in storage and before the records they
   * hold stop being held in memory, so a query always finds those records in one of the two.
   */
  changed(database: string, measurement: string): void {
    const prefix = measurementPrefix(database, measurement);
    this.listings?.delete(prefix);
    if (this.listing.has(prefix)) this.dropped.add(prefix);
  }

  /** `storage.list(prefix, signal)`, through the listing cache. */
  private async list(prefix: string, signal: AbortSignal | undefined): Promise<readonly StoredObject[]> {
    if (this.listings === undefined) return this.storage.list(prefix, signal);
    const cached = this.listings.get(prefix);
    if (cached !== undefined) return cached;
    this.listing.set(prefix, (this.listing.get(prefix) ?? 0) + 1);
    try {
      const files = await this.storage.list(prefix, signal);
      // A file that became visible while listing may or may not be in `files`.
      if (!this.dropped.has(prefix)) this.listings.set(prefix, files);
      return files;
    } finally {
      const left = this.listing.get(prefix)! - 1;
      if (left > 0) this.listing.set(prefix, left);
      else {
        this.listing.delete(prefix);
        this.dropped.delete(prefix);
      }
    }
  }

  /**
   * Database names, sorted.
   * @throws StorageUnavailableError when the backend cannot list; `signal.reason` once it aborts.
   */
  async databases(signal?: AbortSignal): Promise<string[]> {
    return (await this.storage.listChildren('', signal)).map(decodePathSegment);
  }

  /**
   * Names of the measurements stored in `database`, in the order `measurements` lists
   * them: one listing of the database, none of a measurement's files.
   * @throws QueryRejectedError for an invalid name; StorageUnavailableError when the
   *   backend cannot list; `signal.reason` once it aborts.
   */
  async measurementNames(database: string, signal?: AbortSignal): Promise<string[]> {
    const invalid = nameError('database', database);
    if (invalid !== undefined) throw new QueryRejectedError(`invalid database name: ${invalid}`);
    return (await this.storage.listChildren(databasePrefix(database), signal)).map(decodePathSegment);
  }

  /**
   * Measurements of `database` with file counts and sizes, sorted by name.
   * @throws QueryRejectedError for an invalid name; StorageUnavailableError when the
   *   backend cannot list; `signal.reason` once it aborts.
   */
  async measurements(database: string, signal?: AbortSignal): Promise<MeasurementInfo[]> {
    const names = await this.measurementNames(database, signal);
    const out = new Array<MeasurementInfo>(names.length);
    // A few listings at a time: one after another, a database of hundreds of measurements on
    // S3 waits hundreds of round trips for SHOW TABLES.
    await forEachLimit(names.map((_, i) => i), MEASUREMENT_LISTINGS, async (i) => {
      const measurement = names[i];
      const files = await this.files(database, measurement, signal);
      out[i] = {
        database, measurement, storagePath: measurementPrefix(database, measurement),
        fileCount: files.length, totalBytes: files.reduce((n, f) => n + f.size, 0),
      };
    });
    return out;
  }

  /**
   * The stored Parquet files of a measurement, in key order.
   * @throws StorageUnavailableError when the backend cannot list; `signal.reason` once it aborts.
   */
  files(database: string, measurement: string, signal?: AbortSignal): Promise<readonly StoredObject[]> {
    return this.list(measurementPrefix(database, measurement), signal);
  }

  /**
   * Local paths DuckDB can read for `files`, pinned in the backend's cache until the
   * caller's `release()` (call it once DuckDB is done, also on error); `verify` checks
   * cached copies on disk first (`Storage.open`).
   * @throws StorageUnavailableError when a file cannot be fetched; `signal.reason` once it
   *   aborts (nothing stays pinned then).
   */
  open(files: readonly StoredObject[], verify = false, signal?: AbortSignal): Promise<LocalFiles> {
    return this.storage.open(files, verify, signal);
  }

  /**
   * Whether `files` (at the local `paths` of `open`, same order) all have the same
   * columns, names and DuckDB types in the same order. Then `read_parquet` may bind
   * from the first file alone (`union_by_name = false`) instead of reading every file's
   * footer first; DuckDB binds a prepared statement twice, so with many files that is
   * most of a short query's overhead. A file's signature is read once, with one
   * `parquet_schema` call on `conn` for all files not seen before.
   * @throws DamagedFileError when a footer cannot be decoded (`namingDamaged`); when
   *   DuckDB cannot read a footer otherwise.
   */
  async sameColumns(conn: DuckDBConnection, files: readonly StoredObject[], paths: readonly string[]): Promise<boolean> {
    const signatures = await this.signaturesOf(conn, files, paths);
    const first = signatures.get(files[0]?.key ?? '');
    return first !== undefined && files.every((f) => signatures.get(f.key) === first);
  }

  /**
   * The columns `read_parquet(files, union_by_name = true)` binds: every column of every
   * file, in order of first appearance, with its DuckDB type (as `parquet_schema` names
   * it, e.g. `TIMESTAMP WITH TIME ZONE`); a column whose type differs between files has
   * the type DuckDB widens them to. Only files whose signature is not known yet are
   * opened, for their footers alone (`Storage.openFooters`, with `verify`: on S3 a file
   * not cached is not downloaded), 64 at a time, each slice released before the next;
   * their local paths are added to `keys` (path → storage key), so that a caller can
   * name a file DuckDB could not read by its key. Once `signal` aborts, `columns` stops
   * its footer reads and begins no statement, so that nothing of it runs on `conn` after
   * it settled (a statement in progress is the caller's to interrupt).
   * @throws StorageUnavailableError when such a footer cannot be fetched;
   *   DamagedFileError when an object is no Parquet file or its footer cannot be decoded
   *   (`namingDamaged`); when DuckDB cannot read a footer otherwise; `signal.reason` once it aborts.
   */
  async columns(conn: DuckDBConnection, files: readonly StoredObject[], keys: Map<string, string>, verify: boolean, signal?: AbortSignal):
    Promise<{ name: string; type: string }[]> {
    // Taken from the cache once: entries other queries evict meanwhile stay known here.
    const signatures = new Map<string, string>();
    const unknown: StoredObject[] = [];
    for (const f of files) {
      const signature = this.signatures.get(fileVersion(f));
      if (signature === undefined) unknown.push(f);
      else signatures.set(f.key, signature);
    }
    // A slice at a time: on S3 each file is pinned in the cache, or a stub on disk, while it is read.
    for (let at = 0; at < unknown.length; at += SIGNATURE_SLICE) {
      const slice = unknown.slice(at, at + SIGNATURE_SLICE);
      signal?.throwIfAborted();
      const local = await this.storage.openFooters(slice, verify, signal);
      local.paths.forEach((path, i) => keys.set(path, slice[i].key));
      try {
        signal?.throwIfAborted();
        for (const [key, signature] of await this.signaturesOf(conn, slice, local.paths)) signatures.set(key, signature);
      } finally {
        local.release();
      }
    }
    const out = new Map<string, { name: string; type: string }>();
    // Files written alike share one signature text: each distinct one is parsed once per query.
    const distinct = new Set<string>();
    let differ = false;
    for (const f of files) {
      const signature = signatures.get(f.key);
      if (signature === undefined) throw new QueryExecutionError(`no Parquet schema read for ${f.key}`);
      if (distinct.has(signature)) continue;
      distinct.add(signature);
      for (const column of signatureColumns(signature)) {
        const seen = out.get(asciiLower(column.name));
        if (seen === undefined) out.set(asciiLower(column.name), column);
        else differ ||= seen.type !== column.type;
      }
    }
    return differ ? this.widened(conn, [...distinct]) : [...out.values()];
  }

  /**
   * The columns, in order of first appearance, of a union by name of empty sets typed
   * as `signatures`: DuckDB widens a column's types between the files of one
   * `read_parquet(union_by_name = true)` the same way. Rare (files written before a
   * field changed type, or from outside Strata), and remembered per set of signatures.
   */
  private async widened(conn: DuckDBConnection, signatures: readonly string[]): Promise<{ name: string; type: string }[]> {
    const key = JSON.stringify(signatures);
    const known = this.widenings.get(key);
    if (known !== undefined) return known;
    const sets = signatures.map((signature) => emptySetSql(signatureColumns(signature)));
    const rows = (await conn.runAndReadAll(`DESCRIBE ${sets.join(' UNION ALL BY NAME ')}`)).getRows();
    const columns = rows.map(([name, type]) => ({ name: String(name), type: String(type) }));
    this.widenings.set(key, columns);
    return columns;
  }

  /**
   * The signature of each of `files` (at `paths`), by storage key: remembered ones, and
   * the others read with one `parquet_schema` call and remembered. A signature is the
   * JSON list of the file's columns `{n: name, t: DuckDB type}` in order (the schema's
   * root first, with no type). `parquet_schema` lists the fields inside a STRUCT, LIST or
   * MAP column in place of it, so a file with one (never written by Strata) is described
   * by DuckDB instead: its top-level columns and their types, no root.
   */
  private async signaturesOf(conn: DuckDBConnection, files: readonly StoredObject[], paths: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const unknown: number[] = [];
    files.forEach((f, i) => {
      const signature = this.signatures.get(fileVersion(f));
      if (signature === undefined) unknown.push(i);
      else out.set(f.key, signature);
    });
    if (unknown.length === 0) return out;
    const list = unknown.map((i) => quoteLiteral(paths[i])).join(', ');
    // Only the root has children in a file without nested columns.
    const rows = (await namingDamaged(conn, unknown.map((i) => paths[i]), unknown.map((i) => files[i].key), () => conn.runAndReadAll(
      `SELECT file_name, to_json(list(struct_pack(n := name, t := duckdb_type) ORDER BY column_id)), count(num_children) > 1
       FROM parquet_schema([${list}]) GROUP BY file_name`,
    ))).getRows();
    const byPath = new Map(rows.map(([path, signature, nested]) => [String(path), { signature: String(signature), nested: nested === true }]));
    for (const i of unknown) {
      const read = byPath.get(paths[i]);
      if (read === undefined) continue;
      let signature = read.signature;
      if (read.nested) {
        const columns = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${quoteLiteral(paths[i])})`)).getRows();
        signature = JSON.stringify(columns.map(([n, t]) => ({ n: String(n), t: String(t) })));
      }
      this.signatures.set(fileVersion(files[i]), signature);
      out.set(files[i].key, signature);
    }
    return out;
  }

  /**
   * The column types of a measurement's stored files (empty when it has none), for
   * type-conflict checks after a restart. A VARCHAR column is a `tag` or a `string` field
   * as Strata's files say (`rolesOf`: their `strata:tags` metadata), and of either role
   * (`roleUnknown`, fixed by the first accepted write) when only files without it hold
   * the column (not written by Strata). Files that spell a column in
   * different cases (written before such keys were refused) give one column, named
   * as DuckDB's union by name names it. One load serves every write of the measurement
   * (`SchemaRegistry`), so it takes no request's signal: a write stops waiting for it
   * instead (`BufferManager.loadSchemas`).
   * @throws StorageUnavailableError or DamagedFileError when a footer cannot be read
   *   (`Storage.openFooters`) or decoded (`namingDamaged`); an Error with DuckDB's message
   *   (files named by their keys, no statement excerpt) when DuckDB cannot read the files.
   */
  async storedSchema(database: string, measurement: string): Promise<MeasurementSchema> {
    const schema: MeasurementSchema = new Map();
    const files = await this.files(database, measurement);
    if (files.length === 0) return schema;
    // Rare (a measurement's first write after a restart): checking the cache costs little here.
    // Only the schema is read: on S3, footers of the files not cached, nothing downloaded.
    const local = await this.storage.openFooters(files, true);
    let reader;
    try {
      const source = readParquetSource(local.paths);
      const list = `[${local.paths.map(quoteLiteral).join(', ')}]`;
      reader = await this.pool.use((conn) => namingDamaged(conn, local.paths, files.map((f) => f.key), async () => ({
        columns: (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRows(),
        roles: (await conn.runAndReadAll(rolesSql(list))).getRows(),
      })));
    } catch (err) {
      if (err instanceof StrataError) throw err;
      // The writing client gets this message: keys, not the local paths DuckDB names and quotes.
      const keys = new Map(local.paths.map((path, i) => [path, files[i].key]));
      throw new Error(withKeys(withoutSqlExcerpt((err as Error).message), keys), { cause: err });
    } finally {
      local.release();
    }
    const roles = rolesOf(reader.roles);
    for (const [name, type] of reader.columns) {
      const kind = ({ VARCHAR: 'string', BIGINT: 'int64', DOUBLE: 'float64', BOOLEAN: 'bool' } as const)[String(type) as 'VARCHAR'];
      if (name === 'time' || kind === undefined) continue;
      const key = asciiLower(String(name));
      const role = roles.get(key);
      if (kind !== 'string') schema.set(key, { name: String(name), kind });
      else if (role === 'tag') schema.set(key, { name: String(name), kind: 'tag' });
      else schema.set(key, role === 'field' ? { name: String(name), kind } : { name: String(name), kind, roleUnknown: true });
    }
    return schema;
  }
}

/**
 * SQL answering, per column name of the Parquet files `list` (a DuckDB list literal),
 * whether a file lists it in its `strata:tags` (a JSON array of names: anything else
 * counts as no list) and whether a file with such a list holds it without listing it: one
 * row per name, `(name, tagged, untagged)`. Group elements (the schema's root, nested
 * columns) are left out: Strata's columns are flat leaves.
 */
function rolesSql(list: string): string {
  return `WITH lists AS (SELECT file_name, CASE WHEN json_valid(t) THEN try_cast(t::JSON AS VARCHAR[]) END AS tags ` +
    `FROM (SELECT file_name, decode(value) AS t FROM parquet_kv_metadata(${list}) WHERE key::VARCHAR = 'strata:tags')), ` +
    `leaves AS (SELECT file_name, name FROM parquet_schema(${list}) WHERE coalesce(num_children, 0) = 0) ` +
    `SELECT name, bool_or(list_contains(tags, name)), bool_or(tags IS NOT NULL AND NOT list_contains(tags, name)) ` +
    `FROM leaves LEFT JOIN lists USING (file_name) GROUP BY name`;
}

/**
 * The role Strata's files say each column has (by `asciiLower` name), from `rolesSql`'s
 * rows: a `tag` when a file lists it (files of versions that let tags and string fields
 * share a column may disagree: one says it), a `field` when a file with a list holds it
 * without listing it; absent when only files without a list hold it (not written by Strata).
 */
function rolesOf(rows: readonly (readonly unknown[])[]): Map<string, 'tag' | 'field'> {
  const roles = new Map<string, 'tag' | 'field'>();
  for (const [name, tagged, untagged] of rows) {
    const key = asciiLower(String(name));
    if (tagged === true) roles.set(key, 'tag');
    else if (untagged === true && !roles.has(key)) roles.set(key, 'field');
  }
  return roles;
}

/**
 * DuckDB's message for a Parquet footer whose Thrift metadata it cannot decode, which
 * names no file ("Invalid Error: TProtocolException: Invalid data", "Invalid Error:
 * don't know what type: …": DuckDB's type for errors of the libraries it embeds).
 */
const UNDECODABLE = /^Invalid Error: /;

/**
 * DuckDB's errors for a file that is not Parquet at all, naming it ("Invalid Input Error:
 * No magic bytes found at end of file '…'", "File '…' too small to be a Parquet file",
 * "Footer length error in file '…'"): what `parquet-footer.ts` finds itself on S3.
 */
const NOT_PARQUET = /^Invalid Input Error: (?:No magic bytes found at (?:end|beginning) of file|File|Footer length error in file) '([^']*)'/;

/**
 * The result of `read`, a DuckDB statement on `conn` reading the Parquet metadata of the
 * files at `paths` (storage keys `keys`, same order). A `NOT_PARQUET` failure names its
 * file by key. When it fails with an `UNDECODABLE` message naming none of them, each
 * file's metadata is read alone to find the one at fault, so that the error names it as
 * other damaged files are named.
 * @throws DamagedFileError naming the storage key of that file (never a local path);
 *   whatever `read` throws otherwise, or a lone read that fails another way (an interrupt).
 */
async function namingDamaged<T>(conn: DuckDBConnection, paths: readonly string[], keys: readonly string[], read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    const message = (err as Error).message;
    const named = NOT_PARQUET.exec(message);
    const at = named === null ? -1 : paths.indexOf(named[1]);
    if (at !== -1) throw new DamagedFileError(keys[at], withoutSqlExcerpt(message).replace(` '${paths[at]}'`, '').replace(/^Invalid Input Error: /, ''));
    if (!UNDECODABLE.test(message) || paths.some((path) => message.includes(path))) throw err;
    for (const [i, path] of paths.entries()) {
      try {
        await conn.run(`SELECT count(*) FROM parquet_schema(${quoteLiteral(path)})`);
      } catch (alone) {
        const problem = withoutSqlExcerpt((alone as Error).message);
        if (!UNDECODABLE.test(problem)) throw alone;
        throw new DamagedFileError(keys[i], `its metadata cannot be decoded (${problem})`);
      }
    }
    throw err;
  }
}

/** The columns of a signature (`Catalog.signaturesOf`), without the schema's root (the entry with no type). */
function signatureColumns(signature: string): { name: string; type: string }[] {
  return (JSON.parse(signature) as { n: string; t: string | null }[]).flatMap(({ n, t }) => (t === null ? [] : [{ name: n, type: t }]));
}

/** SQL of an empty row set with `columns` (DuckDB type names), in order. */
export function emptySetSql(columns: readonly { name: string; type: string }[]): string {
  return `SELECT ${columns.map((c) => `CAST(NULL AS ${c.type}) AS ${quoteIdentifier(c.name)}`).join(', ')} WHERE false`;
}

/**
 * What a file's remembered signature is keyed by: its key and size. Strata never rewrites a
 * key, but an outside writer may replace an object, with other columns (a replaced object of
 * another size is downloaded again, `FileCache`), whose columns must then be read again too.
 */
function fileVersion(f: StoredObject): string {
  return `${f.size}:${f.key}`;
}
