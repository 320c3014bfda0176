/**
 * The S3 backend end to end, against a real S3 server process (s3rver): records
 * written over HTTP, flushed to the bucket in the storage layout, read back with SQL;
 * the local Parquet cache (write-through, read-through after a wipe, LRU eviction
 * under a small bound, rebuilt after a restart); footers of files a query does not scan
 * read by ranged GETs, not downloaded; the start-up bucket check.
 */
import assert from 'node:assert/strict';
import { lstatSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { crashCycles } from './crash-load.js';
import { inspector, removeDir, tempDir, TestServer, waitFor, type QueryBody } from './harness.js';
import { S3TestServer } from './s3-harness.js';
import { S3Proxy } from './s3-proxy.js';

let s3: S3TestServer;
let client: S3Client;

before(async () => {
  s3 = await S3TestServer.start();
  client = new S3Client({
    endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
});
after(async () => {
  client.destroy();
  await s3.destroy();
});

/** Keys in the bucket under `prefix`. */
async function bucketKeys(prefix: string): Promise<string[]> {
  return (await bucketObjects(prefix)).map((o) => o.key);
}

/** Objects in the bucket under `prefix`, with their sizes, in key order. */
async function bucketObjects(prefix: string): Promise<{ key: string; size: number }[]> {
  const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((o) => ({ key: o.Key!, size: o.Size! })).sort((a, b) => (a.key < b.key ? -1 : 1));
}

/** Bytes of the object `key`. */
async function objectBytes(key: string): Promise<Buffer> {
  return Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))).Body!.transformToByteArray());
}

/** Parquet files under `dir`, recursively, relative. */
function localParquet(dir: string): string[] {
  try {
    return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.parquet') && !f.startsWith('.')).sort();
  } catch {
    return [];
  }
}

interface StorageStatsBody {
  stats: {
    backend: string;
    health: { ok: boolean; last_error: string | null };
    cache: { bytes: number; max_bytes: number; files: number; pinned_files: number; hits: number; misses: number; evictions: number; downloaded_bytes: number; footer_reads: number };
  };
}

async function storageStats(server: TestServer): Promise<StorageStatsBody['stats']> {
  return ((await (await fetch(`${server.url}/api/v1/storage/stats`)).json()) as StorageStatsBody).stats;
}

const FILE = /^tenant\/(?<db>[^/]+)\/(?<m>[^/]+)\/(?<y>\d{4})\/(?<mo>\d{2})\/(?<d>\d{2})\/(?<h>\d{2})\/(?<m2>[^/]+)_\d{8}_\d{6}_(?<n>\d+)_(?<node>[0-9a-z]+)-[0-9a-z]+\.parquet$/;

