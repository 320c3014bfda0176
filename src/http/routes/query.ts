/**
 * The query endpoints (../shared/notes/arc-wire-contract.md §5):
 *
 * - `POST /api/v1/query` — body JSON (whatever the Content-Type) `{"sql": "…", "format"?: "json" | "csv"}` (any other
 *   format answers JSON: Arc ignores the key). JSON
 *   answers Arc's shape `{"success":true,"columns":[…],"data":[[…]],"row_count":N,
 *   "execution_time_ms":T,"timestamp":"<RFC 3339 request start>"}`; `"format": "csv"`, or
 *   (without `"format": "json"`) an `Accept` that prefers `text/csv` to `application/json` (RFC 9110 §12.5.1, q-values
 *   weighed), answers RFC 4180 CSV (header line, CRLF, NULL as an empty field, an empty string as `""`); an `Accept`
 *   naming neither answers JSON, as Arc, which ignores it.
 * - `POST /api/v1/query/arrow` — same body; an Arrow IPC stream
 *   (`application/vnd.apache.arrow.stream`), one record batch per DuckDB chunk; a
 *   zero-row result still sends its schema. `SHOW DATABASES` / `SHOW TABLES` answer here
 *   too (Grafana's health check).
 * - `GET /api/v1/query/:measurement?database=&limit=&offset=&order_by=&where=` — Arc's
 *   convenience `SELECT *` of one measurement (`measurementSql`), answered as `POST /api/v1/query` (JSON).
 * - `POST /api/v1/query/estimate` — same body; Arc's row-count estimate, the exact count of
 *   the query's rows (`SELECT count(*) FROM (<sql>)`, so the result is never sent):
 *   `{"success":true,"estimated_rows":N,"warning_level":"none|low|medium|high",
 *   "warning_message":"…","execution_time_ms":T}` (levels above 10 K, 100 K and 1 M rows, as
 *   Arc's); 400 for a SHOW command or SQL that is refused. Unlike Arc, which answers a DuckDB
 *   error with 200 and `success:false`, errors keep their status.
 * - `GET /exec?query=…` — QuestDB's JSON `{"query","columns":[{"name","type"}],"timestamp","dataset":[[…]],"count"}`
 *   (`timestamp`: the index of a scalar timestamp column named `time`, else -1);
 *   `limit=N` (the first N rows), `limit=LO,HI` (rows LO to HI, numbered from 1, both
 *   included) or `limit=LO,` (rows LO to the end; a negative limit is a 400, `execLimit`)
 *   pages through the result as QuestDB's web console does, `count` then being the
 *   number of the page's last row (0 past the end), or with `count=true` the whole result's
 *   rows (then read to its end, and not cached; still 0 past the end, as QuestDB's); `nm=true` sends only `dataset` and `count`;
 *   `quoteLargeNum=true` (or `src=con`) sends LONG values as JSON strings; errors are
 *   `{"query","error","position":0}`; `timings=true` adds QuestDB's `timings` after `count`:
 *   {"authentication","compiler","execute","count"} in ns (no authentication here, so 0;
 *   compiler: planning; execute: from the request's start until the last row was read, or
 *   the cached answer found, planning and counting included, as QuestDB's starts before it
 *   compiles; count: reading the rows after the page for `count=true`).
 *   `HEAD /exec` answers GET's status and headers, reading no more than 256 KiB of the result.
 *
 * Headers: `x-arc-database` (database of unqualified names); `x-strata-priority`
 * `critical|high|normal|low` (default normal); `x-strata-timeout-ms` lowers the
 * configured timeout (both checked before the result cache is consulted, so a bad
 * value is a 400 whether or not the answer is cached); `x-strata-profile: true` or
 * `x-arc-profile: true` (or `1`) adds `profile` {planning_ms, files_considered, files_scanned,
 * buffered_rows, cache, execution_ms} (JSON) or the header `x-strata-profile` (JSON text;
 * Arrow and CSV; without execution_ms, as headers go out before the rows are read).
 * A result of up to 256 KiB (`WHOLE_BODY_BYTES`) is sent as one body with a
 * Content-Length; a larger one is streamed chunk by chunk (chunked encoding), never
 * held whole. JSON and CSV answers are compressed as `Accept-Encoding` asks
 * (`response-compression.ts`).
 * Errors are Arc's answer struct with `success:false`, `columns` and `data` null, `row_count`
 * 0 and `error` (Arrow's and the estimate's: `{"success":false,"error":"…"}`, as Arc's), with 400 (bad or refused SQL), 503 +
 * Retry-After (queue full), 504 (timeout) or 500, also for a failure within the first
 * 256 KiB of a result; an error after streaming started (a timeout in the middle of a
 * large result, say) is logged and cuts the response off before its last chunk (HTTP/1.0:
 * resets the connection, `cutOff`), so the client's HTTP library reports an error. Arc closes
 * the JSON document cleanly instead, and an Arrow stream may end without its
 * end-of-stream marker, which Arrow readers accept: either way a shorter result would
 * read as the whole answer.
 * While the write-ahead log replays at start-up, every query endpoint answers 503 "starting up"
 * with Retry-After, as `/ready` does: an answer then could miss records acknowledged before
 * the restart (InfluxDB serves no API until its WAL is loaded).
 * A client that disconnects cancels its query. Every request is counted for
 * `GET /metrics` by outcome and duration (arrival to last byte) once its response closes.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import Negotiator from 'negotiator';
import { z } from 'zod';
import { isGone, whenGone } from '../exchange.js';
import { ClientStalledError, NotReadyError, QueryCancelledError, QueryQueueFullError, QueryRejectedError, QueryTimeoutError } from '../../errors.js';
import { DuckDBTypeId, type DuckDBType } from '@duckdb/node-api';
import { ArrowStreamEncoder } from '../../query/arrow-result.js';
import { PRIORITIES, type Priority } from '../../query/duckdb-pool.js';
import type { ResultEncoders, WorkerRows } from '../../query/result-encoders.js';
import { cellText, csvField, type TextFormat } from '../../query/json-result.js';
import { parseShowCommand } from '../../query/show.js';
import { decodeBody } from '../content-type-parser.js';
import { compressResponses } from '../response-compression.js';
import { bareStatement, quoteIdentifier } from '../../query/sql-text.js';
import { nameError } from '../../parse/names.js';
import type { Column } from '../../query/chunk-columns.js';
import type { OpenQuery, QueryService, ResultChunk } from '../../query/query-service.js';
import { withinRange, type RowRange } from '../../query/row-range.js';
import type { CachedFormat, CachedResult, ResultCache, ResultRecorder } from '../../query/result-cache.js';
import { arcTimestamp } from '../arc-timestamp.js';
import { databaseOf } from '../database.js';
import { statusOf, type ErrorShapeConfig } from '../error-handler.js';
import type { QueryOutcome, StrataMetrics } from './metrics.js';

const body = z.object({ sql: z.string(), format: z.string().nullish() });

/** What the query routes run on (passed by `buildServer`). */
export interface QueryRouteOptions {
  /** Plans and runs the SQL (sandbox, pruning, read-your-writes). */
  queries: QueryService;
  /** Encodes JSON and CSV result chunks (partly on worker threads). */
  encoders: ResultEncoders;
  /** Complete results of identical queries, reused while current. */
  cache: ResultCache;
  /** Longest a query may take, queueing included, ms. */
  timeoutMs: number;
  /** A streamed result whose client takes nothing of it for this long is cut off, ms (0: never). */
  stallMs: number;
  /** Counts each request's outcome and duration. */
  metrics: StrataMetrics;
  /** Throws NotReadyError while an answer could miss acknowledged records (the write-ahead log replaying). */
  assertQueryable: () => void;
}

