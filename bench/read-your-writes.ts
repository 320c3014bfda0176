/**
 * What read-your-writes costs a query: the same query over a measurement whose records
 * are all still buffered (never flushed), at growing buffer sizes. A query reads held
 * records from DuckDB tables kept per pool connection (`src/query/held-tables.ts`): the
 * first query on a connection copies every record held, later ones only the records
 * added since. Printed per size (medians of BENCH_RUNS, ms):
 * - *first*: the first query after the buffer was filled up to the size: it copies the
 *   records added since its connection's last query (at least the whole step);
 * - *steady*: queries with no write in between (nothing to copy);
 * - *with writes*: 1,000 records written before each query (what a dashboard over a
 *   measurement under ingest pays).
 *
 * Run: `npx tsc -p . && UV_THREADPOOL_SIZE=12 node --max-semi-space-size=64 dist/bench/read-your-writes.js`
 * Settings (environment): BENCH_HOSTS (100) TSBS hosts, BENCH_RUNS (15) queries per
 * measurement, BENCH_SIZES (1000,20000,100000,300000) buffered records.
 * The server's flush limits are raised so nothing is flushed during the run.
 */
import { removeDir, TestServer } from '../test/harness.js';
import { CpuGenerator } from './tsbs.js';
import { median } from './stats.js';

const DATABASE = 'bench';
const ROWS_PER_BODY = 20_000;
const HOSTS = Number(process.env.BENCH_HOSTS ?? 100);
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const SIZES = (process.env.BENCH_SIZES ?? '1000,20000,100000,300000').split(',').map(Number);
const POOL = 4;
const SQL = 'SELECT hostname, max(usage_user) AS m FROM cpu GROUP BY hostname ORDER BY m DESC LIMIT 5';


async function main(): Promise<void> {
  const server = await TestServer.start({
    UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '12', STRATA_QUERY_POOL_SIZE: String(POOL), STRATA_QUERY_CACHE_TTL_MS: '0',
    STRATA_BUFFER_MAX_RECORDS: '100000000', STRATA_BUFFER_MAX_AGE_MS: '3600000', STRATA_BUFFER_MAX_BYTES: '8000000000',
  });
  try {
    const gen = new CpuGenerator({ hosts: HOSTS });
    let written = 0;
    const write = async (records: number): Promise<void> => {
      for (let left = records; left > 0;) {
        const n = Math.min(ROWS_PER_BODY, left);
        const res = await server.post('/api/v1/write/msgpack', gen.msgpackColumnar(n), { 'content-type': 'application/msgpack', 'x-arc-database': DATABASE });
        if (res.status !== 204) throw new Error(`write: ${res.status} ${await res.text()}`);
        left -= n;
        written += n;
      }
    };
    const query = async (): Promise<number> => {
      const t0 = performance.now();
      const res = await fetch(`${server.url}/api/v1/query`, {
        method: 'POST', body: JSON.stringify({ sql: SQL }),
        headers: { 'content-type': 'application/json', 'x-arc-database': DATABASE, 'x-strata-profile': 'true' },
      });
      const body = (await res.json()) as { profile?: { buffered_rows: number } };
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`query: ${res.status} ${JSON.stringify(body)}`);
      if (body.profile?.buffered_rows !== written) throw new Error(`the query read ${body.profile?.buffered_rows} buffered records of ${written}`);
      return ms;
    };
    console.log(`top-5 query (${SQL}) over buffered records only, pool of ${POOL}; medians, ms`);
    console.log(`${'records buffered'.padStart(17)} ${'first'.padStart(8)} ${'steady'.padStart(8)} ${'with writes'.padStart(12)}`);
    for (const size of SIZES) {
      await write(size - written);
      const first = await query();
      const steady: number[] = [];
      for (let i = 0; i < RUNS; i++) steady.push(await query());
      const withWrites: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        await write(1000);
        withWrites.push(await query());
      }
      console.log(`${size.toLocaleString('en').padStart(17)} ${first.toFixed(1).padStart(8)} ${median(steady).toFixed(1).padStart(8)} ${median(withWrites).toFixed(1).padStart(12)}`);
    }
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
}

await main();
