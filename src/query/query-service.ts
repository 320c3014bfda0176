/**
 * Runs user SQL over the stored Parquet files and the records not yet flushed.
 *
 * Steps, all on one pooled connection borrowed at the request's priority (on S3, the
 * query's listings and downloads come first, before it borrows one: see `prefetch`):
 * 1. catalogue commands (`show.ts`) are answered from storage, as a VALUES query so that
 *    every result format treats them alike;
 * 2. everything else is parsed by DuckDB (`sql-rewriter.ts`); only one SELECT passes;
 * 3. per measurement reference: the held (unflushed) records and the file listing are
 *    taken consistently (see `listed`), the files are pruned to the hour partitions
 *    the reference's time bounds can match (`time-range.ts`), and the reference is
 *    replaced by `read_parquet([...])` UNION ALL BY NAME the held records, loaded into
 *    connection-local temp tables (`write/snapshot-table.ts`);
 * 4. the rewritten SQL is streamed chunk by chunk, so no result is materialised whole,
 *    from a prepared statement the connection may have kept (`prepared-statements.ts`);
 *    the connection stays borrowed until the caller closes the result.
 *
 * The sandbox has two layers: the parser check (one SELECT, no file-reading table
 * function, no path as a table) and DuckDB itself locked down at start-up
 * (`lockDown`), so a parser miss still cannot touch a file outside Strata's directories.
 */
import { StatementType, type DuckDBConnection, type DuckDBDataChunk, type DuckDBResult, type DuckDBType } from '@duckdb/node-api';
import { LRUCache } from 'lru-cache';
import type { BufferSnapshot } from '../buffer/measurement-buffer.js';
import { MemoryLimitError, QueryCancelledError, QueryExecutionError, QueryRejectedError, QueryTimeoutError, SpillLimitError, StoredFileGoneError, StrataError } from '../errors.js';
import type { LocalFiles, StoredObject } from '../storage/storage.js';
import { asciiLower } from '../parse/names.js';
import type { ListingCut } from '../write/key-log.js';
import { hourOf, measurementPrefix } from '../write/layout.js';
import type { HeldTables } from './held-tables.js';
import type { PreparedStatements } from './prepared-statements.js';
import { emptySetSql, inHours, megabytes, type Catalog, type HourRange, type MeasurementInfo } from './catalog.js';
import { ChunkBudget } from './chunk-budget.js';
import { checkCaseExpansion, checkGroupingAndPivots, checkBindExpansion, MACRO_USES_SQL, macroUses, type MacroUses } from './expansion.js';
import { readColumn, type Column, type DecimalMode } from './chunk-columns.js';
import { REINTERRUPT_MS, type DuckDBPool, type Priority } from './duckdb-pool.js';
import { memoryLimitOf, spillLimitOf, withKeys, withoutSqlExcerpt } from './duckdb-messages.js';
import { askedColumns, noDataSource } from './no-data.js';
import { parseShowCommand, type ShowCommand } from './show.js';
import { analyzeSql, holdsPrintedSource, KEYWORDS_SQL, parseSerializedSql, readParquetSource, refKey, REWRITE_UNPARSABLE, SQL_VALUE_KEYWORDS, type AnalyzedQuery, type MeasurementOccurrence, type MeasurementRef, type SqlParser } from './sql-rewriter.js';
import { quoteIdentifier, quoteLiteral } from './sql-text.js';
import { boundSql, CLOCK_WORDS, timeBounds, type TimeBound } from './time-range.js';

/** Table functions user SQL may call: generators only; anything reading files is refused. */
const ALLOWED_TABLE_FUNCTIONS = new Set(['range', 'generate_series', 'unnest']);
/** Schemas of DuckDB's (and PostgreSQL's) catalog views, read as databases by the rewrite: refused when no such database holds data. */
const CATALOG_SCHEMAS = new Set(['information_schema', 'pg_catalog']);

/** DuckDB error classes caused by the query text itself (400), as opposed to engine failures (500). */
const USER_ERROR = /^(Failed to extract statements: )?(Parser|Binder|Catalog|Conversion|Invalid Input|Not implemented|Syntax|Out of Range|Permission) Error/i;

/**
 * Budget of the parsed-SQL cache, counted as 16 units per SQL character (DuckDB's
 * serialized AST runs to ~14 bytes per character of SQL).
 */
const ANALYSIS_CACHE_UNITS = 32 * 1024 * 1024;

/** Longest SQL text accepted, in characters. */
export const MAX_SQL_LENGTH = 100_000;

/**
 * Stored files a query may read, counted once per reference to their measurement (each
 * reference lists its files in the rewritten SQL): a year of hourly files read eleven
 * times, some 30 MB of SQL at most.
 */
export const MAX_FILE_REFERENCES = 100_000;

/** Records accepted but not yet in a listed file, and the files a flush in progress has produced. */
export interface HeldRecordsSource {
  /** See `BufferManager.heldRecords`. */
  held(database: string, measurement: string): BufferSnapshot[];
  /** See `BufferManager.heldMeasurements`. */
  heldMeasurements(): { database: string; measurement: string }[];
  /** Keys of files written (or being written) from `snapshot`; see `ParquetWriter.keysOf`. */
  filesOf(snapshot: BufferSnapshot): readonly string[];
  /** The files of flushes that start from now on, to leave out of listings; see `ParquetWriter.cut`. */
  cut(): ListingCut;
}

/** One query to run. */
export interface QueryRequest {
  sql: string;
  /** Database of unqualified measurement names. */
  database: string;
  priority: Priority;
  /** Aborting (timeout, client gone) leaves the queue or interrupts DuckDB; the reason is what `open`/`next` throw. */
  signal: AbortSignal;
  /** How DECIMAL columns are read (`arrow` for the Arrow endpoint, `exact` otherwise). */
  decimals: DecimalMode;
  /**
   * The user's statement that `sql` wraps (`POST /api/v1/query/estimate`: `SELECT count(*)
   * FROM (…)`), checked first, on the query's connection, as `sql` itself would be: refused
   * exactly as `open` refuses it, with errors about it rather than about the wrapper (inside
   * which text such as `SELECT 1) t, (SELECT 2` would parse).
   */
  wraps?: string;
}

/** What `x-strata-profile` reports; times in ms. */
export interface QueryProfile {
  /** Parsing, listing, pruning, downloading (S3) and loading held records, ms. */
  planning_ms: number;
  /**
   * Parquet files of the measurement each reference reads, summed over the query's
   * references (a self-join counts its measurement's files twice), as are the two below.
   */
  files_considered: number;
  /** Files left after time-range pruning. */
  files_scanned: number;
  /** Unflushed records read from memory (never pruned). */
  buffered_rows: number;
}

/** One chunk of result rows, column by column. */
export interface ResultChunk {
  readonly columns: Column[];
  readonly rowCount: number;
}

