/**
 * Refuses SQL that DuckDB would blow up exponentially while it parses or binds it, before
 * any deadline can stop it: neither step looks for interrupts, so a query of a few hundred
 * bytes would hold its connection for hours, or exhaust memory and take the process down.
 *
 * - Parsing: DuckDB turns a simple CASE (`CASE x WHEN 1 THEN … WHEN 2 THEN … END`) into a
 *   searched one with a copy of `x` per WHEN, so simple CASEs nested in each other's operand
 *   double the tree at each level: 18 levels (~700 bytes) made `json_serialize_sql` answer
 *   324 MB, and the process died reading it. Counted on the text, before DuckDB sees it
 *   (`checkCaseExpansion`).
 * - Binding: a macro's body takes a copy of an argument for each use of its parameter
 *   (`nullif(a, b)` is `CASE WHEN a = b THEN NULL ELSE a END`), so nested macro calls
 *   multiply: 10 nested `round_even` (each parameter used 3 times) took 33 s to prepare.
 *   So do BETWEEN, select items reusing each other's aliases and CTEs read twice, each
 *   level twice the one before (21 levels of aliases: 165 s and 7 GB). Counted on the
 *   parsed statement, with each macro's uses read from DuckDB (`checkBindExpansion`,
 *   `MACRO_USES_SQL`).
 *
 * - Grouping sets and PIVOT columns: `CUBE` of n columns is 2^n grouping sets (32,768 took
 *   17 GB and ignored interrupts), a PIVOT the product of its IN lists (`checkGroupingAndPivots`).
 *
 * Either way, at most MAX_COPIED_NODES tokens or nodes (or ten per part written, in a longer
 * query) may be copies: far more than any query written by hand or a dashboard makes (a copy
 * is made per WHEN of a simple CASE, per use of a macro parameter), few enough that DuckDB
 * parses and binds them in about a second.
 *
 * Not covered, and able to hold a connection past its deadline: whatever else DuckDB
 * expands that is not listed here. The README says so.
 */
import { QueryRejectedError } from '../errors.js';
import { sqlTokens, turnUnicodeSpaces } from './sql-text.js';
import type { JsonObject, JsonValue } from './sql-rewriter.js';

/** Tokens (text) or statement nodes that parsing or binding may copy, in all. */
export const MAX_COPIED_NODES = 10_000;

/** Lists DuckDB's scalar macros: `function_name`, `parameters` (a list of names: read with `getRowsJS`), `macro_definition` (its body's SQL). */
export const MACRO_USES_SQL = "SELECT function_name, parameters, macro_definition FROM duckdb_functions() WHERE function_type = 'macro'";

/** Per scalar macro (lower-case name): how many times its body uses each parameter, by position. */
export type MacroUses = ReadonlyMap<string, readonly number[]>;

/**
 * `MacroUses` from the rows of MACRO_USES_SQL. A parameter's uses are the occurrences of
 * its name as a word in the body, case-insensitively (a string or a column of the same
 * name counts too, so the count errs high, never low), times the copies the macros the
 * body calls make in turn: `roundbankers(x, n)` is `round_even(x, n)`, which uses `x`
 * three times. Overloads of a name count as their largest use of each position.
 */
export function macroUses(rows: readonly (readonly unknown[])[]): MacroUses {
  const own = new Map<string, { counts: number[]; words: string[] }>();
  for (const [name, parameters, definition] of rows) {
    const words = String(definition).toLowerCase().match(/[\p{L}\p{N}_$]+/gu) ?? [];
    const counts = (parameters as readonly unknown[]).map((p) => words.filter((w) => w === String(p).toLowerCase()).length);
    const key = String(name).toLowerCase();
    const known = own.get(key);
    own.set(key, {
      counts: Array.from({ length: Math.max(counts.length, known?.counts.length ?? 0) }, (_, i) => Math.max(counts[i] ?? 0, known?.counts[i] ?? 0)),
      words: [...(known?.words ?? []), ...words],
    });
  }
  // The most copies a call of each macro makes of any argument, its callees' included.
  const most = new Map<string, number>();
  const copiesOf = (name: string, seen: ReadonlySet<string>): number => {
    const known = most.get(name);
    if (known !== undefined) return known;
    const macro = own.get(name)!;
    let factor = 1;
    for (const callee of new Set(macro.words)) {
      if (callee !== name && own.has(callee) && !seen.has(callee)) factor = Math.min(factor * copiesOf(callee, new Set([...seen, callee])), Number.MAX_SAFE_INTEGER);
    }
    const result = Math.max(1, ...macro.counts) * factor;
    most.set(name, result);
    return result;
  };
  const uses = new Map<string, number[]>();
  for (const [name, macro] of own) {
    const factor = copiesOf(name, new Set([name])) / Math.max(1, ...macro.counts);
    uses.set(name, macro.counts.map((c) => c * factor));
  }
  return uses;
}

