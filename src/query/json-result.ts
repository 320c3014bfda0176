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
  type DuckDBValue,
} from '@duckdb/node-api';
import type { Column } from './chunk-columns.js';

/** DuckDB's ±infinity timestamps: ±(2^63 − 1) µs. */
const INFINITE_US = 9223372036854775807n;
/** DuckDB's ±infinity dates: ±(2^31 − 1) days. */
const INFINITE_DAYS = 2147483647;

/** ISO 8601 text of `ms` since the epoch without the `.sssZ` tail (6-digit years keep their sign). */
function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, '');
}

/**
 * Formats integral µs since the epoch as RFC 3339 UTC with the fraction trimmed of
 * trailing zeros; DuckDB's infinite timestamps as `infinity` / `-infinity`.
 */
export function rfc3339FromMicros(micros: bigint): string {
  if (micros === INFINITE_US) return 'infinity';
  if (micros === -INFINITE_US) return '-infinity';
  const seconds = micros >= 0n ? micros / 1_000_000n : -((-micros + 999_999n) / 1_000_000n);
  const fraction = Number(micros - seconds * 1_000_000n);
  const base = isoSeconds(Number(seconds) * 1000);
  return fraction === 0 ? `${base}Z` : `${base}.${String(fraction).padStart(6, '0').replace(/0+$/, '')}Z`;
}

/** `YYYY-MM-DD` of `days` since the epoch; DuckDB's infinite dates as `infinity` / `-infinity`. */
export function dateFromDays(days: number): string {
  if (days === INFINITE_DAYS) return 'infinity';
  if (days === -INFINITE_DAYS) return '-infinity';
  return isoSeconds(days * 86_400_000).replace(/T.*$/, '');
}

/** Floor division of ns by 1000 (BigInt `/` truncates toward zero, which would round pre-1970 instants up). */
export function microsFromNanos(nanos: bigint): bigint {
  const q = nanos / 1000n;
  return nanos < 0n && q * 1000n !== nanos ? q - 1n : q;
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
  if (v instanceof DuckDBTimestampNanosecondsValue) return `"${rfc3339FromMicros(microsFromNanos(v.nanos))}"`;
  if (v instanceof DuckDBDateValue) return `"${dateFromDays(v.days)}"`;
  if (v instanceof DuckDBDecimalValue) return v.toString();
  return JSON.stringify(String(v));
}

/**
 * The text of row `i` of `col` in JSON (`json`: strings quoted and escaped, NULL as
 * `null`) or CSV (`csv`: strings raw, NULL as the empty string; RFC 4180 quoting is
 * the caller's). Numbers, booleans and times are the same in both.
 */
export function cellText(col: Column, i: number, mode: 'json' | 'csv'): string {
  if (col.kind === 'other') {
    const v = col.values[i];
    if (mode === 'json') return jsonValue(v);
    if (v === null) return '';
    if (typeof v === 'string') return v;
    const text = jsonValue(v);
    return text.startsWith('"') ? (JSON.parse(text) as string) : text;
  }
  if (col.valid !== null && (col.valid[i >>> 3] & (1 << (i & 7))) === 0) return mode === 'json' ? 'null' : '';
  switch (col.kind) {
    case 'f64': case 'f32': {
      const v = col.values[i];
      return Number.isFinite(v) ? String(v) : mode === 'json' ? 'null' : String(v);
    }
    case 'bool': return col.values[i] === 0 ? 'false' : 'true';
    case 'timestamp': return mode === 'json' ? `"${rfc3339FromMicros(col.values[i])}"` : rfc3339FromMicros(col.values[i]);
    case 'date': return mode === 'json' ? `"${dateFromDays(col.values[i])}"` : dateFromDays(col.values[i]);
    case 'utf8': {
      const text = utf8(col.data, col.offsets[i], col.offsets[i + 1]);
      return mode === 'json' ? JSON.stringify(text) : text;
    }
    default: return String(col.values[i]);
  }
}

/** Decodes `data[start, end)` as UTF-8 (Buffer's decoder: faster than TextDecoder for short strings). */
function utf8(data: Uint8Array, start: number, end: number): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8', start, end);
}

/**
 * Row-major JSON text of `rowCount` rows of `columns` (one chunk): `[v,…],[v,…]`,
 * without the enclosing brackets so chunks can be streamed one after another.
 */
export function jsonRowsText(columns: readonly Column[], rowCount: number): string {
  const rows: string[] = new Array(rowCount);
  for (let r = 0; r < rowCount; r++) {
    let row = '[';
    for (let c = 0; c < columns.length; c++) row += (c === 0 ? '' : ',') + cellText(columns[c], r, 'json');
    rows[r] = row + ']';
  }
  return rows.join(',');
}
