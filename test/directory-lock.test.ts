/**
 * One server per directory (`src/storage/directory-lock.ts`), on real processes: a second
 * server on a data directory (or WAL or S3 cache directory) a live one uses exits 1 in one line naming
 * the setting and the directory, touching nothing, so no record is stored twice; the lock
 * dies with its holder (SIGKILL) or a clean stop, and a restart starts at once.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { removeDir, tempDir, TestServer } from './harness.js';
import { S3TestServer } from './s3-harness.js';

/** Records stay buffered (and in the WAL) until a flush call or SIGTERM. */
const ENV = { STRATA_BUFFER_MAX_AGE_MS: '3600000' };

/** Per test: every wait in this file is bounded. */
const BOUND = { timeout: 30_000 };

/**
 * Starts a server with `env` on `dataDir` that must be refused: resolves to its
 * `strata: failed to start:` line, asserting it exited 1 before listening, without a stack.
 * One that starts anyway is killed (SIGKILL: a clean stop would flush the records it replayed).
 */
async function refusal(env: Record<string, string>, dataDir: string): Promise<string> {
  const err = await TestServer.start(env, dataDir).then(async (s) => {
    await s.stop('SIGKILL');
    return undefined;
  }, (e: unknown) => e as Error);
  assert.ok(err !== undefined, 'the second server started');
  assert.match(err.message, /^server exited with 1 before listening:/);
  assert.ok(!/\n\s+at /.test(err.message), err.message);
  const line = err.message.split('\n').find((l) => l.startsWith('strata: failed to start: '));
  assert.ok(line !== undefined, err.message);
  return line;
}

/** The expected refusal of a directory another server holds. */
function inUse(setting: string, dir: string): string {
  return `strata: failed to start: ${setting} (${dir}) is in use by another Strata server on this machine; stop it, or give this server a directory of its own`;
}

/** Every file and directory under `dir` with its size and modification time, to show nothing changed. */
function listing(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort().map((f) => {
    const s = statSync(join(dir, f));
    return `${f} ${s.size} ${s.mtimeMs}`;
  });
}

/** Writes one record of measurement `m` (second precision) to `server`, asserting 204. */
async function writeOne(server: TestServer, m: string, v: number): Promise<void> {
  assert.equal((await server.writeLines(`${m} v=${v}i ${1767225600 + v}`, 'db=default&precision=s')).status, 204);
}

test('a second server on the data directory of a live one exits 1 naming STRATA_DATA_DIR; the first keeps every record once', BOUND, async () => {
  const first = await TestServer.start(ENV);
  try {
    await writeOne(first, 'shared', 1);
    const before = listing(first.dataDir);
    assert.equal(await refusal(ENV, first.dataDir), inUse('STRATA_DATA_DIR', first.dataDir));
    assert.deepEqual(listing(first.dataDir), before, 'the refused server touched the data directory');
    await writeOne(first, 'shared', 2);
    await first.flush();
    assert.deepEqual(await first.rows('SELECT v, count(*) FROM shared GROUP BY v ORDER BY v'), [[1, 1], [2, 1]]);
  } finally {
    assert.equal(await first.stop(), 0);
    removeDir(first.dataDir);
  }
});

test('the data directory through a symlink is the same directory: refused', BOUND, async () => {
  const first = await TestServer.start(ENV);
  const links = tempDir();
  try {
    await writeOne(first, 'linked', 1);
    const link = join(links, 'data');
    symlinkSync(first.dataDir, link);
    assert.equal(await refusal(ENV, link), inUse('STRATA_DATA_DIR', link));
    await first.flush();
    assert.deepEqual(await first.rows('SELECT v, count(*) FROM linked GROUP BY v'), [[1, 1]]);
  } finally {
    assert.equal(await first.stop(), 0);
    removeDir(first.dataDir);
    removeDir(links);
  }
});

// SIGKILL leaves the record in the log alone, for the new server to replay; SIGTERM flushes it.
for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  test(`after the holder ends by ${signal} a new server starts on its directory at once, the record there once`, BOUND, async () => {
    const first = await TestServer.start(ENV);
    try {
      await writeOne(first, 'restarted', 1);
      assert.equal(await first.stop(signal), signal === 'SIGTERM' ? 0 : null);
      const second = await TestServer.start(ENV, first.dataDir);
      try {
        await second.flush();
        assert.deepEqual(await second.rows('SELECT v, count(*) FROM restarted GROUP BY v'), [[1, 1]]);
      } finally {
        assert.equal(await second.stop(), 0);
      }
    } finally {
      removeDir(first.dataDir);
    }
  });
}

test('a WAL directory outside the data directory, in use by a server on another data directory: refused naming STRATA_WAL_DIR', BOUND, async () => {
  const walRoot = tempDir();
  const wal = join(walRoot, 'wal');
  const env = { ...ENV, STRATA_WAL_DIR: wal };
  const first = await TestServer.start(env);
  const otherData = tempDir();
  try {
    await writeOne(first, 'walshared', 1);
    const before = listing(wal);
    assert.equal(await refusal(env, otherData), inUse('STRATA_WAL_DIR', wal));
    assert.deepEqual(listing(wal), before, 'the refused server touched the WAL directory');
    assert.deepEqual(readdirSync(otherData), [], 'the refused server wrote to its own data directory');
    await first.flush();
    assert.deepEqual(await first.rows('SELECT v, count(*) FROM walshared GROUP BY v'), [[1, 1]]);
  } finally {
    assert.equal(await first.stop(), 0);
    removeDir(first.dataDir);
    removeDir(otherData);
    removeDir(walRoot);
  }
});

test('the WAL directory of another server, its default one in its data directory, is refused as STRATA_WAL_DIR', BOUND, async () => {
  // The first server's log is in its data directory (the default); the second names it as its own.
  const first = await TestServer.start(ENV);
  const otherData = tempDir();
  try {
    const wal = join(first.dataDir, '.wal');
    assert.equal(await refusal({ ...ENV, STRATA_WAL_DIR: wal }, otherData), inUse('STRATA_WAL_DIR', wal));
    assert.deepEqual(readdirSync(otherData), []);
  } finally {
    assert.equal(await first.stop(), 0);
    removeDir(first.dataDir);
    removeDir(otherData);
  }
});

test('the S3 cache directory of a live server, named by another on its own data directory, is refused as STRATA_CACHE_DIR', BOUND, async () => {
  const s3 = await S3TestServer.start();
  const cacheRoot = tempDir();
  const cache = join(cacheRoot, 'cache');
  const env = s3.env({ ...ENV, STRATA_CACHE_DIR: cache });
  const first = await TestServer.start(env);
  const otherData = tempDir();
  try {
    await writeOne(first, 'cacheshared', 1);
    await first.flush();
    const before = listing(cache);
    assert.equal(await refusal(env, otherData), inUse('STRATA_CACHE_DIR', cache));
    assert.deepEqual(listing(cache), before, 'the refused server touched the cache directory');
    assert.deepEqual(await first.rows('SELECT v, count(*) FROM cacheshared GROUP BY v'), [[1, 1]]);
  } finally {
    assert.equal(await first.stop(), 0);
    removeDir(first.dataDir);
    removeDir(otherData);
    removeDir(cacheRoot);
    await s3.destroy();
  }
});