describe('S3 backend', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start(s3.env({ STRATA_S3_PREFIX: 'tenant/', STRATA_NODE_ID: 'alpha' }));
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
  });

  test('write, flush and query: objects in the layout with the node id, rows read back exactly', async () => {
    const lines = [
      'cpu,host=b,dc=x usage=3,procs=7i,note="z" 1700003700',
      'cpu,host=a,dc=x usage=1,procs=5i 1700000000',
      'cpu,host=a,dc=y usage=2 1700000100',
      'cpu,host=z usage=5,ok=true -3600',
      'net\\ io,host=a bytes=9223372036854775807i 1700000000',
    ].join('\n');
    assert.equal((await server.writeLines(lines, 'db=s3db&precision=s')).status, 204);
    await server.flush();

    const keys = await bucketKeys('tenant/');
    const parsed = keys.map((k) => FILE.exec(k)?.groups);
    assert.equal(keys.length, 4, keys.join(', '));
    for (const g of parsed) {
      assert.ok(g, `layout: ${keys.join(', ')}`);
      assert.equal(g.db, 's3db');
      assert.equal(g.node, 'alpha');
    }
    assert.deepEqual(parsed.map((g) => `${g!.m}/${g!.y}-${g!.mo}-${g!.d}T${g!.h}/${g!.n}`), [
      'cpu/1969-12-31T23/1', 'cpu/2023-11-14T22/2', 'cpu/2023-11-14T23/1', 'net io/2023-11-14T22/1',
    ]);
    // Nothing of the data lands in the data directory outside the cache.
    assert.deepEqual(localParquet(server.dataDir), []);
    // Write-through: every uploaded file is in the cache, byte-identical.
    const cacheDir = join(server.dataDir, '.cache');
    assert.deepEqual(localParquet(cacheDir).map((f) => `tenant/${f}`), keys);
    const conn = await inspector();
    try {
      const body = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: keys[1] }));
      const fromBucket = join(tempDir(), 'f.parquet');
      await writeFile(fromBucket, await body.Body!.transformToByteArray());
      const read = async (p: string) => (await conn.runAndReadAll(`SELECT * FROM read_parquet('${p}') ORDER BY time`)).getRowsJS();
      assert.deepEqual(await read(fromBucket), await read(join(cacheDir, keys[1].slice('tenant/'.length))));
      removeDir(join(fromBucket, '..'));
    } finally {
      conn.closeSync();
    }

    assert.deepEqual(await server.rows('SELECT time, host, dc, usage, procs, note, ok FROM cpu ORDER BY time', 's3db'), [
      ['1969-12-31T23:00:00Z', 'z', null, 5, null, null, true],
      ['2023-11-14T22:13:20Z', 'a', 'x', 1, 5, null, null],
      ['2023-11-14T22:15:00Z', 'a', 'y', 2, null, null, null],
      ['2023-11-14T23:15:00Z', 'b', 'x', 3, 7, 'z', null],
    ]);
    assert.deepEqual(await server.rows('SELECT bytes::VARCHAR FROM "net io"', 's3db'), [['9223372036854775807']]);
    assert.deepEqual(await server.rows('SHOW DATABASES'), [['s3db']]);
    assert.deepEqual((await server.rows('SHOW TABLES', 's3db')).map((r) => [r[1], r[3]]), [['cpu', 3], ['net io', 1]]);

    const stats = await storageStats(server);
    assert.equal(stats.backend, 's3');
    assert.equal(stats.health.ok, true);
    assert.equal(stats.cache.files, 4);
    assert.equal(stats.cache.misses, 0, 'write-through: queries found every file cached');
    assert.ok(stats.cache.hits >= 4);
    const ready = (await (await fetch(`${server.url}/ready`)).json()) as { storage: { backend: string; ok: boolean } };
    assert.deepEqual([ready.storage.backend, ready.storage.ok], ['s3', true]);
  });

  test('a cache that cannot take an uploaded file: the flush succeeds, no staged file is left, the rows are read once it can', async () => {
    const cacheDir = join(server.dataDir, '.cache');
    // A regular file where the database's cache directory must go.
    const blocker = join(cacheDir, 'adoptdb');
    writeFileSync(blocker, 'not a directory');
    const before = await storageStats(server);
    try {
      const lines = 'blocked,host=a v=1 1700000000\nblocked,host=b v=2 1700003600';
      assert.equal((await server.writeLines(lines, 'db=adoptdb&precision=s')).status, 204);
      await server.flush();
      assert.equal((await bucketKeys('tenant/adoptdb/')).length, 2, 'each hour uploaded once');
      assert.deepEqual(readdirSync(join(cacheDir, '.part')), [], 'the staged files were removed');
      assert.equal((await storageStats(server)).cache.files, before.cache.files, 'nothing cached');
    } finally {
      // The suite's server runs on: later tests must not meet the blocker.
      rmSync(blocker, { force: true });
    }
    assert.deepEqual(await server.rows('SELECT host, v FROM blocked ORDER BY time', 'adoptdb'), [['a', 1], ['b', 2]]);
    assert.equal((await storageStats(server)).cache.misses - before.cache.misses, 2, 'read through the cache');
  });

  test('a cache directory that cannot take a download: 503 naming STRATA_CACHE_DIR and the error code, no host path, S3 still healthy; answered once it can', async () => {
    const cacheDir = join(server.dataDir, '.cache');
    assert.equal((await server.writeLines('faulty,host=a v=1 1700000000', 'db=faultdb&precision=s')).status, 204);
    await server.flush();
    // The cached copy wiped: a query downloads the file again, into the staging directory, then moved to the database's.
    const blockers = [join(cacheDir, '.part'), join(cacheDir, 'faultdb')];
    for (const blocker of blockers) {
      rmSync(blocker, { recursive: true, force: true });
      writeFileSync(blocker, 'not a directory');
    }
    try {
      for (const blocked of blockers) {
        // The staging directory first (a download starts there), then the database's (where it is moved).
        const r = await server.query('SELECT host, v FROM faulty', 'faultdb');
        assert.equal(r.status, 503, JSON.stringify(r.body));
        assert.match(String(r.body.error), /^the S3 backend's local cache \(STRATA_CACHE_DIR\) cannot be used: E[A-Z]+ \(mkdir\)$/);
        const stats = await storageStats(server);
        assert.equal(stats.health.ok, true, 'S3 did not fail');
        assert.equal(stats.health.last_error, null);
        rmSync(blocked, { force: true });
      }
      // The staging directory one where no file can be made: the download's own file fails, S3 answered.
      rmSync(blockers[0], { recursive: true, force: true });
      symlinkSync('/proc/self', blockers[0]);
      const r = await server.query('SELECT host, v FROM faulty', 'faultdb');
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.match(String(r.body.error), /^the S3 backend's local cache \(STRATA_CACHE_DIR\) cannot be used: E[A-Z]+ \(open\)$/);
      assert.equal((await storageStats(server)).health.ok, true, 'S3 did not fail');
    } finally {
      // The suite's server runs on: later tests must not meet a blocker (the directories come back as needed).
      for (const blocker of blockers) if (lstatSync(blocker, { throwIfNoEntry: false })?.isDirectory() === false) rmSync(blocker);
    }
    assert.deepEqual(await server.rows('SELECT host, v FROM faulty', 'faultdb'), [['a', 1]]);
  });

  test('type conflicts are checked against the schema stored in S3 after a restart', async () => {
    assert.equal((await server.writeLines('typed v=1i 1700000000', 'db=s3types&precision=s')).status, 204);
    await server.flush();
    assert.equal(await server.stop(), 0);
    // The cache is wiped too: the schema must come from the bucket.
    rmSync(join(server.dataDir, '.cache'), { recursive: true, force: true });
    server = await TestServer.start(s3.env({ STRATA_S3_PREFIX: 'tenant/', STRATA_NODE_ID: 'alpha' }), server.dataDir);
    const res = await server.writeLines('typed v="text" 1700000001', 'db=s3types&precision=s');
    assert.equal(res.status, 400, 'conflicting type rejected');
    const { cache } = await storageStats(server);
    assert.deepEqual([cache.misses, cache.footer_reads], [0, 1], 'the stored schema read from the footer, nothing downloaded');
    assert.deepEqual(await server.rows('SELECT v FROM typed', 's3types'), [[1]]);
  });

  test('cached copies wiped before any query read their columns: a pruned query reads their footers and answers', async () => {
    const lines = Array.from({ length: 6 }, (_, i) => `unread,host=a v=${i}i ${1700000000 + i * 3600}`).join('\n');
    assert.equal((await server.writeLines(lines, 'db=unread&precision=s')).status, 204);
    await server.flush();
    // Written through to the cache, then wiped: the cache's index still lists them.
    rmSync(join(server.dataDir, '.cache', 'unread'), { recursive: true, force: true });
    // Pruned to the last hour, so planning reads the columns of every file, not just the scanned one.
    const res = await fetch(`${server.url}/api/v1/query`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-arc-database': 'unread' },
      body: JSON.stringify({ sql: 'SELECT v FROM unread WHERE time >= to_timestamp(1700018000)' }),
    });
    const body = (await res.json()) as { data: unknown[][] };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.deepEqual(body.data, [[5]]);
    // Only the scanned file is downloaded again.
    assert.equal(localParquet(join(server.dataDir, '.cache', 'unread')).length, 1);
  });

  test('a pruned query after a start with an empty cache downloads the files it scans and reads only the footers of the others', async () => {
    const T = 1700000000;
    const lines = Array.from({ length: 24 }, (_, i) => `hist,host=a v=${i}i${i === 0 ? ',extra="x"' : ''} ${T + i * 3600}`);
    // A footer over 64 KiB (read in two ranged GETs): 480 columns of long names (within the
    // 500-column limit), in the second hour only.
    const wideName = (j: number): string => `w${j}_${'x'.repeat(150)}`;
    lines.push(`hist,host=a ${Array.from({ length: 480 }, (_, j) => `${wideName(j)}=${j}i`).join(',')} ${T + 3600 + 1}`);
    assert.equal((await server.writeLines(lines.join('\n'), 'db=footers&precision=s')).status, 204);
    await server.flush();
    const objects = await bucketObjects('tenant/footers/');
    assert.equal(objects.length, 24);
    const wide = await objectBytes(objects[1].key);
    assert.ok(wide.readUInt32LE(wide.length - 8) > 64 * 1024, `wide footer: ${wide.readUInt32LE(wide.length - 8)} bytes`);

    assert.equal(await server.stop(), 0);
    rmSync(join(server.dataDir, '.cache'), { recursive: true, force: true });
    server = await TestServer.start(s3.env({ STRATA_S3_PREFIX: 'tenant/', STRATA_NODE_ID: 'alpha' }), server.dataDir);
    const sql = `SELECT time, v, extra, ${wideName(479)} FROM hist WHERE time >= to_timestamp(${T + 22 * 3600}) ORDER BY time`;
    const expected = [['2023-11-15T20:13:20Z', 22, null, null], ['2023-11-15T21:13:20Z', 23, null, null]];
    assert.deepEqual(await server.rows(sql, 'footers'), expected);
    const stats = await storageStats(server);
    assert.equal(stats.cache.misses, 2, 'only the two scanned files downloaded');
    assert.equal(stats.cache.downloaded_bytes, objects[22].size + objects[23].size);
    assert.equal(stats.cache.footer_reads, 22, 'the others\' footers read');
    assert.equal(stats.cache.pinned_files, 0);
    assert.deepEqual(localParquet(join(server.dataDir, '.cache')), objects.slice(22).map((o) => o.key.slice('tenant/'.length)));
    assert.ok(await waitFor(() => readdirSync(join(server.dataDir, '.cache', '.part')).length === 0, 5000), 'footer stubs deleted');

    // `*` binds the columns of every file; signatures are remembered: no footer read again.
    const star = await server.query(`SELECT * FROM hist WHERE time >= to_timestamp(${T + 23 * 3600})`, 'footers');
    assert.equal(star.status, 200, star.body.error);
    assert.equal(star.body.columns.length, 484);
    assert.ok(star.body.columns.includes('extra') && star.body.columns.includes(wideName(0)), star.body.columns.slice(0, 5).join(','));
    assert.equal((await storageStats(server)).cache.footer_reads, 22);
  });

  test('a time range bounded on both sides still binds the columns of files in the hours it does not scan', async () => {
    // Two flushes: a flush writes its buffer's columns into every hour file it writes, so
    // only the file of hour 0 has `extra`. Listing only the hour prefixes of the range
    // would not see that file: `*` would lose the column and naming it would be a binder
    // error, so the range may not narrow what is listed, only what is scanned.
    const T = 1767225600;
    assert.equal((await server.writeLines(`bounded,host=a v=0i,extra="x" ${T}`, 'db=bounded&precision=s')).status, 204);
    await server.flush();
    const lines = Array.from({ length: 9 }, (_, i) => `bounded,host=a v=${i + 1}i ${T + (i + 1) * 3600}`);
    assert.equal((await server.writeLines(lines.join('\n'), 'db=bounded&precision=s')).status, 204);
    await server.flush();
    assert.equal((await bucketKeys('tenant/bounded/')).length, 10);
    const range = "time >= '2026-01-01T08:00:00Z' AND time < '2026-01-01T10:00:00Z'";
    const star = await server.query(`SELECT * FROM bounded WHERE ${range} ORDER BY time`, 'bounded');
    assert.equal(star.status, 200, star.body.error);
    assert.deepEqual(star.body.columns, ['time', 'host', 'extra', 'v']);
    assert.deepEqual(star.body.data, [['2026-01-01T08:00:00Z', 'a', null, 8], ['2026-01-01T09:00:00Z', 'a', null, 9]]);
    const res = await fetch(`${server.url}/api/v1/query`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-arc-database': 'bounded', 'x-strata-profile': 'true' },
      body: JSON.stringify({ sql: `SELECT count(extra), count(*) FROM bounded WHERE ${range}` }),
    });
    const body = (await res.json()) as { data: unknown[][]; error?: string; profile: { files_considered: number; files_scanned: number } };
    assert.equal(res.status, 200, body.error);
    assert.deepEqual(body.data, [[0, 2]]);
    assert.deepEqual([body.profile.files_considered, body.profile.files_scanned], [10, 2]);
  });

  test('an object that is not Parquet, read for its footer: a 500 naming its key, storage still healthy', async () => {
    const names = ['text', 'short', 'truncated', 'overlong', 'garbled'];
    // Each measurement: a good file in the hour queried, a damaged one in the hour before.
    for (const m of names) assert.equal((await server.writeLines(`${m} v=1 1700003600`, 'db=broken&precision=s')).status, 204);
    await server.flush();
    const valid = await objectBytes((await bucketKeys('tenant/broken/'))[0]);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(1_000_000);
    const garbled = Buffer.concat([Buffer.from('PAR1'), Buffer.alloc(20, 7), Buffer.from([20, 0, 0, 0]), Buffer.from('PAR1')]);
    const damaged: [string, Buffer, RegExp][] = [
      ['text', Buffer.from('not a parquet file at all'), /no Parquet magic at its end/],
      ['short', Buffer.from('PAR1'), /4 bytes, too short for Parquet/],
      ['truncated', valid.subarray(0, valid.length - 100), /no Parquet magic at its end/],
      ['overlong', Buffer.concat([Buffer.from('PAR1junk'), length, Buffer.from('PAR1')]), /footer length 1000000 exceeds the object's 16 bytes/],
      // Framed right, no Thrift inside: DuckDB's message for it names no file.
      ['garbled', garbled, /its metadata cannot be decoded \(Invalid Error: TProtocolException: Invalid data\)/],
    ];
    for (const [m, bytes, problem] of damaged) {
      const key = `broken/${m}/2023/11/14/22/bad.parquet`;
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `tenant/${key}`, Body: bytes }));
      const r = await server.query(`SELECT v FROM ${m} WHERE time >= to_timestamp(1700003600)`, 'broken');
      assert.equal(r.status, 500, `${m}: ${JSON.stringify(r.body)}`);
      assert.ok(r.body.error!.includes(`'${key}'`), `${m}: ${r.body.error}`);
      assert.match(r.body.error!, problem);
      assert.ok(!r.body.error!.includes(server.dataDir), `${m}: ${r.body.error}`);
    }
    // A measurement this process never wrote: its first write reads the stored schema of
    // both its files in one statement, which must find the garbled one among them.
    const good = 'broken/unwritten/2023/11/14/21/good.parquet';
    const bad = 'broken/unwritten/2023/11/14/22/bad.parquet';
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `tenant/${good}`, Body: valid }));
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `tenant/${bad}`, Body: garbled }));
    const w = await server.writeLines('unwritten v=2 1700003600', 'db=broken&precision=s');
    const error = ((await w.json()) as { error: string }).error;
    assert.equal(w.status, 500, error);
    assert.ok(error.startsWith(`stored file '${bad}' is not a valid Parquet file: its metadata cannot be decoded (Invalid Error: TProtocolException`), error);
    const stats = await storageStats(server);
    assert.equal(stats.health.ok, true, 'a damaged object is no storage outage');
    assert.equal(stats.cache.pinned_files, 0);
    assert.ok(await waitFor(() => readdirSync(join(server.dataDir, '.cache', '.part')).length === 0, 5000), 'no stub left');
  });

  test('refused SQL counts in the query pool\'s queries_total and query_errors_total, as on local storage (on S3 it is refused before a connection is taken)', async () => {
    const pool = async (): Promise<number[]> => {
      const { pool: p } = (await (await fetch(`${server.url}/api/v1/metrics/query-pool`)).json()) as { pool: { queries_total: number; query_errors_total: number } };
      return [p.queries_total, p.query_errors_total];
    };
    const [total, errors] = await pool();
    for (const sql of ['DROP TABLE cpu', "SELECT * FROM read_csv('/etc/passwd')", 'SELEC 1']) {
      const r = await server.query(sql, 'tdb');
      assert.equal(r.status, 400, sql);
    }
    assert.deepEqual(await pool(), [total + 3, errors + 3]);
  });

  test('a query after the cache is wiped (while running and across a restart) returns every row', async () => {
    const lines = Array.from({ length: 48 }, (_, i) => `wipe,host=h${i % 3} v=${i}i ${1700000000 + i * 1800}`).join('\n');
    assert.equal((await server.writeLines(lines, 'db=wipe&precision=s')).status, 204);
    await server.flush();
    const expected = [[48, 1128, 24]];
    const sql = 'SELECT count(*), sum(v), count(DISTINCT date_trunc(\'hour\', time)) FROM wipe';
    assert.deepEqual(await server.rows(sql, 'wipe'), expected);

    // Wiped under the running server: the cache notices the missing files and downloads them.
    rmSync(join(server.dataDir, '.cache', 'wipe'), { recursive: true, force: true });
    const before = await storageStats(server);
    assert.deepEqual(await server.rows(sql, 'wipe'), expected);
    const afterWipe = await storageStats(server);
    assert.equal(afterWipe.cache.misses - before.cache.misses, 24, 'each of the 24 hour files downloaded once');
    assert.equal(localParquet(join(server.dataDir, '.cache', 'wipe')).length, 24);

    // Restart with an empty cache: the index is rebuilt (empty), everything read through.
    assert.equal(await server.stop(), 0);
    rmSync(join(server.dataDir, '.cache'), { recursive: true, force: true });
    server = await TestServer.start(s3.env({ STRATA_S3_PREFIX: 'tenant/', STRATA_NODE_ID: 'alpha' }), server.dataDir);
    assert.deepEqual(await server.rows(sql, 'wipe'), expected);
    assert.equal((await storageStats(server)).cache.misses, 24);

    // Restart with the cache kept: the index is rebuilt from the directory, nothing downloaded.
    assert.equal(await server.stop(), 0);
    server = await TestServer.start(s3.env({ STRATA_S3_PREFIX: 'tenant/', STRATA_NODE_ID: 'alpha' }), server.dataDir);
    const rebuilt = await storageStats(server);
    assert.ok(rebuilt.cache.files >= 24, `index rebuilt: ${rebuilt.cache.files} files`);
    assert.deepEqual(await server.rows(sql, 'wipe'), expected);
    const warm = await storageStats(server);
    assert.equal(warm.cache.misses, 0);
    assert.equal(warm.cache.hits, 24);

    // The whole cache directory removed while running, its scratch directory (downloads, staged uploads) with it:
    // made again, so flushes and downloads go on.
    rmSync(join(server.dataDir, '.cache'), { recursive: true, force: true });
    assert.equal((await server.writeLines(`wipe,host=h0 v=1000i ${1700000000 + 48 * 1800}`, 'db=wipe&precision=s')).status, 204);
    await server.flush();
    assert.deepEqual(await server.rows(sql, 'wipe'), [[49, 2128, 25]]);
    assert.equal((await storageStats(server)).health.ok, true);
  });
});

