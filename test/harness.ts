/**
 * Test harness: runs the real Strata server (`dist/src/main.js`) as a child process on
 * 127.0.0.1 with its own temporary data directory, and talks to it over HTTP.
 * Nothing of Strata is mocked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

/** A fresh temporary directory (removed by `removeDir`). */
export function tempDir(prefix = 'strata-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Deletes `dir` and everything in it; a missing directory is no error. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The V8 flags `npm start` and the Dockerfile run the server with (README, "Configuration"):
 * a 64 MB semi-space for the ingest path's short-lived garbage, and an old-generation
 * allocation limit of at least 256 MB so that, with that new space, V8 does not start a
 * major GC whenever the old generation's headroom is smaller than the new space.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64', '--initial-old-space-size=256'];

/** A running server process. */
export class TestServer {
  /** The server's `STRATA_DATA_DIR`; kept after `stop` (the test removes it). */
  readonly dataDir: string;
  /** Base URL the server listens on, `http://127.0.0.1:{port}` (no trailing `/`). */
  readonly url: string;
  /** The child process running `dist/src/main.js`. */
  readonly process: ChildProcess;
  /** Everything the process wrote to stdout and stderr. */
  output: string;
  /** The answers of `/ready` other than 200 while `start` waited for it, in order. */
  readonly notReady: { status: number; retryAfter: string | null; body: string }[] = [];

  private constructor(dataDir: string, url: string, child: ChildProcess, output: string) {
    this.dataDir = dataDir;
    this.url = url;
    this.process = child;
    this.output = output;
  }

  /**
   * Starts a server on a free port over `dataDir` (a new temp dir by default) with extra
   * environment `env`; resolves once it answers `/ready` with 200. `whileStarting` is
   * called (with the server's URL and process) after each `/ready` that is not 200, and awaited.
   */
  static async start(env: Record<string, string> = {}, dataDir = tempDir(), whileStarting?: (url: string, child: ChildProcess) => Promise<void>): Promise<TestServer> {
    const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, MAIN], {
      env: {
        ...process.env, STRATA_HOST: '127.0.0.1', STRATA_PORT: '0',
        STRATA_DATA_DIR: dataDir, STRATA_LOG_LEVEL: 'info', STRATA_QUERY_POOL_SIZE: '2', ...env,
        // The rule the server checks (query pool + 7), unless the test sets its own.
        UV_THREADPOOL_SIZE: env.UV_THREADPOOL_SIZE ?? String(Number(env.STRATA_QUERY_POOL_SIZE ?? 2) + 7),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (m) resolve(m[1]);
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('close', (code) => reject(new Error(`server exited with ${code} before listening:\n${output}`)));
      setTimeout(() => reject(new Error(`server did not start in 20 s:\n${output}`)), 20_000).unref();
    });
    const server = new TestServer(dataDir, url, child, output);
    let closed = false;
    child.once('close', () => { closed = true; });
    child.stdout!.on('data', (c: Buffer) => { server.output += c.toString(); });
    child.stderr!.on('data', (c: Buffer) => { server.output += c.toString(); });
    for (let i = 0; i < 100; i++) {
      const ready = await fetch(`${url}/ready`).catch(async (err: unknown) => {
        // Gone while starting (a failed WAL replay, say): what it printed, once its output
        // is drained ('close'), says why. Still running: the fetch failed for another reason.
        if (!closed) await Promise.race([new Promise((r) => child.once('close', r)), sleep(5000)]);
        if (!closed) throw err;
        throw new Error(`server exited with ${child.exitCode ?? child.signalCode} while starting:\n${server.output}`, { cause: err });
      });
      if (ready.status === 200) return server;
      server.notReady.push({ status: ready.status, retryAfter: ready.headers.get('retry-after'), body: await ready.text() });
      await whileStarting?.(url, child);
      await sleep(50);
    }
    throw new Error('server never became ready');
  }

  /** The server's log lines so far (pino JSON; anything else skipped): level 40 warn, 50 error. */
  logLines(): { level: number; msg: string }[] {
    return this.output.split('\n').flatMap((line) => {
      if (!line.startsWith('{')) return [];
      try {
        return [JSON.parse(line) as { level: number; msg: string }];
      } catch {
        return [];
      }
    });
  }

  /** Query connections lent out now (`GET /api/v1/metrics/query-pool`). */
  async connectionsInUse(): Promise<number> {
    return ((await (await fetch(`${this.url}/api/v1/metrics/query-pool`)).json()) as { pool: { connections_in_use: number } }).pool.connections_in_use;
  }

  /** POSTs `body` to `path` (relative to the server). */
  post(path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(this.url + path, { method: 'POST', body: body as string, headers });
  }

  /** Writes line protocol through InfluxDB's v1 endpoint; resolves to the response. */
  writeLines(lines: string, query = 'db=default', gzip = false): Promise<Response> {
    const body = gzip ? gzipSync(lines) : lines;
    return this.post(`/write?${query}`, body, gzip ? { 'content-encoding': 'gzip' } : {});
  }

  /** `POST /api/v1/write/flush`, asserting success. */
  async flush(): Promise<void> {
    const res = await this.post('/api/v1/write/flush', '');
    if (res.status !== 200) throw new Error(`flush failed: ${res.status} ${await res.text()}`);
  }

  /** Runs SQL through `POST /api/v1/query`; returns status and parsed body. */
  async query(sql: string, database?: string): Promise<{ status: number; body: QueryBody }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (database !== undefined) headers['x-arc-database'] = database;
    const res = await this.post('/api/v1/query', JSON.stringify({ sql }), headers);
    return { status: res.status, body: (await res.json()) as QueryBody };
  }

  /** Runs SQL and returns the rows, failing on any non-200. */
  async rows(sql: string, database?: string): Promise<unknown[][]> {
    const { status, body } = await this.query(sql, database);
    if (status !== 200) throw new Error(`query failed (${status}): ${body.error}`);
    return body.data;
  }

  /**
   * Sends `signal` and resolves with the exit code. A SIGTERM the server does not exit 0
   * on prints the end of its log to stderr: a shutdown that fails once in many runs is
   * diagnosed from that run alone. Resolves on `close`, once that log is read to its end.
   */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.process.exitCode !== null) return Promise.resolve(this.process.exitCode);
    return new Promise((resolve) => {
      this.process.once('close', (code) => {
        if (signal === 'SIGTERM' && code !== 0) {
          process.stderr.write(`server on ${this.url} exited with ${code} on SIGTERM; its last log lines:\n${this.output.split('\n').slice(-40).join('\n')}\n`);
        }
        resolve(code);
      });
      this.process.kill(signal);
    });
  }
}

