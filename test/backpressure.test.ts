/**
 * Backpressure on a real process: with a tiny byte bound, writes are refused with 503
 * and Retry-After while the storage backend fails, without taking the data, and once
 * the backend recovers every acknowledged record is stored exactly once; with a working
 * backend, buffers that fill the bound below their record count are flushed for their
 * size, so a client retrying as told is never held off until their age comes due. (The
 * 429 of a bound reached while a flush is under way is in `s3-outage.test.ts`: a paused
 * S3 holds the flush.)
 *
 * The backend is blocked without mocking: a regular file stands where the data's hour
 * partition directory must be created, so putting a Parquet file there fails.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { idWriter, removeDir, sleep, TestServer, waitFor } from './harness.js';

interface Stats {
  stats: { bytes_held: number; backpressure: string; writes_refused: number; flushes: number; flush_errors: number };
}

async function stats(server: TestServer): Promise<Stats['stats']> {
  return ((await (await fetch(`${server.url}/api/v1/write/stats`)).json()) as Stats).stats;
}

test('503 while storage fails, then every acknowledged record lands', async () => {
  const server = await TestServer.start({
    STRATA_BUFFER_MAX_BYTES: '20000', STRATA_BUFFER_MAX_RECORDS: '1000000', STRATA_BUFFER_MAX_AGE_MS: '3600000',
  });
  // 2026-01-01T00 UTC: the hour partition the records go to, replaced by a file.
  const hourDir = join(server.dataDir, 'bp', 'load', '2026', '01', '01', '00');
  mkdirSync(join(hourDir, '..'), { recursive: true });
  writeFileSync(hourDir, 'not a directory');
  try {
    const { write, acked } = idWriter(server, 'load', 'bp');

    // Half the bound starts a flush, which fails on the blocked partition; the records
    // are kept for retry, and writes go on until the bound. Until that flush has failed,
    // the bound may be reached with it under way: 429, as for any flush under way (or 503
    // when it failed between the stats read and the write, on a loaded machine).
    let early = 0;
    let early503 = 0;
    while ((await stats(server)).flush_errors === 0) {
      const res = await write();
      if (res.status !== 204) {
        assert.ok(res.status === 429 || res.status === 503, `${res.status} ${await res.text()}`);
        early++;
        if (res.status === 503) early503++;
        await sleep(20);
      }
    }
    let refused: Response | undefined;
    for (let i = 0; i < 100 && refused === undefined; i++) {
      const res = await write();
      if (res.status !== 204) refused = res;
    }
    assert.ok(refused !== undefined, 'the byte bound was never reached');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '5');
    assert.match(((await refused.json()) as { error: string }).error, /storage is failing/);
    assert.ok(acked.length > 0);

    const flush = await server.post('/api/v1/write/flush', '');
    assert.equal(flush.status, 503);
    const failing = await write();
    assert.equal(failing.status, 503);
    assert.equal(failing.headers.get('retry-after'), '5');
    const during = await stats(server);
    assert.equal(during.backpressure, 'storage_failing');
    assert.equal(during.writes_refused, early + 2);
    // Refusals are warnings: the first, then one line a second counting the others; the failing
    // flush itself is an error. The server's log reaches this process through a pipe, possibly
    // after the response: wait for every line.
    const lines = (): { level: number; suppressed?: number }[] => server.logLines().filter((l) => /storage is failing/.test(l.msg));
    const refusals = (): number => lines().reduce((n, l) => n + (l.suppressed ?? 1), 0);
    const expected = early503 + 2;
    await waitFor(() => refusals() >= expected, 5000);
    assert.equal(refusals(), expected, JSON.stringify(lines()));
    assert.ok(lines().every((l) => l.level === 40));
    assert.ok(server.logLines().some((l) => l.level === 50), 'the failed flush is logged as an error');

    rmSync(hourDir);
    // The failed flush is retried after a random backoff: a retry that began before the way was
    // clear fails once more, and a flush waiting for it says so.
    if ((await server.post('/api/v1/write/flush', '')).status === 503) await server.flush();
    assert.equal((await write()).status, 204, 'writes are taken again once the backend recovers');
    await server.flush();
    const rows = await server.rows('SELECT count(*), count(DISTINCT id), min(id), max(id) FROM load', 'bp');
    assert.deepEqual(rows, [[acked.length, acked.length, 0, acked[acked.length - 1]]]);
    const after = await stats(server);
    assert.equal(after.bytes_held, 0);
    assert.equal(after.backpressure, 'ok');
    assert.equal(await server.stop(), 0);
  } finally {
    // Not asserted here: with the partition still blocked (an assertion above failed), the
    // final flush fails and the exit code is 1, which would hide that assertion's message.
    await server.stop();
    removeDir(server.dataDir);
  }
});

test('buffers filling the bound below STRATA_BUFFER_MAX_RECORDS are flushed for their size, not held until their age', async () => {
  const server = await TestServer.start({
    STRATA_BUFFER_MAX_BYTES: '200000', STRATA_BUFFER_MAX_RECORDS: '1000000', STRATA_BUFFER_MAX_AGE_MS: '3600000',
  });
  try {
    // 40 bodies of 1,000 records, ~21 KB held each: four times the bound, in two measurements.
    const deadline = performance.now() + 20_000;
    let refusals = 0;
    for (let body = 0; body < 40; body++) {
      const lines = Array.from({ length: 1000 }, (_, i) => `${body % 2 === 0 ? 'even' : 'odd'},host=h${i % 7} id=${body * 1000 + i}i ${1767225600 + body * 1000 + i}`);
      for (;;) {
        const res = await server.writeLines(lines.join('\n'), 'db=size&precision=s');
        if (res.status === 204) break;
        assert.equal(res.status, 429, await res.text());
        assert.equal(res.headers.get('retry-after'), '1');
        refusals++;
        assert.ok(performance.now() < deadline, `body ${body} still refused after ${refusals} tries: no flush frees the bound`);
        await sleep(100);
      }
    }
    assert.ok((await stats(server)).flushes >= 2);
    await server.flush();
    const rows = await server.rows('SELECT count(*), count(DISTINCT id), min(id), max(id) FROM (SELECT id FROM even UNION ALL SELECT id FROM odd)', 'size');
    assert.deepEqual(rows, [[40_000, 40_000, 0, 39_999]]);
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
  }
});