/** Registers the query routes on `app`. */
export async function queryRoutes(app: FastifyInstance, o: QueryRouteOptions): Promise<void> {
  const config: ErrorShapeConfig = { errorShape: 'query' };
  // A query body can only be JSON: read it as JSON whatever its Content-Type says (`curl -d`
  // sends application/x-www-form-urlencoded, other clients text/json or application/*+json),
  // decompressed first as write bodies are (`Content-Encoding` gzip, deflate, br or zstd).
  app.removeAllContentTypeParsers();
  const parseJson = app.getDefaultJsonParser('error', 'error');
  const maxBytes = app.initialConfig.bodyLimit ?? 1024 * 1024;
  app.addContentTypeParser('*', { parseAs: 'buffer' }, async (request: FastifyRequest, raw: Buffer) => {
    const text = (await decodeBody(raw, request.headers['content-encoding'], maxBytes)).toString('utf8');
    return new Promise((resolve, reject) => parseJson(request, text, (err, value) => {
      if (err === null) resolve(value);
      else reject(new QueryRejectedError(`request body is not valid JSON (${err.message.replace(/ (?:but|when) content-type is set to .*$/, '')}): send {"sql": "<statement>"}`));
    }));
  });
  await compressResponses(app);
  app.addHook('onRequest', async (request, reply) => countWhenClosed(request, reply, o.metrics));
  app.addHook('onError', async (request, _reply, err) => {
    failures.set(request, err);
  });
  app.addHook('onRequest', async () => o.assertQueryable());

  app.post('/api/v1/query', { config }, async (request, reply) => {
    const started = Date.now();
    const { sql, format } = parseBody(request.body);
    // A format the body names wins over Accept, which a client library may set for every request.
    const csv = format === 'csv' || (format !== 'json' && prefersCsv(request));
    // The answer's format may follow Accept: a cache between client and server must not give one client's CSV to another.
    void reply.header('vary', 'accept');
    return answer(request, reply, sql, csv, started);
  });

  app.get('/api/v1/query/:measurement', { config }, async (request, reply) => {
    const started = Date.now();
    return answer(request, reply, measurementSql(request), false, started);
  });

  /** Arc's JSON answer (or CSV) to `sql`, from the result cache when it holds it; `started`: the request's start (Date.now()). */
  const answer = async (request: FastifyRequest, reply: FastifyReply, sql: string, csv: boolean, started: number): Promise<FastifyReply> => {
    const limits = limitsOf(request, o.timeoutMs);
    const timestamp = arcTimestamp(started);
    const trailer = (rows: number, profile: object): string => {
      const elapsed = Date.now() - started;
      const extra = wantsProfile(request) ? `,"profile":${JSON.stringify({ ...profile, execution_ms: elapsed })}` : '';
      return `],"row_count":${rows},"execution_time_ms":${elapsed},"timestamp":"${timestamp}"${extra}}`;
    };
    const fmt: CachedFormat = csv ? 'csv' : 'json';
    const hit = o.cache.get(fmt, databaseOf(request), sql);
    if (hit !== undefined) {
      answered(request, hit.rows);
      if (csv) {
        profileHeader(request, reply, HIT_PROFILE);
        return sendBody(request, reply, o.stallMs, 'text/csv; charset=utf-8', replay(hit));
      }
      return sendBody(request, reply, o.stallMs, 'application/json', replay(hit, () => trailer(hit.rows, HIT_PROFILE)));
    }
    const recorder = o.cache.recorder();
    const query = counted(request, await open(o, request, reply, sql, 'exact', limits));
    const store = storer(o.cache, fmt, request, sql, query);
    if (csv) {
      profileHeader(request, reply, { ...query.profile, cache: cacheState(o.cache) });
      return sendBody(request, reply, o.stallMs, 'text/csv; charset=utf-8', csvBody(query, o.encoders, recorder, store));
    }
    return sendBody(request, reply, o.stallMs, 'application/json', jsonBody(query, o.encoders, recorder, store, trailer));
  };

  // Arc answers the Arrow endpoint's errors as its other APIs', without the JSON answer's fields.
  app.post('/api/v1/query/arrow', { config: { errorShape: 'arc' } satisfies ErrorShapeConfig }, async (request, reply) => {
    const { sql } = parseBody(request.body);
    const limits = limitsOf(request, o.timeoutMs);
    checkArrowCompression(request);
    const hit = o.cache.get('arrow', databaseOf(request), sql);
    if (hit !== undefined) {
      answered(request, hit.rows);
      profileHeader(request, reply, HIT_PROFILE);
      return sendBody(request, reply, o.stallMs, 'application/vnd.apache.arrow.stream', replay(hit));
    }
    const recorder = o.cache.recorder();
    const query = counted(request, await open(o, request, reply, sql, 'arrow', limits));
    profileHeader(request, reply, { ...query.profile, cache: cacheState(o.cache) });
    return sendBody(request, reply, o.stallMs, 'application/vnd.apache.arrow.stream', arrowBody(query, recorder, storer(o.cache, 'arrow', request, sql, query)));
  });

  app.post('/api/v1/query/estimate', { config: { errorShape: 'arc' } satisfies ErrorShapeConfig }, async (request, reply) => {
    const started = Date.now();
    const { sql } = parseBody(request.body);
    const limits = limitsOf(request, o.timeoutMs);
    if (parseShowCommand(sql) !== undefined) throw new QueryRejectedError('SHOW commands have no row count to estimate: run them through /api/v1/query');
    // Semicolons and comments before and after the statement go: inside the parentheses they would not parse. On a
    // line of its own: a `--` comment within the query ends at a line's end. The SQL is
    // refused as /api/v1/query refuses it, checked before the wrapper on the wrapper's
    // connection: it waits in the queue once, in its place.
    const query = await open(o, request, reply, `SELECT count(*) FROM (\n${bareStatement(sql)}\n)`, 'exact', limits, sql);
    let rows: number;
    try {
      const chunk = await query.next();
      rows = chunk === null ? 0 : Number(cellText(chunk.columns[0], 0, 'json'));
    } finally {
      query.close();
    }
    return { success: true, estimated_rows: rows, ...estimateWarning(rows), execution_time_ms: Date.now() - started };
  });

  app.get('/exec', { config: { errorShape: 'exec' } satisfies ErrorShapeConfig }, async (request, reply) => {
    const started = performance.now();
    const params = request.query as Record<string, unknown>;
    const sql = params.query;
    if (Array.isArray(sql)) throw new QueryRejectedError(`query parameter "query" is given ${sql.length} times: give one statement, once`);
    if (typeof sql !== 'string') throw new QueryRejectedError('query parameter "query" is required');
    const range = execLimit(params.limit);
    const withColumns = params.nm !== 'true';
    // QuestDB's web console (`src=con`) asks for them too: JavaScript reads a LONG past 2^53 wrong.
    const quoteLongs = params.quoteLargeNum === 'true' || params.src === 'con';
    // A page's `count` is then the whole result's rows, which a cached page does not know.
    const countAll = range !== undefined && params.count === 'true';
    const timings = params.timings === 'true';
    const limits = limitsOf(request, o.timeoutMs);
    // The cached document is this request's: its rows and whether it lists the columns.
    const key = `${sql}\u0000${range === undefined ? '' : `${range.skip},${range.take}`}\u0000${withColumns}\u0000${quoteLongs}`;
    const hit = countAll ? undefined : o.cache.get('exec', databaseOf(request), key);
    if (hit !== undefined) {
      answered(request, hit.rows);
      return sendBody(request, reply, o.stallMs, 'application/json',
        replay(hit, () => execTrailer(pageCount(range, hit.rows), timings ? { started, compilerMs: 0, countMs: 0 } : undefined)));
    }
    const recorder = countAll ? undefined : o.cache.recorder();
    const opened = await open(o, request, reply, sql, 'exact', limits);
    const ranged = range === undefined ? undefined : withinRange(opened, range, countAll);
    const query = counted(request, quoteLongs ? longsQuoted(ranged ?? opened) : ranged ?? opened);
    // A page with no rows counts 0 (QuestDB counts only from its first row), however many precede it.
    const trailer = (rows: number): string => execTrailer(countAll && ranged !== undefined && rows > 0 ? ranged.seen : pageCount(range, rows),
      timings ? { started, compilerMs: query.profile.planning_ms, countMs: ranged?.countMs ?? 0 } : undefined);
    return sendBody(request, reply, o.stallMs, 'application/json', execBody(query, o.encoders, sql, withColumns, trailer, recorder, storer(o.cache, 'exec', request, key, query)));
  });
}

