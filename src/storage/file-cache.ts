/**
 * The local Parquet cache of a remote backend: DuckDB reads S3 objects from here
 * (httpfs is not available, and a local copy is faster for repeated queries anyway).
 *
 * Layout: `{dir}/{key}` (the storage layout, so the cache is browsable), downloads in
 * progress and files being written under `{dir}/.part/` and renamed into place, so a cached path is always a
 * whole file. Footer stubs (`openFooters`) live in `{dir}/.part/` too, for one query
 * each, and never enter the cache. The index is rebuilt from the directory at start-up (least recently
 * used = oldest modification time), so the cache survives restarts.
 *
 * Bound and eviction: least recently used files are deleted while the cached bytes
 * exceed `maxBytes`; files pinned by a running query (`open` until `release`) are
 * never evicted, so while queries hold more than the bound the cache stays above it.
 * Why not the `lru-cache` package: its size bound evicts regardless of pins; pinned
 * entries would have to leave and re-enter it with a moving bound, which is more code
 * than the Map-ordered LRU below (a JS Map iterates in insertion order; re-inserting
 * a key moves it to the end).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open as openFile, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { ConfigError, StorageUnavailableError } from '../errors.js';
import { SharedWork } from './abortable.js';
import { forEachLimit } from './concurrency.js';
import type { CacheStats, LocalFiles } from './storage.js';
import { isLayoutKey } from '../write/layout.js';

/**
 * A failure of the cache's own disk (a file system error: `path` set) as the error a request
 * gets: 503 like any storage failure, naming the setting and the error code, not the host path.
 * Other errors are returned as they are.
 */
export function cacheFault(err: unknown): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e === null || typeof e !== 'object' || e.path === undefined) return err;
  return new StorageUnavailableError(`the S3 backend's local cache (STRATA_CACHE_DIR) cannot be used: ${e.code ?? 'error'} (${e.syscall ?? 'fs'})`, { cause: err });
}

/** `work` (a file system call on the cache's disk) with its failure made a `cacheFault`. */
export function onCacheDisk<T>(work: Promise<T>): Promise<T> {
  return work.catch((err: unknown) => {
    throw cacheFault(err);
  });
}

/** Tries of `place` while evictions remove the directories it makes (each race needs one more eviction to finish). */
const PLACE_ATTEMPTS = 10;

/**
 * Writes what it fetches of `key` (the object, or a footer stub) into the new local file
 * `destination`; it stops (rejects) when `signal` aborts: its caller has left (a footer
 * read), or every caller waiting for it has (a download).
 */
export type Fetcher = (key: string, destination: string, signal?: AbortSignal) => Promise<void>;

interface Entry {
  size: number;
  pins: number;
}

const PART_DIR = '.part';

/**
 * The S3 backend's local Parquet cache (layout, bound and eviction in the module comment):
 * pins local copies for queries (`open`, `openFooters`), takes written files in
 * (`adopt`, write-through) and evicts unpinned ones, least recently used first. Created by
 * the composition root (src/app.ts) for `S3Storage`, which alone calls it and supplies the
 * fetchers (GET, ranged GET of the footer); `init` once before use. Concurrent `open`s
 * share one download per key.
 */
export class FileCache {
  /** The cache directory, absolute. */
  readonly dir: string;
  /**
   * Scratch directory inside the cache (so renames from it are atomic): downloads in
   * progress, and the staging directory of the backend's writers. Emptied by `init`.
   */
  readonly partDir: string;
  private readonly maxBytes: number;
  private readonly fetchConcurrency: number;
  /** In LRU order: first = least recently used. */
  private readonly index = new Map<string, Entry>();
  private readonly downloads = new Map<string, SharedWork<void>>();
  private readonly unlinks = new Map<string, Promise<void>>();
  private bytes = 0;
  private readonly counters = { hits: 0, misses: 0, downloadedBytes: 0, evictions: 0, footerReads: 0 };

  /**
   * @param dir cache directory (created by `init`).
   * @param maxBytes bound on cached bytes (pinned files excepted).
   * @param fetchConcurrency downloads run at once per `open`.
   */
  constructor(dir: string, maxBytes: number, fetchConcurrency = 8) {
    this.dir = resolve(dir);
    this.partDir = join(this.dir, PART_DIR);
    this.maxBytes = maxBytes;
    this.fetchConcurrency = fetchConcurrency;
  }

