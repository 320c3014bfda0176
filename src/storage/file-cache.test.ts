import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../../test/harness.js';
import { FileCache, type Fetcher } from './file-cache.js';

/** Runs `fn` with a new temporary directory, removed afterwards. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-file-cache-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a copy wiped from disk while one query holds it: a second query re-downloads it and keeps its pin when the first releases', async () => {
  await inTempDir(async (dir) => {
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
  });
});

test('a query that fails after some of its downloads (a deadline, another file failing) leaves the cache within its bound', async () => {
  await inTempDir(async (dir) => {
    const cache = new FileCache(dir, 10);
    await cache.init();
    const [done, failing] = ['db/m/2026/01/01/00/m_1.parquet', 'db/m/2026/01/01/01/m_1.parquet'];
    const fetch: Fetcher = async (key, destination) => {
      if (key === failing) {
        // After the other file is in place.
        assert.ok(await waitFor(() => cache.stats().files === 1, 5000));
        throw new Error('S3 download failed');
      }
      await writeFile(destination, 'forty bytes of a Parquet file, past ten.');
    };
    await assert.rejects(cache.open([done, failing], false, fetch), /S3 download failed/);
    assert.ok(await waitFor(() => cache.stats().files === 0, 5000), JSON.stringify(cache.stats()));
    assert.equal(cache.stats().bytes, 0);
    assert.ok(await waitFor(() => !existsSync(cache.pathOf(done)), 5000), 'the evicted copy is deleted');
  });
});

test('a download several queries wait for runs on while one still waits, and is stopped, nothing kept, once none does', async () => {
  await inTempDir(async (dir) => {
    const cache = new FileCache(dir, 1 << 30);
    await cache.init();
    const [shared, left] = ['db/m/2026/01/01/00/m_1.parquet', 'db/m/2026/01/01/01/m_1.parquet'];
    // Each fetch writes part of its file, then waits to be finished or stopped.
    const fetches: { key: string; signal: AbortSignal | undefined; finish: () => void }[] = [];
    const fetch: Fetcher = (key, destination, signal) => new Promise<void>((resolve, reject) => {
      void writeFile(destination, 'part of the bytes').then(() => {
        fetches.push({ key, signal, finish: () => void writeFile(destination, `bytes of ${key}`).then(resolve, reject) });
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    });
    const fetched = async (n: number): Promise<void> => assert.ok(await waitFor(() => fetches.length === n, 5000), `${fetches.length} fetches`);

    // Two queries want `shared`: the first leaves, the second still gets the file.
    const [first, second] = [new AbortController(), new AbortController()];
    const leaving = cache.open([shared], false, fetch, first.signal);
    const staying = cache.open([shared], false, fetch, second.signal);
    await fetched(1);
    first.abort(new Error('first query gone'));
    await assert.rejects(leaving, /first query gone/);
    assert.equal(fetches[0].signal?.aborted, false, 'not stopped while a query waits for it');
    fetches[0].finish();
    const files = await staying;
    assert.equal(readFileSync(files.paths[0], 'utf8'), `bytes of ${shared}`);
    assert.deepEqual([cache.stats().files, cache.stats().pinned_files], [1, 1]);
    files.release();

    // The only query that wants `left` leaves: its download is stopped, its partial file deleted.
    const only = new AbortController();
    const abandoned = cache.open([left], false, fetch, only.signal);
    await fetched(2);
    only.abort(new Error('only query gone'));
    await assert.rejects(abandoned, /only query gone/);
    assert.equal(fetches[1].signal?.aborted, true, 'stopped once no query waits for it');
    assert.ok(await waitFor(() => readdirSync(cache.partDir).length === 0, 5000), 'no partial file left');
    assert.deepEqual([cache.stats().files, cache.stats().pinned_files, existsSync(cache.pathOf(left))], [1, 0, false]);

    // A query wanting it afterwards starts a download of its own.
    const later = cache.open([left], false, fetch);
    await fetched(3);
    assert.equal(fetches[2].signal?.aborted, false);
    fetches[2].finish();
    const again = await later;
    assert.equal(readFileSync(again.paths[0], 'utf8'), `bytes of ${left}`);
    again.release();
  });
});

test('start-up drops cached copies a crash left damaged (empty, cut short, not ending in PAR1) and keeps whole ones: a query downloads those again', async () => {
  await inTempDir(async (dir) => {
    const whole = Buffer.concat([Buffer.from('PAR1'), Buffer.alloc(20, 7), Buffer.from([20, 0, 0, 0]), Buffer.from('PAR1')]);
    const copies: Record<string, Buffer> = {
      'db/m/2026/01/01/00/whole.parquet': whole,
      'db/m/2026/01/01/01/empty.parquet': Buffer.alloc(0),
      'db/m/2026/01/01/02/short.parquet': whole.subarray(0, 10),
      'db/m/2026/01/01/03/cut.parquet': whole.subarray(0, whole.length - 2),
    };
    for (const [key, bytes] of Object.entries(copies)) {
      const path = join(dir, ...key.split('/'));
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, bytes);
    }
    const cache = new FileCache(dir, 1 << 30);
    await cache.init();
    assert.deepEqual([cache.stats().files, cache.stats().bytes], [1, whole.length]);
    for (const key of Object.keys(copies).slice(1)) assert.equal(existsSync(cache.pathOf(key)), false, key);
    const fetched: string[] = [];
    const fetch = async (key: string, destination: string): Promise<void> => {
      fetched.push(key);
      await writeFile(destination, whole);
    };
    const local = await cache.open(Object.keys(copies), false, fetch);
    local.release();
    assert.deepEqual(fetched.sort(), Object.keys(copies).slice(1).sort());
    for (const key of Object.keys(copies)) assert.ok(readFileSync(cache.pathOf(key)).equals(whole), key);
  });
});

test('an evicted copy takes its emptied directories with it, up to the cache directory; one still holding a copy stays; a later copy makes them again', async () => {
  await inTempDir(async (dir) => {
    // A bound of 0: anything not pinned is evicted at once.
    const cache = new FileCache(dir, 0);
    await cache.init();
    const fetch = (_key: string, destination: string): Promise<void> => writeFile(destination, 'parquet bytes');
    const early = 'db/m/2026/01/01/00/m_1.parquet';
    const late = 'db/m/2026/01/01/01/m_2.parquet';
    const held = await cache.open([late], false, fetch);
    (await cache.open([early], false, fetch)).release();
    assert.ok(await waitFor(() => !existsSync(join(dir, 'db/m/2026/01/01/00')), 5000), 'the evicted copy\'s hour directory is gone');
    assert.ok(existsSync(cache.pathOf(late)), 'the hour still holding a pinned copy stays');
    held.release();
    assert.ok(await waitFor(() => !existsSync(join(dir, 'db')), 5000), readdirSync(dir, { recursive: true }).join(', '));
    assert.ok(existsSync(cache.partDir), 'the cache directory and its scratch directory stay');
    // A copy of a key whose directories are gone is placed as before.
    const again = await cache.open([early], false, fetch);
    assert.equal(readFileSync(cache.pathOf(early), 'utf8'), 'parquet bytes');
    again.release();
  });
});

test('copies placed while evictions empty and remove their parent directories: every one placed (a recursive mkdir racing a removal failed with ENOENT or ENOTDIR)', async () => {
  await inTempDir(async (dir) => {
    // A bound of one byte: each new copy evicts the one before, removing its emptied directories.
    const cache = new FileCache(dir, 1);
    await cache.init();
    const fetch = (_key: string, destination: string): Promise<void> => writeFile(destination, 'PAR1xxxxxxxxPAR1');
    const failures: string[] = [];
    for (let round = 0; round < 300; round++) {
      await Promise.all(Array.from({ length: 8 }, async (_, i) => {
        const key = `db/m/2026/0${1 + (i % 4)}/${String((round % 28) + 1).padStart(2, '0')}/${String(i).padStart(2, '0')}/f${round}_${i}.parquet`;
        try {
          (await cache.open([key], false, fetch)).release();
        } catch (err) {
          failures.push((err as Error).message);
        }
      }));
    }
    assert.deepEqual(failures, []);
  });
});

test('a cached copy of another size than listed (the object was replaced) is fetched again, also while a query still holds the old one', async () => {
  await inTempDir(async (dir) => {
    const cache = new FileCache(dir, 1 << 20);
    await cache.init();
    const key = 'db/m/2026/01/01/00/m_1.parquet';
    let body = 'PAR1 old PAR1';
    const fetch: Fetcher = (_key, destination) => writeFile(destination, body);
    const sizes = (n: number): Map<string, number> => new Map([[key, n]]);
    const old = await cache.open([key], false, fetch, undefined, sizes(body.length));
    (await cache.open([key], false, fetch, undefined, sizes(body.length))).release();
    assert.deepEqual([cache.stats().misses, cache.stats().hits], [1, 1]);
    body = 'PAR1 replaced, longer PAR1';
    const fresh = await cache.open([key], false, fetch, undefined, sizes(body.length));
    assert.equal(cache.stats().misses, 2, 'fetched again');
    assert.equal(readFileSync(fresh.paths[0], 'utf8'), body);
    old.release();
    fresh.release();
    assert.deepEqual([cache.stats().files, cache.stats().bytes], [1, body.length], 'the old copy is no longer counted');
  });
});

test('files at keys outside the storage layout (a cache directory set to one holding other things) are never indexed, evicted or deleted, damaged or not', async () => {
  await inTempDir(async (dir) => {
    const whole = Buffer.concat([Buffer.from('PAR1'), Buffer.alloc(20, 7), Buffer.from([20, 0, 0, 0]), Buffer.from('PAR1')]);
    const theirs: Record<string, Buffer> = {
      'notes.json': Buffer.from('{}'),
      'reports/2025/sales.parquet': whole,
      'reports/2025/partial.parquet': Buffer.alloc(100, 1),
      'db/m/2026/01/01/00/x/deeper.parquet': whole,
    };
    const ours = 'db/m/2026/01/01/00/cached.parquet';
    for (const [key, bytes] of Object.entries({ ...theirs, [ours]: whole })) {
      const path = join(dir, ...key.split('/'));
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, bytes);
    }
    // A bound of one byte: everything the cache took as its own is evicted.
    const cache = new FileCache(dir, 1);
    await cache.init();
    assert.equal(existsSync(join(dir, ...ours.split('/'))), false, 'the layout copy was evicted');
    for (const [key, bytes] of Object.entries(theirs)) assert.ok(readFileSync(join(dir, ...key.split('/'))).equals(bytes), key);
  });
});

test('a Strata data directory (it holds a .node-id) is refused as the cache directory, its Parquet files left as they are', async () => {
  await inTempDir(async (dir) => {
    const key = 'db/m/2026/01/01/00/stored.parquet';
    await mkdir(dirname(join(dir, ...key.split('/'))), { recursive: true });
    await writeFile(join(dir, ...key.split('/')), Buffer.from('PAR1 stored data PAR1'));
    await writeFile(join(dir, '.node-id'), 'abc123\n');
    await assert.rejects(new FileCache(dir, 1).init(), (err: Error) => {
      assert.equal(err.message, `invalid configuration STRATA_CACHE_DIR (${dir}): is a Strata data directory (it holds a .node-id): its Parquet files would be taken for cached copies and evicted; give the cache a directory of its own`);
      return true;
    });
    assert.ok(existsSync(join(dir, ...key.split('/'))));
  });
});
