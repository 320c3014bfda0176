/**
 * Finds the measurements a user's SQL reads and rewrites each reference into a
 * `read_parquet(...)` over that measurement's files.
 *
 * The SQL is parsed by DuckDB itself (`json_serialize_sql`), never by patterns over
 * the text, so string literals, comments, quoted identifiers and CTE names cannot
 * be mistaken for table references. The rewrite splices the user's own text at the
 * byte offsets (`query_location`) DuckDB reports for each table reference rather
 * than re-rendering the edited AST with `json_deserialize_sql`: the re-rendering is
 * lossy in DuckDB 1.5 (a nested PIVOT fails to render, `1e3` comes back as the
 * DECIMAL `1000.0`, lambdas change syntax), and a JS round trip of the JSON corrupts
 * it (the 2^64-1 "no location" sentinel and whole-valued doubles such as `100.0` do
 * not survive `JSON.parse`/`JSON.stringify`). Splicing changes nothing but the names.
 *
 * Name resolution follows DuckDB's binder, checked against real tables:
 * - an unqualified name that matches a CTE in scope (ASCII case-insensitively, quoted
 *   or not) is that CTE; a schema-qualified name never is;
 * - a CTE is in scope in the query node that defines it and in every subquery below
 *   it, but not outside (a WITH inside a subquery is local to that subquery);
 * - inside a WITH list, a CTE's body sees only the CTEs before it, so
 *   `WITH cpu AS (SELECT * FROM cpu)` reads the measurement;
 * - in `WITH RECURSIVE x AS (A UNION B)` only B sees `x`.
 */
import { randomBytes } from 'node:crypto';
import { QueryRejectedError } from '../errors.js';
import { asciiLower, nameError } from '../parse/names.js';
import { quoteIdentifier, quoteLiteral, skipBlanks, turnUnicodeSpaces } from './sql-text.js';

/** A measurement as SQL names it: `cpu` (the request's database) or `db.cpu`. Both case-sensitive. */
export interface MeasurementRef {
  readonly database: string;
  readonly measurement: string;
}

/** A JSON value as `JSON.parse` returns it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/** A JSON object as `JSON.parse` returns it. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** One place in the SQL where a measurement is read; the hook for later AST walks (time-range pruning). */
export interface MeasurementOccurrence {
  readonly ref: MeasurementRef;
  /** Keys and indexes from `AnalyzedQuery.statement` down to `node`; walking it upwards finds the enclosing SELECT_NODE and its `where_clause`. */
  readonly path: readonly (string | number)[];
  /** The BASE_TABLE node DuckDB produced for this reference. */
  readonly node: JsonObject;
  /** The name the rewritten SQL binds the rows to: the user's alias, else the measurement name. */
  readonly alias: string;
  /**
   * How many copies of the reference DuckDB's parser made, when more than one (it sits in a
   * simple CASE's operand, copied per WHEN): `node` is the first, and the others may stand
   * under other filters, so the read is never pruned; each copy reads the files.
   */
  readonly copies?: number;
}

/** Result of `analyzeSql`: what the query reads, and how to rewrite it. */
export interface AnalyzedQuery {
  /** Distinct measurements referenced (for file listing), in order of first appearance in the text. */
  readonly refs: readonly MeasurementRef[];
  /** Table functions the SQL calls in FROM position, lower-cased and distinct (e.g. 'read_csv'). */
  readonly tableFunctions: readonly string[];
  /**
   * Scalar and aggregate functions the SQL calls, lower-cased and distinct,
   * with the `SQL_VALUE_KEYWORDS` it names (DuckDB parses `current_date` as a column
   * and binds it to a function when no column has that name).
   */
  readonly functions: readonly string[];
  /** Whether some SAMPLE clause has no seed: the rows it picks differ from run to run. */
  readonly unseededSample: boolean;
  /**
   * The root query node as DuckDB serialized it (`statements[0].node`). Integers beyond
   * 2^53 (e.g. nanosecond epochs in constants) are rounded by `JSON.parse`, so a walk that
   * needs such constants exactly must not read them from here.
   */
  readonly statement: JsonObject;
  /** Every measurement reference, in text order (a measurement read twice appears twice). */
  readonly occurrences: readonly MeasurementOccurrence[];
  /**
   * The SQL with every measurement reference replaced by `sourceFor(occurrence)` (called
   * once per entry of `occurrences`, so two reads of one measurement can scan different
   * files), e.g. "read_parquet(['/a.parquet'], union_by_name = true)". A user alias is
   * kept; a reference without one gets `AS "<measurement>"` so `cpu.host` still binds.
   * Each source is wrapped as `(SELECT * FROM <source> AS strata_source_<nonce>_<i>)`,
   * the mark `restoreReferences` finds it by (`SOURCE_MARK`).
   * Everything else, comments and a trailing `;` included, is the user's text unchanged
   * (its Unicode spaces turned, `turnUnicodeSpaces`).
   * @throws QueryRejectedError (UNICODE_SPACES_MOVED) when DuckDB would turn Unicode spaces
   *   of the rewrite that it left in the user's text.
   */
  render(sourceFor: (occurrence: MeasurementOccurrence) => string): string;
  /**
   * `text` (a result column name, an error message) with each rewritten source DuckDB
   * printed back into it replaced by the reference the user wrote: DuckDB names an
   * unaliased expression column by its SQL text, so `SELECT (SELECT max(usage) FROM cpu)`
   * would otherwise answer a column named after the `read_parquet([...])` source, file
   * paths and all. With the reference restored the name is the one DuckDB gives the
   * user's SQL over real tables: a name is printed bare when it is ASCII letters, digits
   * and `_` (not starting with a digit) and not one of `keywords` (DuckDB's, lower-cased:
   * `KEYWORDS_SQL`), else quoted. Text without the mark is returned as is.
   */
  restoreReferences(text: string, keywords: ReadonlySet<string>): string;
}

