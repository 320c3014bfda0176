/**
 * S3 backend benchmark: ingest into Strata on S3 (s3rver on 127.0.0.1, a separate
 * process), then cold vs warm query timings over the same data: cold = the local
 * Parquet cache wiped and Strata restarted (every file downloaded), warm = the files
 * cached. The same ingest into the local backend is run first, for comparison.
 *
 * Run: `npx tsc -p . && UV_THREADPOOL_SIZE=12 node --max-semi-space-size=64 dist/bench/s3.js`
 * Settings (environment): BENCH_SECONDS (10) load duration, BENCH_CONNECTIONS (4),
 * BENCH_HOSTS (1000) TSBS hosts, BENCH_BODIES (20) distinct 10,000-row MessagePack
 * bodies, BENCH_REPEAT (3) warm runs per query (the median is printed).
 *
 * Figures are for this machine's loopback and disk: s3rver is a JavaScript server
 * writing to the same disk, so "S3" costs here are a floor, not a cloud figure.
 * Servers and loader share the cores, as client and server on one machine would.
 */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { removeDir, TestServer } from '../test/harness.js';
import { S3TestServer } from '../test/s3-harness.js';
import { runLoad, type LoadResult } from './loader.js';
import { CpuGenerator } from './tsbs.js';
import { median } from './stats.js';

const ROWS_PER_BODY = 10_000;
const DATABASE = 'bench';

const num = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number`);
  return v;
};
const settings = {
  seconds: num('BENCH_SECONDS', 10),
  connections: num('BENCH_CONNECTIONS', 4),
  hosts: num('BENCH_HOSTS', 1000),
  bodies: num('BENCH_BODIES', 20),
  repeat: num('BENCH_REPEAT', 3),
};

const QUERIES: { name: string; sql: string }[] = [
  { name: 'count', sql: 'SELECT count(*) FROM cpu' },
  { name: 'top hosts', sql: 'SELECT hostname, avg(usage_user) AS u FROM cpu GROUP BY hostname ORDER BY u DESC LIMIT 5' },
  { name: 'hourly max', sql: "SELECT date_trunc('hour', time) AS h, max(usage_user) FROM cpu GROUP BY h ORDER BY h" },
  { name: 'one host, last hour', sql: "SELECT time, usage_user FROM cpu WHERE hostname = 'host_7' AND time >= (SELECT max(time) FROM cpu) - INTERVAL 1 HOUR ORDER BY time" },
];

interface CacheStats {
  files: number;
  bytes: number;
  misses: number;
  downloaded_bytes: number;
}

async function cacheStats(server: TestServer): Promise<CacheStats> {
  return ((await (await fetch(`${server.url}/api/v1/storage/stats`)).json()) as { stats: { cache: CacheStats } }).stats.cache;
}

async function timed(server: TestServer, sql: string): Promise<number> {
  const t0 = performance.now();
  await server.rows(sql, DATABASE);
  return performance.now() - t0;
}

/** Loads the bodies into `server` for the configured time, flushes, and checks the count. */
async function ingest(server: TestServer, bodies: Buffer[]): Promise<{ load: LoadResult; flushSeconds: number; rate: number }> {
  const load = await runLoad({
    url: `${server.url}/api/v1/write/msgpack`, bodies, recordsPerBody: ROWS_PER_BODY,
    headers: { 'content-type': 'application/msgpack', 'x-arc-database': DATABASE },
    connections: settings.connections, durationMs: settings.seconds * 1000,
  });
  const t0 = performance.now();
  await server.flush();
  const flushSeconds = (performance.now() - t0) / 1000;
  const [[count]] = await server.rows('SELECT count(*) FROM cpu', DATABASE);
  if (Number(count) !== load.records) throw new Error(`count(*) = ${count}, acknowledged ${load.records}`);
  return { load, flushSeconds, rate: load.records / (load.seconds + flushSeconds) };
}

function printIngest(label: string, r: { load: LoadResult; flushSeconds: number; rate: number }): void {
  console.log(`  ${label}: ${r.load.records.toLocaleString('en')} records in ${r.load.seconds.toFixed(1)} s + final flush ` +
    `${r.flushSeconds.toFixed(2)} s = ${Math.round(r.rate).toLocaleString('en')} records/s ` +
    `(p50 ${r.load.p50Ms.toFixed(0)} ms, p99 ${r.load.p99Ms.toFixed(0)} ms, errors ${r.load.errors})`);
}

async function main(): Promise<void> {
  const gen = new CpuGenerator({ hosts: settings.hosts });
  const bodies = Array.from({ length: settings.bodies }, () => gen.msgpackColumnar(ROWS_PER_BODY));
  const env = { UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '12', STRATA_QUERY_POOL_SIZE: '4' };
  console.log(`TSBS cpu-only, ${settings.hosts} hosts, MessagePack columnar, ${settings.connections} connections, ${settings.seconds} s load`);

  console.log('Ingest');
  const local = await TestServer.start(env);
  try {
    printIngest('local disk', await ingest(local, bodies));
  } finally {
    await local.stop();
    removeDir(local.dataDir);
  }

  const s3 = await S3TestServer.start('bench');
  let server = await TestServer.start({ ...env, ...s3.env() });
  const dataDir = server.dataDir;
  try {
    printIngest('S3 (s3rver)', await ingest(server, bodies));
    const stored = await cacheStats(server);
    console.log(`  stored: ${stored.files} files, ${(stored.bytes / 1e6).toFixed(1)} MB (write-through: all cached)`);

    console.log(`Queries (ms; cold = cache wiped and server restarted, warm = median of ${settings.repeat})`);
    console.log('  query                  cold ms   warm ms   files downloaded   MB downloaded');
    for (const q of QUERIES) {
      await server.stop();
      await rm(join(dataDir, '.cache'), { recursive: true, force: true });
      server = await TestServer.start({ ...env, ...s3.env() }, dataDir);
      const cold = await timed(server, q.sql);
      const after = await cacheStats(server);
      const warm = median(await sequence(settings.repeat, () => timed(server, q.sql)));
      console.log(`  ${q.name.padEnd(22)} ${cold.toFixed(0).padStart(7)}   ${warm.toFixed(0).padStart(7)}   ` +
        `${String(after.misses).padStart(16)}   ${(after.downloaded_bytes / 1e6).toFixed(1).padStart(13)}`);
    }
  } finally {
    await server.stop();
    removeDir(dataDir);
    await s3.destroy();
  }
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`load average after the run: ${load}`);
}

async function sequence(n: number, fn: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await fn());
  return out;
}

await main();
