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
import { isAscii } from 'node:buffer';
import type { Column } from './chunk-columns.js';

/** DuckDB's ±infinity timestamps: ±(2^63 − 1) µs. */
const INFINITE_US = 9223372036854775807n;
/** DuckDB's ±infinity dates: ±(2^31 − 1) days. */
const INFINITE_DAYS = 2147483647;

/** ISO 8601 text of `ms` since the epoch without the `.sssZ` tail (6-digit years keep their sign). */
function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, '');
}

/** `00`…`99`: hours, minutes and seconds of the time of day by table lookup instead of padStart per value. */
const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
/** Leading zeros of a trimmed fraction: `ZEROS[k]` is k zeros. */
const ZEROS = ['', '0', '00', '000', '0000', '00000'];

/**
 * The last day `timestampText` formatted and its `YYYY-MM-DDT` text: results are mostly
 * in time order, so one `Date` per day replaces one per value.
 */
let cachedDay = NaN;
let cachedDayText = '';

/**
 * RFC 3339 UTC text of `micros` since the epoch, a safe integer, fraction trimmed of
 * trailing zeros. Integer math only (`%` and exact divisions), so no rounding of
 * large values through floating-point division.
 */
function timestampText(micros: number): string {
  let fraction = micros % 1_000_000;
  if (fraction < 0) fraction += 1_000_000;
  const seconds = (micros - fraction) / 1_000_000;
  let time = seconds % 86_400;
  if (time < 0) time += 86_400;
  const day = (seconds - time) / 86_400;
  if (day !== cachedDay) {
    // isoSeconds keeps JavaScript's rules for years outside 0000–9999 (sign, six digits).
    cachedDayText = isoSeconds(day * 86_400_000).slice(0, -8);
    cachedDay = day;
  }
  const minutes = (time - (time % 60)) / 60;
  const text = cachedDayText + TWO_DIGITS[(minutes - (minutes % 60)) / 60] + ':' + TWO_DIGITS[minutes % 60] + ':' + TWO_DIGITS[time % 60];
  if (fraction === 0) return text + 'Z';
  let digits = 6;
  while (fraction % 10 === 0) {
    fraction /= 10;
    digits--;
  }
  const f = String(fraction);
  return text + '.' + ZEROS[digits - f.length] + f + 'Z';
}

/**
 * Formats integral µs since the epoch as RFC 3339 UTC with the fraction trimmed of
 * trailing zeros; DuckDB's infinite timestamps as `infinity` / `-infinity`.
 */
export function rfc3339FromMicros(micros: bigint): string {
  const n = Number(micros);
  if (Number.isSafeInteger(n)) return timestampText(n);
  if (micros === INFINITE_US) return 'infinity';
  if (micros === -INFINITE_US) return '-infinity';
  // Beyond ±2^53 µs (years before 1685 or after 2255) a double cannot hold the value exactly.
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

/** 10^k for the decimal fast path of `numberText`. */
const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6];

/**
 * `String(v)` of a finite double, faster for the common values with at most six
 * decimals and a magnitude below 1e9 (V8's shortest-digits search costs ~90 ns a value).
 * For those, the fewest decimals k with `round(|v|·10^k) / 10^k === |v|` give the
 * shortest text that reads back as v, and it is the only one with k decimals since
 * 10^-6 exceeds the double spacing below 1e9: the digits `String(v)` picks.
 */
export function numberText(v: number): string {
  const a = v < 0 ? -v : v;
  if (a < 1e9) {
    for (let k = 1; k <= 6; k++) {
      const scale = POW10[k];
      const m = Math.round(a * scale);
      if (m / scale !== a) continue;
      // k is the fewest decimals, so the last one is not 0; k = 0 (integers) is left to String.
      const f = m % scale;
      if (f === 0) break;
      const fraction = String(f);
      return (v < 0 ? '-' : '') + (m - f) / scale + '.' + ZEROS[k - fraction.length] + fraction;
    }
  }
  return String(v);
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
      return Number.isFinite(v) ? numberText(v) : mode === 'json' ? 'null' : String(v);
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

/** A character JSON.stringify would escape (in ASCII text: quote, backslash, control characters). */
const NEEDS_ESCAPE = /["\\\x00-\x1f]/;

/**
 * JSON text of every row of `col` (`n` rows), one specialised loop per kind so the
 * per-cell work is a typed-array read and a conversion, with no dispatch.
 */
function jsonTexts(col: Column, n: number): string[] {
  const texts: string[] = new Array(n);
  if (col.kind === 'other') {
    for (let i = 0; i < n; i++) texts[i] = jsonValue(col.values[i]);
    return texts;
  }
  const valid = col.valid;
  switch (col.kind) {
    case 'f64': case 'f32': {
      const values = col.values;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        texts[i] = Number.isFinite(v) ? numberText(v) : 'null';
      }
      break;
    }
    case 'timestamp': {
      // The int64s as little-endian 32-bit halves (low word first): a value within ±2^53
      // becomes a double without a BigInt per cell.
      const values = col.values;
      const words = new Int32Array(values.buffer, values.byteOffset, n * 2);
      for (let i = 0; i < n; i++) {
        // Checked first: a NULL slot holds garbage, which may be out of Date's range.
        if (valid !== null && (valid[i >>> 3] & (1 << (i & 7))) === 0) continue;
        const high = words[2 * i + 1];
        texts[i] = high >= -0x200000 && high < 0x200000
          ? '"' + timestampText(high * 4294967296 + (words[2 * i] >>> 0)) + '"'
          : '"' + rfc3339FromMicros(values[i]) + '"';
      }
      break;
    }
    case 'utf8': {
      const { data, offsets } = col;
      const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      if (isAscii(bytes)) {
        // One decode per chunk; each value is then a slice, quoted as is unless something needs escaping.
        const all = bytes.toString('latin1');
        const plain = !NEEDS_ESCAPE.test(all);
        for (let i = 0; i < n; i++) {
          const text = all.slice(offsets[i], offsets[i + 1]);
          texts[i] = plain ? '"' + text + '"' : JSON.stringify(text);
        }
      } else {
        for (let i = 0; i < n; i++) texts[i] = JSON.stringify(utf8(data, offsets[i], offsets[i + 1]));
      }
      break;
    }
    default:
      for (let i = 0; i < n; i++) texts[i] = cellText(col, i, 'json');
      return texts;
  }
  if (valid !== null) for (let i = 0; i < n; i++) if ((valid[i >>> 3] & (1 << (i & 7))) === 0) texts[i] = 'null';
  return texts;
}

/**
 * Row-major JSON text of `rowCount` rows of `columns` (one chunk): `[v,…],[v,…]`,
 * without the enclosing brackets so chunks can be streamed one after another.
 * Converted column by column, then interleaved into one string.
 */
export function jsonRowsText(columns: readonly Column[], rowCount: number): string {
  const texts = columns.map((col) => jsonTexts(col, rowCount));
  const width = texts.length;
  let out = '';
  for (let r = 0; r < rowCount; r++) {
    out += r === 0 ? '[' : ',[';
    for (let c = 0; c < width; c++) out += c === 0 ? texts[c][r] : ',' + texts[c][r];
    out += ']';
  }
  return out;
}