/**
 * Access to DuckDB's parser on a connection the caller owns (keeps pooling out of here).
 * `serialize` must return the single VARCHAR of `SELECT json_serialize_sql($1::VARCHAR)`
 * with `sql` bound to $1; DuckDB reports parse errors inside that JSON, so it only throws
 * when the connection itself fails.
 */
export interface SqlParser {
  serialize(sql: string): Promise<string>;
}

/**
 * Scalar functions refused wherever they appear, with why. The first two show host
 * paths (the settings name the data, temp and secret directories, and the statement
 * DuckDB runs is the rewrite, which lists every Parquet file it reads).
 * `json_serialize_plan` binds and plans SQL given as a string, which these checks never
 * see: it runs table functions' binds (`read_csv` sniffs a file in the data directory)
 * and, with `optimize := true`, folds `current_setting(...)` into the plan it returns.
 * `setseed` seeds the connection's random generator, and the pool lends that
 * connection to other requests next: their `random()`, `uuid()` and unseeded samples
 * would follow a sequence the caller knows.
 */
const REFUSED_FUNCTIONS: ReadonlyMap<string, string> = new Map([
  ['current_setting', 'DuckDB settings are not exposed'],
  ['current_query', 'the statement DuckDB runs is the rewritten one, naming server paths'],
  ['json_serialize_plan', 'it plans SQL passed as a string, outside the checks on table functions and settings'],
  ['setseed', 'the seed would stay with a pooled connection that later requests share'],
]);

/**
 * SQL keywords that read the clock although they parse as column names
 * (`SELECT current_date`), lower-cased.
 */
export const SQL_VALUE_KEYWORDS: ReadonlySet<string> = new Set(['current_date', 'current_time', 'current_timestamp', 'localtime', 'localtimestamp']);

/** Lists DuckDB's keywords, lower-cased, one per row: the `keywords` of `AnalyzedQuery.restoreReferences`. */
export const KEYWORDS_SQL = 'SELECT lower(keyword_name) FROM duckdb_keywords()';

/**
 * Parses `userSql` with DuckDB and finds its measurement references and table functions.
 * Its Unicode spaces are turned first as DuckDB turns them (`turnUnicodeSpaces`): DuckDB's
 * positions are in that text, which `render` splices.
 * `defaultDatabase` is the database of unqualified names (from `x-arc-database`, else
 * `default`).
 *
 * @throws QueryRejectedError, with DuckDB's message where there is one, when the SQL does
 *   not parse; is not exactly one SELECT statement (DuckDB serializes only SELECT, so
 *   DDL, DML, COPY, ATTACH, SET, PRAGMA, EXPLAIN, CALL and PIVOT statements are refused);
 *   is DESCRIBE/SHOW/SUMMARIZE; calls `current_setting()`, `current_query()` (they
 *   show host paths), `json_serialize_plan()` or `setseed()` (see REFUSED_FUNCTIONS); reads a file
 *   by path (`FROM 'x.csv'`); uses a three-part name or `AT (...)` time travel on a
 *   measurement; names an invalid database or
 *   measurement (see `nameError`). A syntax that only accepts a plain table name
 *   would pass here but its rewrite would not parse: the caller reports that with
 *   `REWRITE_UNPARSABLE` (`TABLE cpu`, the one known, is rewritten as `SELECT * FROM`).
 */