/** Words a `where` of `GET /api/v1/query/:measurement` may not hold, as Arc refuses them (the sandbox would refuse what they do anyway). */
const WHERE_REFUSED = /;|--|\/\*|\*\/|\b(?:DROP|DELETE|INSERT|UPDATE|TRUNCATE|ALTER|CREATE|EXEC|EXECUTE|UNION)\b|\bxp_|\bsp_/i;
/** `col [ASC|DESC]`, comma-separated: what `order_by` may be. */
const ORDER_BY = /^\s*[A-Za-z_][A-Za-z0-9_]*(?:\s+(?:ASC|DESC))?(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*(?:\s+(?:ASC|DESC))?)*\s*$/i;

/**
 * The SQL of Arc's `GET /api/v1/query/:measurement?database=&limit=100&offset=0&order_by=time
 * DESC&where=…`: `SELECT * FROM "db"."m" [WHERE …] ORDER BY … LIMIT … OFFSET …`
 * (../shared/notes/arc-wire-contract.md §5.8); the database is `database`, else the request's
 * (`x-arc-database`, `db`), else `default`.
 * @throws QueryRejectedError (400) for an invalid (empty, too long) database or measurement
 *   name, a repeated parameter, a limit outside 0–1,000,000, a
 *   negative or non-integer offset, an `order_by` other than `col [ASC|DESC], …`, or a `where`
 *   holding `;`, a comment, unbalanced quotes or parentheses, or a word Arc refuses there.
 */