  /**
   * Creates the directory, drops interrupted downloads, rebuilds the index (without the
   * copies a crash left damaged, `wholeParquet`), evicts down to the bound. Only files at
   * keys of the storage layout (`isLayoutKey`) are the cache's: any other file in the
   * directory is never indexed, evicted or deleted.
   * @throws ConfigError when the directory is a Strata data directory (it holds a `.node-id`).
   */
  async init(): Promise<void> {
    // A Strata data directory (an old local one, a stopped server's) holds Parquet files at
    // the keys a cache keeps: as a cache, it would evict them.
    if ((await stat(join(this.dir, '.node-id')).catch(() => undefined)) !== undefined) {
      throw new ConfigError(`STRATA_CACHE_DIR (${this.dir})`, "is a Strata data directory (it holds a .node-id): its Parquet files would be taken for cached copies and evicted; give the cache a directory of its own");
    }
    await rm(this.partDir, { recursive: true, force: true });
    await mkdir(this.partDir, { recursive: true });
    const names = (await readdir(this.dir, { recursive: true })) as string[];
    const found: { key: string; size: number; mtimeMs: number }[] = [];
    for (const name of names) {
      const key = name.split(sep).join('/');
      if (!isLayoutKey(key) || key.split('/').some((s) => s.startsWith('.'))) continue;
      const path = join(this.dir, name);
      const info = await stat(path);
      if (!info.isFile()) continue;
      if (await wholeParquet(path, info.size)) found.push({ key, size: info.size, mtimeMs: info.mtimeMs });
      else await rm(path, { force: true });
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of found) this.insert(f.key, f.size);
    await this.evict();
  }

  /** Path of `key` in the cache (whether cached or not). */
  pathOf(key: string): string {
    return join(this.dir, ...key.split('/'));
  }

  /**
   * Pins `keys`, downloading those not cached with `fetch` (at most
   * `fetchConcurrency` at a time; one download per key however many queries want it).
   * The index is trusted (no `stat` per file and query) unless `verify`: then each
   * cached file is checked on disk and fetched again when someone wiped it (tmp
   * cleaners, an operator); the query side asks for that after DuckDB missed a file.
   * Once `signal` aborts, `open` stops waiting: a download other callers still wait for
   * runs on for them (finishing into the cache, unpinned by this caller); one no caller
   * waits for any more is stopped (`fetch`'s signal aborts) and its partial file deleted.
   * `sizes` (bytes, as listed): a cached copy of another size is of an object replaced in the
   * bucket since, by an outside writer (Strata never rewrites a key), and is fetched again.
   * @throws whatever `fetch` throws, or `signal.reason`; nothing stays pinned then.
   */
  async open(keys: readonly string[], verify: boolean, fetch: Fetcher, signal?: AbortSignal, sizes?: ReadonlyMap<string, number>): Promise<LocalFiles> {
    const pinned: Entry[] = [];
    try {
      await forEachLimit([...new Set(keys)], this.fetchConcurrency, async (key) => {
        pinned.push(await this.pin(key, verify, fetch, signal, sizes?.get(key)));
      });
    } catch (err) {
      for (const entry of pinned) unpin(entry);
      // The copies it did download stay cached, unpinned: past the bound until something
      // evicts, which could be no query for a long while.
      void this.evict();
      throw err;
    }
    await this.evict();
    let released = false;
    return {
      paths: keys.map((k) => this.pathOf(k)),
      release: () => {
        if (released) return;
        released = true;
        for (const entry of pinned) unpin(entry);
        void this.evict();
      },
    };
  }