export async function analyzeSql(userSql: string, defaultDatabase: string, parser: SqlParser): Promise<AnalyzedQuery> {
  // The text DuckDB reports positions in; it means to DuckDB what the user's text means.
  const sql = turnUnicodeSpaces(userSql);
  const statement = await parseSingleSelect(sql, parser);
  const walker = new ReferenceWalker(sql, defaultDatabase);
  walker.visit(statement, new Set());
  const { edits, ownAliases } = databasePrefixes(sql, walker.bytes, walker.longColumnRefs, walker.occurrences, walker.relationNames);
  const occurrences: Located[] = [];
  for (const o of walker.occurrences.map((o) => (ownAliases.has(o) ? { ...o, alias: ownAliases.get(o)! } : o)).sort((a, b) => a.start - b.start)) {
    // DuckDB's parser copies some expressions, and the references in them: a simple CASE's
    // operand once per WHEN. One text, several nodes: the text is rewritten once.
    const last = occurrences[occurrences.length - 1];
    if (last !== undefined && last.start === o.start) occurrences[occurrences.length - 1] = { ...last, copies: (last.copies ?? 1) + 1 };
    else occurrences.push(o);
  }
  const refs = new Map<string, MeasurementRef>();
  for (const o of occurrences) if (!refs.has(refKey(o.ref))) refs.set(refKey(o.ref), o.ref);
  const visible = occurrences.map(({ ref, path, node, alias, copies }): MeasurementOccurrence => ({ ref, path, node, alias, ...(copies === undefined ? {} : { copies }) }));
  return {
    refs: [...refs.values()],
    tableFunctions: [...walker.tableFunctions],
    functions: [...walker.functions],
    unseededSample: walker.unseededSample,
    statement,
    occurrences: visible,
    render: (sourceFor) => {
      const rewritten = splice(sql, occurrences, (_, i) => sourceFor(visible[i]), edits);
      // DuckDB's pre-pass runs again on the rewrite, and the text spliced in (quotes, a `--`
      // in a name) can move where it takes quoted text to start and end: Unicode spaces it
      // left in the user's text could then be turned, and that text read as other tokens
      // than those checked here.
      if (turnUnicodeSpaces(rewritten) !== rewritten) throw new QueryRejectedError(UNICODE_SPACES_MOVED);
      return rewritten;
    },
    restoreReferences: (text, keywords) => restoreReferences(text, occurrences, keywords),
  };
}

/** Why `render` refuses a query whose Unicode spaces DuckDB would read differently once it is rewritten. */
export const UNICODE_SPACES_MOVED = 'this query has Unicode spaces (U+00A0, U+2000 to U+200B, U+202F, U+205F, U+2060, U+3000, U+FEFF) '
  + 'inside what DuckDB takes for quoted text or a comment, which it would read otherwise once its measurements are rewritten: write them as ASCII spaces';

/**
 * What to tell the user when DuckDB cannot parse the rewritten SQL although it parsed
 * the user's: a syntax that takes only a bare table name, not the `read_parquet(...)`
 * source that replaced it. None is known besides `TABLE name`, which is rewritten;
 * this keeps DuckDB's confusing parser error about our rewrite from reaching a user
 * should another exist. Checking by parsing the rewrite once more here would add a
 * DuckDB round trip to every query.
 */
export const REWRITE_UNPARSABLE = 'this form of query needs a plain table name and cannot read measurements; write it as SELECT … FROM the measurement';

/**
 * Builds the `sourceFor` text for `AnalyzedQuery.render`:
 * `read_parquet(['/a.parquet', ...], union_by_name = true, hive_partitioning = false)`.
 * Single quotes in paths are doubled (DuckDB string literals have no backslash escapes).
 * `union_by_name` lets files written before and after a new field appeared be read
 * together; pass `sameColumns` when every file is known to have the same columns in
 * the same order (`Catalog.sameColumns`), and DuckDB binds from the first file alone
 * instead of opening every file to merge their schemas. `hive_partitioning = false`
 * stops DuckDB from turning a `k=v` directory name (legal in database and measurement
 * names) into a column.
 * DuckDB still expands glob characters in each path; `encodePathSegment` keeps stored
 * paths free of them. An empty `paths` renders `read_parquet([])`, which DuckDB refuses
 * at bind time: a measurement with no files is the caller's to handle before rendering.
 */
export function readParquetSource(paths: readonly string[], sameColumns = false): string {
  const list = paths.map(quoteLiteral).join(', ');
  return `read_parquet([${list}], union_by_name = ${!sameColumns}, hive_partitioning = false)`;
}

/** The shape of `json_serialize_sql`'s output that is read here. */
export interface SerializedSql {
  readonly error: boolean;
  readonly error_type?: string;
  readonly error_message?: string;
  /** Character (code point) offset into the SQL, as a decimal string; unlike `query_location`, not bytes. */
  readonly position?: string;
  readonly statements?: readonly { readonly node: JsonObject }[];
}