function measurementSql(request: FastifyRequest): string {
  const params = request.query as Record<string, unknown>;
  const one = (name: string): string | undefined => {
    const v = params[name];
    if (Array.isArray(v)) throw new QueryRejectedError(`query parameter "${name}" is given ${v.length} times: give it once`);
    return typeof v === 'string' ? v : undefined;
  };
  const integer = (name: string, fallback: number, max: number): number => {
    const text = one(name);
    if (text === undefined) return fallback;
    const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
    if (!(n <= max)) throw new QueryRejectedError(`query parameter "${name}" must be an integer from 0 to ${max}, got ${JSON.stringify(text)}`);
    return n;
  };
  const limit = integer('limit', 100, 1_000_000);
  const offset = integer('offset', 0, Number.MAX_SAFE_INTEGER);
  const orderBy = one('order_by') ?? 'time DESC';
  if (!ORDER_BY.test(orderBy)) throw new QueryRejectedError(`query parameter "order_by" must be columns with ASC or DESC, comma-separated (time DESC), got ${JSON.stringify(orderBy)}`);
  const where = one('where');
  if (where !== undefined && (WHERE_REFUSED.test(where) || !balanced(where))) {
    throw new QueryRejectedError('query parameter "where" must be one condition: no ";", comments, unbalanced quotes or parentheses, nor DROP, DELETE, INSERT, UPDATE, TRUNCATE, ALTER, CREATE, EXEC or UNION');
  }
  const { measurement } = request.params as { measurement: string };
  const database = one('database') ?? databaseOf(request);
  // Named here: in the SQL an empty name is DuckDB's "zero-length delimited identifier".
  const invalid = nameError('database', database) ?? nameError('measurement', measurement);
  if (invalid !== undefined) throw new QueryRejectedError(`invalid measurement path: ${invalid}`);
  return `SELECT * FROM ${quoteIdentifier(database)}.${quoteIdentifier(measurement)}${where === undefined || where.trim() === '' ? '' : ` WHERE ${where}`} ORDER BY ${orderBy} LIMIT ${limit} OFFSET ${offset}`;
}

/** Whether `text` closes every quote it opens and every parenthesis outside quotes. */
function balanced(text: string): boolean {
  let depth = 0;
  let quote: string | undefined;
  for (const c of text) {
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '(') depth++;
    else if (c === ')' && --depth < 0) return false;
  }
  return quote === undefined && depth === 0;
}

/** Arc's warning for an estimated result of `rows` rows: above 1 M high, 100 K medium, 10 K low. */
function estimateWarning(rows: number): { warning_level: 'none' | 'low' | 'medium' | 'high'; warning_message: string } {
  const level = rows > 1_000_000 ? 'high' : rows > 100_000 ? 'medium' : rows > 10_000 ? 'low' : 'none';
  const message = {
    none: 'small result',
    low: 'over 10,000 rows: consider a LIMIT or an aggregation',
    medium: 'over 100,000 rows: add a LIMIT, a narrower time range or an aggregation',
    high: 'over 1,000,000 rows: a large result; prefer Arrow (/api/v1/query/arrow), a LIMIT or an aggregation',
  }[level];
  return { warning_level: level, warning_message: message };
}

/** The profile of a result served from the cache: this request planned nothing and read no file. */
const HIT_PROFILE = { planning_ms: 0, files_considered: 0, files_scanned: 0, buffered_rows: 0, cache: 'hit' } as const;

function cacheState(cache: ResultCache): 'miss' | 'off' {
  return cache.enabled ? 'miss' : 'off';
}

/** Stores a completed result in the cache (called once its body was sent in full). */
type Store = (result: CachedResult | undefined) => void;

function storer(cache: ResultCache, format: CachedFormat, request: FastifyRequest, sql: string, query: OpenQuery): Store {
  return (result) => cache.set(format, databaseOf(request), sql, result, query.profile.buffered_rows, query.deterministic);
}

/** A cached body, then its per-request trailer (JSON's, made once the body is out), if any. */
async function* replay(hit: CachedResult, trailer?: () => string): AsyncGenerator<string | Buffer> {
  yield* hit.chunks;
  if (trailer !== undefined) yield trailer();
}

function parseBody(raw: unknown): { sql: string; format: string | undefined } {
  const parsed = body.safeParse(raw);
  if (!parsed.success) throw new QueryRejectedError('request body must be JSON {"sql": "<statement>"}');
  return { sql: parsed.data.sql, format: parsed.data.format?.toLowerCase() };
}

/**
 * Whether the request's `Accept` ranks `text/csv` above `application/json` (RFC 9110
 * §12.5.1: q-values, the most specific range deciding, a tie to the one listed first).
 * Parameters other than `q` are dropped first: Negotiator requires them to match ours,
 * and `text/csv; header=present` (RFC 4180) would have answered JSON.
 */
function prefersCsv(request: FastifyRequest): boolean {
  const header = request.headers.accept;
  if (header === undefined) return false;
  const accept = header.split(',').map((range) => {
    const [type, ...params] = range.split(';');
    const q = params.find((p) => /^\s*q\s*=/i.test(p));
    return q === undefined ? type : `${type};${q}`;
  }).join(',');
  return new Negotiator({ headers: { accept } }).mediaType(['application/json', 'text/csv']) === 'text/csv';
}

/** Whether `x-strata-profile` or Arc's `x-arc-profile` is `true` or `1` (any case, as Arc's `strings.ToLower`/`ParseBool` reads such flags). */
function wantsProfile(request: FastifyRequest): boolean {
  return [request.headers['x-strata-profile'], request.headers['x-arc-profile']].some((v) => typeof v === 'string' && /^(?:true|1)$/i.test(v.trim()));
}

function profileHeader(request: FastifyRequest, reply: FastifyReply, profile: object): void {
  if (wantsProfile(request)) void reply.header('x-strata-profile', JSON.stringify(profile));
}

/** A request's priority and its deadline, ms after it opens. */
interface Limits {
  priority: Priority;
  timeoutMs: number;
}

/**
 * The priority (`x-strata-priority`, default normal) and timeout (`x-strata-timeout-ms`,
 * which may only lower `maxTimeoutMs`) the request asks for.
 * @throws QueryRejectedError (400) for a priority outside PRIORITIES or a timeout that
 *   is not a positive integer.
 */