  /**
   * Local files DuckDB can read the Parquet metadata of (schema, key-value metadata),
   * never the data, for `keys`, pinned until `release()`, without downloading anything:
   * a cached file itself (pinned, a hit; checked on disk first when `verify`, as in
   * `open`), otherwise a stub that `fetchFooter` writes to a new path under `partDir`
   * (a footer read, neither a hit nor a miss), deleted on release. At most
   * `fetchConcurrency` fetches at a time, each this caller's alone: `signal` is passed on.
   * @throws whatever `fetchFooter` throws (`signal.reason` once it aborts); nothing stays
   *   pinned or written then.
   */
  async openFooters(keys: readonly string[], verify: boolean, fetchFooter: Fetcher, signal?: AbortSignal, sizes?: ReadonlyMap<string, number>): Promise<LocalFiles> {
    const local = new Map<string, string>();
    const pinned: Entry[] = [];
    const stubs: string[] = [];
    const drop = (): void => {
      for (const entry of pinned) unpin(entry);
      for (const stub of stubs) void rm(stub, { force: true }).catch(() => undefined);
    };
    try {
      await forEachLimit([...new Set(keys)], this.fetchConcurrency, async (key) => {
        const cached = await this.pinCached(key, verify, sizes?.get(key));
        if (cached !== undefined) {
          pinned.push(cached);
          local.set(key, this.pathOf(key));
          return;
        }
        const stub = await this.scratchPath();
        stubs.push(stub);
        await fetchFooter(key, stub, signal);
        this.counters.footerReads++;
        local.set(key, stub);
      });
    } catch (err) {
      drop();
      throw err;
    }
    let released = false;
    return {
      paths: keys.map((k) => local.get(k)!),
      release: () => {
        if (released) return;
        released = true;
        drop();
        void this.evict();
      },
    };
  }

  /**
   * Moves the local file `localPath` (on the cache's filesystem), of `size` bytes, into
   * the cache as `key`: write-through.
   */
  async adopt(key: string, localPath: string, size: number): Promise<void> {
    await this.place(key, localPath);
    this.insert(key, size);
    await this.evict();
  }

  /** Current counters (bytes in bytes, counts in files), for `Storage.stats().cache`. */
  stats(): CacheStats {
    let pinned = 0;
    for (const e of this.index.values()) if (e.pins > 0) pinned++;
    return {
      dir: this.dir, max_bytes: this.maxBytes, bytes: this.bytes, files: this.index.size, pinned_files: pinned,
      hits: this.counters.hits, misses: this.counters.misses,
      downloaded_bytes: this.counters.downloadedBytes, evictions: this.counters.evictions,
      footer_reads: this.counters.footerReads,
    };
  }

  /**
   * Pins `key` if it is cached (and, with `verify`, still on disk), counting a hit: the
   * entry pinned, for the caller to unpin (not the key's entry then: a copy found wiped
   * is forgotten while other queries hold it, and the key gets a new entry).
   */
  private async pinCached(key: string, verify: boolean, size?: number): Promise<Entry | undefined> {
    const cached = this.index.get(key);
    if (cached === undefined) return undefined;
    if (size !== undefined && cached.size !== size) {
      // Replaced in the bucket (see `open`). A query still reading the old copy keeps its
      // file: only the index forgets it, and the new copy's rename takes its place.
      if (cached.pins === 0) this.drop(key, cached);
      else this.forget(key, cached);
      return undefined;
    }
    cached.pins++;
    this.touch(key, cached);
    if (!verify || (await exists(this.pathOf(key)))) {
      this.counters.hits++;
      return cached;
    }
    cached.pins--;
    if (this.index.get(key) === cached) this.forget(key, cached);
    return undefined;
  }

  /** Pins `key`, downloading it unless cached at `size` bytes (see `open`); the entry pinned. */
  private async pin(key: string, verify: boolean, fetch: Fetcher, signal: AbortSignal | undefined, size: number | undefined): Promise<Entry> {
    const cached = await this.pinCached(key, verify, size);
    if (cached !== undefined) return cached;
    // No download started for a caller that no longer waits.
    signal?.throwIfAborted();
    this.counters.misses++;
    // A download finished by another query may be evicted before this continuation
    // runs (it is unpinned until then): fetch again in that case.
    for (;;) {
      let download = this.downloads.get(key);
      // A cancelled download may still be winding down: it is no longer joined.
      if (download === undefined || download.cancelled) {
        const started: SharedWork<void> = new SharedWork((own) => this.download(key, fetch, own).finally(() => {
          if (this.downloads.get(key) === started) this.downloads.delete(key);
        }));
        this.downloads.set(key, started);
        download = started;
      }
      // Pinned only once it is waited for to the end: a download finishing after the abort is left unpinned.
      await download.wait(signal);
      const entry = this.index.get(key);
      if (entry !== undefined) {
        entry.pins++;
        return entry;
      }
    }
  }