/** A running query; the connection stays borrowed until `close()`. */
export interface OpenQuery {
  readonly names: string[];
  readonly types: DuckDBType[];
  readonly profile: QueryProfile;
  /** Measurements the query reads (for the result cache); empty for SHOW. */
  readonly refs: readonly MeasurementRef[];
  /**
   * Whether a run over the same data gives the same answer: false when the SQL reads the
   * clock (`now()`, `current_date`), draws random values (`random()`, `uuid()`, a SAMPLE
   * without a seed) or calls another function DuckDB does not call consistent. Only
   * deterministic results may be cached.
   */
  readonly deterministic: boolean;
  /**
   * The next chunk, or null at the (real) end.
   * @throws the abort reason (QueryTimeoutError, QueryCancelledError) when interrupted,
   *   QueryCancelledError when read after `close` before its end; SpillLimitError; MemoryLimitError;
   *   QueryExecutionError, also for a result DuckDB failed part-way through.
   */
  next(): Promise<ResultChunk | null>;
  /** Releases the connection (and the pinned files); call exactly once, also after errors. */
  close(): void;
}

/** A query as rewritten by `QueryService.plan`. */
interface RewrittenQuery {
  readonly analyzed: AnalyzedQuery;
  readonly sources: ReadonlyMap<MeasurementOccurrence, string>;
  /** The reads of measurements with neither files nor buffered records (`no-data.ts`). */
  readonly noData: ReadonlySet<MeasurementOccurrence>;
}

/**
 * What `QueryService.prefetch` did: the files it pinned, by storage key (the listed size
 * and the local path of each), until `release()`, which the query calls once it has
 * ended; and how long it took, ms (part of the query's planning time).
 */
interface Prefetched {
  readonly local: ReadonlyMap<string, { size: number; path: string }>;
  readonly ms: number;
  release(): void;
}

const NOTHING_PREFETCHED: Prefetched = { local: new Map(), ms: 0, release: () => undefined };

/** A planned query: the SQL to run (undefined: the empty answer), what it reads, its profile. */
interface Plan {
  sql: string | undefined;
  /** Row counts of the held-records tables `sql` reads, in order (see `PreparedStatements.stream`). */
  heldRows: string;
  refs: readonly MeasurementRef[];
  /** See `OpenQuery.deterministic`. */
  deterministic: boolean;
  /**
   * Whether `sql` calls a clock reader DuckDB folds into the plan when it prepares it
   * (`CLOCK_READERS_CALLED_CONSISTENT`): a statement kept and run again would answer its
   * first time, so such a query is prepared anew each time.
   */
  foldsClock?: boolean;
  profile: QueryProfile;
  /** The parsed query and each measurement read's source in `sql`; undefined for SHOW and when `sql` is. */
  query?: RewrittenQuery;
  /** Text DuckDB answers (column names, error messages) with the rewrite it may print put back as the user wrote it. */
  userText: (text: string) => string;
}

/**
 * Runs the SQL of the query endpoints (see the module comment for the steps and the
 * sandbox). Created once by the composition root (src/app.ts) with: the query pool (one
 * connection per query, at its priority), the `Catalog` (listings, file columns, stored
 * files' local copies), the held records and the files a flush in progress produced
 * (`BufferManager`, `ParquetWriter`; read-your-writes), the per-connection held-records
 * tables and the kept prepared statements. Any number of `open` calls run concurrently,
 * up to the pool's size at once; each keeps its connection until its `OpenQuery.close`.
 */
export class QueryService {
  private readonly pool: DuckDBPool;
  private readonly catalog: Catalog;
  private readonly held: HeldRecordsSource;
  private readonly heldTables: HeldTables;
  private readonly statements: PreparedStatements;
  private readonly planner: DuckDBPool | undefined;
  /**
   * Parsed and checked SQL by database and text: a dashboard repeats its queries, and
   * the parse is a DuckDB round trip in front of each. The analysis depends on nothing
   * but those two, so entries never go stale.
   */
  private readonly analyses = new LRUCache<string, AnalyzedQuery>({ maxSize: ANALYSIS_CACHE_UNITS, sizeCalculation: (_, key) => key.length * 16 });
  /** See `nonDeterministicFunctions`; read from DuckDB by the first query planned. */
  private nonDeterministic: ReadonlySet<string> | undefined;
  /** DuckDB's keywords (`KEYWORDS_SQL`), for `AnalyzedQuery.restoreReferences`; read by the first query planned. */
  private keywords: ReadonlySet<string> | undefined;
  /** How DuckDB's macros use their parameters (`MACRO_USES_SQL`), for `checkBindExpansion`; read by the first query analysed. */
  private macroUses: MacroUses | undefined;

  /**
   * @param planner for a remote backend (S3), a pool of its own for the DuckDB calls of
   *   `prefetch` (parsing, evaluating time bounds): the listings and downloads of a query
   *   then happen before it borrows a query connection, so that a stalled S3 holds none
   *   of them. Undefined for the local backend, whose files need no download.
   */
  constructor(pool: DuckDBPool, catalog: Catalog, held: HeldRecordsSource, heldTables: HeldTables, statements: PreparedStatements, planner?: DuckDBPool) {
    this.pool = pool;
    this.catalog = catalog;
    this.held = held;
    this.heldTables = heldTables;
    this.statements = statements;
    this.planner = planner;
  }

  /**
   * Starts one read-only statement and returns once DuckDB has begun producing rows.
   * A query over a measurement with no files and no buffered records returns an empty
   * result with no columns (as Arc does), not an error.
   * @throws QueryRejectedError (400) for empty, oversized, unparsable or non-SELECT SQL,
   *   forbidden table functions, DuckDB parser/binder errors and file access refused by
   *   the lockdown; QueryQueueFullError (503); the signal's reason (QueryTimeoutError
   *   504, QueryCancelledError); SpillLimitError (422) when DuckDB would spill past
   *   `STRATA_QUERY_MAX_SPILL`; MemoryLimitError (422) when it needs more memory than
   *   `STRATA_QUERY_MEMORY_LIMIT` for what it cannot spill; QueryExecutionError (500)
   *   when DuckDB fails otherwise.
   */
  async open(req: QueryRequest): Promise<OpenQuery> {
    const sql = req.sql;
    if (req.wraps !== undefined) checkText(req.wraps);
    checkText(sql);
    const show = parseShowCommand(sql);
    const showSql = show === undefined ? undefined : await this.showSql(show, req.database, req.signal);
    // On S3, listed and downloaded while the query waits in the pool's queue (`prefetch`).
    let prefetched: Prefetched | undefined;
    let ended = false;
    const before = show !== undefined || this.planner === undefined ? undefined : async (left: AbortSignal): Promise<void> => {
      const taken = await this.prefetch(req, left);
      // Gone from the queue meanwhile (refused, aborted): nothing will read these.
      if (ended) taken.release();
      else prefetched = taken;
    };
    return new Promise<OpenQuery>((resolve, reject) => {
      let answered = false;
      const fail = (err: unknown): void => {
        if (answered) return;
        answered = true;
        // Planning runs DuckDB statements outside `guard`: one the abort interrupted fails
        // with DuckDB's own "INTERRUPT Error", which would otherwise be a 500.
        reject(req.signal.aborted && !(err instanceof StrataError) ? req.signal.reason : err);
      };
      this.pool.use(async (conn) => {
        const cleanup: (() => Promise<void> | void)[] = [];
        try {
          if (req.wraps !== undefined) await this.analysis(conn, req.wraps, req.database);
          const { plan, result } = await this.start(conn, req, showSql, prefetched ?? NOTHING_PREFETCHED, cleanup);
          if (result === undefined) {
            let done!: () => void;
            const finished = new Promise<void>((r) => (done = r));
            answered = true;
            resolve({ names: [], types: [], profile: plan.profile, refs: plan.refs, deterministic: plan.deterministic, next: async () => null, close: () => done() });
            await finished;
            return;
          }
          let done!: (failure: unknown) => void;
          const finished = new Promise<unknown>((r) => (done = r));
          answered = true;
          resolve(openResult(result, conn, plan, req, done));
          // Failing the lease counts it in `query_errors_total` (the reader has been told, or has left).
          const failure = await finished;
          if (failure !== undefined) throw failure;
        } catch (err) {
          // Aborted: answer now, not once DuckDB has returned from the call given up on (`interruptible`).
          if (req.signal.aborted) fail(err);
          throw err;
        } finally {
          await settled(conn);
          for (const c of cleanup.reverse()) await c();
        }
      }, { priority: req.priority, signal: req.signal, before }).catch(fail).finally(() => {
        ended = true;
        prefetched?.release();
      });
    });
  }