function limitsOf(request: FastifyRequest, maxTimeoutMs: number): Limits {
  const priorityHeader = request.headers['x-strata-priority'];
  const priority = (typeof priorityHeader === 'string' ? priorityHeader.toLowerCase() : 'normal') as Priority;
  if (!PRIORITIES.includes(priority)) throw new QueryRejectedError(`invalid x-strata-priority: expected one of ${PRIORITIES.join(', ')}`);
  const timeoutHeader = request.headers['x-strata-timeout-ms'];
  if (timeoutHeader === undefined) return { priority, timeoutMs: maxTimeoutMs };
  // Decimal digits only: Number() would also take `0x10`, `1e3` and surrounding blanks.
  const asked = typeof timeoutHeader === 'string' && /^[0-9]+$/.test(timeoutHeader) ? Number(timeoutHeader) : NaN;
  if (!(asked > 0)) throw new QueryRejectedError('invalid x-strata-timeout-ms: expected a positive integer (milliseconds)');
  return { priority, timeoutMs: Math.min(maxTimeoutMs, asked) };
}

/**
 * Arc's `x-arc-arrow-compression` (`zstd` or `lz4`: IPC buffer compression) is checked as
 * Arc checks it, but the stream is sent uncompressed, which every Arrow reader takes
 * (compression is declared per record batch, and these declare none).
 * @throws QueryRejectedError (400) for any other value, with Arc's message.
 */
function checkArrowCompression(request: FastifyRequest): void {
  const asked = request.headers['x-arc-arrow-compression'];
  if (asked !== undefined && asked !== 'zstd' && asked !== 'lz4') throw new QueryRejectedError('invalid x-arc-arrow-compression: must be zstd or lz4');
}

/**
 * Opens the query with the request's priority and deadline (`wraps`: the user's statement
 * `sql` wraps, checked first on the same connection, `QueryRequest.wraps`); the deadline and
 * a client disconnect abort it (leaving the queue, or interrupting DuckDB), and a deadline
 * reached while the result streams also closes the query and cuts the response off
 * (whether or not the client still reads). The query is closed
 * (its connection released) by whoever reads it, or when the client leaves first: a
 * body generator the client left before it started never runs its `finally`.
 * @throws QueryCancelledError when the client is gone before the query started;
 *   whatever `QueryService.open` throws.
 */
async function open(o: QueryRouteOptions, request: FastifyRequest, reply: FastifyReply, sql: string, decimals: 'arrow' | 'exact',
  { priority, timeoutMs }: Limits, wraps?: string): Promise<OpenQuery> {
  // A client gone before the handler ran has already emitted its 'close'.
  if (isGone(request.raw, reply.raw)) throw new QueryCancelledError();
  const controller = new AbortController();
  const timer = setTimeout(() => {
    const err = new QueryTimeoutError(timeoutMs);
    controller.abort(err);
    // Before the status line (planning, or the first WHOLE_BODY_BYTES being read) the
    // abort reaches whoever is waiting on DuckDB, and the answer is a 504.
    if (query === undefined || !reply.raw.headersSent) return;
    // Streaming: a client that stopped reading holds the body generator at a `yield`,
    // where the abort never reaches it, so the query (and its connection) and the
    // response (which a shutdown waits for) would be held for as long as the client
    // likes. Cut it off here, as a timeout while streaming does.
    logLate(request, err);
    close();
    cutOff(request, reply);
  }, timeoutMs);
  timer.unref();
  const stopWatching = whenGone(request.raw, reply.raw, () => {
    if (!reply.raw.writableFinished) controller.abort(new QueryCancelledError());
    close();
  });
  let query: OpenQuery | undefined;
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    stopWatching();
    query?.close();
  };
  try {
    query = await o.queries.open({ sql, database: databaseOf(request), priority, signal: controller.signal, decimals, wraps });
  } catch (err) {
    close();
    throw err;
  }
  if (closed || isGone(request.raw, reply.raw)) {
    // The client left while the query opened; a `close` that ran before `query` was set did not close it.
    if (closed) query.close();
    else close();
    // Not sent: a 499 the error handler does not log, rather than a stream to a closed response.
    throw new QueryCancelledError();
  }
  return { ...query, close };
}

/** `query`, its rows counted as `request`'s answer (`answered`) as its body reads them. */
function counted(request: FastifyRequest, query: OpenQuery): OpenQuery {
  return {
    ...query,
    next: async (): Promise<ResultChunk | null> => {
      const chunk = await query.next();
      if (chunk !== null) answered(request, chunk.rowCount);
      return chunk;
    },
  };
}

/**
 * What ended each request early: set by the `onError` hook (before the status line) and
 * by `logLate` (while streaming), read once its response closes. Weak, so a request
 * leaves no trace; keyed by request, so servers sharing a process cannot mix theirs.
 */
const failures = new WeakMap<FastifyRequest, unknown>();

/** Rows each request has answered so far (`answered`), read once its response closes. Weak, as `failures`. */
const rowsAnswered = new WeakMap<FastifyRequest, number>();

/** Adds `rows` rows read for `request`'s answer (from DuckDB or the result cache). */
function answered(request: FastifyRequest, rows: number): void {
  rowsAnswered.set(request, (rowsAnswered.get(request) ?? 0) + rows);
}

/** Counts the request in `metrics` once its response closes (sent in full, or its client gone). */
function countWhenClosed(request: FastifyRequest, reply: FastifyReply, metrics: StrataMetrics): void {
  const started = performance.now();
  whenGone(request.raw, reply.raw, () => metrics.query(outcomeOf(failures.get(request), reply.raw.writableFinished), (performance.now() - started) / 1000, rowsAnswered.get(request) ?? 0));
}

/** The outcome of a request that failed with `err` (undefined: none) and whose response was, or was not, `sent` in full. */
function outcomeOf(err: unknown, sent: boolean): QueryOutcome {
  if (err instanceof QueryTimeoutError) return 'timeout';
  // A client that stopped reading has in effect left.
  if (err instanceof QueryCancelledError || err instanceof ClientStalledError) return 'cancelled';
  // A failure after the status line also leaves the response unfinished (it is cut off on
  // purpose): only a response unfinished with no failure is a client that left.
  if (err === undefined) return sent ? 'ok' : 'cancelled';
  if (err instanceof QueryQueueFullError) return 'queue_full';
  if (err instanceof NotReadyError) return 'not_ready';
  return statusOf(err) < 500 ? 'rejected' : 'error';
}

