/**
 * A window of a query's rows, as QuestDB's `/exec?limit=` pages through a result: rows
 * `skip` to `skip + take` (0-based, the end excluded), read chunk by chunk. Reading stops
 * once the window is full (unless the rows are to be counted); the caller's `close` then
 * stops DuckDB, which has not produced the rest (a streaming result computes chunks as they
 * are fetched).
 */
import { sliceColumns } from './chunk-columns.js';
import type { OpenQuery, ResultChunk } from './query-service.js';

/** Rows `skip` (0-based) to `skip + take`, the end excluded; `take` Infinity: to the result's end. */
export interface RowRange {
  readonly skip: number;
  readonly take: number;
}

/** A query read through a `RowRange`. */
export interface RangedQuery extends OpenQuery {
  /** Rows of the whole result read so far: all of them once `next` has returned null, with `countAll`. */
  readonly seen: number;
  /** Time spent reading the rows after the window to count them (ms; 0 without `countAll`). */
  readonly countMs: number;
}

/**
 * `query` read through `range`: the same columns and profile, only the rows in the window.
 * With `countAll` (QuestDB's `count=true`), the rows after the window are read too, to
 * count them, before `next` returns null. Errors as `query.next`.
 */
export function withinRange(query: OpenQuery, { skip, take }: RowRange, countAll: boolean): RangedQuery {
  // Rows of the result passed so far (sent, skipped or counted).
  let seen = 0;
  let sent = 0;
  let countMs = 0;
  return {
    names: query.names, types: query.types, profile: query.profile, refs: query.refs, deterministic: query.deterministic,
    get seen() {
      return seen;
    },
    get countMs() {
      return countMs;
    },
    close: () => query.close(),
    async next(): Promise<ResultChunk | null> {
      while (sent < take) {
        const chunk = await query.next();
        if (chunk === null) return null;
        const from = Math.max(0, skip - seen);
        const to = Math.min(chunk.rowCount, from + take - sent);
        seen += chunk.rowCount;
        if (to <= from) continue;
        sent += to - from;
        return from === 0 && to === chunk.rowCount ? chunk : { columns: sliceColumns(chunk.columns, from, to), rowCount: to - from };
      }
      if (countAll) {
        const started = performance.now();
        for (let chunk = await query.next(); chunk !== null; chunk = await query.next()) seen += chunk.rowCount;
        countMs += performance.now() - started;
      }
      return null;
    },
  };
}
