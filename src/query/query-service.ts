/**
 * Runs user SQL over the stored Parquet files.
 *
 * Steps: catalogue commands (`show.ts`) are answered from storage; everything else is
 * parsed by DuckDB (`sql-rewriter.ts`), each measurement reference (`cpu`, `db.cpu`)
 * is replaced with `read_parquet([...files...], union_by_name = true)` (so files
 * written with different schema versions read as one table, missing columns NULL),
 * and the rewritten SQL runs on a pooled connection.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { QueryExecutionError, QueryRejectedError } from '../errors.js';
import type { LocalFiles } from '../storage/storage.js';
import type { Catalog } from './catalog.js';
import type { DuckDBPool } from './duckdb-pool.js';
import { encodePlainRows, encodeRows, type JsonRows } from './json-result.js';
import { parseShowCommand } from './show.js';
import { analyzeSql, readParquetSource, type MeasurementRef, type SqlParser } from './sql-rewriter.js';

/** Table functions user SQL may call: generators only; anything reading files is refused. */
const ALLOWED_TABLE_FUNCTIONS = new Set(['range', 'generate_series', 'unnest']);

/** DuckDB error classes caused by the query text itself (400), as opposed to engine failures (500). */
const USER_ERROR = /^(Parser|Binder|Catalog|Conversion|Invalid Input|Not implemented|Syntax|Out of Range) Error/i;

/** Longest SQL text accepted, in characters. */
export const MAX_SQL_LENGTH = 100_000;

const EMPTY: JsonRows = { columns: [], dataJson: '[]', rowCount: 0 };

export class QueryService {
  private readonly pool: DuckDBPool;
  private readonly catalog: Catalog;
  private readonly parser: SqlParser;

  constructor(pool: DuckDBPool, catalog: Catalog) {
    this.pool = pool;
    this.catalog = catalog;
    this.parser = {
      serialize: (sql) => pool.use(async (conn) => String((await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [sql])).getRows()[0][0])),
    };
  }

  /**
   * Executes one read-only statement; unqualified measurement names belong to
   * `defaultDatabase`. A query over a measurement with no files yet returns an empty
   * result (as Arc does), not an error.
   * @throws QueryRejectedError (400) for empty, oversized, unparsable or non-SELECT SQL,
   *   forbidden table functions, and DuckDB parser/binder errors;
   *   QueryExecutionError (500) when DuckDB fails while running it.
   */
  async execute(sql: string, defaultDatabase: string): Promise<JsonRows> {
    if (sql.trim() === '') throw new QueryRejectedError('SQL query is required');
    if (sql.length > MAX_SQL_LENGTH) throw new QueryRejectedError(`SQL query exceeds maximum length (${MAX_SQL_LENGTH} characters)`);
    const show = parseShowCommand(sql);
    if (show?.kind === 'databases') return encodePlainRows(['database'], (await this.catalog.databases()).map((d) => [d]));
    if (show?.kind === 'tables') {
      const infos = await this.catalog.measurements(show.database ?? defaultDatabase);
      return encodePlainRows(
        ['database', 'table_name', 'storage_path', 'file_count', 'total_size_mb'],
        infos.map((m) => [m.database, m.measurement, m.storagePath, m.fileCount, Math.round((m.totalBytes / 1048576) * 1000) / 1000]),
      );
    }
    const analyzed = await analyzeSql(sql, defaultDatabase, this.parser);
    const forbidden = analyzed.tableFunctions.find((f) => !ALLOWED_TABLE_FUNCTIONS.has(f));
    if (forbidden !== undefined) {
      throw new QueryRejectedError(`table function ${forbidden}() is not allowed: query measurements by name (FROM cpu or FROM db.cpu)`);
    }
    const sources = new Map<string, string>();
    const keyOf = (ref: MeasurementRef): string => `${ref.database}\u0000${ref.measurement}`;
    // Files stay pinned in the storage cache until DuckDB has read them.
    const opened: LocalFiles[] = [];
    try {
      for (const ref of analyzed.refs) {
        const files = await this.catalog.files(ref.database, ref.measurement);
        if (files.length === 0) return EMPTY;
        const local = await this.catalog.open(files);
        opened.push(local);
        sources.set(keyOf(ref), readParquetSource(local.paths));
      }
      const rendered = analyzed.render((ref) => sources.get(keyOf(ref))!);
      return await this.pool.use((conn) => run(conn, rendered));
    } finally {
      for (const local of opened) local.release();
    }
  }
}

async function run(conn: DuckDBConnection, sql: string): Promise<JsonRows> {
  try {
    return encodeRows(await conn.runAndReadAll(sql));
  } catch (err) {
    // DuckDB echoes the rewritten SQL ("LINE 1: … read_parquet(['/data/…") after the
    // message: internal paths the user never wrote.
    const message = (err as Error).message.split('\n\nLINE ')[0];
    throw USER_ERROR.test(message) ? new QueryRejectedError(message) : new QueryExecutionError(message);
  }
}
