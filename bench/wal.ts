/**
 * Write-ahead-log benchmark: line-protocol ingest throughput with the WAL off and in
 * each sync mode (`none`, `interval`, `fsync`) in one run, and memory under a loader
 * that writes faster than Parquet is written (the byte bound answering 429).
 *
 *   npx tsc -p . && UV_THREADPOOL_SIZE=12 node --max-semi-space-size=64 dist/bench/wal.js [seconds]
 *
 * Each mode gets a fresh Strata process (`test/harness.ts`) over a fresh data directory,
 * TSBS cpu-only bodies of 5,000 lines (`bench/tsbs.ts`) posted over 4 keep-alive
 * connections (`bench/loader.ts`) for `seconds` (default 8), then a flush and a
 * `count(*)` that must equal the records acknowledged. Reported: records/s acknowledged
 * during the load, the cost of each mode against WAL off, p50/p99 latency, the
 * group-commit factor (appends per sync) and the server's peak RSS (VmHWM).
 * Figures, not assertions: the target (fsync costs < 30 %) is judged by reading them.
 */
import { readFileSync } from 'node:fs';
import { runLoad, type LoadResult } from './loader.js';
import { CpuGenerator } from './tsbs.js';
import { removeDir, sleep, TestServer } from '../test/harness.js';

const LINES_PER_BODY = 5_000;
const BODIES = 40;
const CONNECTIONS = 4;

/** Resident set now (VmRSS) and at peak (VmHWM) of `pid`, MiB. */
function rssMiB(pid: number): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { now: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

interface Run {
  label: string;
  load: LoadResult;
  stored: number;
  appendsPerSync: number | undefined;
  peakMiB: number;
}

async function run(label: string, env: Record<string, string>, bodies: Buffer[], seconds: number): Promise<Run> {
  const server = await TestServer.start({ UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '12', ...env });
  try {
    const load = await runLoad({
      url: `${server.url}/write?db=bench&precision=ns`, bodies, recordsPerBody: LINES_PER_BODY,
      headers: { 'content-type': 'text/plain; charset=utf-8' }, connections: CONNECTIONS, durationMs: seconds * 1000,
    });
    const stats = await (await fetch(`${server.url}/api/v1/write/stats`)).json() as { wal: { appends?: number; syncs?: number } };
    await server.flush();
    const stored = Number((await server.rows('SELECT count(*) FROM cpu', 'bench'))[0][0]);
    const { appends, syncs } = stats.wal;
    return { label, load, stored, appendsPerSync: appends !== undefined && syncs ? appends / syncs : undefined, peakMiB: rssMiB(server.process.pid!).peak };
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
}

/** Loads with a 16 MiB byte bound and slow flushes (zstd), sampling RSS; returns the samples' maximum and the 429 count. */
async function memoryBound(bodies: Buffer[], seconds: number): Promise<{ load: LoadResult; maxRssMiB: number; boundMiB: number }> {
  const boundMiB = 16;
  const server = await TestServer.start({
    UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '12',
    STRATA_BUFFER_MAX_BYTES: String(boundMiB * 1048576), STRATA_PARQUET_COMPRESSION: 'zstd', STRATA_WAL_SYNC: 'interval',
  });
  let maxRssMiB = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      maxRssMiB = Math.max(maxRssMiB, rssMiB(server.process.pid!).now);
      await sleep(100);
    }
  })();
  try {
    const load = await runLoad({
      url: `${server.url}/write?db=bench&precision=ns`, bodies, recordsPerBody: LINES_PER_BODY,
      headers: { 'content-type': 'text/plain; charset=utf-8' }, connections: 8, durationMs: seconds * 1000,
    });
    return { load, maxRssMiB, boundMiB };
  } finally {
    sampling = false;
    await sampler;
    await server.stop();
    removeDir(server.dataDir);
  }
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 8);
  const gen = new CpuGenerator({ hosts: 1000 });
  const bodies = Array.from({ length: BODIES }, () => gen.lineProtocol(LINES_PER_BODY));
  console.log(`WAL benchmark: TSBS cpu-only line protocol, ${LINES_PER_BODY} lines/body, ${CONNECTIONS} connections, ${seconds} s per mode`);
  const runs: Run[] = [];
  for (const [label, env] of [
    ['WAL off', { STRATA_WAL_ENABLED: 'false' }],
    ['WAL none', { STRATA_WAL_SYNC: 'none' }],
    ['WAL interval (100 ms)', { STRATA_WAL_SYNC: 'interval' }],
    ['WAL fsync (group commit)', { STRATA_WAL_SYNC: 'fsync' }],
  ] as const) {
    runs.push(await run(label, env, bodies, seconds));
  }
  const base = runs[0].load.recordsPerSec;
  console.log('| mode | records/s | vs off | p50 ms | p99 ms | appends/sync | stored = acked | peak RSS MiB |');
  console.log('|---|---:|---:|---:|---:|---:|---|---:|');
  for (const r of runs) {
    const cost = r.label === 'WAL off' ? '-' : `${(((r.load.recordsPerSec - base) / base) * 100).toFixed(1)} %`;
    console.log(`| ${r.label} | ${Math.round(r.load.recordsPerSec)} | ${cost} | ${r.load.p50Ms.toFixed(1)} | ${r.load.p99Ms.toFixed(1)} | ` +
      `${r.appendsPerSync === undefined ? '-' : r.appendsPerSync.toFixed(2)} | ${r.stored === r.load.records ? 'yes' : `NO (${r.stored} vs ${r.load.records})`} | ${r.peakMiB.toFixed(0)} |`);
  }
  // A count that differs from the acknowledged records is a durability bug, not a figure.
  if (runs.some((r) => r.stored !== r.load.records)) process.exitCode = 1;
  const m = await memoryBound(bodies, seconds);
  console.log(`\nOverload (8 connections, zstd, STRATA_BUFFER_MAX_BYTES = ${m.boundMiB} MiB): ${Math.round(m.load.recordsPerSec)} records/s acknowledged, ` +
    `${m.load.errors} requests refused (429), max RSS ${m.maxRssMiB.toFixed(0)} MiB`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