/**
 * Logs an error that happened after the status line was sent, once: a warning when the query
 * is at fault (a 4xx had it come earlier) or past its deadline, an error otherwise.
 */
function logLate(request: FastifyRequest, err: unknown): void {
  // A deadline cutting off a stalled client is logged where it fires; the body that then ends with it is not logged again.
  if (failures.get(request) === err) return;
  failures.set(request, err);
  if (err instanceof QueryCancelledError) return;
  if (err instanceof ClientStalledError) return void request.log.warn({ code: err.code }, err.message);
  // As before the status line (the error handler): a deadline is an expected outcome, not a failure.
  if (err instanceof QueryTimeoutError) request.log.warn({ status: 504, code: err.code }, `${err.message} while streaming its result`);
  else if (statusOf(err) < 500) request.log.warn({ err }, 'query refused while streaming its result');
  else request.log.error({ err }, 'query failed while streaming its result');
}

/**
 * Result bytes read before the status line is sent: a result that ends within them goes
 * out as one body with a Content-Length (one socket write, no chunked framing; most
 * dashboard answers), and a failure within them gets its own status and error body.
 * A longer result streams from there.
 */
const WHOLE_BODY_BYTES = 256 * 1024;

/**
 * Sends a result body, whole or streamed (see WHOLE_BODY_BYTES). A failure once the
 * status line is out is logged and rethrown, so Fastify cuts the response off before its
 * last chunk: the client's HTTP library reports an error instead of a well-formed,
 * shorter result (a timeout in the middle of a large answer must not read as success).
 * @throws whatever `body` throws before WHOLE_BODY_BYTES (answered by the error handler).
 */
async function sendBody(request: FastifyRequest, reply: FastifyReply, stallMs: number, type: string, body: AsyncGenerator<string | Buffer>): Promise<FastifyReply> {
  const parts: Buffer[] = [];
  let bytes = 0;
  for (let next = await body.next(); ; next = await body.next()) {
    if (next.done === true) return reply.type(type).send(Buffer.concat(parts, bytes));
    const part = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    parts.push(part);
    bytes += part.length;
    if (bytes < WHOLE_BODY_BYTES) continue;
    if (request.method === 'HEAD') {
      // Fastify would drain a stream after answering HEAD, while the answer's end closes the
      // query under it (`open`): reading on would only fail as cancelled. Nothing more is read.
      await body.return(undefined);
      return reply.type(type).send(Readable.from([]));
    }
    if (stallMs > 0) cutWhenStalled(request, reply, stallMs);
    return reply.type(type).send(Readable.from(rest(request, reply, parts, body)));
  }
}

/** Largest write of a streamed body: the response drains once each is taken (`cutWhenStalled`). */
const PIECE_BYTES = 1024 * 1024;

/** `part` in writes of at most PIECE_BYTES (views, no copy); a string as it is. */
function* pieces(part: string | Buffer): Generator<string | Buffer> {
  if (typeof part === 'string' || part.length <= PIECE_BYTES) return yield part;
  for (let at = 0; at < part.length; at += PIECE_BYTES) yield part.subarray(at, at + PIECE_BYTES);
}

/**
 * Cuts a streamed response off once its client has taken less than a piece of it
 * (PIECE_BYTES) for `stallMs`: the socket's buffer stayed full (no 'drain') all that time.
 * Such a client (a frozen browser tab, a script that stopped reading) would otherwise hold
 * its query's DuckDB connection until the query's deadline (5 minutes by default), and a
 * few of them the whole pool. A client that reads, however slowly, drains the buffer each
 * time it has taken a piece: a chunk of DuckDB's may hold up to 128 MiB of text, which is
 * why it is written in pieces.
 */
function cutWhenStalled(request: FastifyRequest, reply: FastifyReply, stallMs: number): void {
  const res = reply.raw;
  let progressAt = performance.now();
  const progress = (): void => {
    progressAt = performance.now();
  };
  res.on('drain', progress);
  const timer = setInterval(() => {
    if (!res.writableNeedDrain) return progress();
    if (performance.now() - progressAt < stallMs) return;
    clearInterval(timer);
    logLate(request, new ClientStalledError(stallMs));
    cutOff(request, reply);
  }, Math.min(stallMs, 1000));
  timer.unref();
  res.once('close', () => {
    clearInterval(timer);
    res.off('drain', progress);
  });
}

async function* rest(request: FastifyRequest, reply: FastifyReply, read: readonly Buffer[], body: AsyncGenerator<string | Buffer>): AsyncGenerator<string | Buffer> {
  for (const part of read) yield* pieces(part);
  try {
    for await (const part of body) yield* pieces(part);
  } catch (err) {
    // Once the response is cut off (a deadline, a stalled client: logged there) or its client
    // gone, a compressed answer's zlib stream closes too and its pipeline throws "Premature
    // close" in here: no failure of the query's.
    if (reply.raw.destroyed) throw err;
    logLate(request, err);
    cutOff(request, reply);
    throw err;
  }
}

/**
 * Ends a response in the middle of its body so that the client sees it unfinished. Over
 * HTTP/1.1 the missing last chunk says so, but an HTTP/1.0 body (no chunked encoding, no
 * Content-Length: it ends where the connection does) would read as the whole answer after
 * a clean close, so that connection is reset (TCP RST) instead, which clients report.
 */
function cutOff(request: FastifyRequest, reply: FastifyReply): void {
  const socket = reply.raw.socket;
  if (request.raw.httpVersion === '1.0' && socket !== null && !socket.destroyed) socket.resetAndDestroy();
  else reply.raw.destroy();
}

/**
 * Bytes of encoded chunks held while the chunk before them is still on a worker: enough
 * for the workers and the event loop to encode at once (~20 chunks of typical rows), few
 * enough that memory stays bounded when one chunk holds up to 128 MiB of text
 * (`chunk-budget.ts`).
 */
