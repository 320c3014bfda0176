/**
 * Reads of measurements without data (no files, no buffered records: a dashboard panel
 * before the first write). Such a read is an empty table with only `time`, since its
 * other columns are unknown; when the query names a column it would have had, DuckDB
 * fails to bind it. Not that error is the answer but the query with those columns NULL
 * (the bind below), so that the measurements with data it also reads still answer their
 * rows; a query reading only measurements without data answers an empty result, as Arc gives.
 *
 * Which binder error comes from those unknown columns cannot be read from DuckDB: its
 * errors carry a structured name only for an unqualified column not found, and DuckDB
 * reports whichever error it meets first, so `SELECT 1 FROM none WHERE host = 'a' UNION
 * ALL SELECT nosuch FROM cpu` names `host`. So the query is bound once more with each
 * such read given every column the query could ask of it (`askedColumns`): if it binds,
 * the error was theirs; if it still fails, the error is the query's own, and DuckDB now
 * names it as it would were the measurement absent (or had those columns).
 *
 * What can still be taken for the query's own error (a 400 instead of the empty
 * answer): a use of such a column that binds for some types but not for an untyped NULL
 * (`date_trunc('hour', none.ts)`: DuckDB cannot choose an overload), an unqualified name
 * that another source of the same FROM besides a measurement (a subquery, a CTE) also
 * has when the query needs unqualified columns of the read without data too, and a
 * set operation over `*` of such a read (its column count is unknown).
 */
import { asciiLower } from '../parse/names.js';
import { isFromItem, type JsonObject, type JsonValue, type MeasurementOccurrence } from './sql-rewriter.js';
import { quoteIdentifier } from './sql-text.js';

/**
 * SQL of the rows of a measurement without data: none, with `time` (TIMESTAMPTZ, as
 * stored) and `columns`, NULL-typed so that any use of them binds (`+`, `||`, `avg`, …).
 * Names are taken ASCII-case-insensitively, as DuckDB does; `time` is always there.
 */
export function noDataSource(columns: readonly string[] = []): string {
  const byName = new Map<string, string>();
  for (const c of columns) if (!byName.has(asciiLower(c))) byName.set(asciiLower(c), c);
  byName.delete('time');
  return `SELECT CAST(NULL AS TIMESTAMPTZ) AS "time"${[...byName.values()].map((c) => `, NULL AS ${quoteIdentifier(c)}`).join('')} WHERE false`;
}

/** Where a query's column names are, read from its AST by `columnUses`. */
interface ColumnUses {
  /**
   * Every name the query may use as a column of some source, by its ASCII lower case:
   * single-part column references, the first part of a longer one unless it names a
   * table (`s.f` is column `s`'s field `f`; `c.host` qualifies `host`), USING columns and
   * the names in `*` modifiers.
   */
  readonly names: Map<string, string>;
  /** Names qualified by a table name or alias (ASCII lower case): `n.host`, `n.* EXCLUDE (host)`. */
  readonly qualified: Map<string, string[]>;
  /** USING columns of the joins in the FROM of each SELECT node. */
  readonly using: Map<JsonObject, string[]>;
  /** The SELECT node whose FROM holds each BASE_TABLE node (not through a subquery). */
  readonly scope: Map<JsonObject, JsonObject>;
}

/**
 * The columns each read in `noData` is given for the second bind: those the query
 * qualifies by its alias (`n.v`, `n.* EXCLUDE (v)`), the USING columns of joins in its
 * FROM, as many as its column alias list names (`none AS t(a, b)`), and, when
 * `columnsOf` is given, every other name the query uses as a column, except those
 * that the measurements with data in the same FROM have (`columnsOf`, called for those
 * only) or that another read without data there is asked by name: an unqualified name
 * two sources of one FROM have is ambiguous. Unqualified names go to the first read
 * without data of each FROM only, for the same reason.
 * @throws whatever `columnsOf` throws.
 */