test('S3 backend: a measurement of more than 1,000 objects is listed across pages (ListObjectsV2 continuation) and read whole', async () => {
  const dir = tempDir();
  const conn = await inspector();
  let file: Buffer;
  try {
    await conn.run(`COPY (SELECT TIMESTAMPTZ '2026-01-01 00:30:00+00' AS time, 'a' AS host, 1::BIGINT AS v) TO '${join(dir, 'one.parquet')}' (FORMAT parquet)`);
    file = readFileSync(join(dir, 'one.parquet'));
  } finally {
    conn.closeSync();
    removeDir(dir);
  }
  // S3 pages a listing at 1,000 keys: 1,050 objects take two pages.
  const keys = Array.from({ length: 1050 }, (_, i) => `pages/pdb/many/2026/01/01/00/many_20260101_003000_1_${String(i).padStart(4, '0')}.parquet`);
  for (let at = 0; at < keys.length; at += 50) {
    await Promise.all(keys.slice(at, at + 50).map((key) => client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: file }))));
  }
  const server = await TestServer.start(s3.env({ STRATA_S3_PREFIX: 'pages/' }));
  try {
    const listed = (await (await fetch(`${server.url}/api/v1/measurements?database=pdb`)).json()) as { measurements: { file_count: number }[] };
    assert.deepEqual(listed.measurements.map((m) => m.file_count), [1050]);
    assert.deepEqual(await server.rows('SELECT count(*), sum(v) FROM many', 'pdb'), [[1050, 1050]]);
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
  }
});