/**
 * `json_serialize_sql`'s output (`text`) parsed. DuckDB writes a DOUBLE constant
 * beyond the finite range (`1e400`) as a bare `Infinity` / `-Infinity` (NaN as `NaN`),
 * which is not JSON: such a value reads as null (a time bound then does not use it).
 * @throws SyntaxError when `text` is not JSON otherwise.
 */
export function parseSerializedSql(text: string): SerializedSql {
  return JSON.parse(text.replace(/"(?:[^"\\]|\\.)*"|-?\b(?:Infinity|NaN)\b/g, (token) => (token.startsWith('"') ? token : 'null'))) as SerializedSql;
}

/** Parses `sql` and returns its one statement's root query node, or throws QueryRejectedError. */
async function parseSingleSelect(sql: string, parser: SqlParser): Promise<JsonObject> {
  const result = parseSerializedSql(await parser.serialize(sql));
  if (result.error) {
    // 'not implemented' is how json_serialize_sql reports any non-SELECT statement, and also
    // syntax DuckDB parses but does not support (`BETWEEN SYMMETRIC`: "Expression type T_List").
    const unsupported = result.error_type === 'not implemented';
    // Told apart by DuckDB's message (1.5.5: "Only SELECT statements can be serialized to json!"),
    // which the REJECTED cases of sql-rewriter.test.ts pin.
    const refused = unsupported && /^Only SELECT statements/.test(result.error_message ?? '');
    const what = refused ? 'only SELECT statements are allowed' : unsupported ? 'not supported by DuckDB' : 'invalid SQL';
    // DuckDB's own words for the refusal name its serializer; its advice to SET a limit names
    // a statement the sandbox refuses.
    const message = refused ? 'send one SELECT per request (DDL, DML, COPY, ATTACH, SET, PRAGMA, EXPLAIN and CALL are refused)'
      : (result.error_message ?? result.error_type ?? 'unknown parser error').replace(/ Use "SET [^"]*" to [^.]*\./, '');
    const at = result.position === undefined ? '' : ` (at character ${result.position})`;
    // DuckDB turns a PIVOT without an IN list into statements of its own that first read the
    // values: the SELECT is refused for them, which its author cannot guess from the message.
    const hint = refused && /\bPIVOT\b/i.test(sql) && !/\bIN\s*\(/i.test(sql) ? '; a PIVOT needs its IN list of values written out here (PIVOT cpu ON host IN (\'a\', \'b\') USING …)' : '';
    throw new QueryRejectedError(`${what}: ${message}${at}${hint}`);
  }
  const statements = result.statements ?? [];
  if (statements.length !== 1) {
    throw new QueryRejectedError(statements.length === 0 ? 'empty query: expected one SELECT statement' : `expected one SELECT statement, got ${statements.length}`);
  }
  return statements[0].node;
}

/** Whether an AST object is a FROM item: FROM items are the objects with an `alias` that are not expressions (which have a `class`). */
export function isFromItem(value: JsonObject): boolean {
  return typeof value.alias === 'string' && !('class' in value);
}

/** A measurement reference plus where its name sits in the text (UTF-16 indexes). */
interface Located extends MeasurementOccurrence {
  readonly start: number;
  readonly end: number;
  readonly hasAlias: boolean;
  /** Written before the source: `SELECT * FROM ` when the text replaced is `TABLE name`. */
  readonly prefix: string;
}

/**
 * Walks every object and array of the AST, so no node type that can hold a table
 * reference or subquery is missed, while carrying the CTE names in scope. Query nodes
 * (SELECT_NODE, SET_OPERATION_NODE, RECURSIVE_CTE_NODE) are the objects with a `cte_map`.
 */
class ReferenceWalker {
  readonly occurrences: Located[] = [];
  /** COLUMN_REF nodes of three or more parts (`db.cpu.host`), for `databasePrefixes`. */
  readonly longColumnRefs: JsonObject[] = [];
  /**
   * How many relations of the query bind each name (ASCII lower case): FROM items by their
   * alias (a base table without one by its table name) and CTEs, for `databasePrefixes`.
   */
  readonly relationNames = new Map<string, number>();
  readonly tableFunctions = new Set<string>();
  readonly functions = new Set<string>();
  unseededSample = false;
  private readonly path: (string | number)[] = [];
  /** The SQL as UTF-8: `query_location` offsets count its bytes. */
  readonly bytes: Buffer;
  /** BASE_TABLE nodes written as `TABLE name` or `DESCRIBE name`, with where their rewrite as `SELECT * FROM <source>` starts. */
  private readonly tableStatements = new Map<JsonObject, number>();

  constructor(
    private readonly sql: string,
    private readonly defaultDatabase: string,
  ) {
    this.bytes = Buffer.from(sql, 'utf8');
  }

  /** `ctes` holds the ASCII-lower-cased CTE names visible at `value`. */
  visit(value: JsonValue, ctes: ReadonlySet<string>): void {
    if (Array.isArray(value)) {
      value.forEach((item, i) => this.child(i, item, ctes));
      return;
    }
    if (value === null || typeof value !== 'object') return;
    // A sample's seed is -1 when the SQL gives none (`USING SAMPLE 10%`, `TABLESAMPLE 5 ROWS`).
    const sample = value.sample;
    if (sample !== null && typeof sample === 'object' && !Array.isArray(sample) && sample.seed === -1) this.unseededSample = true;
    if ('cte_map' in value) {
      this.queryNode(value, ctes);
      return;
    }
    if (isFromItem(value)) {
      const name = value.alias !== '' ? String(value.alias) : value.type === 'BASE_TABLE' ? String(value.table_name) : '';
      if (name !== '') this.countRelation(name);
    }
    switch (value.type) {
      case 'BASE_TABLE':
        this.baseTable(value, ctes);
        break;
      case 'TABLE_FUNCTION': {
        const fn = value.function as JsonObject;
        this.tableFunctions.add(String(fn.function_name).toLowerCase());
        break;
      }
      case 'SHOW_REF':
        this.showRef(value);
        break;
      case 'FUNCTION': {
        const name = String(value.function_name).toLowerCase();
        const reason = REFUSED_FUNCTIONS.get(name);
        if (reason !== undefined) throw new QueryRejectedError(`${name}() is not allowed: ${reason}`);
        this.functions.add(name);
        break;
      }
      case 'COLUMN_REF': {
        const names = value.column_names as JsonValue[];
        const name = names.length === 1 ? asciiLower(String(names[0])) : '';
        if (SQL_VALUE_KEYWORDS.has(name)) this.functions.add(name);
        if (names.length >= 3) this.longColumnRefs.push(value);
        break;
      }
    }
    for (const [key, item] of Object.entries(value)) this.child(key, item, ctes);
  }

  private countRelation(name: string): void {
    const key = asciiLower(name);
    this.relationNames.set(key, (this.relationNames.get(key) ?? 0) + 1);
  }

  private child(key: string | number, value: JsonValue, ctes: ReadonlySet<string>): void {
    this.path.push(key);
    this.visit(value, ctes);
    this.path.pop();
  }

  private queryNode(node: JsonObject, outer: ReadonlySet<string>): void {
    this.noteTableStatement(node);
    const entries = (node.cte_map as JsonObject).map as JsonObject[];
    let ctes = outer;
    this.path.push('cte_map', 'map');
    entries.forEach((entry, i) => {
      this.path.push(i);
      this.child('value', entry.value, ctes);
      this.path.pop();
      ctes = withName(ctes, String(entry.key));
      this.countRelation(String(entry.key));
    });
    this.path.pop();
    this.path.pop();
    for (const [key, item] of Object.entries(node)) {
      if (key === 'cte_map') continue;
      const recursive = node.type === 'RECURSIVE_CTE_NODE' && key === 'right';
      let visible = recursive ? withName(ctes, String(node.cte_name)) : ctes;
      if (recursive && Array.isArray(node.key_targets) && node.key_targets.length > 0) visible = withName(visible, RECURRING + String(node.cte_name));
      this.child(key, item, visible);
    }
  }

  private baseTable(node: JsonObject, ctes: ReadonlySet<string>): void {
    const catalog = String(node.catalog_name);
    const schema = String(node.schema_name);
    const table = String(node.table_name);
    if (catalog === '' && schema === '' && ctes.has(asciiLower(table))) return;
    if (catalog === '' && asciiLower(schema) === 'recurring' && ctes.has(RECURRING + asciiLower(table))) return;
    const [start, end] = this.locateName(node, [catalog, schema, table].filter((p) => p !== ''));
    if (catalog !== '') {
      throw new QueryRejectedError(`"${catalog}"."${schema}"."${table}": three-part names are not supported; write database.measurement`);
    }
    if (node.at_clause !== null) throw new QueryRejectedError(`AT (...) time travel is not supported on measurement "${table}"`);
    const ref: MeasurementRef = { database: schema === '' ? this.defaultDatabase : schema, measurement: table };
    const invalid = nameError('database', ref.database) ?? nameError('measurement', ref.measurement);
    if (invalid !== undefined) throw new QueryRejectedError(invalid);
    const alias = String(node.alias);
    const keyword = this.tableStatements.get(node);
    this.occurrences.push({
      ref, path: [...this.path], node, alias: alias === '' ? table : alias, hasAlias: alias !== '', end,
      ...(keyword === undefined ? { start, prefix: '' } : { start: keyword, prefix: 'SELECT * FROM ' }),
    });
  }

  /**
   * `DESCRIBE`/`SHOW` and `SUMMARIZE` of a query, or of a table, which DuckDB parses as of
   * `SELECT * FROM` it (its `*` has no position): that table is rewritten as
   * `SELECT * FROM <source>`, as neither statement takes a subquery in place of a name.
   * The bare forms (`DESCRIBE` alone lists every table, the server's own included) are refused.
   */
  private showRef(node: JsonObject): void {
    const query = node.query as JsonObject | null;
    if (query === null || (node.show_type !== 'DESCRIBE' && node.show_type !== 'SUMMARY')) {
      throw new QueryRejectedError('DESCRIBE, SHOW and SUMMARIZE take a measurement or a query (DESCRIBE cpu, SUMMARIZE SELECT … FROM cpu); list measurements with SHOW TABLES');
    }
    if (query.type !== 'SELECT_NODE') return;
    const list = query.select_list as JsonObject[];
    const from = query.from_table as JsonObject | null;
    if (list.length !== 1 || list[0].class !== 'STAR' || from?.type !== 'BASE_TABLE') return;
    if (byteToCharIndex(this.bytes, Number(list[0].query_location)) !== undefined) return;
    const at = byteToCharIndex(this.bytes, Number(from.query_location));
    if (at !== undefined) this.tableStatements.set(from, at);
  }

  /**
   * `TABLE cpu` parses as `SELECT * FROM cpu` but takes only a name: it is rewritten
   * whole, from the keyword on, as `SELECT * FROM <source>`.
   */
  private noteTableStatement(node: JsonObject): void {
    if (node.type !== 'SELECT_NODE') return;
    const list = node.select_list as JsonObject[];
    const from = node.from_table as JsonObject | null;
    if (list.length !== 1 || list[0].class !== 'STAR' || from?.type !== 'BASE_TABLE') return;
    const at = byteToCharIndex(this.bytes, Number(from.query_location));
    const keyword = at === undefined ? undefined : tableKeywordBefore(this.sql, at);
    if (keyword !== undefined) this.tableStatements.set(from, keyword);
  }

  /**
   * Returns the UTF-16 range of the table name DuckDB placed at the node's
   * `query_location` (a UTF-8 byte offset), checking that the text there spells the
   * same name parts. The only BASE_TABLE whose text is not identifiers is a string
   * (`FROM 'data.csv'`, `FROM $$x$$`), which DuckDB would read as a file.
   */
  private locateName(node: JsonObject, parts: readonly string[]): [number, number] {
    const printable = parts.map((p) => `"${p}"`).join('.');
    const start = byteToCharIndex(this.bytes, Number(node.query_location));
    if (start === undefined) throw new QueryRejectedError(`unsupported use of table ${printable}: DuckDB gives no position for it`);
    const name = lexQualifiedName(this.sql, start);
    if (name === undefined || name.parts.length !== parts.length || name.parts.some((p, i) => p !== parts[i])) {
      throw new QueryRejectedError(`FROM '${parts.join('.')}' reads a file by path, which is not allowed; name a measurement instead`);
    }
    return [start, name.end];
  }
}

/** A change to the user's text: `[start, end)` replaced by `text`. */
interface Edit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/**
 * Replaces each located name (sorted, non-overlapping) by its source, and applies the
 * `edits` of `databasePrefixes` (never inside a located name).
 */
function splice(sql: string, occurrences: readonly Located[], sourceFor: (o: Located, index: number) => string, prefixEdits: readonly Edit[]): string {
  const edits = [
    ...occurrences.map((o, i) => ({
      start: o.start, end: o.end,
      text: `${o.prefix}(SELECT * FROM ${sourceFor(o, i)} AS ${SOURCE_MARK}${i})${o.hasAlias ? '' : ` AS ${quoteIdentifier(o.alias)}`}`,
    })),
    ...prefixEdits,
  ].sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  for (const e of edits) {
    out += sql.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + sql.slice(at);
}

/**
 * What lets column references naming their measurement with its database (`db.cpu.host`,
 * as over a DuckDB table in schema `db`) bind to the subquery that replaces `db.cpu`, for
 * a measurement read without an alias and named with its database:
 * - when no other relation of the query binds its name (`relationNames`), the subquery is
 *   named `cpu` and the `db.` before each such reference is removed;
 * - when another does (`pdb.cpu JOIN odb.cpu`, where `cpu.host` could mean either, or an
 *   alias or CTE named `cpu`), the subquery gets a name of its own, `"db.cpu"`
 *   (`ownAliases`), which replaces `db.cpu` in each such reference.
 * Other references are left as written, and fail as before.
 */
function databasePrefixes(sql: string, bytes: Buffer, refs: readonly JsonObject[], occurrences: readonly Located[], relationNames: ReadonlyMap<string, number>):
  { edits: Edit[]; ownAliases: Map<Located, string> } {
  // By start: DuckDB copies a reference it expands (`CASE db.m.col WHEN … WHEN …` compares
  // one copy per WHEN), each at the same position, and the text there is edited once.
  const edits = new Map<number, Edit>();
  const ownAliases = new Map<Located, string>();
  if (refs.length === 0) return { edits: [], ownAliases };
  const named = new Map<string, Located[]>();
  for (const o of occurrences) {
    if (o.hasAlias || String(o.node.schema_name) === '') continue;
    const key = `${asciiLower(o.ref.database)}\u0000${asciiLower(o.ref.measurement)}`;
    named.set(key, [...(named.get(key) ?? []), o]);
  }
  for (const ref of refs) {
    const [database, measurement] = (ref.column_names as JsonValue[]).map(String);
    const reads = named.get(`${asciiLower(database)}\u0000${asciiLower(measurement)}`);
    if (reads === undefined) continue;
    const start = byteToCharIndex(bytes, Number(ref.query_location));
    const first = start === undefined ? undefined : lexIdentifier(sql, start);
    if (first === undefined || first.value !== database) continue;
    const dot = skipBlanks(sql, first.end);
    if (sql[dot] !== '.') continue;
    const afterDot = skipBlanks(sql, dot + 1);
    if (relationNames.get(asciiLower(measurement)) === 1) {
      edits.set(start!, { start: start!, end: afterDot, text: '' });
      continue;
    }
    const second = lexIdentifier(sql, afterDot);
    if (second === undefined || second.value !== measurement) continue;
    const alias = `${reads[0].ref.database}.${reads[0].ref.measurement}`;
    for (const o of reads) ownAliases.set(o, alias);
    edits.set(start!, { start: start!, end: second.end, text: quoteIdentifier(alias) });
  }
  return { edits: [...edits.values()], ownAliases };
}

/**
 * Alias of the subquery wrapping the source of occurrence i (`strata_source_<nonce>_<i>`):
 * plain lower case, so DuckDB prints it unquoted. The nonce, random per process, keeps a
 * name the user wrote that looks like a printed source
 * (`1 AS "(SELECT * FROM x AS strata_source_0) AS y"`) from being taken for one. Names and
 * messages never show it, but a query can: a value it derives from a column name that
 * `restoredStrings` does not restore (`upper(column_name)` of a DESCRIBE, README).
 */
const SOURCE_MARK = `strata_source_${randomBytes(8).toString('hex')}_`;
const SOURCE_MARK_BYTES = Buffer.from(SOURCE_MARK, 'latin1');

/**
 * Whether UTF-8 `bytes` hold a rewritten source as DuckDB prints it (its mark), so that
 * text in them needs `AnalyzedQuery.restoreReferences`. A search of the bytes, without
 * decoding them: a result's string values are searched chunk by chunk.
 */
export function holdsPrintedSource(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(SOURCE_MARK_BYTES);
}

/**
 * See `AnalyzedQuery.restoreReferences`. DuckDB prints a rendered source as
 * `(SELECT * FROM … AS <SOURCE_MARK><i>) AS <alias>`: the mark is found outside quotes,
 * the parenthesis it closes gives the start, and the alias after it the end. Strings
 * (`'…'`) and quoted names (`"…"`) are skipped whole, so parentheses in paths do not count.
 */
function restoreReferences(text: string, occurrences: readonly Located[], keywords: ReadonlySet<string>): string {
  if (!text.includes(SOURCE_MARK)) return text;
  const opens: number[] = [];
  let out = '';
  let copied = 0;
  for (let i = 0; i < text.length;) {
    const c = text[i];
    if (c === "'" || c === '"') {
      i = quotedEnd(text, i);
    } else if (c === '(') {
      opens.push(i++);
    } else if (c === ')') {
      opens.pop();
      i++;
    } else if (isIdentStart(text.charCodeAt(i))) {
      const ident = lexIdentifier(text, i)!;
      const found = ident.value.startsWith(SOURCE_MARK) && text.endsWith(' AS ', i) && text[ident.end] === ')' && text.startsWith(' AS ', ident.end + 1)
        ? occurrences[Number(ident.value.slice(SOURCE_MARK.length))] : undefined;
      const alias = found === undefined || opens.length === 0 ? undefined : lexIdentifier(text, ident.end + 1 + ' AS '.length);
      if (found === undefined || alias === undefined) {
        i = ident.end;
        continue;
      }
      const start = opens.pop()!;
      out += text.slice(copied, start) + referenceText(found, text.slice(ident.end + 1 + ' AS '.length, alias.end), keywords);
      i = copied = alias.end;
    } else {
      i++;
    }
  }
  return out + text.slice(copied);
}

/** The index just after the quoted string or name starting at `i` (its quote doubled inside). */
function quotedEnd(text: string, i: number): number {
  const q = text[i];
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] !== q) continue;
    if (text[j + 1] !== q) return j + 1;
    j++;
  }
  return text.length;
}