export async function askedColumns(
  statement: JsonObject,
  occurrences: readonly MeasurementOccurrence[],
  noData: ReadonlySet<MeasurementOccurrence>,
  columnsOf?: (occurrence: MeasurementOccurrence) => Promise<readonly string[]>,
): Promise<Map<MeasurementOccurrence, string[]>> {
  const uses = columnUses(statement);
  const own = (o: MeasurementOccurrence): string[] => [
    ...(uses.qualified.get(asciiLower(o.alias)) ?? []),
    ...(uses.using.get(uses.scope.get(o.node)!) ?? []),
    ...((o.node.column_name_alias as JsonValue[] | undefined) ?? []).map(String),
  ];
  const asked = new Map<MeasurementOccurrence, string[]>();
  for (const o of occurrences) {
    if (!noData.has(o)) continue;
    const columns = own(o);
    const sameFrom = occurrences.filter((other) => uses.scope.get(other.node) === uses.scope.get(o.node));
    if (columnsOf !== undefined && sameFrom.find((other) => noData.has(other)) === o) {
      const taken = new Set<string>();
      for (const other of sameFrom) {
        const names = noData.has(other) ? (other === o ? [] : own(other)) : await columnsOf(other);
        for (const name of names) taken.add(asciiLower(name));
      }
      for (const [lower, name] of uses.names) if (!taken.has(lower)) columns.push(name);
    }
    asked.set(o, columns);
  }
  return asked;
}

/**
 * Walks the whole AST (every object and array, as `sql-rewriter.ts` does) for
 * `ColumnUses`. A name that is also a table's (a FROM item's alias, a measurement, a
 * database, a CTE) is not taken from the first part of a column reference: given as a
 * column, it would turn `c.nosuch` into a field of that column, and bind.
 */
function columnUses(statement: JsonObject): ColumnUses {
  const uses: ColumnUses = { names: new Map(), qualified: new Map(), using: new Map(), scope: new Map() };
  const tables = new Set<string>();
  const qualifiers: string[] = [];
  const name = (n: string): void => void (uses.names.has(asciiLower(n)) || uses.names.set(asciiLower(n), n));
  const qualified = (table: string, n: string): void => {
    const list = uses.qualified.get(asciiLower(table));
    if (list === undefined) uses.qualified.set(asciiLower(table), [n]);
    else list.push(n);
  };
  const modified = (table: string, n: string): void => {
    name(n);
    if (table !== '') qualified(table, n);
  };
  const visit = (value: JsonValue, from: JsonObject | undefined): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item, from);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    if (value.type === 'SELECT_NODE') {
      for (const [key, item] of Object.entries(value)) visit(item, key === 'from_table' ? value : undefined);
      return;
    }
    if (isFromItem(value)) tables.add(asciiLower(String(value.alias)));
    if (value.type === 'BASE_TABLE') {
      tables.add(asciiLower(String(value.table_name))).add(asciiLower(String(value.schema_name)));
      if (from !== undefined) uses.scope.set(value, from);
    }
    if ('cte_map' in value) for (const { key } of (value.cte_map as JsonObject).map as JsonObject[]) tables.add(asciiLower(String(key)));
    if (value.type === 'JOIN' && from !== undefined && Array.isArray(value.using_columns) && value.using_columns.length > 0) {
      const columns = value.using_columns.map(String);
      columns.forEach(name);
      uses.using.set(from, [...(uses.using.get(from) ?? []), ...columns]);
    }
    if (value.class === 'COLUMN_REF') {
      // `a.b.c` is a column `a.b.c`'s field, `a.b`'s field `c`, or column `c` of table `b`
      // (of database `a`): each part after a table's name may be one of its columns.
      const parts = (value.column_names as JsonValue[]).map(String);
      if (parts.length === 1) name(parts[0]);
      else qualifiers.push(parts[0]);
      for (let i = 0; i + 1 < parts.length; i++) qualified(parts[i], parts[i + 1]);
      // `db.m.col` of a read the rewrite names `"db.m"` (`databasePrefixes`).
      if (parts.length >= 3) qualified(`${parts[0]}.${parts[1]}`, parts[2]);
    }
    if (value.class === 'STAR') {
      const table = String(value.relation_name ?? '');
      for (const n of (value.exclude_list as JsonValue[] | undefined) ?? []) modified(table, String(n));
      for (const r of (value.replace_list as JsonObject[] | undefined) ?? []) modified(table, String(r.key));
      for (const { table: t, column } of (value.qualified_exclude_list as JsonObject[] | undefined) ?? []) modified(String(t), String(column));
      for (const { key } of (value.rename_list as JsonObject[] | undefined) ?? []) {
        const k = key as JsonObject;
        modified(String(k.table) || table, String(k.column));
      }
    }
    for (const item of Object.values(value)) visit(item, from);
  };
  visit(statement, undefined);
  for (const q of qualifiers) if (!tables.has(asciiLower(q))) name(q);
  return uses;
}