test('S3 backend: eviction under a small cache bound keeps queries correct', async () => {
  // Each file is ~1 KB; a 6 KB bound holds a handful of the 30 files.
  const server = await TestServer.start(s3.env({ STRATA_S3_PREFIX: 'evict/', STRATA_CACHE_MAX_BYTES: '6000' }));
  try {
    const lines = Array.from({ length: 300 }, (_, i) => `ev,host=h${i % 5} v=${i}i ${1700000000 + Math.floor(i / 10) * 3600 + (i % 10)}`).join('\n');
    assert.equal((await server.writeLines(lines, 'db=ev&precision=s')).status, 204);
    await server.flush();
    assert.equal((await bucketKeys('evict/')).length, 30);
    let stats = await storageStats(server);
    assert.ok(stats.cache.bytes <= 6000, `cache within its bound after writes: ${stats.cache.bytes}`);
    assert.ok(stats.cache.evictions >= 20, `evictions: ${stats.cache.evictions}`);

    for (let round = 0; round < 3; round++) {
      // Every query needs all 30 files: they are pinned while it runs (over the bound), then evicted.
      assert.deepEqual(await server.rows('SELECT count(*), sum(v), min(v), max(v) FROM ev', 'ev'), [[300, 44850, 0, 299]]);
      assert.deepEqual(await server.rows('SELECT host, count(*) FROM ev GROUP BY host ORDER BY host', 'ev'),
        [['h0', 60], ['h1', 60], ['h2', 60], ['h3', 60], ['h4', 60]]);
    }
    stats = await storageStats(server);
    assert.ok(stats.cache.bytes <= 6000, `cache back within its bound: ${stats.cache.bytes}`);
    assert.equal(stats.cache.pinned_files, 0, 'queries released their files');
    assert.ok(stats.cache.misses >= 30, `misses: ${stats.cache.misses}`);
    assert.ok(stats.cache.evictions >= 50, `evictions: ${stats.cache.evictions}`);
    // Evicted files are unlinked just after the index drops them (a released query does not wait).
    const files = stats.cache.files;
    assert.ok(await waitFor(() => localParquet(join(server.dataDir, '.cache')).length <= files, 5000),
      `no files on disk beyond the ${files} indexed`);
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
  }
});

