/**
 * Time-range partition pruning: which bounds on `time` filter the rows of one
 * measurement reference, read from DuckDB's parsed AST (never from the SQL text).
 *
 * Rules (anything else means "no bound", so correctness never depends on pruning):
 * - Only the query level that reads the table directly counts: the SELECT whose FROM
 *   reaches the reference through nothing but joins. A bound in an outer query over a
 *   subquery or CTE does not prune the inner read.
 * - Only top-level AND-ed conjuncts of that SELECT's WHERE, plus the ON conditions of
 *   INNER joins on the way down (an outer join's ON only decides matching; its
 *   preserved side keeps every row). OR, NOT, CASE and functions of `time` are not
 *   understood and never prune. Nothing prunes a reference below a sample (`TABLESAMPLE`,
 *   `USING SAMPLE`), a POSITIONAL join, the right side of an ASOF, SEMI or ANTI join or a
 *   column alias list.
 * - Comparisons `>=, >, <, <=, =` and `BETWEEN` with `time` on one side and a
 *   constant expression on the other. `time` must name this reference: `alias.time`
 *   with the reference's alias (or measurement name), or a bare `time` when the FROM
 *   holds this table alone. A WHERE bound on a null-supplying side is still sound: the
 *   comparison is false for the NULL-extended rows the pruning could create.
 * - Constant expressions: literals (RFC 3339 or DuckDB forms, as strings or typed
 *   TIMESTAMP/DATE literals), casts, `now()`, `current_timestamp`, `INTERVAL`s, `+`/`-`,
 *   `to_timestamp`, `epoch_ms`, `make_timestamp`, `date_trunc` — what Grafana's
 *   `$__timeFilter` and epoch forms produce. The caller evaluates them in DuckDB
 *   (`boundSql`), so their meaning is exactly DuckDB's. Integers beyond 2^53, which
 *   `JSON.parse` has rounded, are not used.
 * - Upper bounds that depend on the clock (`time < now()`) are dropped: they are
 *   evaluated before the query's own transaction starts, so an hour boundary passed in
 *   between would cut off rows. For the same reason a clock may not be subtracted
 *   (negated) in a lower bound, which would then fall as time passes.
 * - `current_timestamp` and `current_date` without parentheses (`CLOCK_WORDS`) are
 *   column names to DuckDB, bound to the clock only when no column or select-list alias
 *   of that name is in scope: a bound reading one is used only when the FROM holds the
 *   table alone and the select list never names one, and is marked `clockWord` for the
 *   caller to check the measurement's own columns.
 */
import { asciiLower } from '../parse/names.js';
import type { JsonObject, JsonValue, MeasurementOccurrence } from './sql-rewriter.js';
import { quoteLiteral } from './sql-text.js';

/** One bound on `time`: `time <op> (<sql>)`. */
export interface TimeBound {
  readonly op: '>=' | '>' | '<' | '<=';
  /** A constant SQL expression DuckDB can evaluate on its own. */
  readonly sql: string;
  /**
   * The bound in µs since the epoch when it is a plain timestamp literal read here
   * (`readTimestampLiteral`), so planning needs no DuckDB call for it; else undefined.
   */
  readonly micros?: number;
  /**
   * True when the bound reads a `CLOCK_WORDS` name: it is the clock only if the
   * measurement has no column of that name (any case), which the caller must check.
   */
  readonly clockWord?: boolean;
}

/**
 * Names DuckDB parses as columns and binds to the clock only when no column (of the FROM,
 * in any case) or select-list alias (`… AS current_date`, `* RENAME (x AS current_date)`)
 * has that name; a correlated subquery's outer columns do not count.
 */
export const CLOCK_WORDS: ReadonlySet<string> = new Set(['current_timestamp', 'current_date']);

const FLIP = { '>=': '<=', '>': '<', '<': '>', '<=': '>=' } as const;

const COMPARISONS: Readonly<Record<string, TimeBound['op'] | '='>> = {
  COMPARE_GREATERTHANOREQUALTO: '>=', COMPARE_GREATERTHAN: '>', COMPARE_LESSTHAN: '<',
  COMPARE_LESSTHANOREQUALTO: '<=', COMPARE_EQUAL: '=',
};

