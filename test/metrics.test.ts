/**
 * End to end: `GET /metrics` (Prometheus text format 0.0.4). Writes over every protocol,
 * flushes and runs queries ending in each outcome against a real server, then checks
 * the values scraped against what was sent, what is on disk and what was answered.
 * On the S3 backend, the local file cache's figures are exported too.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { parquetFiles, removeDir, sleep, TestServer } from './harness.js';
import { S3TestServer } from './s3-harness.js';

let server: TestServer;
const T0_NS = 1767225600_000000000n; // 2026-01-01T00:00:00Z
const T0_MS = 1767225600_000;
const DB = 'metrics';

/** One scrape: samples by `name{labels}` as printed, and each metric family's type. */
interface Scrape {
  samples: Map<string, number>;
  types: Map<string, string>;
}

async function scrape(from: TestServer = server): Promise<Scrape> {
  const res = await fetch(`${from.url}/metrics`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of (await res.text()).split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) types.set(type[1], type[2]);
    if (line === '' || line.startsWith('#')) continue;
    const sample = /^(\S+) (\S+)$/.exec(line);
    assert.ok(sample !== null, `not a sample line: ${line}`);
    samples.set(sample[1], Number(sample[2]));
  }
  return { samples, types };
}

/** The value of `key` (`name` or `name{label="value"}`), failing when it is absent. */
function value(s: Scrape, key: string): number {
  const v = s.samples.get(key);
  assert.ok(v !== undefined, `${key} is not exported`);
  return v;
}

const sent = { influxdb_v1: 0, influxdb_v2: 0, line_protocol: 0, msgpack: 0 };

