/**
 * The one place errors become HTTP responses.
 *
 * `StrataError`s carry their status (see `errors.ts`); Fastify's own client errors
 * (body too large, bad JSON, …) keep theirs; anything else is a 500 and is logged.
 * Query routes answer in Arc's query shape (`{"success":false,"columns":null,"data":null,
 * "row_count":0,"execution_time_ms":…,"timestamp":…,"error":…}`; Arc's Arrow endpoint,
 * estimate and measurement list `{"success":false,"error":…}`), QuestDB's `/exec` in
 * QuestDB's `{"query":…,"error":…,"position":0}`, InfluxDB v2's
 * write route `{"code":…,"message":…,"error":…}`, every other route `{"error":…}` (Arc
 * and InfluxDB v1 write errors). Other 5xx are logged as errors; queries past their
 * deadline as warnings, and so are refusals that shed load, or come while starting up or
 * shutting down (429/503 with `Retry-After`), at most one a second of each kind. Every 429 and 503
 * carries `Retry-After` (RFC 9110 §10.2.3): Telegraf and the InfluxDB clients wait that
 * long before they retry a write.
 */
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { arcTimestamp } from './arc-timestamp.js';
import { BackpressureError, FlushError, NotReadyError, PartialWriteError, QueryQueueFullError, QueryTimeoutError, StorageUnavailableError, StrataError } from '../errors.js';

/** Retry-After, seconds, of a 429 or 503 whose error names none (storage or WAL failing, not ready): S3 retries back off for longer than a second. */
export const RETRY_AFTER_DEFAULT_S = 5;

/**
 * Route config flag selecting an error shape other than `{"error": …}`: `query`, Arc's
 * query answer struct; `arc`, Arc's `{"success":false,"error":…}` (its Arrow and other JSON
 * APIs); `exec`, QuestDB's (whose web console and clients show the failed query beside its
 * error); `influxdb-v2`, InfluxDB v2's `{"code", "message"}` (kept beside `error`), which
 * the v2 client libraries and Telegraf's `influxdb_v2` output read their error text from.
 */
export interface ErrorShapeConfig {
  errorShape?: 'query' | 'arc' | 'exec' | 'influxdb-v2';
}

/** InfluxDB v2's error `code` for each status Strata answers (influxdata/influxdb `kit/platform/errors`). */
const INFLUXDB_V2_CODES = new Map<number, string>([
  [400, 'invalid'], [401, 'unauthorized'], [403, 'forbidden'], [404, 'not found'], [405, 'method not allowed'], [413, 'request too large'],
  [415, 'invalid'], [422, 'unprocessable entity'], [429, 'too many requests'], [503, 'unavailable'],
]);

/** Methods a 405 may name in Allow. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

/** HTTP status for any thrown value. */
export function statusOf(err: unknown): number {
  if (err instanceof StrataError) return err.statusCode;
  if (err instanceof FlushError) return 503;
  const status = (err as FastifyError).statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : 500;
}

/** The JSON body of an error answered with `status` and `message`, in the route's `shape` (`ErrorShapeConfig`). */
function errorBody(shape: ErrorShapeConfig['errorShape'], status: number, message: string, request: FastifyRequest, elapsedMs: number): Record<string, unknown> {
  if (shape === 'query') {
    // Arc's answer struct, its result fields empty: clients read `row_count` and `timestamp` of failures too.
    return {
      success: false, columns: null, data: null, row_count: 0, execution_time_ms: Math.round(elapsedMs),
      timestamp: arcTimestamp(Date.now() - elapsedMs), error: message,
    };
  }
  if (shape === 'arc') return { success: false, error: message };
  if (shape === 'exec') {
    // DuckDB's messages carry no offset QuestDB's `position` could give: 0, as QuestDB's for errors without one.
    const query = (request.query as Record<string, unknown>).query;
    return { query: typeof query === 'string' ? query : '', error: message, position: 0 };
  }
  if (shape === 'influxdb-v2') return { code: INFLUXDB_V2_CODES.get(status) ?? 'internal error', message, error: message };
  return { error: message };
}

/** How long the refusals of one code after a logged one are counted before one line reports them (`ShedLog`), ms. */
const SHED_LOG_INTERVAL_MS = 1000;

/**
 * Warnings of expected refusals (load shed, not ready), at most one a second of each code:
 * an overloaded server refuses hundreds of requests a second, each client retrying, and a
 * line for each would flood the log when it is read most. The first refusal of a code is
 * logged; those in the second after it are counted and logged as one line at its end,
 * `suppressed` giving their number (/metrics counts every refusal).
 */
