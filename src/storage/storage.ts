/**
 * The storage backend interface: where finished Parquet files live.
 *
 * Keys are `/`-separated relative paths in the layout
 * `{database}/{measurement}/YYYY/MM/DD/HH/{file}.parquet` (segments encoded by
 * `parse/names.ts`). Implementations: `LocalStorage` (the embedded default) and
 * `S3Storage` (S3-compatible object storage, read through a local Parquet cache).
 *
 * Freshness: `list`/`listChildren` of `LocalStorage` are always current; `S3Storage`
 * caches listings for `s3.list_ttl_ms`, so files written by *another* node appear
 * within that delay (this node's own writes are visible at once).
 */

/** One stored object. */
export interface StoredObject {
  readonly key: string;
  /** Size in bytes. */
  readonly size: number;
}

/**
 * Local paths DuckDB can read for a set of stored objects, pinned (a cache never
 * evicts them) until `release()`.
 */
export interface LocalFiles {
  /** One path per requested key, in the same order. */
  readonly paths: readonly string[];
  /** Unpins the files once DuckDB is done with them; calling it again does nothing. */
  release(): void;
}

/**
 * Whether the backend's last operations succeeded, as `/ready` and the storage stats
 * report it.
 */
export interface StorageHealth {
  /** False from the first failed operation until the next successful one. */
  readonly ok: boolean;
  /** Message of the most recent failure, or null when none happened yet. */
  readonly last_error: string | null;
  /** When the current state (ok or failing) began, RFC 3339. */
  readonly since: string;
  /** Failed operations since the last success. */
  readonly consecutive_failures: number;
}

/** Counters of the local Parquet cache of a remote backend (`GET /api/v1/storage/stats`). */
export interface CacheStats {
  readonly dir: string;
  /** Configured bound, bytes; pinned files may exceed it while queries run. */
  readonly max_bytes: number;
  /** Bytes of cached files. */
  readonly bytes: number;
  readonly files: number;
  /** Files pinned by running queries. */
  readonly pinned_files: number;
  /** Files a query found cached. */
  readonly hits: number;
  /** Files a query had to download. */
  readonly misses: number;
  /** Bytes downloaded into the cache. */
  readonly downloaded_bytes: number;
  /** Files evicted to stay under `max_bytes`. */
  readonly evictions: number;
  /** Files not cached whose footer alone was read (`openFooters`), neither hits nor misses. */
  readonly footer_reads: number;
}

/** What `GET /api/v1/storage/stats` reports. */
export interface StorageStats {
  readonly backend: 'local' | 's3';
  readonly description: string;
  readonly health: StorageHealth;
  /** Only for a backend with a local cache. */
  readonly cache?: CacheStats;
}

/**
 * Where finished Parquet files live and how DuckDB gets local paths to read them (the
 * module comment gives the key layout and the freshness of listings). One instance per
 * process, created and `init`ed by the composition root (src/app.ts); shared by the
 * Parquet writer (`putFile`), the `Catalog` and queries (`list`, `open`, `openFooters`),
 * WAL replay and the health and stats routes. Every method may run concurrently with any
 * other.
 */
export interface Storage {
  /** Human-readable description for logs and stats (e.g. `local:/var/lib/strata`). */
  readonly description: string;
  /**
   * Prepares the backend: creates local directories, rebuilds caches, and checks that
   * the backend is reachable and writable.
   * @throws StorageUnavailableError naming what is wrong (bucket missing, credentials, network).
   */
  init(): Promise<void>;
  /**
   * Moves the finished local file `localPath` to `key` atomically: readers see either
   * no object or the whole file, never part of it. `localPath` is consumed, whether
   * the put succeeds or fails (a failed write is retried by re-staging the file from
   * the records the buffer still holds). Writing an existing key replaces it.
   * @returns the size of the stored file in bytes.
   * @throws StorageUnavailableError when the backend fails (after its own retries), or
   *   StorageLayoutError when a file is in the way of a directory (local backend).
   */
  putFile(key: string, localPath: string): Promise<number>;
  /**
   * Lists objects whose key starts with `prefix` (a directory-like prefix ending in `/`), in key order.
   * @throws StorageUnavailableError when the backend fails; `signal.reason` once `signal`
   *   aborts (at once: a listing other callers share runs on without this one).
   */
  list(prefix: string, signal?: AbortSignal): Promise<StoredObject[]>;
  /** Lists the immediate child "directory" names under `prefix` (`''` = the root), sorted; errors as `list`. */
  listChildren(prefix: string, signal?: AbortSignal): Promise<string[]>;
  /**
   * Local paths DuckDB can read for `objects` (as listed), pinned until `release()`. The
   * local backend returns the files themselves; a remote backend downloads missing ones
   * into its cache (concurrently) and returns the cached paths. A cached copy whose size
   * is not the listed one (the object was replaced) is fetched again; others are
   * trusted unless `verify`: then each is checked on disk first and fetched again if
   * it was deleted from outside (pass it after DuckDB found a returned path missing).
   * @throws StorageUnavailableError when a download fails; `signal.reason` once `signal`
   *   aborts, at once (a download shared with other callers runs on for them into the
   *   cache; one no caller waits for any more is stopped, nothing of it kept). Nothing
   *   stays pinned then.
   */
  open(objects: readonly StoredObject[], verify?: boolean, signal?: AbortSignal): Promise<LocalFiles>;
  /**
   * Local paths DuckDB can read the Parquet metadata of (`parquet_schema`,
   * `parquet_kv_metadata`, `DESCRIBE`), never the data, for `objects`, pinned until
   * `release()`. The local backend returns the files themselves; a remote backend
   * returns the cached copies it has (trusted unless `verify`, as in `open`) and, for the
   * others, stub files holding only the footer, read by ranged reads of the object's end
   * (at its listed `size`) and deleted on release: nothing is downloaded into the cache.
   * @throws StorageUnavailableError when a read fails; DamagedFileError naming the key
   *   when an object cannot be a Parquet file; `signal.reason` once `signal` aborts (the
   *   reads are stopped). Nothing stays pinned or written then.
   */
  openFooters(objects: readonly StoredObject[], verify?: boolean, signal?: AbortSignal): Promise<LocalFiles>;
  /** Current health (see `StorageHealth`); cheap, no I/O. */
  health(): StorageHealth;
  /** Backend, health and cache counters; cheap, no I/O. */
  stats(): StorageStats;
  /**
   * A directory on the same filesystem as the backend's files, where writers create
   * temporary files that `putFile` then moves into place with a rename.
   */
  readonly stagingDir: string;
}