  /**
   * For a remote backend (`planner` set), run while the query waits in the pool's queue
   * (`UseOptions.before`: counted in its depth and bound, lent a connection only once this
   * is done): lists the measurements the query reads and downloads the files its time
   * bounds can match into the cache, pinned. `plan` then finds the listings in the
   * backend's listing cache (`s3.list_ttl_ms`) and the files on disk. Were a query to
   * list and download on its connection, a stalled S3 would hold every connection of the
   * pool and queue every other query, one that reads no stored file too, until its
   * deadline. Parsing and the bounds run on a `planner` connection, borrowed at the
   * query's priority and given back before the first S3 request. The held records are
   * not taken here but by `plan`, on the connection: taken now, the records of snapshots
   * written while the query waits would stay in memory, outside the buffers' byte bound,
   * for as long as it waits. The files stay pinned while the query waits: queries queued
   * on a busy pool can hold the cache past `STRATA_CACHE_MAX_BYTES`. Left to `plan`, on
   * its connection: listing again when the listing cache holds no listing by then (`s3.list_ttl_ms`
   * 0, expired during the wait), the footers of files the bounds prune away whose columns
   * are not known yet, files a bound read as the clock ends up scanning (`clockWord`),
   * files written since, a replan (a file gone), and the downloads of a query whose files
   * pass MAX_FILE_REFERENCES, which `plan` refuses.
   * @param left aborts when the query leaves the queue (its own signal, refused, shutdown).
   * @returns the files for `plan`; the caller releases them once the query has ended.
   * @throws as `open`: QueryRejectedError for SQL it refuses; StorageUnavailableError
   *   (503) when S3 fails; `left`'s reason once it aborts. Nothing stays pinned then.
   */
  private async prefetch(req: QueryRequest, left: AbortSignal): Promise<Prefetched> {
    const planner = this.planner;
    if (planner === undefined) return NOTHING_PREFETCHED;
    const started = performance.now();
    const pinned: LocalFiles[] = [];
    let refs: readonly MeasurementRef[] = [];
    try {
      const { analyzed, ranges } = await planner.use(async (conn) => {
        if (req.wraps !== undefined) await this.analysis(conn, req.wraps, req.database);
        const analyzed = await this.analysis(conn, req.sql, req.database);
        return { analyzed, ranges: await this.hourRanges(conn, analyzed.statement, analyzed.occurrences) };
      }, { priority: req.priority, signal: left });
      refs = analyzed.refs;
      const listings = new Map<string, readonly StoredObject[]>();
      for (const ref of refs) listings.set(refKey(ref), await this.catalog.files(ref.database, ref.measurement, left));
      const wanted = new Map<string, Set<StoredObject>>(refs.map((ref) => [refKey(ref), new Set()]));
      let fileReferences = 0;
      analyzed.occurrences.forEach((o, i) => {
        const all = listings.get(refKey(o.ref))!;
        const { hours } = ranges[i];
        const scanned = hours === undefined ? all : inHours(all, hours);
        fileReferences += scanned.length * (o.copies ?? 1);
        for (const f of scanned) wanted.get(refKey(o.ref))!.add(f);
      });
      const local = new Map<string, { size: number; path: string }>();
      if (fileReferences <= MAX_FILE_REFERENCES) {
        for (const set of wanted.values()) {
          if (set.size === 0) continue;
          const files = [...set];
          const opened = await this.catalog.open(files, false, left);
          pinned.push(opened);
          opened.paths.forEach((path, i) => local.set(files[i].key, { size: files[i].size, path }));
        }
      }
      return { local, ms: performance.now() - started, release: () => pinned.forEach((files) => files.release()) };
    } catch (err) {
      for (const files of pinned) files.release();
      // Gone from the bucket since it was listed: `plan` lists again, and plans again should that happen once more.
      if (err instanceof StoredFileGoneError) {
        for (const ref of refs) this.catalog.changed(ref.database, ref.measurement);
        return NOTHING_PREFETCHED;
      }
      // The abort interrupted a DuckDB call: its own "INTERRUPT Error" is no answer.
      throw left.aborted && !(err instanceof StrataError) ? left.reason : err;
    }
  }

