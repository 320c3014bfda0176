/**
 * What read-your-writes costs a query: the same query over a measurement whose records
 * are all still buffered (never flushed), at growing buffer sizes. Each query copies the
 * held records into a DuckDB table (`src/write/snapshot-table.ts`) before it runs, so the
 * cost grows with the records held, not with what the query reads.
 *
 * Run: `npx tsc -p . && UV_THREADPOOL_SIZE=12 node --max-semi-space-size=64 dist/bench/read-your-writes.js`
 * Settings (environment): BENCH_HOSTS (100) TSBS hosts, BENCH_RUNS (15) queries per size
 * (the median is printed), BENCH_SIZES (1000,10000,100000,300000) buffered records.
 * The server's flush limits are raised so nothing is flushed during the run.
 */
import { removeDir, TestServer } from '../test/harness.js';
import { CpuGenerator } from './tsbs.js';
import { median } from './stats.js';

const DATABASE = 'bench';
const ROWS_PER_BODY = 20_000;
const HOSTS = Number(process.env.BENCH_HOSTS ?? 100);
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const SIZES = (process.env.BENCH_SIZES ?? '1000,10000,100000,300000').split(',').map(Number);
const SQL = 'SELECT hostname, max(usage_user) AS m FROM cpu GROUP BY hostname ORDER BY m DESC LIMIT 5';


async function main(): Promise<void> {
  const server = await TestServer.start({
    UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '12', STRATA_QUERY_POOL_SIZE: '4', STRATA_QUERY_CACHE_TTL_MS: '0',
    STRATA_BUFFER_MAX_RECORDS: '100000000', STRATA_BUFFER_MAX_AGE_MS: '3600000', STRATA_BUFFER_MAX_BYTES: '8000000000',
  });
  try {
    const gen = new CpuGenerator({ hosts: HOSTS });
    let written = 0;
    let previous: { size: number; ms: number } | undefined;
    console.log(`top-5 query (${SQL}) over buffered records only; medians of ${RUNS}`);
    for (const size of SIZES) {
      while (written < size) {
        const n = Math.min(ROWS_PER_BODY, size - written);
        const res = await server.post('/api/v1/write/msgpack', gen.msgpackColumnar(n), { 'content-type': 'application/msgpack', 'x-arc-database': DATABASE });
        if (res.status !== 204) throw new Error(`write: ${res.status} ${await res.text()}`);
        written += n;
      }
      const times: number[] = [];
      let buffered = 0;
      for (let i = 0; i < RUNS; i++) {
        const t0 = performance.now();
        const res = await fetch(`${server.url}/api/v1/query`, {
          method: 'POST', body: JSON.stringify({ sql: SQL }),
          headers: { 'content-type': 'application/json', 'x-arc-database': DATABASE, 'x-strata-profile': 'true' },
        });
        const body = (await res.json()) as { profile?: { buffered_rows: number } };
        times.push(performance.now() - t0);
        if (res.status !== 200) throw new Error(`query: ${res.status} ${JSON.stringify(body)}`);
        buffered = body.profile?.buffered_rows ?? 0;
      }
      if (buffered !== size) throw new Error(`expected ${size} buffered records in the query's profile, got ${buffered}`);
      const ms = median(times);
      const marginal = previous === undefined ? '' : ` (${(((ms - previous.ms) * 1000) / (size - previous.size)).toFixed(2)} µs per record added)`;
      console.log(`  ${size.toLocaleString('en').padStart(9)} buffered records: ${ms.toFixed(1).padStart(6)} ms${marginal}`);
      previous = { size, ms };
    }
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
}

await main();
