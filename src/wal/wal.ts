/**
 * The write-ahead log: every accepted write request is appended here, durably, before
 * it is acknowledged, so that a 204 survives a crash.
 *
 * Layout: `{dir}/{firstLsn, 20 digits}.wal` segment files (format in `entry.ts`) and
 * `{dir}/wal-id`, a random id carried by every Parquet file's coverage metadata so that a
 * new log (a wiped directory restarting at LSN 1) is never mistaken for the one that wrote
 * older files. A start that leaves nothing to replay takes a new one: two servers started
 * from copies of one directory (a cloned volume), or a log restored from an older backup,
 * would otherwise log other records under the same id and LSNs, and on a shared bucket the
 * coverage of one's files would make the other's replay skip records it acknowledged. A segment named N holds LSNs ≥ N and below the
 * next segment's name; the newest (active) segment is never deleted, so its name keeps
 * LSNs increasing across restarts even when every entry has been deleted.
 *
 * Durability (`sync`): `fsync` — group commit: the appends that arrive while a write and
 * fdatasync(2) are in progress are written together and share the next fdatasync; every
 * `append` resolves only after its own entry was synced. `interval` — `append` resolves
 * once the entry is in the kernel (it survives a process crash), and the log is synced
 * every `syncIntervalMs`. `none` — never synced by Strata (the kernel writes back on its
 * own). In every mode a SIGKILL loses nothing acknowledged; a power loss may lose the
 * last `syncIntervalMs` in `interval` mode, and more in `none` mode.
 *
 * Segment deletion: a segment is deleted once every record of its entries is in a
 * Parquet file in storage. Tracked in memory with holds counted per segment: an entry
 * has one hold from its append until its records are buffered (`release` by the write
 * path), plus one per measurement buffer that took records from it (`retain` by the
 * BufferManager), released when that buffer's snapshot has been written. A sealed
 * segment whose holds reach 0 is deleted. After a crash the counts are rebuilt by
 * replay (`wal/replay.ts`).
 */