class ShedLog {
  private readonly windows = new Map<string, { suppressed: number; last: { status: number; message: string } }>();

  constructor(private readonly log: FastifyBaseLogger) {}

  /** Logs the refusal `err` (answered `status`) through `requestLog`, or counts it for the summary line. */
  refused(err: StrataError, status: number, requestLog: FastifyBaseLogger): void {
    const window = this.windows.get(err.code);
    if (window !== undefined) {
      window.suppressed++;
      window.last = { status, message: err.message };
      return;
    }
    requestLog.warn({ status, code: err.code }, err.message);
    const opened = { suppressed: 0, last: { status, message: err.message } };
    this.windows.set(err.code, opened);
    setTimeout(() => {
      this.windows.delete(err.code);
      if (opened.suppressed > 0) this.log.warn({ status: opened.last.status, code: err.code, suppressed: opened.suppressed }, opened.last.message);
    }, SHED_LOG_INTERVAL_MS).unref();
  }
}

/** Installs the handler on `app` (and, through encapsulation, every plugin in it). */
export function installErrorHandler(app: FastifyInstance): void {
  const shedLog = new ShedLog(app.log);
  app.setErrorHandler((err, request, reply) => {
    const status = statusOf(err);
    if (err instanceof QueryTimeoutError) {
      // A query past the deadline it was given: expected, one line per request, a warning without a stack.
      request.log.warn({ status, code: err.code }, err.message);
    } else if (err instanceof BackpressureError || err instanceof QueryQueueFullError || err instanceof NotReadyError) {
      // Load shed on purpose, or a request while starting up or shutting down: expected and
      // counted in /metrics, so a warning without a stack, at most one a second (`ShedLog`).
      shedLog.refused(err, status, request.log);
    } else if (err instanceof StorageUnavailableError) {
      // An error (a disk failing as well as an S3 out of reach), but one line per request, whose
      // message names the cause's code, not a stack that every retry of a client riding out an
      // outage repeats.
      request.log.error({ status, code: err.code }, err.message);
    } else if (status >= 500) request.log.error({ err }, 'request failed');
    // RFC 9110 §15.5.16: a 415 for the body's encoding says which encodings are accepted.
    if (err instanceof StrataError && err.code === 'unsupported_encoding') void reply.header('accept-encoding', 'gzip, deflate, br, zstd');
    if (status === 429 || status === 503) {
      const seconds = err instanceof StrataError ? err.retryAfterSeconds : undefined;
      void reply.header('Retry-After', String(seconds ?? RETRY_AFTER_DEFAULT_S));
    }
    const message = err instanceof Error ? err.message : String(err);
    const body = errorBody((request.routeOptions.config as ErrorShapeConfig).errorShape, status, message, request, reply.elapsedTime);
    if (err instanceof PartialWriteError) Object.assign(body, { accepted: err.accepted, rejected: err.rejected });
    void reply.code(status).type('application/json').send(body);
  });
  // A path served for other methods answers 405 with Allow (RFC 9110 §15.5.6), as InfluxDB
  // does for a GET of /write, rather than a 404 that says it does not exist. Routes are
  // matched as patterns (`/api/v1/query/:measurement`), as the router matches them.
  const routes: { method: string; path: RegExp; shape: ErrorShapeConfig['errorShape'] }[] = [];
  app.addHook('onRoute', (route) => {
    const path = new RegExp(`^${route.url.split('/').map((s) => (s.startsWith(':') ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}$`);
    const shape = (route.config as ErrorShapeConfig | undefined)?.errorShape;
    for (const method of [route.method].flat()) routes.push({ method, path, shape });
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    const served = routes.filter((r) => r.path.test(path));
    const allowed = METHODS.filter((method) => served.some((r) => r.method === method));
    if (allowed.length > 0) {
      const methods = allowed.length === 1 ? allowed[0] : `${allowed.slice(0, -1).join(', ')} or ${allowed[allowed.length - 1]}`;
      // In the shape of the errors the path's routes answer.
      const body = errorBody(served.find((r) => r.shape !== undefined)?.shape, 405, `${request.method} is not allowed on ${path}: use ${methods}`, request, reply.elapsedTime);
      void reply.code(405).header('allow', allowed.join(', ')).send(body);
      return;
    }
    void reply.code(404).send({ error: `Cannot ${request.method} ${path}` });
  });
}
