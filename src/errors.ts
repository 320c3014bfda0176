/**
 * Every error type Strata raises on purpose, and the HTTP status each maps to.
 *
 * Modelled on Fastify's `lib/errors.js`: one file owns the catalogue so that the
 * mapping to HTTP codes happens in exactly one place (`http/error-handler.ts`).
 * Anything thrown that is not a `StrataError` is an engine fault and becomes 500.
 */
import type { LineErrors } from './parse/line-errors.js';

/**
 * Base class: `statusCode` is the HTTP status, `code` a stable machine-readable name,
 * `retryAfterSeconds` the `Retry-After` of a 429 or 503 when the error knows better than
 * the handler's default.
 */
export class StrataError extends Error {
  /** HTTP status the error handler answers with (`http/error-handler.ts`, `statusOf`). */
  readonly statusCode: number;
  /** Stable machine-readable name (`bad_request`, `partial_write`, …), logged with refused requests. */
  readonly code: string;
  /** `Retry-After` of a 429 or 503, seconds; undefined leaves the handler's default. */
  readonly retryAfterSeconds: number | undefined;
  constructor(message: string, statusCode: number, code: string, retryAfterSeconds?: number) {
    super(message);
    this.name = new.target.name;
    this.statusCode = statusCode;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** 400: the request as a whole is malformed (bad parameter, undecodable body, bad name). */
export class BadRequestError extends StrataError {
  constructor(message: string) {
    super(message, 400, 'bad_request');
  }
}

/** 413: the body, raw or after decompression, exceeds the configured cap in bytes. */
export class PayloadTooLargeError extends StrataError {
  constructor(limitBytes: number, what = 'request body') {
    super(`${what} exceeds the limit of ${limitBytes} bytes`, 413, 'payload_too_large');
  }
}

/**
 * A write where some lines were rejected. Follows InfluxDB's partial write: the valid
 * records of the same body were accepted and are not lost; the message names the first
 * rejected lines (`errors.first`) and says how many were dropped (`rejected`, every one
 * counted). 400, except where InfluxDB v2 answers 422 (`/api/v2/write` when every
 * rejection is semantic, such as a field type conflict, and no line is malformed).
 */
export class PartialWriteError extends StrataError {
  /** Records of the body that were accepted (and will be written); sent in the error body. */
  readonly accepted: number;
  /** Records rejected, every one counted (not only those the message names); sent in the error body. */
  readonly rejected: number;
  /**
   * `unwritten`: valid records of the body refused with it, as InfluxDB v2 refuses a
   * body with a malformed line whole (counted in `rejected`, `accepted` then 0).
   */
  constructor(errors: LineErrors, accepted: number, unit = 'line', statusCode: 400 | 422 = 400, unwritten = 0) {
    const shown = errors.first.map((e) => `${unit} ${e.line}: ${e.message}`);
    const more = errors.count > shown.length ? `; and ${errors.count - shown.length} more` : '';
    const prefix = accepted > 0 ? 'partial write' : 'write rejected';
    const whole = unwritten > 0 ? `; nothing of the body was written (its ${unwritten} valid ${unit}${unwritten === 1 ? '' : 's'} neither), as InfluxDB 2.x answers a malformed ${unit}` : '';
    super(`${prefix}: ${shown.join('; ')}${more}${whole} (accepted=${accepted} rejected=${errors.count + unwritten})`, statusCode, 'partial_write');
    this.accepted = accepted;
    this.rejected = errors.count + unwritten;
  }
}

/**
 * 429 (buffers full) or 503 (storage failing): the write was not taken and the
 * client should retry after `retryAfterSeconds`.
 */
export class BackpressureError extends StrataError {
  constructor(message: string, statusCode: 429 | 503, retryAfterSeconds: number) {
    super(message, statusCode, statusCode === 429 ? 'too_many_requests' : 'unavailable', retryAfterSeconds);
  }
}

/** 503: the server has not finished starting, or is shutting down. */
export class NotReadyError extends StrataError {
  constructor(reason: string) {
    super(reason, 503, 'not_ready');
  }
}

/**
 * 503: the storage backend (S3, the local disk) failed an operation a request needed
 * (listing or downloading files for a query), or is unreachable or not writable at
 * start-up. `cause` holds the backend's own error.
 */
export class StorageUnavailableError extends StrataError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 503, 'storage_unavailable');
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** 404: a database a request names has no measurement, stored or buffered (Arc's database endpoints). */
export class DatabaseNotFoundError extends StrataError {
  constructor(database: string) {
    super(`Database '${database}' not found`, 404, 'not_found');
  }
}

/**
 * 500: a stored object listed for a query is gone from the bucket (deleted since it was
 * listed, say by retention on another node). The query service plans the query again over
 * a fresh listing; this reaches a client only if the object it then lists is gone too.
 */
export class StoredFileGoneError extends StrataError {
  constructor(key: string) {
    super(`stored file "${key}" is gone from the bucket (deleted since it was listed)`, 500, 'stored_file_gone');
  }
}

/**
 * 500: a regular file sits where the storage layout needs a directory (a database,
 * measurement or time-partition directory of the local backend), so files there can
 * be neither written nor listed until an operator moves it away. The message names
 * the database and measurement, never the host path (that is in `cause`, for logs).
 * Flushes that hit it keep their records and retry.
 */
export class StorageLayoutError extends StrataError {
  constructor(what: string, options?: { cause?: unknown }) {
    super(`storage layout conflict: a file is in the way of the directory of ${what}; an operator must move it away`, 500, 'storage_layout_conflict');
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/**
 * 500: a stored object is not a Parquet file where Strata reads it itself (its footer,
 * by ranged reads of its end): too short, no `PAR1` magic, a footer length beyond the
 * object; or DuckDB cannot decode its metadata (a message naming no file otherwise).
 * The message names its storage key, never a host path; an operator must replace or
 * remove the object.
 */
export class DamagedFileError extends StrataError {
  constructor(key: string, problem: string) {
    super(`stored file '${key}' is not a valid Parquet file: ${problem}`, 500, 'damaged_file');
  }
}

/**
 * 503: a stored object was replaced by another under the same key each time Strata
 * read its Parquet footer (by ranged reads of its end), `reads` times in a row: the
 * reads never came from one object. The message names its storage key; a retry reads
 * it again.
 */
export class StoredFileChangedError extends StrataError {
  constructor(key: string, reads: number) {
    super(`stored file '${key}' was replaced while its footer was read, ${reads} times in a row; retry`, 503, 'stored_file_changed');
  }
}

/**
 * 503: the write-ahead log could not be written (disk full, I/O error); the write was
 * not acknowledged and the client should retry. `cause` holds the file system's error.
 */
export class WalWriteError extends StrataError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 503, 'wal_unavailable');
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/**
 * Start-up only (500 if it ever reached a request): a directory this server needs is in
 * use by another live Strata server on this machine (`storage/directory-lock.ts`), or,
 * with `cause`, its lock could not be taken. `setting` names the directory's setting
 * (`STRATA_DATA_DIR`, `STRATA_WAL_DIR`) and `dir` is the directory as configured.
 */
export class DirectoryLockError extends StrataError {
  constructor(setting: string, dir: string, cause?: NodeJS.ErrnoException) {
    super(cause === undefined
      ? `${setting} (${dir}) is in use by another Strata server on this machine; stop it, or give this server a directory of its own`
      : `${setting} (${dir}) cannot be locked against other Strata servers: ${cause.code ?? cause.message}`, 500, 'directory_locked');
    if (cause !== undefined) this.cause = cause;
  }
}

/** 400: SQL that does not parse, or that the sandbox refuses. */
export class QueryRejectedError extends StrataError {
  constructor(message: string) {
    super(message, 400, 'query_rejected');
  }
}

/** 500: DuckDB failed while running a query that parsed and planned. */
export class QueryExecutionError extends StrataError {
  constructor(message: string) {
    super(message, 500, 'query_failed');
  }
}

/**
 * 422: a value of a query's result cannot be sent in the type its format uses for its
 * column: a 128-bit integer or DECIMAL(p, 0) outside int64 in an Arrow result (Arrow
 * results narrow them to Int64, as Arc does). The message names the cast that fixes it.
 */
export class ResultValueError extends StrataError {
  constructor(message: string) {
    super(message, 422, 'result_value_out_of_range');
  }
}

/**
 * 422: one chunk of a query's result (up to 2,048 rows) holds more than Strata converts
 * at a time (bounds in `query/chunk-budget.ts`: values of LIST, STRUCT, MAP and other
 * types without a fast path, strings within them, VARCHAR text). The query is refused
 * rather than let it run the server out of memory; the message names the column and how
 * to reshape the query (aggregate, unnest, cast to VARCHAR, select less).
 */
export class ResultTooLargeError extends StrataError {
  constructor(message: string) {
    super(message, 422, 'result_too_large');
  }
}

/**
 * 422: DuckDB had to spill more of a query's sorts, aggregates or joins to disk (what does
 * not fit in `STRATA_QUERY_MEMORY_LIMIT`) than `STRATA_QUERY_MAX_SPILL` allows, a bound
 * shared by every running query; `limit` is that bound as DuckDB prints it (`10.0 GiB`).
 * The query is refused rather than fill the disk the WAL and Parquet files live on.
 */
export class SpillLimitError extends StrataError {
  constructor(limit: string) {
    super(`the query needs more temporary disk space than STRATA_QUERY_MAX_SPILL allows (${limit}, shared by all running queries) `
      + 'for what does not fit in STRATA_QUERY_MEMORY_LIMIT: narrow its time range, aggregate or select less, or retry when fewer large queries run', 422, 'spill_limit');
  }
}

/**
 * 422: a query needed more memory than `STRATA_QUERY_MEMORY_LIMIT`, a bound shared by
 * every running query, for what DuckDB cannot spill to disk: a `list()` or
 * `string_agg()` of millions of values, or (`heldRecords`) the records of a measurement
 * not yet flushed, which each query copies into DuckDB. `limit` is the bound as DuckDB
 * prints it (`61.0 MiB` for `64MB`). DuckDB's own advice (SET threads, SET memory_limit)
 * names settings the sandbox locks, so it is not passed on.
 */
export class MemoryLimitError extends StrataError {
  constructor(limit: string, heldRecords?: { database: string; measurement: string }) {
    const what = heldRecords === undefined ? 'what DuckDB cannot spill to disk'
      : `the records of ${heldRecords.database}.${heldRecords.measurement} not yet flushed, which queries copy into DuckDB`;
    const advice = heldRecords === undefined ? 'narrow its time range, aggregate or select less, or retry when fewer large queries run'
      : 'retry once they are flushed (STRATA_BUFFER_MAX_AGE_MS, or POST /api/v1/write/flush), or raise the limit';
    super(`the query needs more memory than STRATA_QUERY_MEMORY_LIMIT allows (${limit}, shared by all running queries) for ${what}: ${advice}`,
      422, 'memory_limit');
  }
}

/**
 * 503: the query queue is full (`STRATA_QUERY_MAX_QUEUE` waiting queries); the client
 * should retry after `retryAfterSeconds`.
 */
export class QueryQueueFullError extends StrataError {
  /** `waiting`: queries queued when this one was refused (`maxQueue`, or more on S3: `DuckDBPool.use`'s `before`). */
  constructor(waiting: number, retryAfterSeconds: number) {
    super(`query queue full (${waiting} queries waiting); retry later`, 503, 'query_queue_full', retryAfterSeconds);
  }
}

/** 504: the query did not finish within its timeout (ms) and was interrupted (Arc's message). */
export class QueryTimeoutError extends StrataError {
  constructor(timeoutMs: number) {
    super(`Query timed out (after ${timeoutMs} ms)`, 504, 'query_timeout');
  }
}

/**
 * A streamed result's client took less than 1 MiB of it for `stallMs`: the response
 * is cut off (its status line is out, so no status is sent) and the query's connection freed.
 */
export class ClientStalledError extends StrataError {
  constructor(stallMs: number) {
    super(`the client read less than 1 MiB of the result in ${stallMs} ms (STRATA_QUERY_STALL_TIMEOUT_MS): response cut off`, 408, 'client_stalled');
  }
}

/** 499 (nginx's "client closed request"): the client went away and its query was cancelled; never seen by that client. */
export class QueryCancelledError extends StrataError {
  constructor() {
    super('query cancelled: the client disconnected', 499, 'query_cancelled');
  }
}

/**
 * 499 (nginx's "client closed request"): the client of a write went away while the write
 * waited on storage, before its records were logged or buffered; none was taken, and the
 * answer is never seen by that client.
 */
export class WriteAbandonedError extends StrataError {
  constructor() {
    super('write abandoned: the client disconnected before its records were taken', 499, 'write_abandoned');
  }
}

/** Raised at start-up for an invalid configuration value; names the key at fault. */
export class ConfigError extends Error {
  /** The key at fault (`section.key`, or the environment variable that set it), or the file that cannot be used (`STRATA_CONFIG (<file>)`, a data directory's `.node-id`). */
  readonly key: string;
  constructor(key: string, message: string) {
    super(`invalid configuration ${key}: ${message}`);
    this.name = 'ConfigError';
    this.key = key;
  }
}

/** A Parquet write or storage operation failed; the records stay buffered and are retried. */
export class FlushError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FlushError';
  }
}
