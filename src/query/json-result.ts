/**
 * Encodes DuckDB results as Arc's JSON query response:
 * `{"success":true,"columns":[…],"data":[[…]],"row_count":N,"execution_time_ms":T,"timestamp":"…"}`.
 *
 * Values (as Arc, ../shared/notes/arc-wire-contract.md §5.3): integers of any width as
 * exact JSON numbers (no rounding of BIGINT/HUGEINT through doubles), DECIMAL as a
 * number (Arc's JSON path emits a string — a quirk not kept), NaN/±Inf as null,
 * timestamps as RFC 3339 UTC with the fraction trimmed (`…T00:00:10.5Z`), dates as
 * `YYYY-MM-DD`, anything else as its DuckDB string form.
 */
import {
  DuckDBDateValue, DuckDBDecimalValue, DuckDBTimestampMillisecondsValue, DuckDBTimestampNanosecondsValue,
  DuckDBTimestampSecondsValue, DuckDBTimestampTZValue, DuckDBTimestampValue,
  type DuckDBResultReader, type DuckDBValue,
} from '@duckdb/node-api';

/** Formats integral µs since the epoch as RFC 3339 UTC with the fraction trimmed of trailing zeros. */
export function rfc3339FromMicros(micros: bigint): string {
  const seconds = micros >= 0n ? micros / 1_000_000n : -((-micros + 999_999n) / 1_000_000n);
  const fraction = Number(micros - seconds * 1_000_000n);
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  return fraction === 0 ? `${base}Z` : `${base}.${String(fraction).padStart(6, '0').replace(/0+$/, '')}Z`;
}

/** One value as JSON text. */
export function jsonValue(v: DuckDBValue): string {
  switch (typeof v) {
    case 'number': return Number.isFinite(v) ? String(v) : 'null';
    case 'bigint': return v.toString();
    case 'boolean': return v ? 'true' : 'false';
    case 'string': return JSON.stringify(v);
  }
  if (v === null) return 'null';
  if (v instanceof DuckDBTimestampTZValue || v instanceof DuckDBTimestampValue) return `"${rfc3339FromMicros(v.micros)}"`;
  if (v instanceof DuckDBTimestampMillisecondsValue) return `"${rfc3339FromMicros(v.millis * 1000n)}"`;
  if (v instanceof DuckDBTimestampSecondsValue) return `"${rfc3339FromMicros(v.seconds * 1_000_000n)}"`;
  if (v instanceof DuckDBTimestampNanosecondsValue) return `"${rfc3339FromMicros(v.nanos / 1000n)}"`;
  if (v instanceof DuckDBDateValue) return `"${new Date(v.days * 86_400_000).toISOString().slice(0, 10)}"`;
  if (v instanceof DuckDBDecimalValue) return v.toString();
  return JSON.stringify(String(v));
}

/** A result ready for the JSON envelope: column names and the `data` array as JSON text. */
export interface JsonRows {
  readonly columns: string[];
  /** JSON text of the row-major `data` array. */
  readonly dataJson: string;
  readonly rowCount: number;
}

/** Encodes a fully read DuckDB result as row-major JSON. */
export function encodeRows(reader: DuckDBResultReader): JsonRows {
  const columns = reader.columnNames();
  const data = reader.getColumns();
  const rowCount = reader.currentRowCount;
  const rows: string[] = new Array(rowCount);
  for (let r = 0; r < rowCount; r++) {
    let row = '[';
    for (let c = 0; c < data.length; c++) row += (c === 0 ? '' : ',') + jsonValue(data[c][r]);
    rows[r] = row + ']';
  }
  return { columns, dataJson: `[${rows.join(',')}]`, rowCount };
}

/** Rows of a SHOW command (plain JS values) in the same form. */
export function encodePlainRows(columns: string[], rows: (string | number)[][]): JsonRows {
  return { columns, dataJson: JSON.stringify(rows), rowCount: rows.length };
}