const ENCODED_AHEAD_BYTES = 4 * 1024 * 1024;

/** Bytes of the chunks in `ahead` that are encoded (on the event loop, or by a worker that has replied). */
function encodedBytes(ahead: readonly (Buffer | WorkerRows)[]): number {
  let bytes = 0;
  for (const a of ahead) bytes += (Buffer.isBuffer(a) ? a : a.bytes)?.length ?? 0;
  return bytes;
}

/**
 * The rows of `query` in `format`, chunk by chunk and in order (a chunk the event loop
 * encoded waits for a worker's before it), passed through the recorder; returns how many
 * rows there were. A worker's chunk goes out with the next chunk DuckDB hands over (or at
 * the end), not the moment it is done: waiting for both at once would ask the query for
 * its next chunk while one is being sent, holding one more read chunk per query (up to
 * `chunk-budget.ts`'s bounds) for as long as a slow client takes.
 * @throws what `query.next` throws; QueryExecutionError when a worker failed a chunk.
 */
async function* encodedRows(query: OpenQuery, encoders: ResultEncoders, format: TextFormat, recorder: ResultRecorder | undefined): AsyncGenerator<Buffer, number> {
  let rows = 0;
  const ahead: (Buffer | WorkerRows)[] = [];
  // The chunks at the head that are done; with `all`, or past ENCODED_AHEAD_BYTES, waits for the first that is not.
  const send = async function* (all: boolean): AsyncGenerator<Buffer> {
    while (ahead.length > 0) {
      const head = ahead[0];
      if (!Buffer.isBuffer(head) && head.bytes === undefined) {
        if (head.error !== undefined) throw head.error;
        if (!all && encodedBytes(ahead) <= ENCODED_AHEAD_BYTES) return;
      }
      ahead.shift();
      yield record(recorder, Buffer.isBuffer(head) ? head : head.bytes ?? await head.done);
    }
  };
  for (let chunk = await query.next(); chunk !== null; chunk = await query.next()) {
    ahead.push(encoders.encode(chunk.columns, chunk.rowCount, format, rows > 0, query));
    rows += chunk.rowCount;
    yield* send(false);
  }
  yield* send(true);
  return rows;
}

/**
 * A JSON document whose rows array is filled chunk by chunk: `head`, the rows as
 * `[…],[…]`, then `tail(rows)`. Only a complete result is stored in the cache.
 */
async function* jsonDocument(query: OpenQuery, encoders: ResultEncoders, recorder: ResultRecorder | undefined, store: Store,
  head: string, tail: (rows: number) => string): AsyncGenerator<string | Buffer> {
  let rows = 0;
  try {
    yield record(recorder, head);
    rows = yield* encodedRows(query, encoders, 'json', recorder);
  } finally {
    query.close();
  }
  store(recorder?.result(rows, query.refs));
  yield tail(rows);
}

function jsonBody(query: OpenQuery, encoders: ResultEncoders, recorder: ResultRecorder | undefined, store: Store,
  trailer: (rows: number, profile: object) => string): AsyncGenerator<string | Buffer> {
  return jsonDocument(query, encoders, recorder, store, `{"success":true,"columns":${JSON.stringify(query.names)},"data":[`,
    (rows) => trailer(rows, { ...query.profile, cache: recorder === undefined ? 'off' : 'miss' }));
}

/** Passes `chunk` through the recorder, if any. */
function record<T extends string | Buffer>(recorder: ResultRecorder | undefined, chunk: T): T {
  return recorder === undefined ? chunk : recorder.add(chunk);
}

/** CSV (RFC 4180): a header line of the column names, then the rows (`rowsBytes`). Only a complete result is stored in the cache. */
async function* csvBody(query: OpenQuery, encoders: ResultEncoders, recorder: ResultRecorder | undefined, store: Store): AsyncGenerator<string | Buffer> {
  try {
    yield record(recorder, query.names.map(csvField).join(',') + '\r\n');
    const rows = yield* encodedRows(query, encoders, 'csv', recorder);
    store(recorder?.result(rows, query.refs));
  } finally {
    query.close();
  }
}

async function* arrowBody(query: OpenQuery, recorder: ResultRecorder | undefined, store: Store): AsyncGenerator<Buffer> {
  let rows = 0;
  try {
    const encoder = new ArrowStreamEncoder(query.names, query.types);
    yield record(recorder, encoder.start());
    for (let chunk = await query.next(); chunk !== null; chunk = await query.next()) {
      rows += chunk.rowCount;
      yield record(recorder, encoder.batch(chunk.columns, chunk.rowCount));
    }
    yield record(recorder, encoder.end());
    store(recorder?.result(rows, query.refs));
  } finally {
    query.close();
  }
}

/**
 * QuestDB's name for a DuckDB result type (questdb/questdb `ColumnType`): its integers by
 * width (`BYTE`, `SHORT`, `INT`, `LONG`; DuckDB's unsigned ones as the signed type that
 * holds them), `TIMESTAMP` for every microsecond-or-coarser timestamp, `BINARY` for BLOB.
 * Every other type keeps DuckDB's name (its alias where it has one: `JSON`), which is QuestDB's too where both have the type
 * (`DOUBLE`, `FLOAT`, `BOOLEAN`, `VARCHAR`, `DATE`, `UUID`, `INTERVAL`, `TIMESTAMP_NS`,
 * `DECIMAL(p,s)`), and is DuckDB's own for the types QuestDB lacks (HUGEINT, LIST, STRUCT, …).
 */