/** Functions whose value is the clock: bounds using them may not cap the range from above. */
const CLOCK = new Set(['now', 'current_timestamp', 'get_current_timestamp', 'transaction_timestamp', 'current_date', 'today']);
const FUNCTIONS = new Set([
  ...CLOCK, 'to_timestamp', 'epoch_ms', 'make_timestamp', 'make_timestamptz', 'date_trunc',
  'trunc', 'to_seconds', 'to_minutes', 'to_hours', 'to_days', 'to_weeks', 'to_milliseconds', 'to_microseconds',
]);
const CAST_TYPES: Readonly<Record<string, string>> = {
  TIMESTAMP: 'TIMESTAMP', 'TIMESTAMP WITH TIME ZONE': 'TIMESTAMPTZ', DATE: 'DATE', INTERVAL: 'INTERVAL',
  VARCHAR: 'VARCHAR', BIGINT: 'BIGINT', INTEGER: 'INTEGER', DOUBLE: 'DOUBLE',
};
/** Joins whose right side's columns the WHERE above them sees (DuckDB's `join_type`). */
const SHOWN_JOIN_TYPES = new Set(['INNER', 'LEFT', 'RIGHT', 'FULL']);

const INTEGER_TYPES = new Set(['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT', 'HUGEINT']);

/** The bounds on `time` that restrict `occurrence` in the query rooted at `root`; empty when none are understood. */
export function timeBounds(root: JsonObject, occurrence: MeasurementOccurrence): TimeBound[] {
  // Nodes along the path from the root down to the BASE_TABLE.
  const nodes: JsonValue[] = [root];
  for (const key of occurrence.path) nodes.push((nodes[nodes.length - 1] as Record<string | number, JsonValue>)[key]);
  // The innermost SELECT whose `from_table` leads to the table through joins only.
  let select: JsonObject | undefined;
  const conditions: JsonValue[] = [];
  let alone = false;
  for (let k = occurrence.path.length - 1; k >= 0; k--) {
    if (occurrence.path[k] !== 'from_table') continue;
    const owner = nodes[k] as JsonObject;
    if (owner.type !== 'SELECT_NODE') return [];
    const joins: JsonObject[] = [];
    let ok = true;
    for (let j = k + 1; j < nodes.length - 1; j++) {
      const node = nodes[j] as JsonObject;
      const next = occurrence.path[j];
      if (node.type !== 'JOIN' || (next !== 'left' && next !== 'right')) ok = false;
      else joins.push(node);
    }
    if (!ok) return [];
    // A sample is drawn before WHERE, and a positional join pairs rows by their place:
    // fewer rows read changes what either keeps. An ASOF join matches each left row with
    // the nearest right row: with right rows pruned away, another (which the WHERE may
    // keep) becomes the nearest. The right side of a SEMI or ANTI join is hidden from the
    // WHERE: there its alias names another relation (of an outer query, or one joined
    // beside it under the same name). A column alias list (`cpu AS t(a, time)`) renames
    // columns by position, so `time` need not be the time column.
    const sources = nodes.slice(k + 1) as JsonObject[];
    if (owner.sample !== null || sources.some((n, i) => n.sample !== null || n.ref_type === 'POSITIONAL'
      || (occurrence.path[k + 1 + i] === 'right' && (n.ref_type === 'ASOF' || !SHOWN_JOIN_TYPES.has(n.join_type as string)))
      || (Array.isArray(n.column_name_alias) && n.column_name_alias.length > 0))) return [];
    select = owner;
    alone = joins.length === 0;
    conditions.push(owner.where_clause);
    for (const join of joins) if (join.join_type === 'INNER' && join.ref_type === 'REGULAR') conditions.push(join.condition);
    break;
  }
  if (select === undefined) return [];
  const isTime = (e: JsonValue): boolean => {
    if (e === null || typeof e !== 'object' || Array.isArray(e) || e.class !== 'COLUMN_REF') return false;
    const names = (e.column_names as string[]).map(asciiLower);
    if (names.length === 1) return alone && names[0] === 'time';
    return names.length === 2 && names[0] === asciiLower(occurrence.alias) && names[1] === 'time';
  };
  // A join partner (a CTE, a subquery, another measurement) or the select list may name a column like a clock word.
  const clockWordsShadowed = !alone || some(select.select_list, (v) => typeof v === 'string' && CLOCK_WORDS.has(asciiLower(v)));
  const bounds: TimeBound[] = [];
  const add = (op: TimeBound['op'], e: JsonValue): void => {
    const c = constant(e);
    if (c === undefined || (c.clock && (op === '<' || op === '<='))) return;
    if (!some(e, isClockWord)) bounds.push({ op, sql: c.sql, micros: c.micros });
    else if (!clockWordsShadowed) bounds.push({ op, sql: c.sql, clockWord: true });
  };
  for (const condition of conditions) {
    for (const term of conjuncts(condition)) {
      if (term.class === 'COMPARISON') {
        const op = COMPARISONS[String(term.type)];
        if (op === undefined) continue;
        let side: JsonValue;
        let dir: TimeBound['op'] | '=';
        if (isTime(term.left)) [side, dir] = [term.right, op];
        else if (isTime(term.right)) [side, dir] = [term.left, op === '=' ? '=' : FLIP[op]];
        else continue;
        if (dir === '=') {
          add('>=', side);
          add('<=', side);
        } else add(dir, side);
      } else if (term.class === 'BETWEEN' && isTime(term.input)) {
        add('>=', term.lower);
        add('<=', term.upper);
      }
    }
  }
  return bounds;
}

