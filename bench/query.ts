/**
 * `npm run bench:query`: query latency and result throughput, Strata's HTTP API vs
 * DuckDB run directly on the same Parquet files.
 *
 * TSBS cpu-only data (`tsbs.ts`, BENCH_HOSTS hosts × 24 h at 10 s) is written through
 * `/api/v1/write/msgpack` into a fresh Strata server (a child process, `test/harness.ts`)
 * and flushed. Then, on those same files:
 * 1. each query of a TSBS-style set runs BENCH_RUNS times through `POST /api/v1/query`
 *    (JSON, body read in full) and, alternating, in a DuckDB instance of this process
 *    over `read_parquet('<data dir>/bench/cpu/**\/*.parquet')` (rows read in full with
 *    `runAndReadAll`); medians and their ratio are printed (target ≤ 1.15× for
 *    aggregations), and the same again through `POST /api/v1/query/arrow`, whose
 *    encoding costs next to nothing, to separate the fixed cost of a request (HTTP,
 *    planning, prepare) from JSON's per-value cost. The server's result cache is off (`STRATA_QUERY_CACHE_TTL_MS=0`),
 *    so every request runs in DuckDB.
 * 2. a 1 M-row, 6-column result is fetched as JSON and as Arrow (targets ≥ 2 M rows/s
 *    JSON, ≥ 8 M rows/s Arrow), time from request to the last byte received. Where `curl`
 *    is installed, the same requests are also timed through it (body discarded): a client
 *    in C that costs the two cores less than this process's `node:http` reading the body.
 *
 * Requests go through `LoopbackClient` (`loader.ts`: one keep-alive `node:http`
 * connection, the whole body read), as Grafana's Go client or a script's HTTP library
 * would, rather than through `fetch`, whose own cost per request and per MB is larger.
 *
 * Settings (environment variables): BENCH_HOSTS (100), BENCH_RUNS (15), BENCH_ONLY
 * (`throughput`: part 2 only, e.g. to profile the result encoders), BENCH_CLIENT (`http`,
 * or `fetch` for the client of earlier figures).
 * STRATA_* variables pass through to the server; UV_THREADPOOL_SIZE (12 unless set).
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readParquetSource } from '../src/query/sql-rewriter.js';
import { removeDir, TestServer } from '../test/harness.js';
import { LoopbackClient } from './loader.js';
import { CpuGenerator } from './tsbs.js';
import { median } from './stats.js';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 100);
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const DATABASE = 'bench';
const ROWS_PER_BODY = 10_000;
/** 24 h at one record per host every 10 s. */
const STEPS = 8_640;
const BIG_ROWS = 1_000_000;
/** Timed requests per form of the 1 M-row result (the median is printed), after BIG_WARMUPS untimed ones: the server's first few are slower (JIT, DuckDB's allocator). */
const BIG_RUNS = 9;
const BIG_WARMUPS = 3;
const ONLY_THROUGHPUT = process.env.BENCH_ONLY === 'throughput';
/** `http` (default): `LoopbackClient`, one keep-alive `node:http` connection; `fetch`: Node's fetch, the client of figures before 2026-12-04. */
const CLIENT = process.env.BENCH_CLIENT ?? 'http';
if (CLIENT !== 'http' && CLIENT !== 'fetch') throw new RangeError(`BENCH_CLIENT must be http or fetch, got ${CLIENT}`);

const QUERIES: { name: string; sql: string; aggregation: boolean }[] = [
  {
    name: 'single host, 12 h, max per minute', aggregation: true,
    sql: `SELECT date_trunc('minute', time) AS minute, max(usage_user) AS m FROM cpu
          WHERE hostname = 'host_7' AND time >= '2026-01-01T06:00:00Z' AND time < '2026-01-01T18:00:00Z' GROUP BY minute ORDER BY minute`,
  },
  {
    name: 'all hosts, 1 h averages over the day', aggregation: true,
    sql: `SELECT date_trunc('hour', time) AS hour, hostname, avg(usage_user), avg(usage_system), avg(usage_idle) FROM cpu
          GROUP BY hour, hostname ORDER BY hour, hostname`,
  },
  {
    name: 'last point per host', aggregation: true,
    sql: 'SELECT DISTINCT ON (hostname) * FROM cpu ORDER BY hostname, time DESC',
  },
  {
    name: 'top 5 hosts by max usage_user', aggregation: true,
    sql: 'SELECT hostname, max(usage_user) AS m FROM cpu GROUP BY hostname ORDER BY m DESC LIMIT 5',
  },
  {
    name: '5-min buckets × host, 12 h', aggregation: true,
    sql: `SELECT time_bucket(INTERVAL '5 minutes', time) AS bucket, hostname, avg(usage_user), max(usage_system) FROM cpu
          WHERE time >= '2026-01-01T00:00:00Z' AND time < '2026-01-01T12:00:00Z' GROUP BY bucket, hostname ORDER BY bucket, hostname`,
  },
];

