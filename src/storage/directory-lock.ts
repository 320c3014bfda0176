/**
 * One server per directory: at start-up Strata locks its data directory and its WAL
 * directory, so that a second server started on a directory a live one is using stops
 * instead of replaying the other's write-ahead log into Parquet (storing its records
 * twice) and appending to the same log. InfluxDB and QuestDB refuse the same way.
 *
 * Node has no flock(2). A lock is an abstract Unix socket (Linux; a name beginning with
 * NUL, no file) listened on by this process, named after the directory's identity
 * (`strata-lock-{dev}-{ino}`), so that symlinks and other spellings of one directory
 * take the same lock. Binding is atomic, and the kernel frees the name the moment the
 * holder's process ends, however it ends (SIGKILL, a crash): a restart after a crash
 * starts at once, where a lock file would need a staleness timeout.
 *
 * Limits: it covers servers on one machine in one network namespace; containers with
 * network namespaces of their own sharing a volume are not detected. Abstract socket
 * names have no permissions: any local process in the namespace can hold one, which
 * stops a server from starting on that directory. Elsewhere than on Linux no lock is
 * taken (`DirectoryLocks.held` is false, and the server warns at start).
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { DirectoryLockError } from '../errors.js';
import { mkdirDurable } from './fsync.js';

/** A directory to lock and the setting that names it, for messages (`STRATA_DATA_DIR`). */
export interface LockedDirectory {
  readonly dir: string;
  readonly setting: string;
}

/** The locks a server holds on its directories until `release`. */
export class DirectoryLocks {
  /** False where no lock can be taken (not Linux): the directories are not protected. */
  readonly held: boolean;
  private readonly servers: Server[];

  private constructor(held: boolean, servers: Server[]) {
    this.held = held;
    this.servers = servers;
  }

  /**
   * Locks each of `dirs`, in order, creating those that do not exist; a directory the
   * same as one before it (same device and inode) is locked once. Takes none on
   * platforms other than Linux.
   * @throws DirectoryLockError naming the setting and directory when another live
   *   process holds its lock (another Strata server), or the lock cannot be taken; the
   *   locks taken before it are released.
   * @throws the file system's error (ENOTDIR, EACCES…, with the path) when a directory
   *   cannot be created or opened.
   */
  static async acquire(dirs: readonly LockedDirectory[]): Promise<DirectoryLocks> {
    if (process.platform !== 'linux') return new DirectoryLocks(false, []);
    const locks = new DirectoryLocks(true, []);
    const names = new Set<string>();
    try {
      for (const { dir, setting } of dirs) {
        const name = await lockName(dir);
        if (names.has(name)) continue;
        names.add(name);
        locks.servers.push(await listenOn(name, dir, setting));
      }
    } catch (err) {
      await locks.release();
      throw err;
    }
    return locks;
  }

  /** Releases every lock; another server may then take the directories. Never throws. */
  async release(): Promise<void> {
    const servers = this.servers.splice(0);
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/**
 * The lock's socket name for directory `dir` (created when missing): NUL, then
 * `strata-lock-{dev}-{ino}`. Opened with O_DIRECTORY so that a file in its place is
 * ENOTDIR, and read as bigints: inode numbers can exceed 2^53 (XFS, btrfs).
 */
async function lockName(dir: string): Promise<string> {
  const openDir = (): ReturnType<typeof open> => open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  const handle = await openDir().catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
    await mkdirDurable(dir);
    return openDir();
  });
  try {
    const { dev, ino } = await handle.stat({ bigint: true });
    return `\0strata-lock-${dev}-${ino}`;
  } finally {
    await handle.close();
  }
}

/**
 * Listens on abstract socket `name`; EADDRINUSE means a live process holds it. The
 * server is unref'd (the lock never keeps the process alive), and closes whatever
 * connects: nothing is ever said on it.
 */
async function listenOn(name: string, dir: string, setting: string): Promise<Server> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(name, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: NodeJS.ErrnoException) => {
    throw new DirectoryLockError(setting, dir, err.code === 'EADDRINUSE' ? undefined : err);
  });
  // An accept that fails (EMFILE) is emitted on the server; the lock holds regardless.
  server.on('error', () => undefined);
  server.unref();
  return server;
}