function questdbType(type: DuckDBType): string {
  switch (type.typeId) {
    case DuckDBTypeId.TINYINT: return 'BYTE';
    case DuckDBTypeId.SMALLINT: case DuckDBTypeId.UTINYINT: return 'SHORT';
    case DuckDBTypeId.INTEGER: case DuckDBTypeId.USMALLINT: return 'INT';
    case DuckDBTypeId.BIGINT: case DuckDBTypeId.UINTEGER: return 'LONG';
    case DuckDBTypeId.TIMESTAMP: case DuckDBTypeId.TIMESTAMP_TZ: case DuckDBTypeId.TIMESTAMP_S: case DuckDBTypeId.TIMESTAMP_MS: return 'TIMESTAMP';
    case DuckDBTypeId.BLOB: return 'BINARY';
    // JSON is DuckDB's VARCHAR under an alias, which `toString` leaves out.
    default: return type.alias ?? type.toString();
  }
}

/**
 * QuestDB's `/exec` document (questdb/questdb `JsonQueryProcessorState`): `query`,
 * `columns`, `timestamp` (the index of the designated timestamp column, -1 for none: here
 * a timestamp column named `time`, as every measurement's is), then `dataset`; with
 * `nm=true` (`withColumns` false) only `dataset`. `trailer` closes it, given the rows sent.
 */
function execBody(query: OpenQuery, encoders: ResultEncoders, sql: string, withColumns: boolean, trailer: (rows: number) => string,
  recorder: ResultRecorder | undefined, store: Store): AsyncGenerator<string | Buffer> {
  const columns = query.names.map((name, i) => ({ name, type: questdbType(query.types[i]) }));
  // A scalar timestamp only: `TIMESTAMP[]` is no designated timestamp.
  const timestamp = columns.findIndex((c) => c.name === 'time' && (c.type === 'TIMESTAMP' || c.type === 'TIMESTAMP_NS'));
  const head = withColumns ? `{"query":${JSON.stringify(sql)},"columns":${JSON.stringify(columns)},"timestamp":${timestamp},` : '{';
  return jsonDocument(query, encoders, recorder, store, `${head}"dataset":[`, trailer);
}

/**
 * `query` with the values of its LONG columns (QuestDB's name: BIGINT, UINTEGER) as JSON
 * strings, as QuestDB's `quoteLargeNum=true` sends them.
 */
function longsQuoted(query: OpenQuery): OpenQuery {
  const longs = new Set(query.types.flatMap((t, i) => (questdbType(t) === 'LONG' ? [i] : [])));
  const next = async (): Promise<ResultChunk | null> => {
    const chunk = await query.next();
    if (chunk === null || longs.size === 0) return chunk;
    return { rowCount: chunk.rowCount, columns: chunk.columns.map((col, i) => (longs.has(i) ? integersAsText(col, chunk.rowCount) : col)) };
  };
  return { ...query, next };
}

/** An integer column (`i64`, `u32`) of `n` rows as a `utf8` column of its decimal digits. */
function integersAsText(col: Column, n: number): Column {
  if (col.kind !== 'i64' && col.kind !== 'u32') throw new TypeError(`a LONG column read as ${col.kind}`);
  const texts = Array.from({ length: n }, (_, i) => String(col.values[i]));
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i] + texts[i].length;
  return { kind: 'utf8', offsets, data: Buffer.from(texts.join(''), 'latin1'), valid: col.valid };
}

/**
 * QuestDB's `count` of an `/exec` answer of `rows` rows: the number of the last row sent,
 * counted from the start of the result (a page `LO,HI` that has rows counts to its last,
 * one that starts past the end 0); the rows sent without a `limit`.
 */
function pageCount(range: RowRange | undefined, rows: number): number {
  if (range === undefined) return rows;
  return rows === 0 ? 0 : range.skip + rows;
}

/** What `/exec?timings=true` reports from: the request's start (`performance.now()`), and planning and counting times (ms). */
interface ExecClock {
  started: number;
  compilerMs: number;
  countMs: number;
}

/**
 * The end of an `/exec` document: `count`, then with `clock` QuestDB's `timings` in ns, in its
 * order (questdb/questdb `JsonQueryProcessorState.querySuffixWithError`).
 */
function execTrailer(count: number, clock: ExecClock | undefined): string {
  if (clock === undefined) return `],"count":${count}}`;
  const ns = (ms: number): number => Math.round(ms * 1e6);
  const { started, compilerMs, countMs } = clock;
  const execute = performance.now() - started;
  return `],"count":${count},"timings":{"authentication":0,"compiler":${ns(compilerMs)},"execute":${ns(execute)},"count":${ns(countMs)}}}`;
}

/**
 * QuestDB's `limit` parameter of `/exec`: `N` (the first N rows), `LO,HI` (rows LO to HI,
 * numbered from 1, both included; LO 0 reads as 1, so that `0,N` and `1,N` are `N`) or `LO,`
 * (rows LO to the end), as questdb/questdb `JsonQueryProcessor.parseUrl` reads it (skip LO -
 * 1, stop at HI, no HI: no stop), and as its web console pages (`0,1000`, then
 * `1001,2000`); undefined when absent.
 * @throws QueryRejectedError for any other value: negative (QuestDB's server answers no rows,
 *   though its documentation says the last N; neither is what was asked, so it is refused,
 *   saying how to get the last rows), reversed, not integers, repeated.
 */
function execLimit(value: unknown): RowRange | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new QueryRejectedError(`query parameter "limit" is given ${value.length} times: give it once`);
  const text = String(value);
  if (/^ *-/.test(text)) {
    throw new QueryRejectedError(`query parameter "limit" must not be negative, got ${JSON.stringify(value)}: for the last N rows, ORDER BY … DESC LIMIT N in the query`);
  }
  const m = /^ *(\d{1,15}) *(?:(,) *(\d{1,15})? *)?$/.exec(text);
  const [lo, hi] = m === null ? [NaN, NaN] : m[2] === undefined ? [0, Number(m[1])] : [Number(m[1]), m[3] === undefined ? Infinity : Number(m[3])];
  // LO = HI + 1 is QuestDB's empty page.
  if (!(lo <= hi + 1)) {
    throw new QueryRejectedError(`query parameter "limit" must be N (the first N rows), LO,HI (rows LO to HI, numbered from 1, both included, LO ≤ HI + 1) or LO, (rows LO to the end), got ${JSON.stringify(value)}`);
  }
  const skip = Math.max(0, lo - 1);
  return { skip, take: hi - skip };
}

