/**
 * fsync(2) by path, for files and directories alike: a new file's contents, and a
 * directory's entries (a file created, renamed into or out of it), are only durable
 * across a power loss once synced.
 */
import { dirname } from 'node:path';
import { mkdir, open } from 'node:fs/promises';

/**
 * Errors that say a directory cannot be opened or synced here, not that data is at
 * risk: no read permission (a 0711 parent owned by another user), or a file system
 * that does not fsync directories. PostgreSQL's fsync_fname ignores the same ones for
 * directories.
 */
const DIRECTORY_SYNC_UNSUPPORTED = new Set(['EACCES', 'EPERM', 'EINVAL', 'EBADF']);

/**
 * Flushes `path` (a file or a directory) to stable storage. A read-only descriptor
 * suffices on Linux, and is the only kind a directory can be opened with.
 * @throws the file system's error (ENOENT, EIO…), with `path` in its message.
 */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Flushes the entries of directory `path` to stable storage, best effort where it
 * cannot be opened or synced at all (EACCES, EPERM, EINVAL, EBADF: resolves without
 * syncing).
 * @throws any other error of the file system (ENOENT, EIO…), with `path` in its message.
 */
export async function fsyncDirectory(path: string): Promise<void> {
  try {
    await fsyncPath(path);
  } catch (err) {
    if (!DIRECTORY_SYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  }
}

/**
 * `mkdir -p dir`, durably: the entry of every directory it creates is synced in its
 * parent (best effort, `fsyncDirectory`) before this resolves, so files later synced
 * inside cannot be lost with a directory a power cut forgot.
 * @returns the first directory created, or undefined when `dir` existed.
 * @throws the file system's error when a directory cannot be created or a sync fails.
 */
export async function mkdirDurable(dir: string): Promise<string | undefined> {
  const created = await mkdir(dir, { recursive: true });
  if (created !== undefined) {
    const parents: string[] = [];
    for (let d = dir; d.length >= created.length; d = dirname(d)) parents.push(dirname(d));
    await Promise.all(parents.map(fsyncDirectory));
  }
  return created;
}