import { randomBytes } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { open, readdir, readFile, rm, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { WalWriteError } from '../errors.js';
import { fsyncDirectory, mkdirDurable } from '../storage/fsync.js';
import type { DecodedWrite } from '../parse/body.js';
import { decodeEntries, encodeEntry, type WalEntry } from './entry.js';

/** When appends are made durable (see the module comment). */
export type WalSyncMode = 'fsync' | 'interval' | 'none';

/** Where and how durably a `WriteAheadLog` writes (from `wal.*` in src/app.ts). */
export interface WalOptions {
  /** Directory of the segment files; created if missing. */
  dir: string;
  /** When an append counts as durable: `fsync` (group commit), `interval` or `none`. */
  sync: WalSyncMode;
  /** Sync period for `interval` mode, ms. */
  syncIntervalMs: number;
  /** A segment is closed and a new one started once it reaches this size, bytes. */
  segmentBytes: number;
  /** Reports cut torn tails and failed segment deletions. */
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/** Counters for `GET /api/v1/write/stats`. */
export interface WalStats {
  dir: string;
  sync_mode: WalSyncMode;
  segments: number;
  bytes: number;
  /** LSN of the last entry appended (or recovered); 0 when none ever was. */
  last_lsn: number;
  /** Appends that are waiting to be written. */
  pending_appends: number;
  appends: number;
  /** write + sync rounds; `appends / syncs` is the group-commit factor in `fsync` mode. */
  syncs: number;
  segments_deleted: number;
}

interface Segment {
  readonly firstLsn: number;
  readonly path: string;
  bytes: number;
  entries: number;
  /** Outstanding holds (see the module comment). */
  holds: number;
}

interface PendingAppend {
  readonly write: DecodedWrite;
  readonly resolve: (lsn: number) => void;
  readonly reject: (err: Error) => void;
}

const SEGMENT_NAME = /^(\d{20})\.wal$/;
const segmentName = (firstLsn: number): string => `${String(firstLsn).padStart(20, '0')}.wal`;

/**
 * The one write-ahead log of the process (format, durability modes and segment deletion in
 * the module comment). Created by the composition root (src/app.ts) when `wal.enabled`;
 * lifetime: `open`, `recover` (through `replayWal`), `startAppending`, then `append` from
 * the write routes, `retain`/`release` from them and the `BufferManager` (`LsnTracker`),
 * and `close` at shutdown. Appends may come concurrently: they are grouped, and every
 * operation on the active file runs in one serial chain.
 */
export class WriteAheadLog {
  /** The options it was created with (logged at start-up; `dir` and `sync` are reported by `stats`). */
  readonly options: WalOptions;
  /** Random id of this log (see the module comment); set by `open`, chosen anew by `startAppending` when nothing is left to replay. */
  id = '';
  /** Whether `open` read the id from the directory (a new one need not be replaced). */
  private idRead = false;
  /** Sealed segments and, last, the active one, ascending by `firstLsn`. */
  private segments: Segment[] = [];
  private active: { segment: Segment; fh: FileHandle } | undefined;
  private nextLsn = 1;
  private pending: PendingAppend[] = [];
  private groupScheduled = false;
  /** Serializes every operation on the active file handle. */
  private chain: Promise<void> = Promise.resolve();
  private dirty = false;
  private rotateBeforeNextGroup = false;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;
  private readonly counters = { appends: 0, syncs: 0, deleted: 0 };

  constructor(options: WalOptions) {
    this.options = options;
  }

  /** Creates the directory and reads or creates the log id. Call `recover`, then `startAppending`. */
  async open(): Promise<void> {
    await mkdirDurable(this.options.dir);
    try {
      this.id = (await readFile(join(this.options.dir, 'wal-id'), 'utf8')).trim();
      this.idRead = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (!/^[0-9a-f]{16}$/.test(this.id)) await this.newId();
  }

  private async newId(): Promise<void> {
    this.id = randomBytes(8).toString('hex');
    this.idRead = false;
    await this.writeId();
  }

  private async writeId(): Promise<void> {
    await writeFile(join(this.options.dir, 'wal-id'), this.id, { flush: true });
    await fsyncDirectory(this.options.dir);
  }

  /**
   * Reads every segment in LSN order and yields its valid entries, each with one hold
   * that the caller must `release` once the entry's records are buffered. A torn or
   * corrupt tail is cut from its file (truncated) and logged.
   */
  async *recover(): AsyncGenerator<WalEntry> {
    const names = (await readdir(this.options.dir)).filter((n) => SEGMENT_NAME.test(n)).sort();
    let last = 0;
    for (const name of names) {
      const firstLsn = Number(SEGMENT_NAME.exec(name)![1]);
      const path = join(this.options.dir, name);
      const data = await readFile(path);
      const decoded = decodeEntries(data, Math.max(last, firstLsn - 1));
      if (decoded.cut !== undefined) {
        this.options.log.warn(
          { segment: path, offset: decoded.validBytes, cutBytes: data.length - decoded.validBytes, reason: decoded.cut, entriesKept: decoded.entries.length },
          'WAL: torn or corrupt tail cut; entries before it are replayed',
        );
        await truncate(path, decoded.validBytes);
      }
      // Every entry holds the segment from the start, so that releasing the first
      // entries cannot delete it while later ones are still being replayed.
      const n = decoded.entries.length;
      this.segments.push({ firstLsn, path, bytes: decoded.validBytes, entries: n, holds: n });
      this.nextLsn = Math.max(this.nextLsn, firstLsn);
      for (const entry of decoded.entries) {
        last = entry.lsn;
        this.nextLsn = Math.max(this.nextLsn, entry.lsn + 1);
        yield entry;
      }
    }
  }

  /**
   * Opens a new active segment at the next LSN (after `recover`); appends are accepted from
   * here on. When no entry is left to replay, the log takes a new id first (module comment).
   */
  async startAppending(): Promise<void> {
    await this.openSegment();
    // Replayed segments whose records were all flushed meanwhile: the newest was kept only
    // while no segment after it carried the next LSN.
    await this.collect();
    // Files, not the list: a segment whose deletion failed is replayed at the next start,
    // where only this id finds the files that already hold its records.
    const active = this.active!.segment.path;
    const left = (await readdir(this.options.dir)).filter((n) => SEGMENT_NAME.test(n) && join(this.options.dir, n) !== active);
    if (this.idRead && left.length === 0) await this.newId();
    this.started = true;
    if (this.options.sync === 'interval') {
      this.timer = setInterval(() => {
        if (this.dirty) this.enqueue(() => this.sync()).catch((err: unknown) => this.options.log.error({ err }, 'WAL: periodic sync failed'));
      }, this.options.syncIntervalMs);
      this.timer.unref();
    }
  }

  /**
   * Appends `write` and resolves with its LSN once it is durable as `sync` defines.
   * The entry holds its segment until `release([lsn])` (see the module comment).
   * @throws WalWriteError (503) when the log cannot be written; the write is then not logged.
   *   An Error (500) when `write` cannot be encoded (a field out of its range: a bug of
   *   the caller's validation); the rest of its group is logged.
   */
  append(write: DecodedWrite): Promise<number> {
    if (this.closed || !this.started) return Promise.reject(new WalWriteError('write-ahead log is not open'));
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ write, resolve, reject });
      if (!this.groupScheduled) {
        this.groupScheduled = true;
        void this.enqueue(() => this.writeGroup());
      }
    });
  }

  /** Adds a hold on the segment of `lsn` (a buffer took records of that entry). */
  retain(lsn: number): void {
    const segment = this.segmentOf(lsn);
    if (segment !== undefined) segment.holds++;
  }

  /** Drops one hold per LSN of `lsns` and deletes sealed segments left without holds. */
  release(lsns: readonly number[]): void {
    for (const lsn of lsns) {
      const segment = this.segmentOf(lsn);
      if (segment !== undefined) segment.holds--;
    }
    void this.collect();
  }

  /**
   * Syncs and closes the log. When no segment holds anything (every record is in
   * Parquet), the log is left empty: a new empty segment named by the next LSN, every
   * other one deleted. Otherwise the segments are kept for replay at the next start.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.enqueue(async () => {
      const active = this.active;
      if (active === undefined) return;
      if (this.options.sync !== 'none') await active.fh.datasync().catch(() => undefined);
      await active.fh.close();
      this.active = undefined;
      if (active.segment.entries > 0 && this.segments.every((s) => s.holds === 0)) {
        await this.openSegment();
        await this.active!.fh.close();
        this.active = undefined;
      }
      await this.collect();
    });
  }

  /** Current counters. */
  stats(): WalStats {
    return {
      dir: this.options.dir, sync_mode: this.options.sync,
      segments: this.segments.length,
      bytes: this.segments.reduce((n, s) => n + s.bytes, 0),
      last_lsn: this.nextLsn - 1,
      pending_appends: this.pending.length,
      appends: this.counters.appends, syncs: this.counters.syncs, segments_deleted: this.counters.deleted,
    };
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const run = this.chain.then(op);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Writes every pending append as one group (one writev, one sync). */
  private async writeGroup(): Promise<void> {
    this.groupScheduled = false;
    const group = this.pending;
    this.pending = [];
    if (group.length === 0) return;
    try {
      if (this.closed) throw new Error('closed');
      const active = this.active?.segment;
      if (active === undefined || this.rotateBeforeNextGroup || (active.bytes >= this.options.segmentBytes && active.entries > 0)) {
        await this.rotate();
      }
    } catch (err) {
      for (const p of group) p.reject(new WalWriteError(`write-ahead log unavailable: ${(err as Error).message}`, { cause: err }));
      return;
    }
    const { segment, fh } = this.active!;
    const buffers: Buffer[] = [];
    const lsns: number[] = [];
    const written: PendingAppend[] = [];
    for (const p of group) {
      // One write the log cannot encode (a bug: its fields were validated) fails alone;
      // thrown from here it would leave every append of the group unsettled for good.
      let encoded: Buffer[];
      try {
        encoded = encodeEntry(this.nextLsn, p.write);
      } catch (err) {
        p.reject(new Error(`write-ahead log cannot encode this write: ${(err as Error).message}`, { cause: err }));
        continue;
      }
      lsns.push(this.nextLsn++);
      buffers.push(...encoded);
      written.push(p);
    }
    if (written.length === 0) return;
    const size = buffers.reduce((n, b) => n + b.length, 0);
    try {
      await writeAll(fh, buffers, size);
      if (this.options.sync === 'fsync') await fh.datasync();
      else this.dirty = true;
      // A segment removed from its directory (the directory deleted while running) takes
      // writes and syncs but is gone at the next start: nothing in it may be acknowledged.
      const opened = await fh.stat({ bigint: true });
      if (opened.nlink === 0n && (await removed(segment.path, opened))) {
        throw new Error('its segment file was removed from the directory (was the WAL directory deleted?)');
      }
    } catch (err) {
      // The file may now end in a partial group: cut it back and continue in a new
      // segment, so that no later entry follows garbage.
      await fh.truncate(segment.bytes).catch(() => undefined);
      this.rotateBeforeNextGroup = true;
      for (const p of written) p.reject(new WalWriteError(`write-ahead log append failed: ${(err as Error).message}`, { cause: err }));
      return;
    }
    segment.bytes += size;
    segment.entries += written.length;
    segment.holds += written.length;
    this.counters.appends += written.length;
    this.counters.syncs++;
    written.forEach((p, i) => p.resolve(lsns[i]));
  }

  private async sync(): Promise<void> {
    if (this.active === undefined || !this.dirty) return;
    this.dirty = false;
    await this.active.fh.datasync();
    this.counters.syncs++;
  }

  /** Seals the active segment, if any (synced unless `none`), and opens the next. */
  private async rotate(): Promise<void> {
    const old = this.active;
    if (old !== undefined) {
      this.active = undefined;
      try {
        if (this.options.sync !== 'none') await old.fh.datasync();
      } finally {
        await old.fh.close();
      }
    }
    await this.openSegment();
    this.rotateBeforeNextGroup = false;
    void this.collect();
  }

  /**
   * Creates segment `nextLsn` (replacing an empty leftover of that name) and makes it
   * active. A directory deleted or emptied while running is made again, with this log's
   * id, so that the next start replays it as this log and its coverage in stored files
   * still counts (a new id would replay entries already flushed).
   */
  private async openSegment(): Promise<void> {
    await mkdirDurable(this.options.dir);
    if ((await stat(join(this.options.dir, 'wal-id')).catch(() => undefined)) === undefined) await this.writeId();
    const firstLsn = this.nextLsn;
    const path = join(this.options.dir, segmentName(firstLsn));
    const existing = this.segments.findIndex((s) => s.firstLsn === firstLsn);
    if (existing !== -1) this.segments.splice(existing, 1);
    const fh = await open(path, 'w');
    const segment: Segment = { firstLsn, path, bytes: 0, entries: 0, holds: 0 };
    this.segments.push(segment);
    this.active = { segment, fh };
    // The new file's directory entry must be durable before entries in it are acknowledged.
    if (this.options.sync !== 'none') await fsyncDirectory(this.options.dir);
  }

  private segmentOf(lsn: number): Segment | undefined {
    let lo = 0;
    let hi = this.segments.length - 1;
    let found: Segment | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.segments[mid].firstLsn <= lsn) {
        found = this.segments[mid];
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** Deletes every sealed (not active) segment without holds; resolves when the files are gone. */
  private collect(): Promise<void> {
    const keep: Segment[] = [];
    const deletions: Promise<void>[] = [];
    for (const s of this.segments) {
      if (s.holds > 0 || s === this.active?.segment) {
        keep.push(s);
        continue;
      }
      // Never the newest segment file: its name carries the next LSN across restarts.
      if (this.active === undefined && s === this.segments[this.segments.length - 1]) {
        keep.push(s);
        continue;
      }
      this.counters.deleted++;
      deletions.push(rm(s.path, { force: true }).catch((err: unknown) => this.options.log.error({ err, segment: s.path }, 'WAL: deleting a segment failed')));
    }
    this.segments = keep;
    return Promise.all(deletions).then(() => undefined);
  }
}

/** Writes `buffers` (`size` bytes in all) at the file's position, looping over partial writes. */
async function writeAll(fh: FileHandle, buffers: Buffer[], size: number): Promise<void> {
  let { bytesWritten } = await fh.writev(buffers);
  if (bytesWritten === size) return;
  const rest = Buffer.concat(buffers).subarray(bytesWritten);
  for (let off = 0; off < rest.length; off += bytesWritten) ({ bytesWritten } = await fh.write(rest, off));
}

/**
 * Whether the file whose `fstat` is `opened` is no longer at `path`. Asked when its link
 * count reads 0: some FUSE file systems report 0 for every file, so the path must say so too.
 */
async function removed(path: string, opened: BigIntStats): Promise<boolean> {
  const named = await stat(path, { bigint: true }).catch(() => undefined);
  return named === undefined || named.ino !== opened.ino || named.dev !== opened.dev;
}
