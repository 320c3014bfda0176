/**
 * Local filesystem storage backend (the embedded default).
 *
 * Atomicity: writers create files in `{root}/.staging` (same filesystem) and
 * `putFile` renames them into place; POSIX `rename(2)` is atomic, so a reader never
 * sees half a file. Names starting with `.` are Strata's own and hidden from listings.
 *
 * Durability: `putFile` resolves only once the file survives a power loss (the
 * write-ahead log deletes the segment holding its records after that): the staged
 * file is fsynced before the rename, and after it the destination directory (it gained
 * the file's entry) and the parent of each directory on the way down from the root
 * whose own entry is not known durable: those `mkdir` just created, and those a
 * concurrent or failed put created and has not (yet) synced. A directory's entry is
 * known durable once a sync of its parent that began after it existed has resolved, so
 * in the steady state a put syncs its hour directory alone: each sync is an open, fsync
 * and close on libuv's thread pool, which DuckDB shares. `init()` syncs only what its
 * `mkdir` created: the data directory's parent may not be readable (a root-owned 0711
 * `/srv/strata`), and a directory that cannot be opened or synced is synced best effort
 * (`fsyncDirectory`).
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
import { fsyncDirectory, fsyncPath, mkdirDurable } from './fsync.js';
import { HealthTracker } from './health.js';
import type { LocalFiles, Storage, StorageHealth, StorageStats, StoredObject } from './storage.js';

/** `stat` calls a listing runs at once (they share libuv's thread pool with DuckDB). */
const STAT_CONCURRENCY = 8;
/** Directories remembered as durable; past this the set starts over (forgetting only costs parent syncs). */
const MAX_DURABLE_DIRS = 65_536;

/**
 * `Storage` on a local directory: keys are paths under `root`, staged files are renamed
 * into place and made durable as the module comment describes. Created by the composition
 * root (src/app.ts) for `storage.backend = local` (the `Catalog` then caches listings: this
 * process is the only writer). Puts may run concurrently: each syncs every directory entry
 * it cannot know durable. Only `putFile` outcomes count towards `health()`.
 */
export class LocalStorage implements Storage {
  /** The data directory, absolute; keys are paths below it. */
  readonly root: string;
  /** Directory Parquet files are staged in before the rename (`{root}/.staging`), absolute. */
  readonly stagingDir: string;
  /** `local:{root}`, for logs and the storage stats. */
  readonly description: string;
  private readonly healthTracker = new HealthTracker();
  /** Directories below the root whose entry in their parent is known durable (see the module comment). */
  private readonly durableDirs = new Set<string>();

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
      // The root may be new: its entry, and those of the directories above it that were created too, must be durable before files in it are.
      await mkdirDurable(this.stagingDir);
    } catch (err) {
      throw new StorageUnavailableError(`data directory ${this.root} is not writable: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * fsyncs the staged file, creates the key's directories, renames the file into place and
   * syncs the directories whose entries changed (see the module comment); the staged file
   * is deleted on failure. No retries: the buffer retries the flush.
   * @throws StorageLayoutError when a regular file sits where a directory of the layout
   *   belongs; StorageUnavailableError naming the key and errno otherwise.
   */
  async putFile(key: string, localPath: string): Promise<number> {
    const target = this.pathOf(key);
    const dir = dirname(target);
    try {
      return await this.healthTracker.track(async () => {
        try {
          const { size } = await stat(localPath);
          await fsyncPath(localPath);
          const created = await mkdir(dir, { recursive: true });
          await rename(localPath, target);
          await this.syncDirectories(dir, created);
          return size;
        } catch (err) {
          throw failure(`storing ${key}`, key, err);
        }
      });
    } catch (err) {
      await rm(localPath, { force: true });
      throw err;
    }
  }

  /**
   * Reads the directory of `prefix` recursively: `.parquet` files, none under a `.`-named
   * entry, with their sizes (`stat`, 8 at a time); `[]` when it does not exist. Takes no
   * signal: local reads are not aborted.
   * @throws StorageLayoutError (a file where a directory of `prefix` belongs) or
   *   StorageUnavailableError when the directory cannot be read.
   */
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
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw failure(`listing ${prefix}`, prefix, err);
      }
    });
    return found.filter((f): f is StoredObject => f !== undefined);
  }

  /** The subdirectories of `prefix` not named `.…`; `[]` when it does not exist. Errors as `list`. */
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
  async open(objects: readonly StoredObject[]): Promise<LocalFiles> {
    return { paths: objects.map((o) => this.pathOf(o.key)), release: () => undefined };
  }

  /** The files themselves, as `open`. */
  openFooters(objects: readonly StoredObject[]): Promise<LocalFiles> {
    return this.open(objects);
  }

  /** Of the `putFile` calls (reads do not count). */
  health(): StorageHealth {
    return this.healthTracker.get();
  }

  /** `backend: 'local'`, no cache. */
  stats(): StorageStats {
    return { backend: 'local', description: this.description, health: this.health() };
  }

  /**
   * Syncs `dir`, which gained an entry, and the parent of each directory between it and
   * the root whose entry is not known durable (see the module comment).
   * @param created the first directory `mkdir` created on the way to `dir`, if any: it
   *   and those below it are new whatever the set says (an operator may have removed
   *   the ones it remembers).
   * @throws the file system's error (host path in its message).
   */
  private async syncDirectories(dir: string, created: string | undefined): Promise<void> {
    const syncs = new Set([dir]);
    const unknown: string[] = [];
    let fresh = created !== undefined;
    for (let d = dir; d.length > this.root.length; d = dirname(d)) {
      if (fresh || !this.durableDirs.has(d)) {
        syncs.add(dirname(d));
        unknown.push(d);
      }
      if (d === created) fresh = false;
    }
    await Promise.all([...syncs].map(fsyncDirectory));
    if (this.durableDirs.size + unknown.length > MAX_DURABLE_DIRS) this.durableDirs.clear();
    for (const d of unknown) this.durableDirs.add(d);
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