/** Whether `test` holds for `v` or any value nested in it. */
function some(v: JsonValue, test: (v: JsonValue) => boolean): boolean {
  if (test(v)) return true;
  if (v === null || typeof v !== 'object') return false;
  return (Array.isArray(v) ? v : Object.values(v)).some((item) => some(item, test));
}

/** Whether `v` is a bare column reference to one of `CLOCK_WORDS`. */
function isClockWord(v: JsonValue): boolean {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v.class !== 'COLUMN_REF') return false;
  const names = v.column_names as string[];
  return names.length === 1 && CLOCK_WORDS.has(asciiLower(names[0]));
}

/** The AND-ed terms of `e` (itself when it is not an AND); none for a missing clause. */
function conjuncts(e: JsonValue): JsonObject[] {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return [];
  if (e.class === 'CONJUNCTION' && e.type === 'CONJUNCTION_AND') return (e.children as JsonValue[]).flatMap(conjuncts);
  return [e];
}

/** A constant expression: its SQL text, whether it reads the clock, and its instant when known without DuckDB. */
interface Constant {
  sql: string;
  clock: boolean;
  /** µs since the epoch, for a timestamp literal (possibly cast to TIMESTAMP/TIMESTAMPTZ). */
  micros?: number;
  /** A string with an explicit UTC offset, which DuckDB's cast to TIMESTAMP ignores. */
  zoned?: boolean;
}

