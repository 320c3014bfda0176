/**
 * Local filesystem storage backend (the embedded default).
 *
 * Atomicity: writers create files in `{root}/.staging` (same filesystem) and
 * `putFile` renames them into place; POSIX `rename(2)` is atomic, so a reader never
 * sees half a file. Names starting with `.` are Strata's own and hidden from listings.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Storage, StoredObject } from './storage.js';

export class LocalStorage implements Storage {
  readonly root: string;
  readonly stagingDir: string;
  readonly description: string;

  /** @param root data directory; created (with the staging directory) by `init()`. */
  constructor(root: string) {
    this.root = resolve(root);
    this.stagingDir = join(this.root, '.staging');
    this.description = `local:${this.root}`;
  }

  /** Creates the data and staging directories and removes staging leftovers of a crash. */
  async init(): Promise<void> {
    await rm(this.stagingDir, { recursive: true, force: true });
    await mkdir(this.stagingDir, { recursive: true });
  }

  async putFile(key: string, localPath: string): Promise<void> {
    const target = this.pathOf(key);
    await mkdir(join(target, '..'), { recursive: true });
    await rename(localPath, target);
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
    const out: StoredObject[] = [];
    for (const name of names.sort()) {
      if (!name.endsWith('.parquet') || name.split(sep).some((s) => s.startsWith('.'))) continue;
      const key = prefix + name.split(sep).join('/');
      try {
        out.push({ key, size: (await stat(join(dir, name))).size });
      } catch (err) {
        // Deleted between readdir and stat (retention, compaction): not listed.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return out;
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

  async localPath(key: string): Promise<string> {
    return this.pathOf(key);
  }

  private pathOf(key: string): string {
    return key === '' ? this.root : join(this.root, ...key.split('/'));
  }
}