const BIG_SQL = `SELECT time, hostname, usage_user, usage_system, usage_idle, usage_iowait
  FROM (SELECT * FROM cpu UNION ALL SELECT * FROM cpu) LIMIT ${BIG_ROWS}`;


const HEADERS = { 'content-type': 'application/json', 'x-arc-database': DATABASE };

/** POSTs `sql` to `path` through `client` and reads the answer in full; resolves with its body. */
async function send(client: LoopbackClient | string, path: string, sql: string, headers: Record<string, string> = {}): Promise<Buffer> {
  const body = JSON.stringify({ sql });
  const all = { ...HEADERS, ...headers };
  const res = typeof client === 'string'
    ? await fetch(client + path, { method: 'POST', body, headers: all }).then(async (r) => ({ status: r.status, body: Buffer.from(await r.arrayBuffer()) }))
    : await client.post(path, body, all);
  if (res.status !== 200) throw new Error(`${path} ${res.status}: ${sql}`);
  if (res.body.length === 0) throw new Error('empty body');
  return res.body;
}

/** Milliseconds from sending `sql` to the last byte of its answer. */
async function post(client: LoopbackClient | string, path: string, sql: string, headers: Record<string, string> = {}): Promise<number> {
  const t0 = performance.now();
  await send(client, path, sql, headers);
  return performance.now() - t0;
}

/**
 * Milliseconds from sending `sql` to the last byte of its answer, through `curl` (`-o
 * /dev/null`); undefined when curl is not installed. @throws Error on a status other than 200.
 */
async function curlMs(url: string, sql: string, headers: Record<string, string>): Promise<number | undefined> {
  const args = ['-s', '-o', '/dev/null', '-w', '%{http_code} %{time_total}', '-d', JSON.stringify({ sql })];
  for (const [name, value] of Object.entries({ ...HEADERS, ...headers })) args.push('-H', `${name}: ${value}`);
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)('curl', [...args, url]));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const [status, seconds] = stdout.split(' ');
  if (status !== '200') throw new Error(`curl ${url}: ${status}`);
  return Number(seconds) * 1000;
}