/** SQL text of a constant expression, and whether it reads the clock; undefined when not understood. */
function constant(e: JsonValue): Constant | undefined {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return undefined;
  if (e.class === 'CONSTANT') {
    const value = e.value as JsonObject;
    if (value.is_null === true) return undefined;
    const type = String((value.type as JsonObject).id);
    const v = value.value;
    if (type === 'VARCHAR' && typeof v === 'string') {
      const literal = readTimestampLiteral(v);
      return { sql: quoteLiteral(v), clock: false, micros: literal?.micros, zoned: literal?.zoned };
    }
    // Its own type, as DuckDB typed it: `DATE '…' + 1` has no BIGINT form (DATE + INTEGER only).
    if (INTEGER_TYPES.has(type) && typeof v === 'number' && Number.isSafeInteger(v)) return { sql: `CAST(${v} AS ${type})`, clock: false };
    if ((type === 'DOUBLE' || type === 'FLOAT') && typeof v === 'number' && Number.isFinite(v)) return { sql: `CAST(${v} AS DOUBLE)`, clock: false };
    return undefined;
  }
  // DuckDB parses `current_timestamp` and `current_date` without parentheses as column names.
  if (e.class === 'COLUMN_REF') return isClockWord(e) ? { sql: asciiLower((e.column_names as string[])[0]), clock: true } : undefined;
  if (e.class === 'CAST') {
    const target = CAST_TYPES[String((e.cast_type as JsonObject).id)];
    const child = constant(e.child);
    if (e.try_cast !== false || target === undefined || child === undefined) return undefined;
    // DuckDB casts '…+05:30' to TIMESTAMP as the wall time 06:00, dropping the offset;
    // to TIMESTAMPTZ it applies it. DATE truncates to the day; other targets keep no instant.
    const sql = `CAST(${child.sql} AS ${target})`;
    if (target === 'VARCHAR') return { sql, clock: child.clock, micros: child.micros, zoned: child.zoned };
    if (target === 'TIMESTAMPTZ' || (target === 'TIMESTAMP' && child.zoned !== true)) return { sql, clock: child.clock, micros: child.micros };
    return { sql, clock: child.clock };
  }
  if (e.class === 'FUNCTION') {
    const name = String(e.function_name).toLowerCase();
    if (!FUNCTIONS.has(name) && !(e.is_operator === true && (name === '+' || name === '-'))) return undefined;
    if (e.schema !== '' || e.catalog !== '' || e.filter !== null || e.distinct !== false) return undefined;
    const args = (e.children as JsonValue[]).map(constant);
    if (args.some((a) => a === undefined)) return undefined;
    const parts = args as Constant[];
    const clock = CLOCK.has(name) || parts.some((a) => a.clock);
    if (e.is_operator === true) {
      // A bound that falls as the clock advances (`x - (now() - y)`, `-epoch_ms(now())`) is
      // lower when the query runs than when it was evaluated here: it may not prune.
      if (name === '-' && parts[parts.length - 1].clock) return undefined;
      if (parts.length === 1 && name === '-') return { sql: `(-${parts[0].sql})`, clock };
      if (parts.length !== 2) return undefined;
      return { sql: `(${parts[0].sql} ${name} ${parts[1].sql})`, clock };
    }
    return { sql: `${name}(${parts.map((a) => a.sql).join(', ')})`, clock };
  }
  return undefined;
}

/**
 * Timestamp literals read without DuckDB: `YYYY-MM-DD`, or that followed by `T` or a
 * space, `HH:MM:SS`, up to 6 fractional digits, and optionally `Z` or an offset
 * `±HH[[:]MM]`; what Grafana and RFC 3339 clients send. Anything else (other forms, zone
 * names, out-of-range fields) is left to DuckDB.
 */
const TIMESTAMP_LITERAL = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:(Z)|([+-])(\d{2})(?::?(\d{2}))?)?)?$/;

/**
 * The instant of a timestamp literal in µs since the epoch, exactly as DuckDB reads the
 * string as a TIMESTAMPTZ with the session time zone UTC (`lockDown`): no offset means
 * UTC; an offset is subtracted. `zoned` when the text has an explicit `±` offset (a cast
 * to plain TIMESTAMP ignores it, so the caller must not use `micros` there). Undefined
 * when the text is not of the form above or a field is out of range (DuckDB then
 * decides, or refuses the query).
 */
export function readTimestampLiteral(text: string): { micros: number; zoned: boolean } | undefined {
  const m = TIMESTAMP_LITERAL.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0));
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(ms);
  // Date.UTC rolls 2026-02-30 over to March and maps years 0–99 to 19xx; DuckDB refuses the first and reads the second as written.
  if (year < 100 || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) return undefined;
  const fraction = Number((m[7] ?? '').padEnd(6, '0'));
  const zoned = m[9] !== undefined;
  if (zoned && (Number(m[10]) > 23 || Number(m[11] ?? 0) > 59)) return undefined;
  const offsetMinutes = zoned ? (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11] ?? 0)) : 0;
  return { micros: (ms - offsetMinutes * 60_000) * 1000 + fraction, zoned };
}

/** A SQL expression evaluating one bound to µs since the epoch (BIGINT) as DuckDB compares it with the TIMESTAMPTZ `time` column. */
export function boundSql(bound: TimeBound): string {
  return `epoch_us(CAST((${bound.sql}) AS TIMESTAMPTZ))`;
}
