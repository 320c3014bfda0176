import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileCache } from './file-cache.js';

test('a copy wiped from disk while one query holds it: a second query re-downloads it and keeps its pin when the first releases', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-file-cache-'));
  try {
    // A bound of 0: anything not pinned is evicted at once.
    const cache = new FileCache(dir, 0);
    await cache.init();
    const key = 'db/m/2026/01/01/00/m_1.parquet';
    const fetch = (_key: string, destination: string): Promise<void> => writeFile(destination, 'parquet bytes');
    const first = await cache.open([key], false, fetch);
    assert.equal(cache.stats().misses, 1);
    rmSync(cache.pathOf(key));
    const second = await cache.open([key], true, fetch);
    assert.equal(cache.stats().misses, 2, 'downloaded again');
    first.release();
    await new Promise((r) => setTimeout(r, 20));
    // The first query's release must not take the second query's pin.
    assert.equal(cache.stats().pinned_files, 1);
    assert.ok(existsSync(cache.pathOf(key)), 'still on disk while the second query reads it');
    second.release();
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual([cache.stats().pinned_files, cache.stats().files, existsSync(cache.pathOf(key))], [0, 0, false]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