/** Arc's query response. */
export interface QueryBody {
  success: boolean;
  columns: string[];
  data: unknown[][];
  row_count: number;
  error?: string;
}

/** Resolves after `ms` ms. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A DuckDB connection of the test's own, for inspecting files independently of the server. */
export async function inspector(): Promise<DuckDBConnection> {
  return (await DuckDBInstance.create(':memory:')).connect();
}

/**
 * Stops `s` with SIGTERM and resolves to its exit code; a shutdown that hangs is cut
 * short with SIGKILL after `ms` (and reported as 'hung') so it cannot hang the run.
 */
export async function stopWithin(s: TestServer, ms = 15_000): Promise<number | null | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => { timer = setTimeout(() => resolve('hung'), ms); });
  const result = await Promise.race([s.stop(), hung]);
  clearTimeout(timer);
  if (result === 'hung' && s.process.exitCode === null && s.process.signalCode === null) {
    const exited = new Promise((resolve) => s.process.once('exit', resolve));
    s.process.kill('SIGKILL');
    await exited;
  }
  return result;
}

/** Parquet files under `dir` (relative paths), outside Strata's hidden directories (staging, cache, WAL). */
export function parquetFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.parquet') && !f.split('/').some((s) => s.startsWith('.')));
}

/** Polls `check` every 25 ms until it holds or `timeoutMs` passes; resolves to its last result. */
export async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await sleep(25);
  }
  return check();
}

/**
 * A writer of numbered records for backpressure tests: each `write()` posts 100 records
 * `<measurement>,host=h<id % 3> id=<id>i <1767225600 + id>` (ids counting up from 0, second
 * precision) into `database`, and `acked` collects the ids of the bodies answered 204.
 */
export function idWriter(server: TestServer, measurement: string, database: string): { write: () => Promise<Response>; acked: number[] } {
  const acked: number[] = [];
  let nextId = 0;
  const write = async (): Promise<Response> => {
    const ids = Array.from({ length: 100 }, () => nextId++);
    const res = await server.writeLines(ids.map((id) => `${measurement},host=h${id % 3} id=${id}i ${1767225600 + id}`).join('\n'), `db=${database}&precision=s`);
    if (res.status === 204) acked.push(...ids);
    return res;
  };
  return { write, acked };
}
