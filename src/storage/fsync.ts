/**
 * fsync(2) by path, for files and directories alike: a new file's contents, and a
 * directory's entries (a file created, renamed into or out of it), are only durable
 * across a power loss once synced.
 */
import { open } from 'node:fs/promises';

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
