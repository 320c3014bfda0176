/**
 * The storage backend interface: where finished Parquet files live.
 *
 * Keys are `/`-separated relative paths in the layout
 * `{database}/{measurement}/YYYY/MM/DD/HH/{file}.parquet` (segments encoded by
 * `parse/names.ts`). Implementations: `LocalStorage` (the embedded default); an S3
 * backend implements the same contract.
 */

/** One stored object. */
export interface StoredObject {
  readonly key: string;
  /** Size in bytes. */
  readonly size: number;
}

export interface Storage {
  /** Human-readable description for logs and stats (e.g. `local:/var/lib/strata`). */
  readonly description: string;
  /**
   * Moves the finished local file `localPath` to `key` atomically: readers see either
   * no object or the whole file, never part of it. `localPath` is consumed.
   */
  putFile(key: string, localPath: string): Promise<void>;
  /** Lists objects whose key starts with `prefix` (a directory-like prefix ending in `/`), in key order. */
  list(prefix: string): Promise<StoredObject[]>;
  /** Lists the immediate child "directory" names under `prefix` (`''` = the root), sorted. */
  listChildren(prefix: string): Promise<string[]>;
  /** Deletes `key`; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * A local filesystem path DuckDB can read for `key`. The local backend returns the
   * file itself; a remote backend returns a path in its local cache.
   */
  localPath(key: string): Promise<string>;
  /**
   * A directory on the same filesystem as the backend's files, where writers create
   * temporary files that `putFile` then moves into place with a rename.
   */
  readonly stagingDir: string;
}