/** A reference as DuckDB prints it: `[db.]measurement[ AS alias]`, with `alias` as it was printed. */
function referenceText(o: Located, printedAlias: string, keywords: ReadonlySet<string>): string {
  const schema = String(o.node.schema_name);
  const name = [schema, String(o.node.table_name)].filter((p) => p !== '').map((p) => printedIdentifier(p, keywords)).join('.');
  return o.hasAlias ? `${name} AS ${printedAlias}` : name;
}

/**
 * A name as DuckDB prints it (`KeywordHelper::WriteOptionallyQuoted`): bare when made of
 * ASCII letters of either case, digits (not first) and `_`, and not a keyword in any
 * case (`system`, `default`, `Time`); quoted otherwise.
 */
function printedIdentifier(name: string, keywords: ReadonlySet<string>): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !keywords.has(asciiLower(name)) ? name : quoteIdentifier(name);
}

/** A map key naming one measurement of one database. */
export function refKey(ref: MeasurementRef): string {
  return `${ref.database}\u0000${ref.measurement}`;
}

/**
 * Marks, in a set of CTE names in scope, a recursive CTE `USING KEY` whose recursive part is
 * being read: there `recurring.t` is DuckDB's name for the rows CTE `t` kept so far, not
 * measurement `t` of database `recurring`. A NUL, which no SQL text reaching here holds.
 */