  /** Fetches `key` into the cache through a scratch file, deleted if the fetch fails or `signal` stops it. */
  private async download(key: string, fetch: Fetcher, signal: AbortSignal): Promise<void> {
    const part = await this.scratchPath();
    try {
      await fetch(key, part, signal);
      const size = (await stat(part)).size;
      await this.place(key, part);
      this.counters.downloadedBytes += size;
      this.insert(key, size);
    } catch (err) {
      await rm(part, { force: true });
      throw err;
    }
  }

  /**
   * A new file name under `partDir`, which is made again if it was removed while running
   * (a tmp cleaner, an operator clearing the cache): every download would fail otherwise.
   */
  private async scratchPath(): Promise<string> {
    await onCacheDisk(mkdir(this.partDir, { recursive: true }));
    return join(this.partDir, `${randomBytes(8).toString('hex')}.parquet`);
  }

  /**
   * Renames `source` to `key`'s path, after any pending unlink of an evicted copy of it. An
   * eviction removes the directories it empties (`drop`), maybe while they are being made
   * (a recursive mkdir then fails with ENOENT or ENOTDIR) or between the mkdir and the
   * rename: then both are tried again.
   * @throws StorageUnavailableError (`cacheFault`) when it still fails.
   */
  private async place(key: string, source: string): Promise<void> {
    await this.unlinks.get(key);
    const target = this.pathOf(key);
    for (let attempt = 1; ; attempt++) {
      try {
        await mkdir(dirname(target), { recursive: true });
        return await rename(source, target);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code === 'ENOENT' || code === 'ENOTDIR') && attempt < PLACE_ATTEMPTS && (await exists(source))) continue;
        throw cacheFault(err);
      }
    }
  }

  /**
   * Removes `dir` and its parents up to the cache's own directory while they are empty: an
   * evicted file's hour, day, … directories would otherwise stay, one set per hour ever
   * cached. `rmdir` only removes an empty directory, so nothing placed meanwhile is lost.
   */
  private async removeEmpty(dir: string): Promise<void> {
    for (let d = dir; d.startsWith(this.dir + sep) && d !== this.partDir; d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return;
      }
    }
  }

  private insert(key: string, size: number): void {
    const old = this.index.get(key);
    if (old !== undefined) this.forget(key, old);
    this.index.set(key, { size, pins: old?.pins ?? 0 });
    this.bytes += size;
  }

  private touch(key: string, entry: Entry): void {
    this.index.delete(key);
    this.index.set(key, entry);
  }

  /** Removes `key` from the index only. */
  private forget(key: string, entry: Entry): void {
    this.index.delete(key);
    this.bytes -= entry.size;
  }

  /** Removes `key` from the index and deletes its file. */
  private drop(key: string, entry: Entry): void {
    this.forget(key, entry);
    const path = this.pathOf(key);
    const unlink = rm(path, { force: true }).then(() => this.removeEmpty(dirname(path)), () => undefined).finally(() => {
      if (this.unlinks.get(key) === unlink) this.unlinks.delete(key);
    });
    this.unlinks.set(key, unlink);
  }

  private async evict(): Promise<void> {
    if (this.bytes <= this.maxBytes) return;
    const victims: string[] = [];
    for (const [key, entry] of this.index) {
      if (this.bytes <= this.maxBytes) break;
      if (entry.pins > 0) continue;
      this.drop(key, entry);
      this.counters.evictions++;
      victims.push(key);
    }
    await Promise.all(victims.map((k) => this.unlinks.get(k)));
  }
}

/** Bytes of the smallest Parquet file: the magic `PAR1`, a footer length (u32), `PAR1` again. */
const MIN_PARQUET_BYTES = 12;

/**
 * Whether the file at `path` (of `size` bytes) can be a whole Parquet file: long enough and
 * ending in the magic `PAR1`. Copies are renamed into the cache without an fsync, so a power
 * loss can leave one empty or cut short; kept, it would fail every query reading it (blaming
 * the object, which is whole) until evicted, where dropped it is downloaded again.
 */
async function wholeParquet(path: string, size: number): Promise<boolean> {
  if (size < MIN_PARQUET_BYTES) return false;
  const file = await openFile(path, 'r');
  try {
    const tail = Buffer.alloc(4);
    await file.read(tail, 0, 4, size - 4);
    return tail.toString('latin1') === 'PAR1';
  } finally {
    await file.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Releases one pin of `entry` (in the index or already forgotten). */
function unpin(entry: Entry): void {
  if (entry.pins > 0) entry.pins--;
}