/** A CASE being read: the tokens of its operand (expanded), of the rest, its WHENs, and whether the operand is being read. */
interface CaseFrame {
  operand: number;
  rest: number;
  whens: number;
  inOperand: boolean;
}

/**
 * Refuses `sql` when parsing it would copy more than MAX_COPIED_NODES tokens of simple CASE
 * operands (see the module comment). Tokens: names and keywords, quoted texts and
 * numbers' characters alike (`sqlTokens`); comments are skipped.
 * @throws QueryRejectedError naming the limit.
 */
export function checkCaseExpansion(sql: string): void {
  const frames: CaseFrame[] = [];
  // Tokens the copies add: each CASE, once read, adds its operand (as expanded) once more per WHEN past the first.
  let copies = 0;
  let written = 0;
  let previous = '';
  // DuckDB turns Unicode spaces into ASCII ones before it lexes (`CASE\u00a0x` is two tokens).
  for (const token of sqlTokens(turnUnicodeSpaces(sql))) {
    written++;
    // After a dot a keyword is a field's name (`s.end`).
    const word = previous !== '.' && (token.length === 3 || token.length === 4) ? token.toLowerCase() : '';
    previous = token;
    const top = frames[frames.length - 1];
    let tokens = 1;
    if (word === 'case') {
      frames.push({ operand: 0, rest: 1, whens: 0, inOperand: true });
      continue;
    } else if (word === 'when' && top !== undefined) {
      top.inOperand = false;
      top.whens++;
      top.rest++;
      continue;
    } else if (word === 'end' && top !== undefined) {
      frames.pop();
      copies += top.operand * Math.max(top.whens - 1, 0);
      if (copies > copyLimit(written)) {
        throw tooLarge('simple CASE expressions (CASE x WHEN …) nested in one another\'s operand: DuckDB copies the operand for each WHEN');
      }
      tokens = top.operand * Math.max(top.whens, 1) + top.rest + 1;
    }
    const into = frames[frames.length - 1];
    if (into === undefined) continue;
    if (into.inOperand) into.operand += tokens;
    else into.rest += tokens;
  }
}

/**
 * Refuses a parsed statement (`json_serialize_sql`'s tree) when binding it would copy more
 * than `copyLimit` nodes (see the module comment). DuckDB's binder and optimizer copy:
 * - a macro's arguments, once per use of their parameters in its body (`uses`);
 * - the operand of BETWEEN (`x BETWEEN a AND b` becomes `x >= a AND x <= b`);
 * - a select item's expression, wherever a later item (or WHERE, GROUP BY, HAVING,
 *   QUALIFY) names its alias (`SELECT u + u AS a0, a0 + a0 AS a1`);
 * - a CTE's query, wherever it is read, when DuckDB inlines it (counted for every CTE:
 *   the parsed tree does not say which DuckDB will inline).
 * Nested, the copies multiply.
 * @throws QueryRejectedError naming the limit.
 */
export function checkBindExpansion(statement: JsonValue, uses: MacroUses): void {
  let nodes = 0;
  const capped = (n: number): number => Math.min(n, Number.MAX_SAFE_INTEGER);
  /** `ctes`: the expanded size of each CTE in scope; `aliases`: of each select item of the SELECT being read. */
  const size = (value: JsonValue, ctes: ReadonlyMap<string, number>, aliases: ReadonlyMap<string, number>): number => {
    if (value === null || typeof value !== 'object') return 0;
    if (Array.isArray(value)) return value.reduce((n: number, v) => capped(n + size(v, ctes, aliases)), 0);
    nodes++;
    let total = 1;
    const add = (child: JsonValue, times = 1, inner = ctes, named = aliases): void => {
      total = capped(total + times * size(child, inner, named));
    };
    const cteMap = (value.cte_map as JsonObject | undefined)?.map;
    if (Array.isArray(cteMap)) {
      // A query node: its CTEs, each seeing those before it, then the rest without the outer select's aliases.
      const inner = new Map(ctes);
      for (const entry of cteMap as JsonObject[]) {
        const body = size(entry.value, inner, new Map());
        total = capped(total + body);
        inner.set(String(entry.key).toLowerCase(), body);
      }
      const own = new Map<string, number>();
      for (const [key, child] of Object.entries(value)) {
        if (key === 'cte_map') continue;
        if (key === 'select_list' && Array.isArray(child)) {
          for (const item of child) {
            const itemSize = size(item, inner, own);
            total = capped(total + itemSize);
            const alias = item !== null && typeof item === 'object' && !Array.isArray(item) ? String(item.alias ?? '') : '';
            if (alias !== '') own.set(alias.toLowerCase(), itemSize);
          }
        } else {
          add(child, 1, inner, LATERAL_ALIAS_CLAUSES.has(key) ? own : new Map());
        }
      }
      return total;
    }
    if (value.class === 'COLUMN_REF' && Array.isArray(value.column_names) && value.column_names.length === 1) {
      return capped(total + (aliases.get(String(value.column_names[0]).toLowerCase()) ?? 0));
    }
    if (value.type === 'BASE_TABLE' && value.schema_name === '' && typeof value.table_name === 'string') {
      total = capped(total + (ctes.get(value.table_name.toLowerCase()) ?? 0));
    }
    const macro = value.class === 'FUNCTION' && typeof value.function_name === 'string' ? uses.get(value.function_name.toLowerCase()) : undefined;
    for (const [key, child] of Object.entries(value)) {
      if (macro !== undefined && key === 'children' && Array.isArray(child)) {
        // A named argument (`name := value`, in any order) or one past the parameters counts as
        // the most used parameter.
        const most = Math.max(1, ...macro);
        child.forEach((arg, i) => {
          const named = arg !== null && typeof arg === 'object' && !Array.isArray(arg) && typeof arg.alias === 'string' && arg.alias !== '';
          add(arg, named ? most : macro[i] ?? most);
        });
      } else {
        add(child, value.class === 'BETWEEN' && key === 'input' ? 2 : 1);
      }
    }
    return total;
  };
  const expanded = size(statement, new Map(), new Map());
  if (expanded - nodes > copyLimit(nodes)) {
    throw tooLarge('expressions DuckDB copies while it binds them, nested in one another (macro calls such as nullif, fmod or round_even; ' +
      'BETWEEN; a select item reusing another\'s alias; a CTE read more than once)');
  }
}

