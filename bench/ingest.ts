/**
 * `npm run bench`: end-to-end ingest benchmark on TSBS cpu-only data.
 *
 * For each protocol (columnar MessagePack, line protocol) a fresh Strata server is
 * started as a child process over a temporary data directory; the loader (this
 * process) posts pre-encoded bodies for a bounded time, then asks the server to
 * flush and waits until everything acknowledged is in Parquet. The reported rate is
 * records acknowledged / (load seconds + final flush seconds), and a
 * `SELECT count(*)` over the Parquet files must equal the records acknowledged. The
 * same loader then runs against a discard server (bench/discard-server.ts), the HTTP
 * ceiling of the machine. Server and loader are separate processes so that they
 * share the cores as a real client and server on one machine would.
 *
 * Settings (environment variable, or `--name=value` on the command line):
 *   BENCH_SECONDS (10)          load duration per run
 *   BENCH_CONNECTIONS (4)       concurrent keep-alive connections
 *   BENCH_HOSTS (1000)          TSBS hosts (series)
 *   BENCH_LP_BODIES (40)        distinct 5,000-line bodies generated (cycled)
 *   BENCH_MSGPACK_BODIES (20)   distinct 10,000-row bodies generated (cycled)
 *   BENCH_ONLY (msgpack,lp,discard)  which runs to do
 *   BENCH_PROFILE_DIR           if set, Strata children run with --cpu-prof into it
 *   BENCH_QUIET_WAIT (120)      before each run, wait up to this many seconds for the
 *                               machine to be idle (other processes < 0.15 cores); 0 = don't
 * STRATA_* variables (e.g. STRATA_PARQUET_COMPRESSION) pass through to the servers;
 * UV_THREADPOOL_SIZE (12 unless set) too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER_NODE_FLAGS } from '../test/harness.js';
import { runLoad, type LoadResult } from './loader.js';
import { CpuGenerator } from './tsbs.js';

const STRATA_MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const DISCARD_MAIN = fileURLToPath(new URL('./discard-server.js', import.meta.url));

const LP_LINES_PER_BODY = 5_000;
const MSGPACK_ROWS_PER_BODY = 10_000;
const DATABASE = 'bench';
const TARGETS = { msgpack: 500_000, lp: 220_000 } as const;
const START_TIMEOUT_MS = 30_000;
const FLUSH_TIMEOUT_MS = 180_000;
const STOP_GRACE_MS = 30_000;
/** Busy cores (outside this process) below which the machine counts as quiet. */
const QUIET_CORES = 0.15;
/** Linux clock ticks per second for /proc/<pid>/stat (USER_HZ, 100 on every mainstream kernel). */
const CLOCK_TICKS = 100;

type RunName = 'msgpack' | 'lp' | 'discard';

interface Settings {
  seconds: number;
  connections: number;
  hosts: number;
  lpBodies: number;
  msgpackBodies: number;
  only: Set<RunName>;
  profileDir: string | undefined;
  threadpool: string;
  /** Longest wait for a quiet machine before each run, seconds (0 = do not wait). */
  quietWaitS: number;
}

/** `--name=value` arguments as BENCH_NAME overrides, falling back to the environment. */
function readSettings(argv: string[], env: NodeJS.ProcessEnv): Settings {
  const values: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('BENCH_')) values[k] = v;
  for (const arg of argv) {
    const m = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (m === null) throw new Error(`bench: unrecognised argument ${arg} (use --name=value, e.g. --seconds=5)`);
    values[`BENCH_${m[1].replace(/-/g, '_').toUpperCase()}`] = m[2];
  }
  const positive = (name: string, fallback: number): number => {
    const raw = values[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!(n > 0) || !Number.isFinite(n)) throw new Error(`bench: ${name} must be a positive number, got "${raw}"`);
    return n;
  };
  const only = new Set<RunName>();
  for (const name of (values.BENCH_ONLY ?? 'msgpack,lp,discard').split(',').map((s) => s.trim())) {
    if (name !== 'msgpack' && name !== 'lp' && name !== 'discard') throw new Error(`bench: BENCH_ONLY takes msgpack, lp, discard; got "${name}"`);
    only.add(name);
  }
  return {
    seconds: positive('BENCH_SECONDS', 10),
    connections: Math.round(positive('BENCH_CONNECTIONS', 4)),
    hosts: Math.round(positive('BENCH_HOSTS', 1000)),
    lpBodies: Math.round(positive('BENCH_LP_BODIES', 40)),
    msgpackBodies: Math.round(positive('BENCH_MSGPACK_BODIES', 20)),
    only,
    profileDir: values.BENCH_PROFILE_DIR || undefined,
    threadpool: env.UV_THREADPOOL_SIZE ?? '12',
    quietWaitS: values.BENCH_QUIET_WAIT === '0' ? 0 : positive('BENCH_QUIET_WAIT', 120),
  };
}