test('S3 backend: an object replaced by a much shorter one after it was listed: its footer is read at its new size', async () => {
  const env = s3.env({ STRATA_S3_PREFIX: 'replaced/', STRATA_S3_LIST_TTL_MS: '600000', STRATA_S3_MAX_ATTEMPTS: '1' });
  const server = await TestServer.start(env);
  const dir = tempDir();
  const conn = await inspector();
  try {
    assert.equal((await server.writeLines('swap,host=b v=1 1767229200', 'db=rdb&precision=s')).status, 204);
    await server.flush();
    // Hour 0, put from outside Strata: never cached, so only its footer will be read.
    const key = 'replaced/rdb/swap/2026/01/01/00/swap_20260101_000000_1_outside.parquet';
    const file = async (name: string, sql: string): Promise<Buffer> => {
      await conn.run(`COPY (${sql}) TO '${join(dir, name)}' (FORMAT parquet)`);
      return readFileSync(join(dir, name));
    };
    const big = await file('big.parquet', "SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i) AS time, 'a' AS host, random() AS v FROM range(20000) r(i)");
    const small = await file('small.parquet', "SELECT TIMESTAMPTZ '2026-01-01 00:30:00+00' AS time, 'a' AS host, 2.5::DOUBLE AS v, 'new' AS extra");
    assert.ok(big.length > small.length + 64 * 1024, `${big.length} bytes`);
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: big }));
    // The measurement's listing (the big object's size in it) is kept for the TTL.
    assert.deepEqual((await server.rows('SHOW TABLES', 'rdb')).map((r) => [r[1], r[3]]), [['swap', 2]]);
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: small }));
    // Pruned to hour 1: hour 0 is read for its columns only, from the end of an object shorter than the listing says.
    const r = await server.query('SELECT * FROM swap WHERE time >= to_timestamp(1767229200)', 'rdb');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.columns, ['time', 'host', 'v', 'extra']);
    assert.deepEqual(r.body.data, [['2026-01-01T01:00:00Z', 'b', 1, null]]);
    const stats = await storageStats(server);
    assert.equal(stats.health.ok, true, 'a replaced object is no storage outage');
    assert.deepEqual([stats.cache.footer_reads, stats.cache.pinned_files], [1, 0]);
  } finally {
    conn.closeSync();
    removeDir(dir);
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
  }
});

describe('S3 backend: an object replaced between the two ranged reads of a footer longer than 64 KiB', () => {
  const prefix = 'swapped/';
  /** Which object the proxy replaces after S3 answers a ranged read of it, by which bodies in turn, how many more times. */
  let swap: { key: string; bodies: Buffer[]; done: number; left: number } | undefined;
  let proxy: S3Proxy;
  let server: TestServer;
  let wideA: Buffer;
  let wideB: Buffer;
  const dir = tempDir();
  before(async () => {
    proxy = await S3Proxy.start(s3.endpoint, async ({ method, url, headers }) => {
      if (swap === undefined || swap.left === 0 || method !== 'GET' || headers.range === undefined || !url.split('?')[0].endsWith(`/${swap.key}`)) return;
      swap.left--;
      const body = swap.bodies[swap.done++ % swap.bodies.length];
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: swap.key, Body: body }));
    });
    server = await TestServer.start(s3.env({
      STRATA_S3_ENDPOINT: proxy.endpoint, STRATA_S3_PREFIX: prefix, STRATA_S3_LIST_TTL_MS: '600000', STRATA_S3_MAX_ATTEMPTS: '1',
    }));
    const conn = await inspector();
    try {
      // Each footer well over 64 KiB (1,500 columns), of different lengths and columns.
      const wide = async (name: string, column: string, count: number): Promise<Buffer> => {
        const columns = Array.from({ length: count }, (_, j) => `${j}::BIGINT AS ${column}${j}`).join(', ');
        await conn.run(`COPY (SELECT TIMESTAMPTZ '2026-01-01 00:30:00+00' AS time, 'a' AS host, 2.5::DOUBLE AS v, ${columns}) TO '${join(dir, name)}' (FORMAT parquet)`);
        return readFileSync(join(dir, name));
      };
      wideA = await wide('a.parquet', 'a', 1500);
      wideB = await wide('b.parquet', 'b', 1700);
    } finally {
      conn.closeSync();
    }
    for (const f of [wideA, wideB]) assert.ok(f.readUInt32LE(f.length - 8) > 64 * 1024, `footer of ${f.readUInt32LE(f.length - 8)} bytes`);
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
    removeDir(dir);
    await proxy.close();
  });

  /**
   * Measurement `m` with a file of Strata's in hour 1 and, put from outside Strata (never
   * cached, so only its footer is read), the wide file A in hour 0, listed by a query;
   * then `SELECT *` pruned to hour 1, which reads A's footer, while the proxy replaces it
   * after each of the first `swaps` ranged reads, by B and A in turn.
   */
  async function queryWhileReplaced(m: string, swaps: number): Promise<{ status: number; body: QueryBody; key: string }> {
    assert.equal((await server.writeLines(`${m},host=b v=1 1767229200`, 'db=sw&precision=s')).status, 204);
    await server.flush();
    const key = `${prefix}sw/${m}/2026/01/01/00/${m}_20260101_000000_1_outside.parquet`;
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: wideA }));
    // The listing, with A's size, is kept for the TTL.
    assert.deepEqual((await server.rows('SHOW TABLES', 'sw')).filter((r) => r[1] === m).map((r) => r[3]), [2]);
    swap = { key, bodies: [wideB, wideA], done: 0, left: swaps };
    try {
      const r = await server.query(`SELECT * FROM ${m} WHERE time >= to_timestamp(1767229200)`, 'sw');
      return { ...r, key: key.slice(prefix.length) };
    } finally {
      swap = undefined;
    }
  }

  test('replaced once: the footer is read again from the new object and the query answers with its columns', async () => {
    const r = await queryWhileReplaced('once', 1);
    assert.equal(r.status, 200, r.body.error);
    assert.equal(r.body.columns.length, 3 + 1700);
    assert.deepEqual(r.body.columns.slice(0, 5), ['time', 'host', 'v', 'b0', 'b1']);
    assert.ok(!r.body.columns.includes('a0'), 'nothing of the replaced object');
    assert.deepEqual(r.body.data.map((row) => row.slice(0, 4)), [['2026-01-01T01:00:00Z', 'b', 1, null]]);
    const stats = await storageStats(server);
    assert.equal(stats.health.ok, true, 'a replaced object is no storage outage');
    assert.deepEqual([stats.cache.footer_reads, stats.cache.pinned_files], [1, 0]);
  });

  test('replaced at every read: a 503 naming its key once it was read three times, storage still healthy', async () => {
    const r = await queryWhileReplaced('always', 1000);
    assert.equal(r.status, 503, r.body.error ?? r.body.columns.slice(0, 5).join());
    assert.equal(r.body.error, `stored file '${r.key}' was replaced while its footer was read, 3 times in a row; retry`);
    const stats = await storageStats(server);
    assert.equal(stats.health.ok, true, 'a replaced object is no storage outage');
    assert.equal(stats.cache.pinned_files, 0);
    assert.ok(await waitFor(() => readdirSync(join(server.dataDir, '.cache', '.part')).length === 0, 5000), 'no stub left');
  });
});

