/**
 * The S3 backend when S3 misbehaves, and several nodes on one bucket, against real
 * s3rver and Strata processes: the S3 server is killed while a client writes and
 * restarted over the same directory, after which every acknowledged record is
 * queryable exactly once; two Strata processes sharing a bucket each see the other's
 * rows once their listing cache (STRATA_S3_LIST_TTL_MS) has expired.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { removeDir, sleep, TestServer } from './harness.js';
import { S3TestServer } from './s3-harness.js';

interface Health {
  ok: boolean;
  last_error: string | null;
}

async function health(server: TestServer): Promise<Health> {
  return ((await (await fetch(`${server.url}/api/v1/storage/stats`)).json()) as { stats: { health: Health } }).stats.health;
}

test('S3 outage while a client writes: every acknowledged record is queryable after S3 returns', async () => {
  const s3 = await S3TestServer.start();
  const server = await TestServer.start(s3.env({
    STRATA_BUFFER_MAX_AGE_MS: '200', STRATA_S3_MAX_ATTEMPTS: '2', STRATA_S3_REQUEST_TIMEOUT_MS: '2000',
  }));
  try {
    const acknowledged: number[] = [];
    const refused: number[] = [];
    let id = 0;
    const writeBatch = async (): Promise<void> => {
      const ids = Array.from({ length: 25 }, () => id++);
      const lines = ids.map((i) => `outage,host=h${i % 4} id=${i}i ${1700000000000 + i * 60_000}`).join('\n');
      const res = await server.writeLines(lines, 'db=out&precision=ms');
      await res.arrayBuffer();
      (res.status === 204 ? acknowledged : refused).push(...ids);
    };

    for (let i = 0; i < 10; i++) {
      await writeBatch();
      await sleep(40);
    }
    await s3.stop('SIGKILL');
    // Keep writing while S3 is down: age flushes fail and are retried.
    for (let i = 0; i < 20; i++) {
      await writeBatch();
      await sleep(40);
    }
    const down = await health(server);
    assert.equal(down.ok, false, 'storage reported failing');
    assert.ok(down.last_error !== null && down.last_error.length > 0);
    const flushDuringOutage = await server.post('/api/v1/write/flush', '');
    assert.equal(flushDuringOutage.status, 503, 'a flush that cannot reach S3 says so');
    await flushDuringOutage.arrayBuffer();

    await s3.restart();
    for (let i = 0; i < 10; i++) {
      await writeBatch();
      await sleep(40);
    }
    // The held snapshots are retried; a flush succeeds once S3 answers again.
    let flushed = false;
    for (let attempt = 0; attempt < 40 && !flushed; attempt++) {
      const res = await server.post('/api/v1/write/flush', '');
      await res.arrayBuffer();
      flushed = res.status === 200;
      if (!flushed) await sleep(250);
    }
    assert.ok(flushed, 'flush succeeded after S3 came back');
    assert.equal((await health(server)).ok, true, 'storage healthy again');

    assert.ok(acknowledged.length >= 750, `acknowledged ${acknowledged.length}, refused ${refused.length}`);
    const rows = await server.rows('SELECT id FROM outage ORDER BY id', 'out');
    const stored = rows.map((r) => Number(r[0]));
    const ackSet = new Set(acknowledged);
    assert.equal(new Set(stored).size, stored.length, 'no record stored twice');
    for (const i of acknowledged) assert.ok(stored.includes(i), `acknowledged record ${i} is queryable`);
    for (const i of stored) assert.ok(ackSet.has(i) || refused.includes(i), `stored record ${i} was sent`);
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
    await s3.destroy();
  }
});

test('two Strata processes on one bucket: a query on either returns both sets after the listing refresh', async () => {
  const s3 = await S3TestServer.start();
  const ttlMs = 1000;
  const a = await TestServer.start(s3.env({ STRATA_NODE_ID: 'nodea', STRATA_S3_LIST_TTL_MS: String(ttlMs) }));
  const b = await TestServer.start(s3.env({ STRATA_NODE_ID: 'nodeb', STRATA_S3_LIST_TTL_MS: String(ttlMs) }));
  try {
    const lines = (node: string, from: number) =>
      Array.from({ length: 50 }, (_, i) => `shared,node=${node} v=${from + i}i ${1700000000 + from + i}`).join('\n');
    assert.equal((await a.writeLines(lines('a', 0), 'db=multi&precision=s')).status, 204);
    await a.flush();
    // B lists (and caches) the measurement before writing its own rows.
    assert.deepEqual(await b.rows('SELECT node, count(*) FROM shared GROUP BY node', 'multi'), [['a', 50]]);
    assert.equal((await b.writeLines(lines('b', 1000), 'db=multi&precision=s')).status, 204);
    await b.flush();
    // B's own write is visible to B at once.
    assert.deepEqual(await b.rows('SELECT node, count(*) FROM shared GROUP BY node ORDER BY node', 'multi'), [['a', 50], ['b', 50]]);

    const expected = [['a', 50, 1225], ['b', 50, 51225]];
    const sql = 'SELECT node, count(*), sum(v) FROM shared GROUP BY node ORDER BY node';
    const flushedAt = Date.now();
    for (const node of [a, b]) {
      let rows = await node.rows(sql, 'multi');
      while (JSON.stringify(rows) !== JSON.stringify(expected) && Date.now() - flushedAt < ttlMs + 3000) {
        await sleep(100);
        rows = await node.rows(sql, 'multi');
      }
      assert.deepEqual(rows, expected);
    }
    assert.ok(Date.now() - flushedAt < ttlMs + 3000, 'visible within the listing TTL');
    // Files of both nodes, told apart by their node ids.
    const tables = await a.rows('SHOW TABLES', 'multi');
    assert.equal(tables[0][3], 2, "one file per node, in the same hour partition");
  } finally {
    assert.equal(await a.stop(), 0);
    assert.equal(await b.stop(), 0);
    removeDir(a.dataDir);
    removeDir(b.dataDir);
    await s3.destroy();
  }
});

test('a write refused because the stored schema cannot be loaded (S3 down) is not replayed from the WAL after a crash', async () => {
  const s3 = await S3TestServer.start();
  let server = await TestServer.start(s3.env({ STRATA_S3_MAX_ATTEMPTS: '1', STRATA_S3_REQUEST_TIMEOUT_MS: '1000' }));
  try {
    await s3.stop('SIGKILL');
    // `fresh` was never seen by this process: its schema must be read from the bucket first.
    const refused = await server.writeLines('fresh,host=a v=1i 1700000000', 'db=schemaless&precision=s');
    assert.equal(refused.status, 503, await refused.text());
    await s3.restart();
    await server.stop('SIGKILL');
    server = await TestServer.start(s3.env({}), server.dataDir);
    assert.deepEqual(await server.rows('SELECT count(*) FROM fresh', 'schemaless'), [], 'nothing of the refused write');
    assert.equal((await server.writeLines('fresh,host=b v=2i 1700000001', 'db=schemaless&precision=s')).status, 204);
    assert.deepEqual(await server.rows('SELECT host, v FROM fresh', 'schemaless'), [['b', 2]]);
  } finally {
    await server.stop();
    removeDir(server.dataDir);
    await s3.destroy();
  }
});

test('S3 down while a pruned query reads the schemas of the hours it leaves out: 503, not 500', async () => {
  const s3 = await S3TestServer.start();
  const env = s3.env({ STRATA_S3_LIST_TTL_MS: '600000', STRATA_S3_MAX_ATTEMPTS: '1', STRATA_S3_REQUEST_TIMEOUT_MS: '1000' });
  let server = await TestServer.start(env);
  try {
    const t0 = 1767225600;
    assert.equal((await server.writeLines(`pruned v=1i ${t0}\npruned v=2i ${t0 + 5 * 3600}`, 'db=down&precision=s')).status, 204);
    await server.flush();
    // A new process with an empty cache: no file is local, no schema known.
    assert.equal(await server.stop(), 0);
    rmSync(join(server.dataDir, '.cache'), { recursive: true, force: true });
    server = await TestServer.start(env, server.dataDir);
    // Lists the measurement (cached for the TTL) without reading any file.
    assert.deepEqual((await server.rows('SHOW TABLES', 'down')).map((r) => [r[1], r[3]]), [['pruned', 2]]);
    await s3.stop('SIGKILL');
    const r = await server.query(`SELECT v FROM pruned WHERE time >= to_timestamp(${t0 + 5 * 3600})`, 'down');
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.match(r.body.error!, /^S3 download .* failed/);
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
    await s3.destroy();
  }
});
