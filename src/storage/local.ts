/**
 * Local filesystem storage backend (the embedded default).
 *
 * Atomicity: writers create files in `{root}/.staging` (same filesystem) and
 * `putFile` renames them into place; POSIX `rename(2)` is atomic, so a reader never
 * sees half a file. Names starting with `.` are Strata's own and hidden from listings.
 *
 * Durability: `putFile` resolves only once the file survives a power loss (the
 * write-ahead log deletes the segment holding its records after that): the staged
 * file is fsynced before the rename, and after it the destination directory and every
 * ancestor up to the root (the ones this put created hold new entries; the others may
 * have been created by a concurrent or failed put that has not synced them).
 *
 * Errors carry no host paths (those stay in `cause`, for logs): a regular file where a
 * directory of the layout belongs is a `StorageLayoutError` naming the database and
 * measurement, any other failure a `StorageUnavailableError` naming the key and errno.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { StorageLayoutError, StorageUnavailableError, type StrataError } from '../errors.js';
import { describeKey } from '../write/layout.js';
import { forEachLimit } from './concurrency.js';
import { fsyncPath } from './fsync.js';
import { HealthTracker } from './health.js';
import type { LocalFiles, Storage, StorageHealth, StorageStats, StoredObject } from './storage.js';

/** `stat` calls a listing runs at once (they share libuv's thread pool with DuckDB). */
const STAT_CONCURRENCY = 8;

export class LocalStorage implements Storage {
  readonly root: string;
  readonly stagingDir: string;
  readonly description: string;
  private readonly healthTracker = new HealthTracker();

  /** @param root data directory; created (with the staging directory) by `init()`. */
  constructor(root: string) {
    this.root = resolve(root);
    this.stagingDir = join(this.root, '.staging');
    this.description = `local:${this.root}`;
  }

  /**
   * Creates the data and staging directories and removes staging leftovers of a crash.
   * @throws StorageUnavailableError when the directory cannot be created or written.
   */
  async init(): Promise<void> {
    try {
      await rm(this.stagingDir, { recursive: true, force: true });
      await mkdir(this.stagingDir, { recursive: true });
      // The root may be new: its own entry must be durable before files in it are.
      await fsyncPath(dirname(this.root));
    } catch (err) {
      throw new StorageUnavailableError(`data directory ${this.root} is not writable: ${(err as Error).message}`, { cause: err });
    }
  }

  async putFile(key: string, localPath: string): Promise<void> {
    const target = this.pathOf(key);
    try {
      await this.healthTracker.track(async () => {
        try {
          await fsyncPath(localPath);
          await mkdir(dirname(target), { recursive: true });
          await rename(localPath, target);
          await this.syncUpToRoot(dirname(target));
        } catch (err) {
          throw failure(`storing ${key}`, key, err);
        }
      });
    } catch (err) {
      await rm(localPath, { force: true });
      throw err;
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const dir = this.pathOf(prefix);
    let names: string[];
    try {
      names = await readdir(dir, { recursive: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw failure(`listing ${prefix}`, prefix, err);
    }
    const files = names.filter((name) => name.endsWith('.parquet') && !name.split(sep).some((s) => s.startsWith('.'))).sort();
    // Every query plans with a listing: stat concurrently, not one thread-pool hop per file.
    const found: (StoredObject | undefined)[] = new Array(files.length);
    await forEachLimit(files.map((_, i) => i), STAT_CONCURRENCY, async (i) => {
      try {
        found[i] = { key: prefix + files[i].split(sep).join('/'), size: (await stat(join(dir, files[i]))).size };
      } catch (err) {
        // Deleted between readdir and stat (by an operator): not listed.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    });
    return found.filter((f): f is StoredObject => f !== undefined);
  }

  async listChildren(prefix: string): Promise<string[]> {
    try {
      const entries = await readdir(this.pathOf(prefix), { withFileTypes: true });
      return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw failure(`listing ${prefix}`, prefix, err);
    }
  }

  /** The files themselves: nothing to pin, Strata never removes a stored file. */
  async open(keys: readonly string[]): Promise<LocalFiles> {
    return { paths: keys.map((k) => this.pathOf(k)), release: () => undefined };
  }

  health(): StorageHealth {
    return this.healthTracker.get();
  }

  stats(): StorageStats {
    return { backend: 'local', description: this.description, health: this.health() };
  }

  /** fsyncs `dir` and each of its ancestors up to the root (see the module comment). */
  private async syncUpToRoot(dir: string): Promise<void> {
    const dirs = [dir];
    while (dirs[dirs.length - 1].length > this.root.length) dirs.push(dirname(dirs[dirs.length - 1]));
    await Promise.all(dirs.map(fsyncPath));
  }

  private pathOf(key: string): string {
    return key === '' ? this.root : join(this.root, ...key.split('/'));
  }
}

/**
 * The error for a failed file system call on `key` (a key or prefix), without host
 * paths: ENOTDIR/EEXIST mean a regular file sits where the layout needs a directory.
 */
function failure(what: string, key: string, err: unknown): StrataError {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOTDIR' || e.code === 'EEXIST') return new StorageLayoutError(describeKey(key), { cause: err });
  return new StorageUnavailableError(`${what} failed: ${e.code !== undefined ? `${e.code} (${e.syscall ?? 'fs'})` : e.message}`, { cause: err });
}
