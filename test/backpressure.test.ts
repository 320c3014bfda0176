/**
 * Backpressure on a real process: with a tiny byte bound, writes are refused with 429
 * while buffers are full and 503 while the storage backend fails, both with
 * Retry-After and without taking the data; once the backend recovers every
 * acknowledged record is stored exactly once.
 *
 * The backend is blocked without mocking: a regular file stands where the data's hour
 * partition directory must be created, so putting a Parquet file there fails.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { removeDir, TestServer, waitFor } from './harness.js';

interface Stats {
  stats: { bytes_held: number; backpressure: string; writes_refused: number };
}

test('429 when buffers are full, 503 while storage fails, then every acknowledged record lands', async () => {
  const server = await TestServer.start({
    STRATA_BUFFER_MAX_BYTES: '20000', STRATA_BUFFER_MAX_RECORDS: '1000000', STRATA_BUFFER_MAX_AGE_MS: '3600000',
  });
  // 2026-01-01T00 UTC: the hour partition the records go to, replaced by a file.
  const hourDir = join(server.dataDir, 'bp', 'load', '2026', '01', '01', '00');
  mkdirSync(join(hourDir, '..'), { recursive: true });
  writeFileSync(hourDir, 'not a directory');
  try {
    const acked: number[] = [];
    let nextId = 0;
    const write = async (): Promise<Response> => {
      const ids = Array.from({ length: 100 }, () => nextId++);
      const res = await server.writeLines(ids.map((id) => `load,host=h${id % 3} id=${id}i ${1767225600 + id}`).join('\n'), 'db=bp&precision=s');
      if (res.status === 204) acked.push(...ids);
      return res;
    };

    let refused: Response | undefined;
    for (let i = 0; i < 100 && refused === undefined; i++) {
      const res = await write();
      if (res.status !== 204) refused = res;
    }
    assert.ok(refused !== undefined, 'the byte bound was never reached');
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.match(((await refused.json()) as { error: string }).error, /write buffers full/);
    assert.ok(acked.length > 0);

    // The flush fails on the blocked partition; the records are kept for retry.
    const flush = await server.post('/api/v1/write/flush', '');
    assert.equal(flush.status, 503);
    const failing = await write();
    assert.equal(failing.status, 503);
    assert.equal(failing.headers.get('retry-after'), '5');
    const stats = await (await fetch(`${server.url}/api/v1/write/stats`)).json() as Stats;
    assert.equal(stats.stats.backpressure, 'storage_failing');
    assert.equal(stats.stats.writes_refused, 2);
    // Refusals are warnings; the failing flush itself is an error. The server's log reaches
    // this process through a pipe, possibly after the response: wait for both lines.
    const refusals = (): number => server.logLines().filter((l) => /write buffers full|storage is failing/.test(l.msg)).length;
    await waitFor(() => refusals() >= 2, 5000);
    assert.deepEqual(server.logLines().filter((l) => /write buffers full|storage is failing/.test(l.msg)).map((l) => l.level), [40, 40]);
    assert.ok(server.logLines().some((l) => l.level === 50), 'the failed flush is logged as an error');

    rmSync(hourDir);
    await server.flush();
    assert.equal((await write()).status, 204, 'writes are taken again once the backend recovers');
    await server.flush();
    const rows = await server.rows('SELECT count(*), count(DISTINCT id), min(id), max(id) FROM load', 'bp');
    assert.deepEqual(rows, [[acked.length, acked.length, 0, acked[acked.length - 1]]]);
    const after = await (await fetch(`${server.url}/api/v1/write/stats`)).json() as Stats;
    assert.equal(after.stats.bytes_held, 0);
    assert.equal(after.stats.backpressure, 'ok');
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
  }
});