test('S3 backend: SIGKILL cycles under concurrent writers: every acknowledged record exactly once', async () => {
  // Replay after each kill asks which logged entries the stored files cover: their footers, read from the bucket.
  const dataDir = tempDir();
  try {
    const report = await crashCycles(dataDir, 5, s3.env({ STRATA_S3_PREFIX: 'crash/' }));
    assert.deepEqual(report.problems, []);
    assert.equal(report.cycles, 5);
    assert.ok(report.acked > 200, `only ${report.acked} records acknowledged`);
    assert.ok((await bucketKeys('crash/')).length > 0, 'files stored in the bucket');
  } finally {
    removeDir(dataDir);
  }
});

test('S3 backend: a deadline reached while a pruned query downloads files to read their columns is met there', async () => {
  const env = { STRATA_S3_PREFIX: 'deadline/', STRATA_QUERY_POOL_SIZE: '1' };
  const files = 200;
  const T0 = 1767225600;
  const writer = await TestServer.start(s3.env(env));
  try {
    const lines = Array.from({ length: files }, (_, i) => `hist,host=a v=${i}i ${T0 + i * 3600}`).join('\n');
    assert.equal((await writer.writeLines(lines, 'db=dl&precision=s')).status, 204);
    await writer.flush();
  } finally {
    assert.equal(await writer.stop(), 0);
    removeDir(writer.dataDir);
  }
  // Another node: nothing cached, no file's columns known, so planning downloads every file.
  const server = await TestServer.start(s3.env(env));
  try {
    const sql = `SELECT count(*) FROM hist WHERE time >= to_timestamp(${T0 + (files - 1) * 3600})`;
    const res = await fetch(`${server.url}/api/v1/query`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-arc-database': 'dl', 'x-strata-timeout-ms': '100' },
      body: JSON.stringify({ sql }),
    });
    assert.equal(res.status, 504, await res.text());
    // The 504 goes out at the deadline; the connection, and the files planning pinned, are
    // held until the planning given up on has stopped.
    let inUse = await server.connectionsInUse();
    for (let i = 0; i < 400 && inUse !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      inUse = await server.connectionsInUse();
    }
    assert.equal(inUse, 0, 'the connection came back');
    // One interrupt landing between two statements (during footer reads) used to be lost:
    // planning ran on, reading every file, and the 504 came only after it.
    const stats = await storageStats(server);
    const read = stats.cache.misses + stats.cache.footer_reads;
    assert.ok(read < files, `files read after the deadline: ${read} of ${files}`);
    assert.equal(stats.cache.pinned_files, 0);
    assert.deepEqual(await server.rows(sql, 'dl'), [[1]]);
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
  }
});

test('S3 backend: an object deleted from the bucket behind Strata while its listing is cached: the query plans again over a fresh listing, S3 stays healthy', async () => {
  const env = s3.env({ STRATA_S3_PREFIX: 'behind/', STRATA_S3_LIST_TTL_MS: '600000' });
  let server = await TestServer.start(env);
  try {
    const lines = [0, 1, 2].map((h) => `behind,host=a v=${h}i ${1767225600 + h * 3600}`).join('\n');
    assert.equal((await server.writeLines(lines, 'db=bdb&precision=s')).status, 204);
    assert.equal((await server.writeLines(lines.replaceAll('behind,', 'never,'), 'db=bdb&precision=s')).status, 204);
    await server.flush();
    const sql = 'SELECT v FROM behind ORDER BY time';
    assert.deepEqual(await server.rows(sql, 'bdb'), [[0], [1], [2]]);
    // The hour-1 object goes (retention on another node, say), and this node's copy of it.
    const [key] = (await bucketKeys('behind/bdb/behind/2026/01/01/01/')).map((k) => k.slice('behind/'.length));
    await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: `behind/${key}` }));
    rmSync(join(server.dataDir, '.cache', key));
    // Before: 503 "S3 download … NoSuchKey" until the listing expired (here 10 minutes).
    const r = await server.query(sql, 'bdb');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.data, [[0], [2]]);
    assert.equal((await storageStats(server)).health.ok, true);

    // The same for an object listed but never downloaded: after a restart with an empty
    // cache, a pruned query lists the measurement and downloads only the hour-0 file.
    assert.equal(await server.stop(), 0);
    rmSync(join(server.dataDir, '.cache'), { recursive: true, force: true });
    server = await TestServer.start(env, server.dataDir);
    assert.deepEqual(await server.rows('SELECT v FROM never WHERE time < to_timestamp(1767229200)', 'bdb'), [[0]]);
    const [never] = await bucketKeys('behind/bdb/never/2026/01/01/01/');
    await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: never }));
    const n = await server.query('SELECT v FROM never ORDER BY time', 'bdb');
    assert.equal(n.status, 200, JSON.stringify(n.body));
    assert.deepEqual(n.body.data, [[0], [2]]);
    assert.equal((await storageStats(server)).health.ok, true);
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
  }
});