async function main(): Promise<void> {
  const server = await TestServer.start({
    UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '12', STRATA_QUERY_POOL_SIZE: '4', STRATA_QUERY_CACHE_TTL_MS: '0',
    STRATA_WAL_SYNC: 'none',
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('STRATA_')) as [string, string][]),
  });
  try {
    const gen = new CpuGenerator({ hosts: HOSTS });
    const total = HOSTS * STEPS;
    const bodies = Array.from({ length: Math.ceil(total / ROWS_PER_BODY) }, (_, i) => gen.msgpackColumnar(Math.min(ROWS_PER_BODY, total - i * ROWS_PER_BODY)));
    const t0 = performance.now();
    // Each body once, four requests at a time.
    let nextBody = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (nextBody < bodies.length) {
        const res = await server.post('/api/v1/write/msgpack', bodies[nextBody++], { 'content-type': 'application/msgpack', 'x-arc-database': DATABASE });
        if (res.status !== 204) throw new Error(`write: ${res.status} ${await res.text()}`);
      }
    }));
    await server.flush();
    const [[count]] = await server.rows('SELECT count(*) FROM cpu', DATABASE);
    console.log(`ingested ${Number(count).toLocaleString('en')} rows (${HOSTS} hosts × 24 h at 10 s) in ${((performance.now() - t0) / 1000).toFixed(1)} s` +
      `, flushed; UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '12'}, pool 4, result cache off, client ${CLIENT}`);

    const client = CLIENT === 'fetch' ? server.url : new LoopbackClient(server.url);
    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    const source = `read_parquet('${join(server.dataDir, DATABASE, 'cpu')}/**/*.parquet', union_by_name = true)`;
    const direct = async (sql: string): Promise<number> => {
      const t = performance.now();
      await duck.runAndReadAll(sql.replaceAll(/\bFROM cpu\b/g, `FROM ${source}`));
      return performance.now() - t;
    };
    // The shape Strata's rewriter produces (explicit file list in a subquery), without the HTTP and planning around it.
    const files = (await duck.runAndReadAll(`SELECT file FROM glob('${join(server.dataDir, DATABASE, 'cpu')}/**/*.parquet') ORDER BY file`)).getRows().map((r) => String(r[0]));
    const rewritten = `(SELECT * FROM ${readParquetSource(files)})`;
    const asRewritten = async (sql: string): Promise<number> => {
      const t = performance.now();
      await duck.runAndReadAll(sql.replaceAll(/\bFROM cpu\b/g, `FROM ${rewritten}`));
      return performance.now() - t;
    };
    const streamed = async (sql: string): Promise<number> => {
      const t = performance.now();
      const result = await duck.stream(sql.replaceAll(/\bFROM cpu\b/g, `FROM ${rewritten}`));
      while (((await result.fetchChunk())?.rowCount ?? 0) > 0);
      return performance.now() - t;
    };
    const planning = async (sql: string): Promise<number> =>
      (JSON.parse((await send(client, '/api/v1/query', sql, { 'x-strata-profile': 'true' })).toString()) as { profile: { planning_ms: number } }).profile.planning_ms;

    if (!ONLY_THROUGHPUT) {
      console.log(`\n${'query'.padEnd(40)} ${'Strata ms'.padStart(10)} ${'DuckDB ms'.padStart(10)} ${'ratio'.padStart(6)} ${'Arrow ms'.padStart(9)} ${'ratio'.padStart(6)} ${'planning'.padStart(9)} ${'rewritten'.padStart(10)} ${'streamed'.padStart(9)}  (medians of ${RUNS})`);
      for (const q of QUERIES) {
        for (let i = 0; i < 2; i++) { await post(client, '/api/v1/query', q.sql); await direct(q.sql); }
        const s: number[] = [];
        const a: number[] = [];
        const d: number[] = [];
        const p: number[] = [];
        const r: number[] = [];
        const st: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          s.push(await post(client, '/api/v1/query', q.sql));
          d.push(await direct(q.sql));
          a.push(await post(client, '/api/v1/query/arrow', q.sql));
          p.push(await planning(q.sql));
          r.push(await asRewritten(q.sql));
          st.push(await streamed(q.sql));
        }
        const ms = median(s);
        const md = median(d);
        const ma = median(a);
        console.log(`${q.name.padEnd(40)} ${ms.toFixed(1).padStart(10)} ${md.toFixed(1).padStart(10)} ${(ms / md).toFixed(2).padStart(5)}× ${ma.toFixed(1).padStart(9)} ${(ma / md).toFixed(2).padStart(5)}× ${median(p).toFixed(1).padStart(9)} ${median(r).toFixed(1).padStart(10)} ${median(st).toFixed(1).padStart(9)}` +
          `${q.aggregation && ms / md > 1.15 ? '  (target ≤ 1.15×: missed)' : ''}`);
      }

      console.log('Arrow: the same query through POST /api/v1/query/arrow (no per-value text encoding);\n' +
        'planning: Strata\'s profile (parse with json_serialize_sql, list files, evaluate time bounds); rewritten: DuckDB direct\n' +
        'on Strata\'s file-list form, materialized (runAndReadAll); streamed: the same read chunk by chunk (connection.stream), as Strata does.');
    }
    console.log(`\n${BIG_ROWS.toLocaleString('en')}-row result, 6 columns (time, hostname, 4 floats), request to last byte:`);
    const dd: number[] = [];
    for (let i = 0; i < 3; i++) dd.push(await direct(BIG_SQL));
    console.log(`  DuckDB direct (runAndReadAll, no encoding): ${median(dd).toFixed(0)} ms = ${(BIG_ROWS / median(dd) / 1000).toFixed(2)} M rows/s`);
    const forms: [string, string, Record<string, string>, number | undefined][] = [
      ['JSON ', '/api/v1/query', {}, 2], ['Arrow', '/api/v1/query/arrow', {}, 8], ['CSV  ', '/api/v1/query', { accept: 'text/csv' }, undefined]];
    for (const [label, path, headers, target] of forms) {
      for (let i = 0; i < BIG_WARMUPS; i++) await post(client, path, BIG_SQL, headers);
      const t: number[] = [];
      for (let i = 0; i < BIG_RUNS; i++) t.push(await post(client, path, BIG_SQL, headers));
      const rate = BIG_ROWS / median(t) / 1000;
      const goal = target === undefined ? '' : ` (target ≥ ${target} M rows/s${rate < target ? ': missed' : ''})`;
      console.log(`  ${label} ${median(t).toFixed(0)} ms = ${rate.toFixed(2)} M rows/s${goal}`);
    }
    for (const [label, path, headers] of forms) {
      const t: number[] = [];
      for (let i = 0; i < BIG_RUNS + BIG_WARMUPS; i++) {
        const ms = await curlMs(server.url + path, BIG_SQL, headers);
        if (ms === undefined) break;
        if (i >= BIG_WARMUPS) t.push(ms);
      }
      if (t.length > 0) console.log(`  ${label} through curl (body discarded): ${median(t).toFixed(0)} ms = ${(BIG_ROWS / median(t) / 1000).toFixed(2)} M rows/s`);
    }
    duck.closeSync();
    if (typeof client !== 'string') client.close();
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
}

await main();