/** The clauses of a SELECT where DuckDB reads a select item's alias as its expression. */
const LATERAL_ALIAS_CLAUSES: ReadonlySet<string> = new Set(['where_clause', 'group_expressions', 'having', 'qualify']);

/**
 * Copies allowed for a query of `written` tokens or nodes: MAX_COPIED_NODES, or ten per
 * part written in a longer query. Copies that stay in proportion to the text are harmless
 * (a CASE of 3,000 WHENs on `lower(host)` binds in 0.1 s); nesting makes them outgrow it.
 */
function copyLimit(written: number): number {
  return Math.max(MAX_COPIED_NODES, COPIES_PER_PART * written);
}

/** See `copyLimit`. */
const COPIES_PER_PART = 10;

function tooLarge(cause: string): QueryRejectedError {
  return new QueryRejectedError(`query too complex: DuckDB would copy more than ${MAX_COPIED_NODES.toLocaleString('en')} parts of it while it reads it, because of ${cause}; ` +
    'compute the repeated expression once (in a subquery or a CTE) and refer to it');
}

/** Grouping sets a query may have: CUBE of 10 columns (1,024); 2^15 took 17 GB. */
export const MAX_GROUPING_SETS = 1_024;

/** Columns a PIVOT may make (one per combination of its IN values, per aggregate); 900,000 took 50 s to bind. */
export const MAX_PIVOT_COLUMNS = 10_000;

/**
 * Refuses a parsed statement whose GROUP BY has more than MAX_GROUPING_SETS grouping sets
 * (DuckDB's parser expands `CUBE` and `ROLLUP` into them: `group_sets` of a SELECT node),
 * or whose PIVOT makes more than MAX_PIVOT_COLUMNS columns (DuckDB's own `pivot_limit`
 * counts IN values, not their product times the aggregates).
 * @throws QueryRejectedError naming the limit.
 */
export function checkGroupingAndPivots(statement: JsonValue): void {
  const walk = (value: JsonValue): void => {
    if (value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) return value.forEach(walk);
    const sets = value.group_sets;
    if (Array.isArray(sets) && sets.length > MAX_GROUPING_SETS) {
      throw new QueryRejectedError(`query too complex: its GROUP BY has ${sets.length.toLocaleString('en')} grouping sets (CUBE of n columns makes 2^n), ` +
        `more than ${MAX_GROUPING_SETS.toLocaleString('en')}; group by fewer columns at once`);
    }
    if (value.type === 'PIVOT' && Array.isArray(value.pivots)) {
      const aggregates = Array.isArray(value.aggregates) ? Math.max(1, value.aggregates.length) : 1;
      const columns = (value.pivots as JsonObject[]).reduce((n, p) => Math.min(n * (Array.isArray(p.entries) ? Math.max(1, p.entries.length) : 1), Number.MAX_SAFE_INTEGER), aggregates);
      if (columns > MAX_PIVOT_COLUMNS) {
        throw new QueryRejectedError(`query too complex: its PIVOT makes ${columns.toLocaleString('en')} columns (the product of its IN lists, times its aggregates), ` +
          `more than ${MAX_PIVOT_COLUMNS.toLocaleString('en')}; pivot on fewer values at once`);
      }
    }
    Object.values(value).forEach(walk);
  };
  walk(statement);
}