const RECURRING = '\u0000recurring.';

function withName(ctes: ReadonlySet<string>, name: string): ReadonlySet<string> {
  return new Set([...ctes, asciiLower(name)]);
}

/** Converts a byte offset into the UTF-8 `bytes` of the SQL to a UTF-16 index; undefined when out of range (DuckDB's "no location" is 2^64-1). */
function byteToCharIndex(bytes: Buffer, byteOffset: number): number | undefined {
  if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset > bytes.length) return undefined;
  return bytes.subarray(0, byteOffset).toString('utf8').length;
}

/**
 * Reads `ident ( . ident )*` at `start`, following DuckDB's (PostgreSQL's) lexer:
 * identifiers are `"..."` with `""` for a quote, or a letter, `_` or non-ASCII character
 * followed by those, digits and `$`; whitespace and comments may surround the dots.
 * `end` is just after the last identifier.
 */
function lexQualifiedName(sql: string, start: number): { parts: string[]; end: number } | undefined {
  const parts: string[] = [];
  let i = start;
  for (;;) {
    const ident = lexIdentifier(sql, i);
    if (ident === undefined) return undefined;
    parts.push(ident.value);
    const next = skipBlanks(sql, ident.end);
    if (sql[next] !== '.') return { parts, end: ident.end };
    i = skipBlanks(sql, next + 1);
  }
}