async function write(protocol: keyof typeof sent, path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Response> {
  sent[protocol] += Buffer.byteLength(body);
  return server.post(path, body, headers);
}

async function query(sql: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(`${server.url}/api/v1/query`, {
    method: 'POST', body: JSON.stringify({ sql }), signal,
    headers: { 'content-type': 'application/json', 'x-arc-database': DB, ...headers },
  });
}

before(async () => {
  // No flush by age: the buffered figures stay put until the test flushes.
  server = await TestServer.start({ STRATA_BUFFER_MAX_AGE_MS: '600000' });
});
after(async () => {
  assert.equal(await server.stop(), 0);
  removeDir(server.dataDir);
});

describe('GET /metrics', () => {
  test('write counters per protocol, buffered records and bytes, WAL appends', async () => {
    const lines = (n: number, from: number): string =>
      Array.from({ length: n }, (_, i) => `cpu,host=a usage=${from + i}.5 ${T0_NS + BigInt(from + i) * 1_000_000_000n}`).join('\n');
    const partial = await write('influxdb_v1', `/write?db=${DB}`, `${lines(3, 0)}\ncpu,host=a usage=oops`);
    assert.equal(partial.status, 400);
    assert.equal(((await partial.json()) as { accepted: number }).accepted, 3);
    assert.equal((await write('influxdb_v2', `/api/v2/write?bucket=${DB}&org=o`, lines(2, 3))).status, 204);
    assert.equal((await write('line_protocol', '/api/v1/write/line-protocol', lines(1, 5), { 'x-arc-database': DB })).status, 204);
    const packed = Buffer.from(encode({ m: 'mem', columns: { time: [0, 1, 2, 3].map((i) => T0_MS + i), host: ['a', 'b', 'c', 'd'], free: [1, 2, 3, 4] } }));
    assert.equal((await write('msgpack', '/api/v1/write/msgpack', packed, { 'content-type': 'application/msgpack', 'x-arc-database': DB })).status, 204);

    const s = await scrape();
    const accepted = { influxdb_v1: 3, influxdb_v2: 2, line_protocol: 1, msgpack: 4 };
    for (const protocol of Object.keys(sent) as (keyof typeof sent)[]) {
      assert.equal(value(s, `strata_write_requests_total{protocol="${protocol}"}`), 1, protocol);
      assert.equal(value(s, `strata_write_request_bytes_total{protocol="${protocol}"}`), sent[protocol], protocol);
      assert.equal(value(s, `strata_write_records_accepted_total{protocol="${protocol}"}`), accepted[protocol], protocol);
      assert.equal(value(s, `strata_write_records_rejected_total{protocol="${protocol}"}`), protocol === 'influxdb_v1' ? 1 : 0, protocol);
    }
    assert.equal(value(s, 'strata_buffered_records') + value(s, 'strata_pending_flush_records'), 10);
    assert.equal(value(s, 'strata_buffer_measurements'), 2);
    assert.ok(value(s, 'strata_buffer_held_bytes') > 0);
    assert.ok(value(s, 'strata_buffer_held_bytes') < value(s, 'strata_buffer_max_bytes'));
    assert.equal(value(s, 'strata_records_written_total'), 0);
    assert.equal(value(s, 'strata_write_refused_total'), 0);
    // Every request with a valid record is logged before it is answered.
    assert.equal(value(s, 'strata_wal_appends_total'), 4);
    assert.ok(value(s, 'strata_wal_syncs_total') >= 1);
    assert.ok(value(s, 'strata_wal_bytes') > 0);
  });

  test('a flush: records written, flushes, Parquet files and bytes as on disk, buffers empty', async () => {
    await server.flush();
    const s = await scrape();
    const files = parquetFiles(server.dataDir);
    assert.equal(files.length, 2, 'one file per measurement (one hour each)');
    assert.equal(value(s, 'strata_parquet_files_written_total'), files.length);
    assert.equal(value(s, 'strata_parquet_written_bytes_total'), files.reduce((n, f) => n + statSync(join(server.dataDir, f)).size, 0));
    assert.equal(value(s, 'strata_records_written_total'), 10);
    assert.equal(value(s, 'strata_flushes_total'), 2);
    assert.equal(value(s, 'strata_flush_failures_total'), 0);
    assert.equal(value(s, 'strata_flushes_in_pieces_total'), 0);
    assert.equal(value(s, 'strata_buffered_records'), 0);
    assert.equal(value(s, 'strata_pending_flush_records'), 0);
    assert.equal(value(s, 'strata_buffer_held_bytes'), 0);
    assert.equal(value(s, 'strata_storage_healthy'), 1);
  });

  test('queries by outcome, their duration, the result cache and the pool', async () => {
    const ok = await query('SELECT count(*) AS n FROM cpu', { 'x-strata-profile': 'true' });
    assert.equal(ok.status, 200);
    assert.deepEqual(((await ok.json()) as { data: unknown[][] }).data, [[6]]);
    const hit = await query('SELECT count(*) AS n FROM cpu', { 'x-strata-profile': 'true' });
    assert.equal(((await hit.json()) as { profile: { cache: string } }).profile.cache, 'hit');
    const bad = await query('SELEC nonsense');
    assert.equal(bad.status, 400);
    await bad.arrayBuffer();
    const badHeader = await query('SELECT 1', { 'x-strata-priority': 'urgent' });
    assert.equal(badHeader.status, 400);
    await badHeader.arrayBuffer();
    const slow = 'SELECT count(*) FROM range(100000000000) a';
    const timedOut = await query(slow, { 'x-strata-timeout-ms': '300' });
    assert.equal(timedOut.status, 504);
    await timedOut.arrayBuffer();
    const controller = new AbortController();
    const gone = query(slow, {}, controller.signal);
    await sleep(200);
    controller.abort();
    await assert.rejects(gone);

    // The server learns of the vanished client asynchronously.
    let s = await scrape();
    for (let i = 0; i < 100 && value(s, 'strata_queries_total{outcome="cancelled"}') === 0; i++) {
      await sleep(50);
      s = await scrape();
    }
    assert.equal(value(s, 'strata_queries_total{outcome="ok"}'), 2);
    assert.equal(value(s, 'strata_queries_total{outcome="rejected"}'), 2);
    assert.equal(value(s, 'strata_queries_total{outcome="timeout"}'), 1);
    assert.equal(value(s, 'strata_queries_total{outcome="cancelled"}'), 1);
    assert.equal(value(s, 'strata_queries_total{outcome="queue_full"}'), 0);
    assert.equal(value(s, 'strata_queries_total{outcome="error"}'), 0);
    assert.equal(value(s, 'strata_query_duration_seconds_count'), 6);
    assert.ok(value(s, 'strata_query_duration_seconds_sum') >= 0.3, 'the timed-out query took its 300 ms');
    assert.equal(value(s, 'strata_query_duration_seconds_bucket{le="+Inf"}'), 6);

    assert.equal(value(s, 'strata_query_cache_hits_total'), 1);
    // The first count, the bad SQL, the timed-out and the cancelled query; a bad header never reaches the cache.
    assert.equal(value(s, 'strata_query_cache_misses_total'), 4);
    assert.equal(value(s, 'strata_query_cache_entries'), 1);

    assert.equal(value(s, 'strata_query_pool_connections'), 2);
    assert.equal(value(s, 'strata_query_queue_max'), 100);
    for (const priority of ['critical', 'high', 'normal', 'low']) assert.equal(value(s, `strata_query_queue_depth{priority="${priority}"}`), 0);
    assert.ok(value(s, 'strata_query_pool_leases_total') >= 3, 'the first count, the timed-out and the cancelled query');
    assert.ok(value(s, 'strata_query_pool_aborted_total') >= 2, 'the timed-out and the cancelled query');
    assert.equal(value(s, 'strata_query_queue_rejected_total'), 0);
  });

  test('naming: strata_ counters end in _total, no S3 cache metrics on local storage, process metrics', async () => {
    const s = await scrape();
    const strata = [...s.types].filter(([name]) => name.startsWith('strata_'));
    assert.ok(strata.length > 40);
    for (const [name, type] of strata) assert.equal(name.endsWith('_total'), type === 'counter', `${name} is a ${type}`);
    assert.equal(s.types.get('strata_query_duration_seconds'), 'histogram');
    assert.ok(!strata.some(([name]) => name.startsWith('strata_s3_')));
    assert.ok(value(s, 'process_cpu_user_seconds_total') > 0);
    assert.ok(value(s, 'nodejs_heap_size_used_bytes') > 0);
  });
});

describe('GET /metrics on S3', () => {
  let s3: S3TestServer;
  let node: TestServer;
  before(async () => {
    s3 = await S3TestServer.start();
    node = await TestServer.start(s3.env());
  });
  after(async () => {
    assert.equal(await node.stop(), 0);
    removeDir(node.dataDir);
    await s3.destroy();
  });

  test('the local Parquet cache figures are those of /api/v1/storage/stats', async () => {
    assert.equal((await node.writeLines(`cpu,host=a usage=1 ${T0_NS}`, `db=${DB}`)).status, 204);
    await node.flush();
    assert.deepEqual(await node.rows('SELECT count(*) FROM cpu', DB), [[1]]);
    const s = await scrape(node);
    const { stats: { cache } } = (await (await fetch(`${node.url}/api/v1/storage/stats`)).json()) as {
      stats: { cache: { bytes: number; max_bytes: number; files: number; pinned_files: number; hits: number; misses: number; downloaded_bytes: number; evictions: number; footer_reads: number } };
    };
    assert.equal(value(s, 'strata_parquet_files_written_total'), 1);
    // Written through the cache: the query found its file there.
    assert.equal(cache.files, 1);
    assert.equal(cache.hits, 1);
    assert.equal(value(s, 'strata_s3_cache_files'), cache.files);
    assert.equal(value(s, 'strata_s3_cache_bytes'), cache.bytes);
    assert.equal(value(s, 'strata_s3_cache_bytes'), value(s, 'strata_parquet_written_bytes_total'));
    assert.equal(value(s, 'strata_s3_cache_max_bytes'), cache.max_bytes);
    assert.equal(value(s, 'strata_s3_cache_pinned_files'), cache.pinned_files);
    assert.equal(value(s, 'strata_s3_cache_hits_total'), cache.hits);
    assert.equal(value(s, 'strata_s3_cache_misses_total'), cache.misses);
    assert.equal(value(s, 'strata_s3_cache_downloaded_bytes_total'), cache.downloaded_bytes);
    assert.equal(value(s, 'strata_s3_cache_evictions_total'), cache.evictions);
    assert.equal(value(s, 'strata_s3_cache_footer_reads_total'), cache.footer_reads);
    assert.equal(value(s, 'strata_storage_healthy'), 1);
  });
});