test('S3 backend: a download or footer read is tried STRATA_S3_MAX_ATTEMPTS times in all, whether its request fails as the SDK would retry it or its body breaks off part-way; a refused signature once', async () => {
  const T0 = 1767225600;
  const writer = await TestServer.start(s3.env({ STRATA_S3_PREFIX: 'cut/' }));
  try {
    assert.equal((await writer.writeLines(`cutoff,host=a v=0i ${T0}\ncutoff,host=a v=1i ${T0 + 3600}`, 'db=cdb&precision=s')).status, 204);
    await writer.flush();
  } finally {
    assert.equal(await writer.stop(), 0);
    removeDir(writer.dataDir);
  }
  const [hour0, hour1] = await bucketKeys('cut/cdb/cutoff/');
  /**
   * What the proxy does with the next GETs of each object, in turn: `drop` resets the
   * connection before any answer (a failure the SDK would retry itself), `cut` resets it
   * 100 bytes into the body (one it would not), `slow` answers 503 SlowDown (throttling,
   * retried), `refused` 403 SignatureDoesNotMatch (final); then GETs pass.
   */
  const plan = new Map<string, ('drop' | 'cut' | 'slow' | 'refused')[]>();
  /** GETs of the two objects as the proxy answered them: `whole|range <key> drop|cut|pass`. */
  const gets: string[] = [];
  const proxy = await S3Proxy.start(s3.endpoint, async ({ method, url, headers }) => {
    const key = decodeURIComponent(url.split('?')[0]).slice(`/${s3.bucket}/`.length);
    if (method !== 'GET' || (key !== hour0 && key !== hour1)) return;
    const step = plan.get(key)?.shift() ?? 'pass';
    gets.push(`${headers.range === undefined ? 'whole' : 'range'} ${key} ${step}`);
    if (step === 'drop') throw new Error('connection reset by the test');
    const error = (status: number, code: string): { status: number; body: string } => ({ status, body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>from the test</Message></Error>` });
    if (step === 'slow') return error(503, 'SlowDown');
    if (step === 'refused') return error(403, 'SignatureDoesNotMatch');
    return step === 'cut' ? { cutAfter: 100 } : undefined;
  });
  // A fresh cache: the query downloads what it scans and reads the other file's footer.
  const server = await TestServer.start(s3.env({ STRATA_S3_ENDPOINT: proxy.endpoint, STRATA_S3_PREFIX: 'cut/', STRATA_S3_MAX_ATTEMPTS: '3' }));
  try {
    plan.set(hour0, ['drop', 'cut']);
    plan.set(hour1, ['slow', 'cut']);
    // Before: 503 "S3 download … failed: aborted" on the first cut.
    const r = await server.query(`SELECT v FROM cutoff WHERE time < to_timestamp(${T0 + 3600})`, 'cdb');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.data, [[0]]);
    assert.deepEqual(gets.sort(), [`range ${hour1} cut`, `range ${hour1} pass`, `range ${hour1} slow`, `whole ${hour0} cut`, `whole ${hour0} drop`, `whole ${hour0} pass`]);
    let stats = await storageStats(server);
    assert.deepEqual([stats.health.ok, stats.cache.misses, stats.cache.footer_reads, stats.cache.downloaded_bytes],
      [true, 1, 1, (await bucketObjects('cut/cdb/cutoff/'))[0].size], 'the retried download counted once, at its size');

    // Every try fails, one way then the other: 503 after three GETs in all (the SDK's own
    // retries within each try once made it six), naming the object; no part file left.
    gets.length = 0;
    plan.set(hour1, ['drop', 'cut', 'drop', 'cut', 'drop', 'cut']);
    const failed = await server.query('SELECT v FROM cutoff ORDER BY time', 'cdb');
    assert.equal(failed.status, 503, JSON.stringify(failed.body));
    assert.match(failed.body.error ?? '', new RegExp(`S3 download ${hour1.slice('cut/'.length)} failed`));
    assert.deepEqual(gets, [`whole ${hour1} drop`, `whole ${hour1} cut`, `whole ${hour1} drop`]);
    assert.ok(await waitFor(() => readdirSync(join(server.dataDir, '.cache', '.part')).length === 0, 5000), 'no partial download left');
    // A refused signature (a secret revoked, say) is final: one GET, 503 naming the credentials.
    gets.length = 0;
    plan.set(hour1, ['refused', 'refused', 'refused']);
    const refused = await server.query('SELECT v FROM cutoff ORDER BY time', 'cdb');
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.match(refused.body.error ?? '', /SignatureDoesNotMatch.*\(HTTP 403\): access denied \(check STRATA_S3_ACCESS_KEY_ID/);
    assert.deepEqual(gets, [`whole ${hour1} refused`]);
    plan.clear();
    assert.deepEqual(await server.rows('SELECT v FROM cutoff ORDER BY time', 'cdb'), [[0], [1]]);
    stats = await storageStats(server);
    assert.equal(stats.cache.pinned_files, 0);
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
    await proxy.close();
  }
});

test('S3 backend: a query whose listing is slow while flushes go on answers the data as it stood when it started: none of the files those flushes store', async () => {
  // Holds back the second listing of the measurement asked for after `hold` is armed, until
  // released: the query's first (`QueryService.prefetch`, with no listing cached) comes
  // before it takes the held records.
  let hold: { passed: number; reached: () => void; released: Promise<void> } | undefined;
  const proxy = await S3Proxy.start(s3.endpoint, async () => undefined, async ({ url }) => {
    const gate = hold;
    if (gate === undefined || !url.includes('list-type=2') || !decodeURIComponent(url).includes('/racing/')) return;
    if (gate.passed++ === 0) return;
    hold = undefined;
    gate.reached();
    await gate.released;
  });
  const server = await TestServer.start(s3.env({
    STRATA_S3_ENDPOINT: proxy.endpoint, STRATA_S3_PREFIX: 'race/', STRATA_S3_LIST_TTL_MS: '0', STRATA_BUFFER_MAX_AGE_MS: '600000',
  }));
  try {
    const T0 = 1767225600;
    const write = async (from: number, to: number): Promise<void> => {
      const lines = Array.from({ length: to - from }, (_, k) => `racing,host=h v=${from + k}i ${T0 + from + k}`).join('\n');
      assert.equal((await server.writeLines(lines, 'db=race&precision=s')).status, 204);
    };
    // A: held in memory when the query starts.
    await write(0, 100);
    let reached!: () => void;
    let release!: () => void;
    const atListing = new Promise<void>((resolve) => (reached = resolve));
    hold = { passed: 0, reached, released: new Promise<void>((resolve) => (release = resolve)) };
    const answer = server.rows('SELECT count(*), count(DISTINCT v), min(v), max(v) FROM racing', 'race');
    // The query took A from memory and waits for its listing; B joins A's buffer, and both go
    // to one file; then C is written and flushed to a file of its own. The listing shows both
    // files, and the query reads neither: A from memory, once, is the data at its start.
    // (Once it answered A and C without B, though B was acknowledged before C was written.)
    await atListing;
    await write(100, 200);
    await server.flush();
    await write(200, 300);
    await server.flush();
    release();
    assert.deepEqual(await answer, [[100, 100, 0, 99]]);
    assert.deepEqual(await server.rows('SELECT count(*), count(DISTINCT v) FROM racing', 'race'), [[300, 300]]);
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
    await proxy.close();
  }
});

test('S3 backend: GET /api/v1/databases and /api/v1/databases/:name count measurements from one listing of each database, listing no measurement\'s files', async () => {
  const listings: string[] = [];
  const proxy = await S3Proxy.start(s3.endpoint, async () => undefined, async ({ url }) => {
    if (url.includes('list-type=2')) listings.push(decodeURIComponent(url));
  });
  const server = await TestServer.start(s3.env({ STRATA_S3_ENDPOINT: proxy.endpoint, STRATA_S3_PREFIX: 'counted/', STRATA_S3_LIST_TTL_MS: '0' }));
  try {
    for (const db of ['one', 'two']) {
      const lines = ['a', 'b', 'c'].map((m, i) => `${m} v=${i}i ${1767225600 + i * 3600}`).join('\n');
      assert.equal((await server.writeLines(lines, `db=${db}&precision=s`)).status, 204);
    }
    await server.flush();
    listings.length = 0;
    const all = await (await fetch(`${server.url}/api/v1/databases`)).json() as { databases: { name: string; measurement_count: number }[] };
    assert.deepEqual(all.databases, [{ name: 'one', measurement_count: 3 }, { name: 'two', measurement_count: 3 }]);
    assert.deepEqual(await (await fetch(`${server.url}/api/v1/databases/two`)).json(), { name: 'two', measurement_count: 3 });
    // The root, each database twice (the list, then `two` alone): delimited listings only.
    assert.equal(listings.length, 4, listings.join('\n'));
    assert.ok(listings.every((url) => url.includes('delimiter=/')), listings.join('\n'));
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
    await proxy.close();
  }
});

test('S3 backend: an object replaced in the bucket by an outside writer, cached before: the listed size differs, and the new object is read', async () => {
  const server = await TestServer.start(s3.env({ STRATA_S3_PREFIX: 'replaced/', STRATA_S3_LIST_TTL_MS: '0', STRATA_QUERY_CACHE_TTL_MS: '0' }));
  try {
    const T0 = 1767225600;
    // Two hours, one file each: 3 records, then 5.
    const lines = [0, 1, 2].map((i) => `r,host=a v=${i}i ${T0 + i}`).concat([0, 1, 2, 3, 4].map((i) => `r,host=b v=${10 + i}i ${T0 + 3600 + i}`));
    assert.equal((await server.writeLines(lines.join('\n'), 'db=rp&precision=s')).status, 204);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT count(*), sum(v) FROM r', 'rp'), [[8, 63]]);
    const [first, second] = await bucketObjects('replaced/rp/r/');
    assert.notEqual(first.size, second.size);
    // The first hour's key now holds the second hour's file.
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: first.key, Body: await objectBytes(second.key) }));
    assert.deepEqual(await server.rows('SELECT count(*), sum(v) FROM r', 'rp'), [[10, 120]]);
    // The second hour's key now holds a file with one more column: its columns are read again.
    assert.equal((await server.writeLines(`rx,host=c v=20i,extra=7i ${T0 + 3600}`, 'db=rp&precision=s')).status, 204);
    await server.flush();
    const [withExtra] = await bucketObjects('replaced/rp/rx/');
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: second.key, Body: await objectBytes(withExtra.key) }));
    assert.deepEqual(await server.rows('SELECT count(*), sum(v), sum(extra) FROM r', 'rp'), [[6, 80, 7]]);
    assert.deepEqual((await server.rows('DESCRIBE r', 'rp')).map(([name]) => name), ['time', 'host', 'v', 'extra']);
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
  }
});

test('S3 backend: GET /api/v1/measurements over a bucket that stopped answering ends at the query timeout with 504, as SHOW TABLES does', async () => {
  // Holds back every listing once armed, until released (a stalled S3).
  let stalled: Promise<void> | undefined;
  let release!: () => void;
  const proxy = await S3Proxy.start(s3.endpoint, async () => undefined, async ({ url }) => {
    if (stalled !== undefined && url.includes('list-type=2')) await stalled;
  });
  const server = await TestServer.start(s3.env({
    STRATA_S3_ENDPOINT: proxy.endpoint, STRATA_S3_PREFIX: 'stall/', STRATA_S3_LIST_TTL_MS: '0', STRATA_QUERY_TIMEOUT_MS: '1000',
  }));
  try {
    assert.equal((await server.writeLines('m,host=a v=1i 1767225600', 'db=st&precision=s')).status, 204);
    await server.flush();
    const listed = (await (await fetch(`${server.url}/api/v1/measurements?database=st`)).json()) as { count: number };
    assert.equal(listed.count, 1);
    stalled = new Promise<void>((resolve) => (release = resolve));
    const started = performance.now();
    // Without a deadline the answer took the S3 client's retries (minutes): the test gives up at 10 s.
    const res = await fetch(`${server.url}/api/v1/measurements?database=st`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { success: boolean; error: string };
    assert.equal(res.status, 504, JSON.stringify(body));
    assert.match(body.error, /1000 ms/);
    assert.ok(performance.now() - started < 3_000, `answered after ${(performance.now() - started).toFixed(0)} ms`);
  } finally {
    release?.();
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
    await proxy.close();
  }
});

test('S3 backend: start-up fails with a clear message when the bucket is missing', async () => {
  const dataDir = tempDir();
  try {
    await assert.rejects(
      TestServer.start(s3.env({ STRATA_S3_BUCKET: 'no-such-bucket', STRATA_S3_MAX_ATTEMPTS: '1' }), dataDir),
      /server exited with 1 before listening:[\s\S]*storage unavailable: S3 bucket s3:\/\/no-such-bucket\/ at http:\/\/127\.0\.0\.1:\d+ is not reachable: .*404/,
    );
  } finally {
    removeDir(dataDir);
  }
});

test('S3 backend: start-up refused with 403 (wrong credentials) says access is denied and which settings to check', async () => {
  // An endpoint that denies everything, as S3 does a key it does not know.
  const denier = createServer((req, res) => {
    req.resume();
    res.writeHead(403, { 'content-type': 'application/xml' }).end();
  });
  await new Promise<void>((resolve) => denier.listen(0, '127.0.0.1', resolve));
  const dataDir = tempDir();
  try {
    const { port } = denier.address() as AddressInfo;
    await assert.rejects(
      TestServer.start(s3.env({ STRATA_S3_ENDPOINT: `http://127.0.0.1:${port}`, STRATA_S3_MAX_ATTEMPTS: '1' }), dataDir),
      /storage unavailable: S3 bucket s3:\/\/\S+ at http:\/\/127\.0\.0\.1:\d+ is not reachable: .*\(HTTP 403\): access denied \(check STRATA_S3_ACCESS_KEY_ID and STRATA_S3_SECRET_ACCESS_KEY/,
    );
  } finally {
    denier.close();
    removeDir(dataDir);
  }
});