function lexIdentifier(sql: string, i: number): { value: string; end: number } | undefined {
  if (sql[i] === '"') {
    let value = '';
    for (let j = i + 1; j < sql.length; j++) {
      if (sql[j] !== '"') value += sql[j];
      else if (sql[j + 1] === '"') value += sql[++j];
      else return { value, end: j + 1 };
    }
    return undefined;
  }
  if (!isIdentStart(sql.charCodeAt(i))) return undefined;
  let j = i + 1;
  while (j < sql.length && (isIdentStart(sql.charCodeAt(j)) || isDigit(sql.charCodeAt(j)) || sql[j] === '$')) j++;
  return { value: sql.slice(i, j), end: j };
}

/**
 * Where the keyword `TABLE` starts when it is the word just before `at` with only
 * whitespace between. Sound without a lexer: a string, quoted name or block comment
 * holding that word would need its closing quote or comment end in the gap, so only a line
 * comment could end with it; a `--` anywhere earlier on its line (even inside a
 * string) rules it out. What is ruled out is refused with `REWRITE_UNPARSABLE`,
 * never rewritten wrongly.
 */
function tableKeywordBefore(sql: string, at: number): number | undefined {
  let i = at;
  while (i > 0 && ' \t\n\r\f\v'.includes(sql[i - 1])) i--;
  const start = i - 'table'.length;
  if (i === at || start < 0 || asciiLower(sql.slice(start, i)) !== 'table') return undefined;
  const before = sql.charCodeAt(start - 1);
  if (start > 0 && (isIdentStart(before) || isDigit(before) || sql[start - 1] === '$' || sql[start - 1] === '"')) return undefined;
  const lineStart = Math.max(sql.lastIndexOf('\n', start), sql.lastIndexOf('\r', start)) + 1;
  return sql.slice(lineStart, start).includes('--') ? undefined : start;
}

function isIdentStart(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c >= 0x80;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