  /**
   * Plans the query and starts it on `conn`. A measurement read with no data yet is an
   * empty table with only `time`; when the query names columns it would have had, not a
   * binder error but the query with them NULL runs, or, when it reads nothing else, the
   * answer is an empty result (`result` undefined) with no columns, as Arc does (`no-data.ts`).
   * When a file DuckDB was given has disappeared (deleted from outside
   * Strata while its listing was cached, or a cached copy of an S3 object wiped), or an S3
   * object is gone from the bucket, the listings are dropped and the query planned again
   * (up to MAX_REPLANS times), with cached copies checked.
   */
  private async start(conn: DuckDBConnection, req: QueryRequest, showSql: string | undefined, prefetched: Prefetched, cleanup: (() => Promise<void> | void)[]):
    Promise<{ plan: Plan; result: DuckDBResult | undefined }> {
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      let plan: Plan;
      try {
        plan = showSql !== undefined
          ? { sql: showSql, heldRows: '', refs: [], deterministic: true, profile: { planning_ms: 0, files_considered: 0, files_scanned: 0, buffered_rows: 0 }, userText: (t) => t }
          : await this.plan(conn, req, prefetched, cleanup, attempt > 0);
      } catch (err) {
        // Planning reads the schemas of files no query read before (`plan` has forgotten the listings).
        if (!fileGone(err)) throw err;
        if (attempt >= MAX_REPLANS) throw new QueryExecutionError(FILE_GONE_AGAIN);
        for (const c of cleanup.splice(0).reverse()) await c();
        continue;
      }
      // On S3 the listings and downloads made while the query waited for its connection count too.
      plan.profile.planning_ms = Math.round((performance.now() - started + prefetched.ms) * 1000) / 1000;
      req.signal.throwIfAborted();
      if (plan.sql === undefined) return { plan, result: undefined };
      const run = (sql: string): Promise<DuckDBResult> =>
        guard(req.signal, conn, () => this.statements.stream(conn, sql, plan.heldRows, plan.foldsClock !== true), plan.userText);
      try {
        return { plan, result: await run(plan.sql) };
      } catch (err) {
        if (plan.query !== undefined && plan.query.noData.size > 0 && err instanceof QueryRejectedError && err.message.startsWith('Binder Error')) {
          const query = plan.query;
          const bound = await guard(req.signal, conn, () => bindAsked(conn, query), plan.userText);
          // Only reads without data: Arc's empty answer. Beside data, those columns are NULL,
          // so that an outer join or a UNION still answers the rows that exist.
          if (query.analyzed.occurrences.every((o) => query.noData.has(o))) return { plan, result: undefined };
          return { plan, result: await run(bound) };
        }
        if (showSql !== undefined) throw err;
        if (err instanceof QueryRejectedError && /^(Failed to extract statements: )?Parser Error/.test(err.message)) {
          // The user's SQL parsed (`plan`); unless the rewrite does not, the error is the query's own (a function raising it).
          const rewrite = parseSerializedSql(String((await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [plan.sql])).getRows()[0][0]));
          throw rewrite.error ? new QueryRejectedError(REWRITE_UNPARSABLE) : err;
        }
        if (fileGone(err)) {
          if (attempt >= MAX_REPLANS) throw new QueryExecutionError(FILE_GONE_AGAIN);
          for (const ref of plan.refs) this.catalog.changed(ref.database, ref.measurement);
          for (const c of cleanup.splice(0).reverse()) await c();
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * The databases with stored files or records accepted and not yet written, sorted by name.
   * @throws StorageUnavailableError when the backend cannot list; `signal.reason` once it aborts.
   */
  async databases(signal?: AbortSignal): Promise<string[]> {
    // Held names first: a flush ending meanwhile has its files listed below.
    const held = this.held.heldMeasurements().map((m) => m.database);
    return [...new Set([...held, ...(await this.catalog.databases(signal))])].sort();
  }

  /**
   * The measurements of `database`, sorted by name: those stored, with their files
   * (`Catalog.measurements`), and those whose records are all still held (accepted, not
   * yet written), with none, so that a measurement is listed from its first
   * acknowledged write, as InfluxDB's `SHOW MEASUREMENTS` lists it.
   * @throws QueryRejectedError for an invalid name; StorageUnavailableError when the
   *   backend cannot list; `signal.reason` once it aborts.
   */
  async measurements(database: string, signal?: AbortSignal): Promise<MeasurementInfo[]> {
    const held = this.heldIn(database);
    const stored = await this.catalog.measurements(database, signal);
    const listed = new Set(stored.map((m) => m.measurement));
    const unwritten = held.filter((m) => !listed.has(m))
      .map((measurement) => ({ database, measurement, storagePath: measurementPrefix(database, measurement), fileCount: 0, totalBytes: 0 }));
    return [...stored, ...unwritten].sort((a, b) => (a.measurement < b.measurement ? -1 : a.measurement > b.measurement ? 1 : 0));
  }

  /**
   * The names `measurements` lists, without listing each measurement's files: for a count,
   * one storage listing instead of one per measurement.
   * @throws as `measurements`.
   */
  async measurementNames(database: string, signal?: AbortSignal): Promise<string[]> {
    // Held names first, as in `measurements`.
    const held = this.heldIn(database);
    return [...new Set([...held, ...(await this.catalog.measurementNames(database, signal))])].sort();
  }

  /** The measurements of `database` with records accepted and not yet written. */
  private heldIn(database: string): string[] {
    return this.held.heldMeasurements().filter((m) => m.database === database).map((m) => m.measurement);
  }

  /** SQL producing a SHOW command's rows (VARCHAR / BIGINT / DOUBLE columns); listing stops when `signal` aborts. */
  private async showSql(show: ShowCommand, defaultDatabase: string, signal: AbortSignal): Promise<string> {
    if (show.kind === 'databases') return valuesSql(['database'], ['VARCHAR'], (await this.databases(signal)).map((d) => [quoteLiteral(d)]));
    const infos = await this.measurements(show.database ?? defaultDatabase, signal);
    return valuesSql(
      ['database', 'table_name', 'storage_path', 'file_count', 'total_size_mb'],
      ['VARCHAR', 'VARCHAR', 'VARCHAR', 'BIGINT', 'DOUBLE'],
      infos.map((m) => [quoteLiteral(m.database), quoteLiteral(m.measurement), quoteLiteral(m.storagePath), String(m.fileCount),
        String(megabytes(m.totalBytes))]),
    );
  }

  /**
   * `sql` parsed and checked (`analyzeSql`, kept per text and database), its table functions
   * too. @throws QueryRejectedError for SQL that is not one read, or calls a table function
   * other than the measurements'.
   */
  private async analysis(conn: DuckDBConnection, sql: string, database: string): Promise<AnalyzedQuery> {
    const parser: SqlParser = {
      serialize: async (text) => String((await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [text])).getRows()[0][0]),
    };
    const cacheKey = `${database}\u0000${sql}`;
    let analyzed = this.analyses.get(cacheKey);
    if (analyzed === undefined) {
      checkCaseExpansion(sql);
      analyzed = await analyzeSql(sql, database, parser);
      this.macroUses ??= macroUses((await conn.runAndReadAll(MACRO_USES_SQL)).getRowsJS());
      checkBindExpansion(analyzed.statement, this.macroUses);
      checkGroupingAndPivots(analyzed.statement);
      this.analyses.set(cacheKey, analyzed);
    }
    const forbidden = analyzed.tableFunctions.find((f) => !ALLOWED_TABLE_FUNCTIONS.has(f));
    if (forbidden !== undefined) {
      throw new QueryRejectedError(`table function ${forbidden}() is not allowed: query measurements by name (FROM cpu or FROM db.cpu)`);
    }
    return analyzed;
  }

  /**
   * Parses, checks and rewrites user SQL. A measurement with neither files nor buffered
   * records reads as an empty table with only `time` (`noDataSource`).
   */
  private async plan(conn: DuckDBConnection, req: QueryRequest, prefetched: Prefetched, cleanup: (() => Promise<void> | void)[], verify: boolean): Promise<Plan> {
    const analyzed = await this.analysis(conn, req.sql, req.database);
    this.nonDeterministic ??= await nonDeterministicFunctions(conn);
    const nonDeterministic = this.nonDeterministic;
    this.keywords ??= new Set((await conn.runAndReadAll(KEYWORDS_SQL)).getRows().map(([k]) => String(k)));
    const keywords = this.keywords;
    const deterministic = !analyzed.unseededSample && !analyzed.functions.some((f) => nonDeterministic.has(f));
    const profile: QueryProfile = { planning_ms: 0, files_considered: 0, files_scanned: 0, buffered_rows: 0 };
    const sources = new Map<MeasurementOccurrence, string>();
    const noData = new Set<MeasurementOccurrence>();
    await this.heldTables.sweep(conn);
    // Held records and the cut first, all at once (synchronously: one consistent state),
    // file listings after (see `listed`): each record exactly once. One listing per
    // measurement, so that every read of it in the query sees the same files; each read
    // scans those in the hour partitions its time bounds can match.
    const heldOf = new Map(analyzed.refs.map((ref) => [refKey(ref), this.held.held(ref.database, ref.measurement)] as const));
    const cut = this.held.cut();
    const listings = new Map<string, readonly StoredObject[]>();
    try {
      for (const ref of analyzed.refs) listings.set(refKey(ref), await this.listed(ref, heldOf.get(refKey(ref))!, cut, req.signal));
    } finally {
      cut.close();
    }
    const perRef = new Map<string, { heldTables: string[]; bufferedRows: number }>();
    const heldRows: number[] = [];
    for (const ref of analyzed.refs) {
      const heldTables: string[] = [];
      let bufferedRows = 0;
      for (const snapshot of heldOf.get(refKey(ref))!) {
        if (snapshot.rowCount === 0) continue;
        const { table, tags } = await this.heldTables.tableFor(conn, snapshot).catch((err: unknown) => {
          const limit = memoryLimitOf((err as Error).message);
          throw limit === undefined ? err : new MemoryLimitError(limit, ref);
        });
        const replace = tags.map((t) => `CAST(${quoteIdentifier(t)} AS VARCHAR) AS ${quoteIdentifier(t)}`).join(', ');
        heldTables.push(`SELECT * ${replace === '' ? '' : `REPLACE (${replace}) `}FROM ${table}`);
        heldRows.push(snapshot.rowCount);
        bufferedRows += snapshot.rowCount;
      }
      perRef.set(refKey(ref), { heldTables, bufferedRows });
    }
    const ranges = await this.hourRanges(conn, analyzed.statement, analyzed.occurrences);
    const occurrences = analyzed.occurrences.map((occurrence, i) => {
      // A pruned read still binds the columns of every file (see below).
      const all = listings.get(refKey(occurrence.ref))!;
      const { hours, clockWord } = ranges[i];
      profile.files_considered += all.length;
      profile.buffered_rows += perRef.get(refKey(occurrence.ref))!.bufferedRows;
      return { occurrence, scanned: hours === undefined ? all : inHours(all, hours), all, clockWord };
    });
    const hasData = analyzed.refs.map((ref) => listings.get(refKey(ref))!.length > 0 || perRef.get(refKey(ref))!.heldTables.length > 0);
    // DuckDB's catalog views would list the server's own tables (other databases' buffered
    // records): a user asking for them gets what to use instead, not an empty answer.
    const catalogView = analyzed.refs.find((ref, i) => !hasData[i] && CATALOG_SCHEMAS.has(ref.database.toLowerCase()));
    if (catalogView !== undefined) {
      throw new QueryRejectedError(`${catalogView.database}.${catalogView.measurement}: DuckDB's catalog is not exposed; list databases with SHOW DATABASES, measurements with SHOW TABLES [FROM db], columns with DESCRIBE <measurement>`);
    }
    // Local path of each file read -> its storage key, for DuckDB messages that name a file.
    const keys = new Map<string, string>();
    const userText = (text: string): string => withKeys(analyzed.restoreReferences(text, keywords), keys);
    // Nothing but measurements without data: Arc's empty answer, no columns.
    if (analyzed.refs.length > 0 && !hasData.includes(true)) return { sql: undefined, heldRows: '', refs: analyzed.refs, deterministic, profile, userText };
    // A stored file DuckDB could not read (damaged, gone): its message names the local path and
    // quotes the statement. Strata's own errors (S3 unreachable: 503) are already typed and clean.
    // Reading the columns of a long history downloads files (S3) between statements, where a
    // single interrupt would be lost and the query run on past its deadline: `interruptible`.
    const readable = async <T>(read: () => Promise<T>): Promise<T> => {
      try {
        return await interruptible(req.signal, conn, read);
      } catch (err) {
        if (req.signal.aborted || err instanceof StrataError) throw err;
        const failure = new QueryExecutionError(userText(withoutSqlExcerpt((err as Error).message)));
        // Deleted from outside while listed: the caller plans again, over fresh listings.
        if (fileGone(failure)) for (const ref of analyzed.refs) this.catalog.changed(ref.database, ref.measurement);
        throw failure;
      }
    };
    let fileReferences = 0;
    for (const entry of occurrences) {
      req.signal.throwIfAborted();
      const { occurrence, all } = entry;
      const { heldTables } = perRef.get(refKey(occurrence.ref))!;
      let { scanned } = entry;
      // A bound read `current_date` as the clock (`TimeBound.clockWord`), but DuckDB binds
      // the word to a column of that name if a file has one: then no file is pruned
      // (held records never are).
      if (entry.clockWord && all.length > scanned.length) {
        const columns = await readable(() => this.catalog.columns(conn, all, keys, verify, req.signal));
        if (columns.some((c) => CLOCK_WORDS.has(asciiLower(c.name)))) scanned = all;
      }
      // Each read lists its files in the SQL DuckDB is given: thousands of reads of a long
      // history (`SELECT (FROM cpu), (FROM cpu), …`) would build gigabytes of it.
      fileReferences += scanned.length * (occurrence.copies ?? 1);
      if (fileReferences > MAX_FILE_REFERENCES) {
        throw new QueryRejectedError(`the query reads ${analyzed.occurrences.length.toLocaleString('en')} measurement references whose files, listed for each, pass ` +
          `${MAX_FILE_REFERENCES.toLocaleString('en')}: narrow their time ranges (WHERE time >= …), or read each measurement once (in a CTE)`);
      }
      profile.files_scanned += scanned.length;
      const parts: string[] = [];
      // The scanned files first: reading their signatures from the downloaded copies
      // leaves only the pruned files' footers for `columns` to fetch.
      let scan: string | undefined;
      if (scanned.length > 0) {
        // Pinned by `prefetch` already, unless the listing changed since, or copies are checked (a replan).
        const local: LocalFiles = !verify && scanned.every((f) => prefetched.local.get(f.key)?.size === f.size)
          ? { paths: scanned.map((f) => prefetched.local.get(f.key)!.path), release: () => undefined }
          : await this.catalog.open(scanned, verify, req.signal);
        cleanup.push(() => local.release());
        local.paths.forEach((path, i) => keys.set(path, scanned[i].key));
        const sameColumns = await readable(() => this.catalog.sameColumns(conn, scanned, local.paths));
        scan = `SELECT * FROM ${readParquetSource(local.paths, sameColumns)}`;
      }
      // Columns are bound as from every file, whatever pruning kept: a field that only
      // the pruned files have would otherwise be unknown (a binder error), or bind to a
      // same-named column of an outer query, and `*` would change with the time range.
      // Usually every file has the same columns, and the scanned files then bind them all
      // themselves: the typed empty set is left out, as DuckDB takes time binding it.
      if (all.length > scanned.length) {
        const columns = await readable(() => this.catalog.columns(conn, all, keys, verify, req.signal));
        const bound = await readable(() => this.catalog.columns(conn, scanned, keys, verify, req.signal));
        if (columns.length !== bound.length || columns.some((c, i) => c.name !== bound[i].name || c.type !== bound[i].type)) {
          parts.push(emptySetSql(columns));
        }
      }
      if (scan !== undefined) parts.push(scan);
      parts.push(...heldTables);
      if (parts.length === 0) {
        parts.push(noDataSource());
        noData.add(occurrence);
      }
      sources.set(occurrence, `(${parts.join(' UNION ALL BY NAME ')})`);
    }
    return {
      sql: analyzed.render((o) => sources.get(o)!), heldRows: heldRows.join(','), refs: analyzed.refs, deterministic, profile, userText,
      foldsClock: analyzed.functions.some((f) => CLOCK_READERS_CALLED_CONSISTENT.includes(f)),
      query: { analyzed, sources, noData },
    };
  }

  /**
   * The stored files of a measurement that hold none of `held`'s records, as they stood when
   * `held` and `cut` were taken (synchronously, one consistent state). A snapshot written
   * before then has all its files listed here, and its records are not held. A file written
   * from a held snapshot is left out: its key is registered before the file becomes visible
   * (`filesOf`), and read here only after the listing. So are the files of flushes that
   * started since (`cut`): they hold records read from memory already (the live buffer,
   * detached since) or acknowledged later, and the listing could show some of them and not
   * the others. Listing stops when `signal` aborts.
   */
  private async listed(ref: MeasurementRef, held: readonly BufferSnapshot[], cut: ListingCut, signal: AbortSignal): Promise<readonly StoredObject[]> {
    const files = await this.catalog.files(ref.database, ref.measurement, signal);
    const hidden = cut.hidden();
    for (const snapshot of held) for (const key of this.held.filesOf(snapshot)) hidden.add(key);
    return hidden.size === 0 ? files : files.filter((f) => !hidden.has(f.key));
  }

  /**
   * The hour partitions each occurrence can match (`hours`, undefined: all of them), with
   * every bound of the query evaluated in one DuckDB call: planning sits in front of every
   * query, and each call is a thread-pool round trip. `clockWord`: some bound of the
   * occurrence that counted is a `TimeBound.clockWord` one.
   */
  private async hourRanges(conn: DuckDBConnection, root: MeasurementOccurrence['node'], occurrences: readonly MeasurementOccurrence[]):
    Promise<{ hours: HourRange | undefined; clockWord: boolean }[]> {
    // The bounds are read from the parsed query alone, which is kept per text (`analysis`).
    let perOccurrence = boundsOf.get(root);
    if (perOccurrence === undefined) boundsOf.set(root, (perOccurrence = occurrences.map((o) => (o.copies !== undefined ? [] : timeBounds(root, o)))));
    const bounds = perOccurrence.flat();
    const values = bounds.length === 0 ? [] : await evaluateBounds(conn, bounds);
    let next = 0;
    return perOccurrence.map((own) => {
      let from = -Infinity;
      let to = Infinity;
      let clockWord = false;
      for (const bound of own) {
        const micros = values[next++];
        // Not a valid time for DuckDB either: the query will say so; no pruning from it.
        if (micros === undefined) continue;
        clockWord ||= bound.clockWord === true;
        if (bound.op === '>=' || bound.op === '>') from = Math.max(from, hourOf(micros));
        else to = Math.min(to, hourOf(bound.op === '<' ? micros - 1 : micros));
      }
      if (from === -Infinity && to === Infinity) return { hours: undefined, clockWord: false };
      return { hours: { from: from === -Infinity ? Number.MIN_SAFE_INTEGER : from, to: to === Infinity ? Number.MAX_SAFE_INTEGER : to }, clockWord };
    });
  }
}

/** The time bounds of each occurrence of a parsed query (`timeBounds`), by the query's root node. */
const boundsOf = new WeakMap<MeasurementOccurrence['node'], TimeBound[][]>();

/**
 * Each bound's instant in µs since the epoch, undefined where DuckDB cannot evaluate it.
 * Literals read in JS (`TimeBound.micros`) need no call; for the rest, one SELECT of `TRY(...)` columns turns evaluation errors into NULLs; a bound that does
 * not even bind (say `to_timestamp('x')`) fails the whole SELECT, and then each bound is
 * evaluated on its own so the others still prune.
 */
async function evaluateBounds(conn: DuckDBConnection, bounds: readonly TimeBound[]): Promise<(number | undefined)[]> {
  const micros = (v: unknown): number | undefined => (typeof v === 'bigint' ? Number(v) : undefined);
  const values = bounds.map((b) => b.micros);
  const left = bounds.flatMap((b, i) => (b.micros === undefined ? [i] : []));
  if (left.length === 0) return values;
  try {
    const row = (await conn.runAndReadAll(`SELECT ${left.map((i) => `TRY(${boundSql(bounds[i])})`).join(', ')}`)).getRows()[0];
    left.forEach((i, k) => (values[i] = micros(row[k])));
  } catch {
    for (const i of left) {
      try {
        values[i] = micros((await conn.runAndReadAll(`SELECT ${boundSql(bounds[i])}`)).getRows()[0][0]);
      } catch {
        values[i] = undefined;
      }
    }
  }
  return values;
}

/**
 * Functions that read the clock although DuckDB calls them CONSISTENT: ICU's
 * `current_localtimestamp()` and `current_localtime()`, and `age(ts)`, which counts
 * from the current date (its two-argument form does not, but is rare enough to let go
 * uncached).
 */
const CLOCK_READERS_CALLED_CONSISTENT = ['age', 'current_localtimestamp', 'current_localtime'];

/**
 * Lower-cased names of the functions whose answer is not fixed by their arguments:
 * those DuckDB calls VOLATILE (`random`, `uuid`) or CONSISTENT_WITHIN_QUERY (`now`,
 * `current_date`), the `SQL_VALUE_KEYWORDS` and `CLOCK_READERS_CALLED_CONSISTENT`, and
 * the built-in macros that call any of them, however indirectly (`ago(i)` is
 * `current_timestamp - i`).
 */
async function nonDeterministicFunctions(conn: DuckDBConnection): Promise<ReadonlySet<string>> {
  const rows = (await conn.runAndReadAll(
    "SELECT lower(function_name), stability, macro_definition FROM duckdb_functions() WHERE stability IN ('VOLATILE', 'CONSISTENT_WITHIN_QUERY') OR function_type = 'macro'",
  )).getRows();
  const names = new Set<string>([...SQL_VALUE_KEYWORDS, ...CLOCK_READERS_CALLED_CONSISTENT]);
  const macros: [string, string][] = [];
  for (const [name, stability, definition] of rows) {
    if (stability !== null) names.add(String(name));
    else macros.push([String(name), String(definition).toLowerCase()]);
  }
  const calls = (definition: string): boolean => (definition.match(/[a-z_][a-z0-9_]*/g) ?? []).some((word) => names.has(word));
  for (let added = true; added;) {
    added = false;
    for (const [name, definition] of macros) {
      if (!names.has(name) && calls(definition)) {
        names.add(name);
        added = true;
      }
    }
  }
  return names;
}

/**
 * Locks DuckDB down (run once, at start-up, before any query): every connection in UTC,
 * no file access outside `allowedDirectories`, no extension installed or loaded on
 * demand, no more SET.
 */
export async function lockDown(conn: DuckDBConnection, allowedDirectories: readonly string[]): Promise<void> {
  const list = allowedDirectories.map((d) => quoteLiteral(d.endsWith('/') ? d : `${d}/`)).join(', ');
  // UTC: strings without an offset compared with `time` mean UTC, whatever the host's zone.
  // GLOBAL: a plain SET is this connection's alone; the pooled ones would keep the host's zone.
  await conn.run("SET GLOBAL TimeZone = 'UTC'");
  await conn.run(`SET allowed_directories = [${list}]`);
  await conn.run('SET enable_external_access = false');
  // A function of an extension not linked in (`text()` is excel's) would otherwise try to
  // install it, and fail naming the server's home directory (~/.duckdb/extensions/…).
  // Everything Strata uses (parquet, json, icu) is linked in.
  await conn.run('SET autoinstall_known_extensions = false');
  await conn.run('SET autoload_known_extensions = false');
  await conn.run('SET lock_configuration = true');
}

function valuesSql(names: readonly string[], types: readonly string[], rows: readonly string[][]): string {
  const cast = names.map((n, i) => `CAST(${quoteIdentifier(`c${i}`)} AS ${types[i]}) AS ${quoteIdentifier(n)}`).join(', ');
  if (rows.length === 0) return `SELECT ${names.map((n, i) => `CAST(NULL AS ${types[i]}) AS ${quoteIdentifier(n)}`).join(', ')} WHERE false`;
  const cols = names.map((_, i) => quoteIdentifier(`c${i}`)).join(', ');
  return `SELECT ${cast} FROM (VALUES ${rows.map((r) => `(${r.join(', ')})`).join(', ')}) AS t(${cols})`;
}

/**
 * Binds `query` again with each read without data given the columns the query asks of it
 * (`no-data.ts`): every name it uses, then, should that be ambiguous, only those it asks
 * by name. Either binding means the error of the first bind came from those unknown
 * columns.
 * @returns the SQL that bound: the query with those columns NULL.
 * @throws DuckDB's error of the first of these binds when neither binds: the query's own.
 */
async function bindAsked(conn: DuckDBConnection, { analyzed, sources, noData }: RewrittenQuery): Promise<string> {
  const columnsOf = (o: MeasurementOccurrence): Promise<string[]> => columnNames(conn, `SELECT * FROM ${sources.get(o)!}`);
  const bind = async (asked: ReadonlyMap<MeasurementOccurrence, readonly string[]>): Promise<string> => {
    const sql = analyzed.render((o) => (asked.has(o) ? `(${noDataSource(asked.get(o))})` : sources.get(o)!));
    await columnNames(conn, sql);
    return sql;
  };
  try {
    return await bind(await askedColumns(analyzed.statement, analyzed.occurrences, noData, columnsOf));
  } catch (err) {
    try {
      return await bind(await askedColumns(analyzed.statement, analyzed.occurrences, noData));
    } catch {
      throw err;
    }
  }
}

/** The result columns of `sql`, which DuckDB binds but does not run. */
async function columnNames(conn: DuckDBConnection, sql: string): Promise<string[]> {
  const prepared = await conn.prepare(sql);
  try {
    return Array.from({ length: prepared.columnCount }, (_, i) => prepared.columnName(i));
  } finally {
    prepared.destroySync();
  }
}

/**
 * Whether `err` is DuckDB's answer to a file it was given that does not exist (any more):
 * gone before the bind (no match for the path), or between the bind and the read; or S3's,
 * for an object gone from the bucket since it was listed.
 */
function fileGone(err: unknown): boolean {
  return err instanceof StoredFileGoneError || err instanceof QueryExecutionError
    && /^IO Error: (?:No files found that match the pattern|Cannot open file "[^"]*": No such file or directory)/.test(err.message);
}

const FILE_GONE_AGAIN = 'a stored file of the measurements read disappeared while the query was planned; retry';

/**
 * Times a query is planned again for files gone: a cached copy wiped is found missing
 * first, and only its download then finds the object gone from the bucket too.
 */
const MAX_REPLANS = 2;

/**
 * Each connection's last `interruptible` call, settled either way. A call given up on
 * (its signal aborted) may still be running in DuckDB: `settled` waits for it.
 */
const lastCalls = new WeakMap<DuckDBConnection, Promise<void>>();

/**
 * Resolves once the last `interruptible` call on `conn` has returned from DuckDB: before
 * the connection runs anything else, goes back to the pool, or has the files it reads
 * unpinned.
 */
function settled(conn: DuckDBConnection): Promise<void> {
  return lastCalls.get(conn) ?? Promise.resolve();
}

/**
 * Runs `fn` (DuckDB calls on `conn`, possibly several with other work between them),
 * interrupting `conn` once `signal` aborts and again every REINTERRUPT_MS until `fn`
 * settles: an abort landing between two statements (say while files are downloaded
 * for the next) still stops the next one. The abort rejects at once rather than when
 * `fn` settles: DuckDB looks for interrupts between vectors, so one long scalar call
 * (`len(range(60000000))`, 19 s here) would hold a 300 ms deadline's 504 until it
 * returned. `fn` runs on meanwhile; callers wait for it with `settled(conn)` before
 * using the connection again.
 * @throws the signal's reason when it aborts before `fn` settles (or aborted before it
 *   began); whatever `fn` throws.
 */
function interruptible<T>(signal: AbortSignal, conn: DuckDBConnection, fn: () => Promise<T>): Promise<T> {
  signal.throwIfAborted();
  let timer: NodeJS.Timeout | undefined;
  let giveUp!: (reason: unknown) => void;
  const givenUp = new Promise<never>((_, reject) => (giveUp = reject));
  const interrupt = (): void => {
    conn.interrupt();
    timer ??= setInterval(() => conn.interrupt(), REINTERRUPT_MS);
    giveUp(signal.reason);
  };
  signal.addEventListener('abort', interrupt, { once: true });
  const call = fn().finally(() => {
    signal.removeEventListener('abort', interrupt);
    clearInterval(timer);
  });
  lastCalls.set(conn, call.then(() => undefined, () => undefined));
  // Whichever loses the race is never awaited: its rejection is no unhandled one.
  givenUp.catch(() => undefined);
  return Promise.race([call, givenUp]);
}

/**
 * Runs a DuckDB call on `conn` (`interruptible`), turning its errors into Strata's (an
 * interrupt into the abort reason), their messages passed through `userText`
 * (`Plan.userText`).
 */
async function guard<T>(signal: AbortSignal, conn: DuckDBConnection, fn: () => Promise<T>, userText: (text: string) => string): Promise<T> {
  try {
    return await interruptible(signal, conn, fn);
  } catch (err) {
    if (signal.aborted && (signal.reason instanceof QueryTimeoutError || signal.reason instanceof QueryCancelledError)) throw signal.reason;
    const message = userText(withoutSqlExcerpt((err as Error).message)
      // Each measurement is read through a subquery, which DuckDB's binder calls a "Values list".
      .replace(/Values list "/g, 'Table "'));
    throw limitError(message) ?? (USER_ERROR.test(message) ? new QueryRejectedError(message) : new QueryExecutionError(message));
  }
}

/** The error of a query past `STRATA_QUERY_MAX_SPILL` or `STRATA_QUERY_MEMORY_LIMIT` when DuckDB's `message` says so. */
function limitError(message: string): StrataError | undefined {
  const spillLimit = spillLimitOf(message);
  if (spillLimit !== undefined) return new SpillLimitError(spillLimit);
  const memoryLimit = memoryLimitOf(message);
  return memoryLimit === undefined ? undefined : new MemoryLimitError(memoryLimit);
}

/** The error of a result DuckDB failed part-way through (its own message is not available: see `openResult`). */
const FAILED_PART_WAY = 'the query failed part-way through its result (DuckDB does not pass its message on in this case): the rows sent are not the whole answer';

/** What reading a result closed before its end throws: the abort's reason, or a cancellation when there was none. */
function unfinished(signal: AbortSignal): unknown {
  return signal.aborted ? signal.reason : new QueryCancelledError();
}

/**
 * The result as an `OpenQuery`. While one chunk is read and encoded, DuckDB already
 * produces the next on a libuv thread (one chunk ahead, so memory stays bounded):
 * fetching and encoding take comparable time, and done in turn they add up. The
 * connection is only released once a fetch still in flight has settled, since the
 * caller's cleanup then runs statements on it. `close` is told why the result ended
 * short (what `next` threw, or the abort of a result closed before its end), or
 * undefined when it did not.
 */
function openResult(result: DuckDBResult, conn: DuckDBConnection, { profile, refs, deterministic, userText }: Plan, req: QueryRequest,
  close: (failure: unknown) => void): OpenQuery {
  const names = result.columnNames().map(userText);
  const types = result.columnTypes();
  let ended = false;
  let closed = false;
  let failure: unknown;
  let ahead: Promise<DuckDBDataChunk | null> | undefined;
  const fetch = (): Promise<DuckDBDataChunk | null> => {
    const pending = guard(req.signal, conn, () => result.fetchChunk(), userText);
    // Its failure is reported by the `next` that awaits it; a result closed early never does.
    pending.catch(() => undefined);
    return pending;
  };
  return {
    names, types, profile, refs, deterministic,
    close() {
      if (closed) return;
      closed = true;
      if (!ended && req.signal.aborted) failure ??= req.signal.reason;
      const release = (): void => close(failure);
      if (ahead === undefined) {
        release();
        return;
      }
      // Nobody reads the chunk being produced: stop DuckDB, then give the connection back.
      conn.interrupt();
      void ahead.then(release, release);
    },
    async next() {
      try {
        return await nextChunk();
      } catch (err) {
        failure ??= err;
        throw err;
      }
    },
  };

  async function nextChunk(): Promise<ResultChunk | null> {
    if (ended) return null;
    // Closed before its end: by the side that aborted it (a client gone, a deadline), or
    // because the response ended first (HEAD). Either way not a complete result.
    if (closed) throw unfinished(req.signal);
    ahead ??= fetch();
    const chunk = await ahead;
    ahead = undefined;
    // An interrupted streaming fetch may resolve with no rows instead of failing, and a
    // result closed while a fetch was in flight ends here too: that is not the end.
    if (closed) throw unfinished(req.signal);
    if (chunk === null || chunk.rowCount === 0) {
      ended = true;
      req.signal.throwIfAborted();
      // A result that fails part-way (a cast, error(), a file unreadable) ends like a
      // complete one: DuckDB keeps the error for `duckdb_result_error`, which the Node
      // client does not expose, but the statement type reads INVALID once it is set.
      if (result.statementType === StatementType.INVALID) throw new QueryExecutionError(FAILED_PART_WAY);
      return null;
    }
    // The next fetch starts before this chunk is read, so that reading it overlaps DuckDB's
    // work too: a fetched chunk owns its memory (node-api's readers keep several at once).
    ahead = fetch();
    const budget = new ChunkBudget(names, chunk.rowCount);
    const columns = types.map((t, i) => restoredStrings(readColumn(chunk, i, t, req.decimals, budget), chunk.rowCount, userText));
    return { columns, rowCount: chunk.rowCount };
  }
}

/**
 * `col` (of `n` rows) with each string value that holds a rewritten source passed
 * through `userText`, or `col` itself when none does (the usual case, found by one
 * search of its bytes). DESCRIBE and SUMMARIZE of a query answer its column names as
 * values, and DuckDB names a column holding a subquery by its text, the rewritten
 * one: `DESCRIBE SELECT (SELECT max(usage) FROM cpu)` would show the `read_parquet`
 * source, file paths and all, where Arc shows `(SELECT max(usage) FROM cpu)`. Values a
 * query derives from such a name by changing its text (`upper(column_name)`), and
 * such names inside nested values, keep the rewritten text.
 */
function restoredStrings(col: Column, n: number, userText: (text: string) => string): Column {
  if (col.kind !== 'utf8' || !holdsPrintedSource(col.data.subarray(0, col.offsets[n]))) return col;
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const offsets = new Int32Array(n + 1);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const bytes = col.data.subarray(col.offsets[i], col.offsets[i + 1]);
    const restored = bytes.length === 0 || !holdsPrintedSource(bytes) ? bytes : encoder.encode(userText(decoder.decode(bytes)));
    parts.push(restored);
    offsets[i + 1] = offsets[i] + restored.length;
  }
  return { kind: 'utf8', offsets, data: Buffer.concat(parts), valid: col.valid };
}

/**
 * The checks of SQL text before it is parsed.
 * @throws QueryRejectedError for empty or oversized text, or a NUL in it.
 */
function checkText(sql: string): void {
  if (sql.trim() === '') throw new QueryRejectedError('SQL query is required');
  if (sql.length > MAX_SQL_LENGTH) throw new QueryRejectedError(`SQL query exceeds maximum length (${MAX_SQL_LENGTH} characters)`);
  // DuckDB's parser and prepare both stop at a NUL, so whatever follows it would be ignored, not refused.
  const nul = sql.indexOf('\u0000');
  if (nul >= 0) throw new QueryRejectedError(`SQL contains a NUL character (U+0000) at position ${nul}`);
}