// ---------------------------------------------------------------------------
// Child processes and temporary directories, always cleaned up.

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();

/** Kills every child still running and removes every temp dir; synchronous so that it works in 'exit'. */
function cleanupNow(): void {
  for (const child of liveChildren) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  liveChildren.clear();
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  liveDirs.clear();
}

function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  liveDirs.add(dir);
  return dir;
}

function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}

/** A server child process: its URL once listening, its last output for diagnostics. */
class ServerProcess {
  private tail = '';

  private constructor(readonly label: string, readonly child: ChildProcess, readonly url: string) {}

  /**
   * Spawns `node [nodeArgs] script` with `env` and resolves once it prints
   * "Server listening at http://127.0.0.1:PORT".
   * @throws when it exits or stays silent for START_TIMEOUT_MS (the child is killed).
   */
  static async start(label: string, nodeArgs: string[], script: string, env: NodeJS.ProcessEnv): Promise<ServerProcess> {
    const child = spawn(process.execPath, [...nodeArgs, script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    liveChildren.add(child);
    let early = '';
    let server: ServerProcess | undefined;
    // Keep draining the pipes for the whole life of the child: a full pipe would block its logger.
    const onData = (chunk: Buffer): void => {
      if (server !== undefined) server.tail = (server.tail + chunk.toString()).slice(-8000);
      else early = (early + chunk.toString()).slice(-8000);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${label} did not start in ${START_TIMEOUT_MS} ms:\n${early}`)), START_TIMEOUT_MS);
        const check = (): void => {
          const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(early);
          if (m !== null) {
            clearTimeout(timer);
            child.stdout!.off('data', check);
            child.stderr!.off('data', check);
            resolve(m[1]);
          }
        };
        child.stdout!.on('data', check);
        child.stderr!.on('data', check);
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`${label} exited (${code ?? signal}) before listening:\n${early}`));
        });
      });
      server = new ServerProcess(label, child, url);
      server.tail = early;
      return server;
    } catch (err) {
      child.kill('SIGKILL');
      liveChildren.delete(child);
      throw err;
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The last output of the child (for error reports). */
  get output(): string {
    return this.tail;
  }

  /** Peak resident set (VmHWM) in bytes, or undefined where /proc is not available. */
  peakRssBytes(): number | undefined {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m === null ? undefined : Number(m[1]) * 1024;
    } catch {
      return undefined;
    }
  }

  /** User + system CPU seconds used so far (all threads), or undefined without /proc. */
  cpuSeconds(): number | undefined {
    try {
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      // Fields after the parenthesised command name (which may contain spaces): utime is the 12th, stime the 13th.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS;
    } catch {
      return undefined;
    }
  }

  /** SIGTERM, then SIGKILL after STOP_GRACE_MS; resolves with the exit code (null when killed). */
  async stop(): Promise<number | null> {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      });
    }
    liveChildren.delete(child);
    return child.exitCode;
  }
}

// ---------------------------------------------------------------------------
// Runs.

interface RunResult {
  label: string;
  load: LoadResult;
  /** Seconds from the flush request to its answer; undefined for the discard server. */
  flushSeconds?: number;
  /** Records counted in Parquet. */
  stored?: number;
  serverCores?: number;
  loaderCores: number;
  /** Cores busy with anything else on the machine during the run (noise). */
  otherCores?: number;
  peakRss?: number;
}

interface Workload {
  name: 'msgpack' | 'lp';
  label: string;
  path: string;
  headers: Record<string, string>;
  bodies: Buffer[];
  recordsPerBody: number;
}

/**
 * Busy CPU seconds of the whole machine (all processes, all cores) from /proc/stat, or
 * undefined without it. Minus server and loader, it shows how much else ran meanwhile:
 * other people's test runs on a shared machine make a run worthless, and this says so.
 */
function machineBusySeconds(): number | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal. Interrupt time is left out: it is
    // mostly the loopback traffic of the benchmark itself, charged to no process.
    const busy = fields[0] + fields[1] + fields[2] + (fields[7] ?? 0);
    return busy / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/**
 * Waits (at most `maxWaitS` seconds) until the machine has been nearly idle for one
 * second, so that a run does not start in the middle of someone else's test suite.
 * Resolves with the cores that were busy in the last second sampled.
 */
async function waitForQuiet(maxWaitS: number): Promise<number | undefined> {
  const until = performance.now() + maxWaitS * 1000;
  let announced = false;
  for (;;) {
    const b0 = machineBusySeconds();
    const c0 = loaderCpuSeconds();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    const b1 = machineBusySeconds();
    if (b0 === undefined || b1 === undefined) return undefined;
    const busy = Math.max(0, b1 - b0 - (loaderCpuSeconds() - c0)) / ((performance.now() - t0) / 1000);
    if (busy <= QUIET_CORES || performance.now() >= until) {
      if (announced) process.stdout.write(busy <= QUIET_CORES ? ' quiet now\n' : ` still ${busy.toFixed(2)} cores busy; running anyway\n`);
      return busy;
    }
    if (!announced) process.stdout.write(`  waiting up to ${maxWaitS} s for other processes to stop (${busy.toFixed(2)} cores busy)...`);
    announced = true;
  }
}

/** CPU seconds of this process (the loader), user + system. */
function loaderCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function postJson(url: string, body: unknown, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number; text: string }> {
  const res = await fetch(url, {
    method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers }, signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, text: await res.text() };
}

async function waitReady(url: string): Promise<void> {
  const until = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < until) {
    const res = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    if (res?.status === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} never became ready`);
}

/** One protocol into a fresh Strata: load, final flush, count check. */
async function runStrata(s: Settings, w: Workload): Promise<RunResult> {
  const dataDir = makeTempDir(`strata-bench-${w.name}-`);
  const nodeArgs = [...SERVER_NODE_FLAGS];
  if (s.profileDir !== undefined) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${s.profileDir}`, `--cpu-prof-name=strata-${w.name}-${Date.now()}.cpuprofile`);
  const server = await ServerProcess.start(`strata (${w.name})`, nodeArgs, STRATA_MAIN, {
    ...process.env, UV_THREADPOOL_SIZE: s.threadpool,
    STRATA_HOST: '127.0.0.1', STRATA_PORT: '0', STRATA_DATA_DIR: dataDir, STRATA_LOG_LEVEL: process.env.STRATA_LOG_LEVEL ?? 'info',
  });
  try {
    await waitReady(server.url);
    if (s.quietWaitS > 0) await waitForQuiet(s.quietWaitS);
    process.stdout.write(`  ${w.label}: server pid ${server.pid}, ${s.seconds} s load...`);
    const serverCpu0 = server.cpuSeconds();
    const loaderCpu0 = loaderCpuSeconds();
    const machine0 = machineBusySeconds();
    const t0 = performance.now();
    const load = await runLoad({
      url: server.url + w.path, bodies: w.bodies, recordsPerBody: w.recordsPerBody, headers: w.headers,
      connections: s.connections, durationMs: s.seconds * 1000,
    });
    const flushStart = performance.now();
    const flush = await postJson(`${server.url}/api/v1/write/flush`, {}, {}, FLUSH_TIMEOUT_MS);
    const flushSeconds = (performance.now() - flushStart) / 1000;
    if (flush.status !== 200) throw new Error(`flush answered ${flush.status}: ${flush.text}`);
    const wall = (performance.now() - t0) / 1000;
    const serverCpu1 = server.cpuSeconds();
    const loaderCpu = loaderCpuSeconds() - loaderCpu0;
    const machine1 = machineBusySeconds();
    process.stdout.write(` flush ${flushSeconds.toFixed(2)} s, counting...`);
    const query = await postJson(`${server.url}/api/v1/query`, { sql: 'SELECT count(*) FROM cpu' }, { 'x-arc-database': DATABASE }, 60_000);
    if (query.status !== 200) throw new Error(`count query answered ${query.status}: ${query.text}`);
    const stored = Number((JSON.parse(query.text) as { data: unknown[][] }).data[0]?.[0] ?? 0);
    process.stdout.write(` ${stored} in Parquet\n`);
    return { label: w.label, load, flushSeconds, stored, ...cores(wall, loaderCpu, serverCpu0, serverCpu1, machine0, machine1), peakRss: server.peakRssBytes() };
  } catch (err) {
    process.stderr.write(`\n${server.label} output (last lines):\n${server.output}\n`);
    throw err;
  } finally {
    const code = await server.stop();
    if (code !== 0) process.stderr.write(`${server.label} exited with ${code}:\n${server.output}\n`);
    removeTempDir(dataDir);
  }
}

/** Average cores used over `wall` seconds by the loader, the server and everything else. */
function cores(wall: number, loaderCpu: number, server0: number | undefined, server1: number | undefined,
  machine0: number | undefined, machine1: number | undefined): { loaderCores: number; serverCores?: number; otherCores?: number } {
  const server = server0 === undefined || server1 === undefined ? undefined : server1 - server0;
  const machine = machine0 === undefined || machine1 === undefined ? undefined : machine1 - machine0;
  return {
    loaderCores: loaderCpu / wall,
    serverCores: server === undefined ? undefined : server / wall,
    otherCores: server === undefined || machine === undefined ? undefined : Math.max(0, machine - server - loaderCpu) / wall,
  };
}

/** Every workload against one discard server (a child, like Strata). */
async function runDiscard(s: Settings, workloads: Workload[]): Promise<RunResult[]> {
  const server = await ServerProcess.start('discard server', ['--max-semi-space-size=64'], DISCARD_MAIN, { ...process.env, DISCARD_PORT: '0' });
  const results: RunResult[] = [];
  try {
    for (const w of workloads) {
      if (s.quietWaitS > 0) await waitForQuiet(s.quietWaitS);
      process.stdout.write(`  discard (${w.label}): ${s.seconds} s load...`);
      const serverCpu0 = server.cpuSeconds();
      const loaderCpu0 = loaderCpuSeconds();
      const machine0 = machineBusySeconds();
      const load = await runLoad({
        url: server.url + w.path, bodies: w.bodies, recordsPerBody: w.recordsPerBody, headers: w.headers,
        connections: s.connections, durationMs: s.seconds * 1000,
      });
      const serverCpu1 = server.cpuSeconds();
      const loaderCpu = loaderCpuSeconds() - loaderCpu0;
      const machine1 = machineBusySeconds();
      process.stdout.write(' done\n');
      results.push({
        label: `discard server (${w.label})`, load,
        ...cores(load.seconds, loaderCpu, serverCpu0, serverCpu1, machine0, machine1), peakRss: server.peakRssBytes(),
      });
    }
    return results;
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------
// Report.

const fmtK = (n: number): string => `${(n / 1000).toFixed(0)} K`;
const fmt = (n: number | undefined, digits = 1): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));

function printTable(results: RunResult[]): void {
  const head = ['run', 'records acked', 'load s', 'flush s', 'records/s to Parquet', 'records/s load only', 'MB/s',
    'p50 ms', 'p99 ms', 'errors', 'server cores', 'loader cores', 'other cores', 'server RSS peak'];
  const rows = results.map((r) => {
    const total = r.load.seconds + (r.flushSeconds ?? 0);
    return [
      r.label, String(r.load.records), fmt(r.load.seconds), r.flushSeconds === undefined ? '-' : fmt(r.flushSeconds, 2),
      r.flushSeconds === undefined ? '(no Parquet)' : fmtK(r.load.records / total), fmtK(r.load.recordsPerSec), fmt(r.load.mbPerSec),
      fmt(r.load.p50Ms), fmt(r.load.p99Ms), String(r.load.errors), fmt(r.serverCores, 2), fmt(r.loaderCores, 2), fmt(r.otherCores, 2),
      r.peakRss === undefined ? '-' : `${(r.peakRss / 1048576).toFixed(0)} MiB`,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  console.log(line(head));
  console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

async function main(): Promise<number> {
  const s = readSettings(process.argv.slice(2), process.env);
  // A hard ceiling on the whole run: generation, four loads with their flushes, start/stop.
  const budgetMs = 180_000 + 4 * (s.seconds * 1000 + FLUSH_TIMEOUT_MS + 2 * STOP_GRACE_MS + s.quietWaitS * 1000);
  setTimeout(() => {
    process.stderr.write(`bench: exceeded its time budget of ${Math.round(budgetMs / 1000)} s; killing servers\n`);
    cleanupNow();
    process.exit(2);
  }, budgetMs).unref();

  console.log(`Strata ingest benchmark, ${new Date().toISOString()}, node ${process.version}, ${availableParallelism()} cores, ` +
    `UV_THREADPOOL_SIZE=${s.threadpool}`);
  console.log(`TSBS cpu-only, ${s.hosts} hosts, ${s.connections} connections, ${s.seconds} s per run; ` +
    `server settings: compression ${process.env.STRATA_PARQUET_COMPRESSION ?? 'snappy (default)'}, ` +
    `buffer ${process.env.STRATA_BUFFER_MAX_RECORDS ?? '50000 (default)'} records / ${process.env.STRATA_BUFFER_MAX_AGE_MS ?? '5000 (default)'} ms`);

  const genStart = performance.now();
  const workloads: Workload[] = [];
  if (s.only.has('msgpack') || s.only.has('discard')) {
    const gen = new CpuGenerator({ hosts: s.hosts });
    const bodies = Array.from({ length: s.msgpackBodies }, () => gen.msgpackColumnar(MSGPACK_ROWS_PER_BODY));
    workloads.push({
      name: 'msgpack', label: 'MessagePack columnar', path: '/api/v1/write/msgpack',
      headers: { 'content-type': 'application/msgpack', 'x-arc-database': DATABASE }, bodies, recordsPerBody: MSGPACK_ROWS_PER_BODY,
    });
  }
  if (s.only.has('lp') || s.only.has('discard')) {
    const gen = new CpuGenerator({ hosts: s.hosts });
    const bodies = Array.from({ length: s.lpBodies }, () => gen.lineProtocol(LP_LINES_PER_BODY));
    workloads.push({
      name: 'lp', label: 'line protocol', path: `/write?db=${DATABASE}&precision=ns`,
      headers: { 'content-type': 'text/plain; charset=utf-8' }, bodies, recordsPerBody: LP_LINES_PER_BODY,
    });
  }
  for (const w of workloads) {
    const bytes = w.bodies.reduce((n, b) => n + b.length, 0);
    console.log(`  ${w.label}: ${w.bodies.length} bodies × ${w.recordsPerBody} records, ${(bytes / w.bodies.length / 1e6).toFixed(2)} MB/body, ` +
      `${(bytes / (w.bodies.length * w.recordsPerBody)).toFixed(0)} B/record`);
  }
  console.log(`  bodies generated in ${((performance.now() - genStart) / 1000).toFixed(1)} s (not timed)`);

  const results: RunResult[] = [];
  for (const w of workloads) if (s.only.has(w.name)) results.push(await runStrata(s, w));
  if (s.only.has('discard')) results.push(...await runDiscard(s, workloads));

  console.log('');
  printTable(results);
  console.log('cores = average CPU cores used during load + final flush (from /proc); "other" = every other process on the machine.');
  for (const r of results) {
    if (r.otherCores !== undefined && r.otherCores > 0.15) {
      console.log(`WARNING: ${r.label}: other processes used ${r.otherCores.toFixed(2)} cores meanwhile; this run is not representative, repeat it on a quiet machine.`);
    }
  }
  console.log('');
  let failed = false;
  for (const r of results) {
    if (r.stored === undefined) continue;
    const ok = r.stored === r.load.records;
    // Refused requests (429 under backpressure) are figures, not failures; a count that
    // differs from what was acknowledged is a failure.
    failed ||= !ok;
    console.log(`${r.label}: SELECT count(*) FROM cpu = ${r.stored}, acknowledged ${r.load.records}: ${ok ? 'equal' : 'MISMATCH'}`);
  }
  for (const r of results) {
    if (r.flushSeconds === undefined) continue;
    const target = r.label.startsWith('MessagePack') ? TARGETS.msgpack : TARGETS.lp;
    const rate = r.load.records / (r.load.seconds + r.flushSeconds);
    console.log(`${r.label}: ${fmtK(rate)} records/s to Parquet vs target ≥ ${fmtK(target)}: ${rate >= target ? 'met' : 'NOT met'}`);
  }
  return failed ? 1 : 0;
}

process.once('SIGINT', () => {
  cleanupNow();
  process.exit(130);
});
process.once('SIGTERM', () => {
  cleanupNow();
  process.exit(143);
});
process.on('exit', cleanupNow);

main().then(
  (code) => {
    cleanupNow();
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    cleanupNow();
    process.exitCode = 1;
  },
);
