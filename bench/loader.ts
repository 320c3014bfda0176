/**
 * HTTP load generator for the ingest benchmark: posts pre-encoded bodies over N
 * keep-alive connections for a bounded time and reports throughput and latency.
 *
 * The bodies are encoded before the clock starts, so the figures measure the server
 * (and the kernel's loopback), not the generator. Only 127.0.0.1 is ever targeted:
 * this is a benchmark of the local machine, never a tool to load someone else's.
 */
import http from 'node:http';

/** What to send, where, and for how long. */
export interface LoadOptions {
  /** Full URL with path and query, e.g. `http://127.0.0.1:8000/write?db=bench`; the host must be 127.0.0.1. */
  url: string;
  /** Pre-encoded request bodies, sent in turn (round-robin over all connections). */
  bodies: Buffer[];
  /** Records (lines, rows) each body holds: what a 2xx acknowledges. */
  recordsPerBody: number;
  /** Extra request headers (Content-Type, x-arc-database, …); Content-Length is set here. */
  headers?: Record<string, string>;
  /** Concurrent keep-alive connections, each with one request in flight at a time. */
  connections: number;
  /** No request is started after this many milliseconds; those in flight are waited for. */
  durationMs: number;
  /** Per-request socket inactivity limit in ms (default 60,000); a request exceeding it counts as an error. */
  requestTimeoutMs?: number;
}

/** The outcome of a load run. */
export interface LoadResult {
  /** Records acknowledged with a 2xx. */
  records: number;
  /** Body bytes acknowledged with a 2xx. */
  bytes: number;
  /** Requests completed (acknowledged or not). */
  requests: number;
  /** Wall-clock seconds from the first request to the last response. */
  seconds: number;
  /** `records / seconds`. */
  recordsPerSec: number;
  /** Acknowledged body megabytes (10^6 bytes) per second. */
  mbPerSec: number;
  /** Median request latency in ms (send start → response end), over completed requests. */
  p50Ms: number;
  /** 99th-percentile request latency in ms. */
  p99Ms: number;
  /** Requests answered with a non-2xx status or failed at the socket level. */
  errors: number;
}

/**
 * `url` parsed, when it is `http://127.0.0.1…`: the benchmarks load this machine only.
 * @throws RangeError for any other URL.
 */
export function loopbackUrl(url: string): URL {
  const target = new URL(url);
  if (target.protocol !== 'http:' || target.hostname !== '127.0.0.1') {
    throw new RangeError(`the benchmarks only target http://127.0.0.1, got ${url}`);
  }
  return target;
}

/**
 * One keep-alive `node:http` connection to a server on 127.0.0.1, one request at a time:
 * the query benchmark's client. It costs less per request and per MB than `fetch`
 * (undici's web streams; figures for both in bench/README.md), so more of what is timed
 * is the server.
 */
export class LoopbackClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly port: number;

  /** @throws RangeError when `baseUrl` is not `http://127.0.0.1…`. */
  constructor(baseUrl: string) {
    this.port = Number(loopbackUrl(baseUrl).port || 80);
  }

  /** POSTs `body` to `path`; resolves with the status and the whole response body (read in full). */
  post(path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ agent: this.agent, host: '127.0.0.1', port: this.port, path, method: 'POST', headers }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Destroys the agent and its socket; a request still in flight fails. */
  close(): void {
    this.agent.destroy();
  }
}

/** Ceiling on the text kept from the first error body, characters. */
const MAX_ERROR_TEXT = 2000;

/** Pause after a socket-level failure, so that a dead server does not make the workers spin. */
const NETWORK_ERROR_PAUSE_MS = 50;

/**
 * Runs the load described by `o` and resolves with its figures once every worker has
 * finished (at most `durationMs` plus one request's timeout). Non-2xx answers and
 * socket failures are counted as errors, never thrown; the first error's status and
 * body (or message) is printed to stderr, once.
 *
 * @throws RangeError when the URL is not `http://127.0.0.1…`, `bodies` is empty, or
 *   `connections`, `durationMs` or `recordsPerBody` is not a positive number.
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const target = loopbackUrl(o.url);
  if (o.bodies.length === 0) throw new RangeError('runLoad needs at least one body');
  if (!(o.connections >= 1) || !(o.durationMs > 0) || !(o.recordsPerBody > 0)) {
    throw new RangeError('connections, durationMs and recordsPerBody must be positive');
  }
  const timeoutMs = o.requestTimeoutMs ?? 60_000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections });
  const path = target.pathname + target.search;
  const port = Number(target.port || 80);

  let next = 0;
  let records = 0;
  let bytes = 0;
  let requests = 0;
  let errors = 0;
  let reported = false;
  // Latencies in ms; a growable typed array keeps 10^5+ samples off the object heap.
  let latencies = new Float64Array(4096);

  const reportFirstError = (what: string): void => {
    if (reported) return;
    reported = true;
    process.stderr.write(`loader: first error from ${o.url}: ${what.slice(0, MAX_ERROR_TEXT)}\n`);
  };

  /** One request; resolves with its status (0 for a socket failure), never rejects. */
  const send = (body: Buffer): Promise<number> => new Promise((resolve) => {
    const req = http.request({
      agent, host: '127.0.0.1', port, path, method: 'POST', timeout: timeoutMs,
      headers: { ...o.headers, 'content-length': String(body.length) },
    }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) {
        // Drain whatever body there is (204 has none) so the socket returns to the pool.
        res.resume();
        res.on('end', () => resolve(status));
      } else {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => { if (text.length < MAX_ERROR_TEXT) text += chunk; });
        res.on('end', () => {
          reportFirstError(`HTTP ${status}: ${text}`);
          resolve(status);
        });
      }
      res.on('error', (err) => {
        reportFirstError(`response error: ${err.message}`);
        resolve(0);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no response within ${timeoutMs} ms`)));
    req.on('error', (err) => {
      reportFirstError(`request error: ${err.message}`);
      resolve(0);
    });
    req.end(body);
  });

  const started = performance.now();
  const deadline = started + o.durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const body = o.bodies[next++ % o.bodies.length];
      const t0 = performance.now();
      const status = await send(body);
      const ms = performance.now() - t0;
      if (requests === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[requests++] = ms;
      if (status >= 200 && status < 300) {
        records += o.recordsPerBody;
        bytes += body.length;
      } else {
        errors++;
        if (status === 0) await new Promise((r) => setTimeout(r, NETWORK_ERROR_PAUSE_MS));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: o.connections }, worker));
  } finally {
    agent.destroy();
  }
  const seconds = (performance.now() - started) / 1000;
  const sorted = latencies.subarray(0, requests).sort();
  return {
    records, bytes, requests, seconds,
    recordsPerSec: records / seconds,
    mbPerSec: bytes / seconds / 1e6,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    errors,
  };
}

/** The `q`-quantile (0..1) of ascending `sorted` by the nearest-rank method; NaN when empty. */
function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
