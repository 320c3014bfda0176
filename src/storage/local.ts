/**
 * Local filesystem storage backend (the embedded default).
 *
 * Atomicity: writers create files in `{root}/.staging` (same filesystem) and
 * `putFile` renames them into place; POSIX `rename(2)` is atomic, so a reader never
 * sees half a file. Names starting with `.` are Strata's own and hidden from listings.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { StorageUnavailableError } from '../errors.js';
import { forEachLimit } from './concurrency.js';
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
    } catch (err) {
      throw new StorageUnavailableError(`data directory ${this.root} is not writable: ${(err as Error).message}`, { cause: err });
    }
  }

  async putFile(key: string, localPath: string): Promise<void> {
    const target = this.pathOf(key);
    try {
      await this.healthTracker.track(async () => {
        await mkdir(join(target, '..'), { recursive: true });
        await rename(localPath, target);
      });
    } catch (err) {
      await rm(localPath, { force: true });
      throw new StorageUnavailableError(`storing ${key} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const dir = this.pathOf(prefix);
    let names: string[];
    try {
      names = await readdir(dir, { recursive: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const files = names.filter((name) => name.endsWith('.parquet') && !name.split(sep).some((s) => s.startsWith('.'))).sort();
    // Every query plans with a listing: stat concurrently, not one thread-pool hop per file.
    const found: (StoredObject | undefined)[] = new Array(files.length);
    await forEachLimit(files.map((_, i) => i), STAT_CONCURRENCY, async (i) => {
      try {
        found[i] = { key: prefix + files[i].split(sep).join('/'), size: (await stat(join(dir, files[i]))).size };
      } catch (err) {
        // Deleted between readdir and stat (retention, compaction): not listed.
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
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    try {
      return { key, size: (await stat(this.pathOf(key))).size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** The files themselves: nothing to pin, a file is only removed by `delete`. */
  async open(keys: readonly string[]): Promise<LocalFiles> {
    return { paths: keys.map((k) => this.pathOf(k)), release: () => undefined };
  }

  health(): StorageHealth {
    return this.healthTracker.get();
  }

  stats(): StorageStats {
    return { backend: 'local', description: this.description, health: this.health() };
  }

  private pathOf(key: string): string {
    return key === '' ? this.root : join(this.root, ...key.split('/'));
  }
}
