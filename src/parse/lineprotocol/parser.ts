/**
 * InfluxDB line protocol → `ColumnarBatch`es, one per measurement (more when its lines are sparse, see `BatchBuilder`).
 *
 * Follows the InfluxDB v2 line-protocol reference
 * (https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/) and the
 * behaviour of InfluxDB's own parser where the reference is silent (`.5` and `1.`
 * are floats, `+1` is not, duplicate tag keys reject the line). Laid out like
 * VictoriaMetrics' `lib/protoparser/influx`: this file parses whole lines held in
 * memory, `stream.ts` cuts a request body into chunks and feeds them here.
 *
 * The scanner makes one pass over the text with `charCodeAt`: no regular
 * expressions, no per-line `split`, no per-line objects. A line is first scanned
 * into a reusable `RowStage` and only copied into its measurement's
 * `BatchBuilder` once it has proved valid, because the builder needs the
 * timestamp, which comes last, before anything else of the row.
 *
 * A '\n' inside a quoted string field value belongs to the value, as in InfluxDB's
 * `scanLine` (models/points.go): the official clients escape only `"` and `\` in string
 * fields, so a multi-line log message arrives as one point spanning several physical
 * lines. Such a point is numbered by its first physical line.
 */
import { BatchBuilder, INT64_MAX, INT64_MIN, flatString, type ColumnarBatch } from '../batch.js';
import { LineErrors } from '../line-errors.js';
import { nameError } from '../names.js';
import { RowStage } from '../row-stage.js';
import { MICROS_PER_UNIT, inTimeRange, type Precision } from '../time.js';

import type { ParseResult } from '../batch.js';
export type { ParseResult };

const LF = '\n';
const LF_CODE = 0x0a;
const TAB = 0x09;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const HASH = 0x23;
const PLUS = 0x2b;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const EQUALS = 0x3d;
const UPPER_E = 0x45;
const BACKSLASH = 0x5c;
const LOWER_E = 0x65;
const LOWER_I = 0x69;
const LOWER_U = 0x75;

// Escape sets: the characters a backslash escapes in each kind of token. In keys and
// tag values they are also exactly the unescaped delimiters.
const IN_MEASUREMENT = 0; // \, and "\ "
const IN_KEY = 1; // tag keys, tag values, field keys: \, \= and "\ "
const IN_STRING = 2; // string field values: \" and \\

function isEscapable(set: number, c: number): boolean {
  if (set === IN_STRING) return c === QUOTE || c === BACKSLASH;
  return c === COMMA || c === SPACE || (set === IN_KEY && c === EQUALS);
}

/**
 * `text[start, end)` without the backslashes of `set`'s escape sequences. A backslash
 * before any other character is kept, as InfluxDB does, and does not escape the
 * character after it, so `a\\,b` in a measurement is `a\,b`.
 */
function unescape(text: string, start: number, end: number, set: number): string {
  let out = '';
  let from = start;
  for (let i = start; i < end - 1; i++) {
    if (text.charCodeAt(i) === BACKSLASH && isEscapable(set, text.charCodeAt(i + 1))) {
      out += text.slice(from, i);
      from = ++i;
    }
  }
  return out + text.slice(from, end);
}

/** A name or token for an error message: JSON-quoted, cut short so that a huge garbage line cannot make a huge message. */
function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);
}

// Integers of up to 15 digits are below 2^53, so accumulating them in a double is exact.
const SAFE_DIGITS = 15;

// 1e0 … 1e22: the powers of ten that are exact doubles (5^22 < 2^53), each product exact.
const POW10: readonly number[] = Array.from({ length: 23 }, (_, k) => {
  let p = 1;
  for (let e = 0; e < k; e++) p *= 10;
  return p;
});

/**
 * A measurement's builder plus the key lists of the last line whose keys were
 * validated. Consecutive lines of one measurement nearly always repeat their keys
 * in the same order; a key equal to the remembered one at the same position is
 * reused as is: no slice, no re-hash in the builder's maps (V8 caches a string's
 * hash), no `nameError`. A line whose keys all match a prefix of a remembered list
 * cannot hold duplicates, because remembered lists never do. Remembered strings
 * are flat copies, so they do not keep a chunk of the request body alive.
 *
 * `clearTags`/`clearFields` are the key counts of the last line whose field keys
 * needed no `_value` rename; a line with the remembered keys and those counts needs
 * none either, so `RowStage.resolveFieldNames` is skipped. Replacing a remembered
 * list resets them to -1.
 */
class Measurement {
  readonly builder: BatchBuilder;
  readonly tagKeys: string[] = [];
  tagKeyCount = 0;
  readonly fieldKeys: string[] = [];
  fieldKeyCount = 0;
  clearTags = -1;
  clearFields = -1;
  /**
   * Whether the parser's map holds it: only once a line of it is accepted, so that bad
   * lines each naming a new measurement leave nothing behind.
   */
  listed = false;

  constructor(name: string) {
    this.builder = new BatchBuilder(flatString(name));
  }
}

/**
 * Incremental line-protocol parser: `feed` it whole lines in as many pieces as
 * wanted, then call `finish` once. Same-measurement lines from different pieces
 * land in the same batches. `parseLineProtocol` is the one-piece form; `stream.ts`
 * uses this class to parse a large body in chunks.
 */
export class LineProtocolParser {
  private readonly nowUs: number;
  private readonly precision: Precision;
  /** µs per timestamp unit, or 0 for `ns`, which divides instead. */
  private readonly multiplier: number;
  /** The measurements with an accepted line, in the order of their first. */
  private readonly measurements = new Map<string, Measurement>();
  private readonly errors = new LineErrors();
  private accepted = 0;

  private text = '';
  /**
   * The start of a line whose quoted string a piece ended in (`feed`), in the pieces'
   * order, and its physical line number; empty when no line is pending.
   */
  private pending: string[] = [];
  private pendingLine = 0;
  // Where `lineEnd` stands in the current line: past its first unescaped space (the
  // field set), inside a quoted string, the '=' and ',' met outside strings since then,
  // and the '\n's met inside strings. Kept across pieces for a pending line.
  private inFields = false;
  private quoted = false;
  private equalsSeen = 0;
  private commasSeen = 0;
  private newlinesInside = 0;
  private lastName = '';
  private last: Measurement | undefined;
  /** Why the scanner that just returned -1 (or NaN) rejected the line. */
  private error = '';
  /** Whether the token `scanKey` just returned holds an escape sequence. */
  private escaped = false;
  /** Whether the key `keyAt` just returned equals the remembered key at its position. */
  private hit = false;

  /** The line being parsed; reused from line to line. */
  private readonly stage = new RowStage();

  /**
   * @param precision unit of the timestamps in the text (the request's `precision`).
   * @param nowUs server time in integral µs since the epoch, for lines without a timestamp;
   *   truncated to `precision` (ms, s, m, h), as InfluxDB does (`SetPrecision` in its
   *   `models/points.go`), so such points of one request line up on the unit.
   */
  constructor(precision: Precision, nowUs: number) {
    this.precision = precision;
    this.multiplier = precision === 'ns' ? 0 : MICROS_PER_UNIT[precision];
    this.nowUs = this.multiplier > 1 ? Math.floor(nowUs / this.multiplier) * this.multiplier : nowUs;
  }

  /**
   * Parses `text`, which must hold whole lines (a final line without '\n' is
   * complete too). `firstLine` is the 1-based physical line number of its first
   * line; returns the number of the line after the text's last '\n', i.e. the
   * `firstLine` of the next piece. A piece may end inside a quoted string (a '\n' in a
   * string field value, see the module comment): that line is kept and continued by the
   * next piece, or rejected as unterminated by `finish`.
   */
  feed(text: string, firstLine: number): number {
    if (this.pending.length === 0) return this.lines(text, firstLine, false);
    const end = this.lineEnd(text, 0);
    if (end === -1) {
      this.pending.push(text);
      return this.pendingLine + this.newlinesInside;
    }
    // The pending line ends in this piece: parse it whole, then the rest of the piece.
    const whole = this.pending.join('') + text.slice(0, end + 1);
    this.pending = [];
    return this.lines(text.slice(end + 1), this.lines(whole, this.pendingLine, true), false);
  }

  /**
   * Parses the lines of `text` from physical line `line` on; returns the number of the
   * line after its last '\n'. Unless `last`, a line whose quoted string is still open
   * where `text` ends is kept in `pending` instead of being parsed.
   */
  private lines(text: string, line: number, last: boolean): number {
    this.text = text;
    const length = text.length;
    let pos = 0;
    // The next '"' at or after `pos` (length: none): lines without one end at their '\n'.
    let nextQuote = -1;
    // Characters of lines read across '\n's that proved not to be one point. Past the
    // text's length, lines are read one physical line each: a run of unterminated quotes
    // could otherwise have each line scanned to the end of the text.
    let wasted = 0;
    while (pos < length) {
      const physicalNewline = text.indexOf(LF, pos);
      let newline = physicalNewline;
      let physicalEnd = newline === -1 ? length : newline;
      if (physicalEnd > pos && text.charCodeAt(physicalEnd - 1) === CR) physicalEnd--;
      let start = pos;
      let c = 0;
      while (start < physicalEnd && ((c = text.charCodeAt(start)) === SPACE || c === TAB)) start++;
      let inside = 0;
      if (start < physicalEnd && c !== HASH) {
        let end = physicalEnd;
        if (nextQuote < start) {
          nextQuote = text.indexOf('"', start);
          if (nextQuote === -1) nextQuote = length;
        }
        if (nextQuote < physicalEnd && wasted <= length) {
          this.inFields = false;
          this.quoted = false;
          this.equalsSeen = 0;
          this.commasSeen = 0;
          this.newlinesInside = 0;
          newline = this.lineEnd(text, start);
          if (newline === -1 && !last) {
            this.pending = [text.slice(pos)];
            this.pendingLine = line;
            this.text = '';
            return line + this.newlinesInside;
          }
          inside = this.newlinesInside;
          if (inside > 0) {
            end = newline === -1 ? length : newline;
            if (end > start && text.charCodeAt(end - 1) === CR) end--;
          }
        }
        let fault = this.parseLine(start, end, line);
        if (fault !== undefined && inside > 0) {
          // Not one point across its '\n's (an unterminated quote, most likely): its
          // physical lines stand alone, as they did before strings could span lines.
          wasted += end - start;
          inside = 0;
          newline = physicalNewline;
          fault = this.parseLine(start, physicalEnd, line);
        }
        if (fault !== undefined) this.errors.add(line, fault);
      }
      line += inside;
      if (newline === -1) break;
      pos = newline + 1;
      line++;
    }
    this.text = '';
    return line;
  }

  /**
   * The index of the '\n' that ends the current line in `text`, scanning from `from` in
   * the state the fields above hold, or -1 when `text` ends first (the state is then
   * where it stopped). As InfluxDB's `scanLine`: a '"' opens or closes a string only in a
   * field value (past the first unescaped space, more '=' than ',' met outside strings),
   * and a backslash escapes the character after it (but never a '\n' outside a string).
   */
  private lineEnd(text: string, from: number): number {
    const length = text.length;
    for (let i = from; i < length; i++) {
      const c = text.charCodeAt(i);
      if (c === LF_CODE) {
        if (!this.quoted) return i;
        this.newlinesInside++;
      } else if (c === BACKSLASH) {
        if (i + 1 < length) {
          if (text.charCodeAt(i + 1) !== LF_CODE) i++;
          else if (this.quoted) {
            this.newlinesInside++;
            i++;
          }
        }
      } else if (!this.inFields) {
        if (c === SPACE) this.inFields = true;
      } else if (!this.quoted && c === EQUALS) {
        this.equalsSeen++;
      } else if (!this.quoted && c === COMMA) {
        this.commasSeen++;
      } else if (c === QUOTE && this.equalsSeen > this.commasSeen) {
        this.quoted = !this.quoted;
      }
    }
    return -1;
  }

  /**
   * Records line `line` as rejected for `message` without parsing it: a line the caller
   * could not turn into text. A pending line (one whose quoted string was still open) is
   * rejected with it, at its own first line.
   */
  rejectLine(line: number, message: string): void {
    if (this.pending.length > 0) {
      this.pending = [];
      this.errors.add(this.pendingLine, message);
      return;
    }
    this.errors.add(line, message);
  }

  /** The batches (measurements with no accepted line are left out), errors and count; call once, after the last `feed`. */
  finish(): ParseResult {
    if (this.pending.length > 0) {
      const whole = this.pending.join('');
      this.pending = [];
      this.lines(whole, this.pendingLine, true);
    }
    const batches: ColumnarBatch[] = [];
    for (const m of this.measurements.values()) for (const batch of m.builder.build()) batches.push(batch);
    return { batches, errors: this.errors, accepted: this.accepted };
  }

  /** Parses one line `text[start, end)` (no leading blank, not a comment); returns why it was rejected, or undefined. */
  private parseLine(start: number, end: number, line: number): string | undefined {
    const text = this.text;
    if (text.charCodeAt(start) === COMMA) return 'missing measurement';
    let i = start;
    let escaped = false;
    let c = 0;
    for (; i < end; i++) {
      c = text.charCodeAt(i);
      if (c > COMMA && c !== BACKSLASH) continue;
      if (c === COMMA || c === SPACE) break;
      if (c === BACKSLASH && i + 1 < end && isEscapable(IN_MEASUREMENT, text.charCodeAt(i + 1))) {
        escaped = true;
        i++;
      }
    }
    if (i === end) return 'missing fields';
    const m = this.measurementAt(start, i, escaped);
    if (m === undefined) return this.error;

    this.stage.clear();
    if (c === COMMA) {
      i = this.scanTags(m, i + 1, end);
      if (i < 0) return this.error;
    }
    // InfluxDB tolerates runs of spaces between the sections.
    while (i < end && text.charCodeAt(i) === SPACE) i++;
    if (i === end) return 'missing fields';
    i = this.scanFields(m, i, end);
    if (i < 0) return this.error;
    while (i < end && text.charCodeAt(i) === SPACE) i++;
    let timeUs = this.nowUs;
    if (i < end) {
      timeUs = this.parseTime(i, end);
      if (Number.isNaN(timeUs)) return this.error;
    }
    return this.emit(m, timeUs, line);
  }

  private fail(message: string): -1 {
    this.error = message;
    return -1;
  }

  private badTime(message: string): number {
    this.error = message;
    return NaN;
  }

  private measurementAt(start: number, stop: number, escaped: boolean): Measurement | undefined {
    const text = this.text;
    const last = this.lastName;
    if (!escaped && last.length === stop - start && text.startsWith(last, start)) return this.last;
    const name = escaped ? unescape(text, start, stop, IN_MEASUREMENT) : text.slice(start, stop);
    let m = this.measurements.get(name);
    if (m === undefined) {
      const fault = nameError('measurement', name);
      if (fault !== undefined) {
        this.error = fault;
        return undefined;
      }
      m = new Measurement(name);
    }
    this.lastName = m.builder.measurement;
    this.last = m;
    return m;
  }

  /** Returns where the tag key, tag value or field key starting at `i` stops: an unescaped ',', '=', ' ' or `end`. */
  private scanKey(i: number, end: number): number {
    const text = this.text;
    let escaped = false;
    for (; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c > EQUALS && c !== BACKSLASH) continue;
      if (c === COMMA || c === EQUALS || c === SPACE) break;
      if (c === BACKSLASH && i + 1 < end && isEscapable(IN_KEY, text.charCodeAt(i + 1))) {
        escaped = true;
        i++;
      }
    }
    this.escaped = escaped;
    return i;
  }

  /** The key `text[start, stop)` just scanned, as the remembered string `known[n]` when it is the same. */
  private keyAt(start: number, stop: number, known: string[], knownCount: number, n: number): string {
    const text = this.text;
    if (n < knownCount) {
      const k = known[n];
      if (!this.escaped && k.length === stop - start && text.startsWith(k, start)) {
        this.hit = true;
        return k;
      }
      const key = this.escaped ? unescape(text, start, stop, IN_KEY) : text.slice(start, stop);
      this.hit = key === k;
      return this.hit ? k : key;
    }
    this.hit = false;
    return this.escaped ? unescape(text, start, stop, IN_KEY) : text.slice(start, stop);
  }

  /** Scans `key=value[,key=value...]` from `i` into the tag scratch; returns the position of the space that ends it, or -1. */
  private scanTags(m: Measurement, i: number, end: number): number {
    const text = this.text;
    const known = m.tagKeys;
    const knownCount = m.tagKeyCount;
    const stage = this.stage;
    let allKnown = true;
    for (;;) {
      const j = this.scanKey(i, end);
      if (j === i) return this.fail('missing tag key');
      const key = this.keyAt(i, j, known, knownCount, stage.tagCount);
      allKnown &&= this.hit;
      if (j === end || text.charCodeAt(j) !== EQUALS) return this.fail(`missing tag value for key ${quote(key)}`);
      i = j + 1;
      const k = this.scanKey(i, end);
      if (k < end && text.charCodeAt(k) === EQUALS) {
        return this.fail(`invalid tag value for key ${quote(key)}: unescaped "=" (write it as \\=)`);
      }
      if (k === i) return this.fail(`missing tag value for key ${quote(key)}`);
      stage.addTag(key, this.escaped ? unescape(text, i, k, IN_KEY) : text.slice(i, k));
      if (k === end) return this.fail('missing fields');
      if (text.charCodeAt(k) === SPACE) {
        i = k;
        break;
      }
      i = k + 1;
    }
    if (!allKnown) {
      const keys = stage.tagKeys;
      const n = stage.tagCount;
      for (let a = 0; a < n; a++) {
        const fault = nameError('tag key', keys[a]);
        if (fault !== undefined) return this.fail(fault);
        for (let b = 0; b < a; b++) if (keys[b] === keys[a]) return this.fail(`duplicate tag key ${quote(keys[a])}`);
      }
      for (let a = 0; a < n; a++) known[a] = flatString(keys[a]);
      m.tagKeyCount = n;
      m.clearTags = -1;
    }
    return i;
  }

  /** Scans the field set from `i` into the field scratch; returns the position just after it (a space or `end`), or -1. */
  private scanFields(m: Measurement, i: number, end: number): number {
    const text = this.text;
    const known = m.fieldKeys;
    const knownCount = m.fieldKeyCount;
    const stage = this.stage;
    let allKnown = true;
    for (;;) {
      const j = this.scanKey(i, end);
      if (j === i) return this.fail('missing field key');
      const key = this.keyAt(i, j, known, knownCount, stage.fieldCount);
      allKnown &&= this.hit;
      if (j === end || text.charCodeAt(j) !== EQUALS) return this.fail(`missing field value for ${quote(key)}`);
      const k = this.parseFieldValue(key, j + 1, end);
      if (k < 0) return -1;
      if (k === end) {
        i = k;
        break;
      }
      const c = text.charCodeAt(k);
      if (c === SPACE) {
        i = k;
        break;
      }
      // Numbers and booleans stop only at ',' or ' '; a closing quote can be followed by anything.
      if (c !== COMMA) return this.fail(`invalid field value for ${quote(key)}: unexpected text after the closing quote`);
      i = k + 1;
    }
    if (!allKnown) {
      const keys = stage.fieldKeys;
      for (let a = 0; a < stage.fieldCount; a++) {
        const fault = nameError('field key', keys[a]);
        if (fault !== undefined) return this.fail(fault);
      }
      stage.foldDuplicateFields();
      const n = stage.fieldCount;
      for (let a = 0; a < n; a++) known[a] = flatString(keys[a]);
      m.fieldKeyCount = n;
      m.clearFields = -1;
    }
    return i;
  }

  /** Parses the value of field `key` starting at `i` into the stage; returns the position after it, or -1. */
  private parseFieldValue(key: string, i: number, end: number): number {
    const text = this.text;
    if (i === end) return this.fail(`missing field value for ${quote(key)}`);
    let c = text.charCodeAt(i);
    if (c === QUOTE) return this.parseString(key, i, end);
    if ((c >= ZERO && c <= NINE) || c === MINUS || c === DOT) return this.parseNumber(key, i, end);
    if (c === COMMA || c === SPACE) return this.fail(`missing field value for ${quote(key)}`);
    let j = i + 1;
    while (j < end && (c = text.charCodeAt(j)) !== COMMA && c !== SPACE) j++;
    let value: boolean;
    switch (text.slice(i, j)) {
      case 't': case 'T': case 'true': case 'True': case 'TRUE':
        value = true;
        break;
      case 'f': case 'F': case 'false': case 'False': case 'FALSE':
        value = false;
        break;
      default:
        return this.invalidValue(key, i, end);
    }
    this.stage.addBool(key, value);
    return j;
  }

  /** Float `-?digits[.digits][(e|E)[+-]digits]` (at least one digit), integer `-?digits` + `i`, unsigned `digits` + `u`. */
  private parseNumber(key: string, i: number, end: number): number {
    const text = this.text;
    let j = i;
    const negative = text.charCodeAt(j) === MINUS;
    if (negative) j++;
    const digitsStart = j;
    let mantissa = 0;
    for (; j < end; j++) {
      const d = text.charCodeAt(j) - ZERO;
      if (d < 0 || d > 9) break;
      mantissa = mantissa * 10 + d;
    }
    const intDigits = j - digitsStart;
    let c = j < end ? text.charCodeAt(j) : SPACE;
    if (c === LOWER_I || c === LOWER_U) {
      const unsigned = c === LOWER_U;
      const next = j + 1;
      if (intDigits === 0 || (unsigned && negative)) return this.invalidValue(key, i, end);
      if (next < end && (c = text.charCodeAt(next)) !== COMMA && c !== SPACE) return this.invalidValue(key, i, end);
      if (intDigits <= SAFE_DIGITS) {
        this.stage.addInt(key, negative ? -mantissa : mantissa);
        return next;
      }
      const big = BigInt(text.slice(i, j));
      if (big > INT64_MAX || big < INT64_MIN) {
        const token = quote(text.slice(i, next));
        return this.fail(unsigned
          ? `unsigned value ${token} of field ${quote(key)} exceeds int64 (max 9223372036854775807), the largest integer Strata stores`
          : `integer value ${token} of field ${quote(key)} is out of int64 range`);
      }
      this.stage.addBigInt(key, big);
      return next;
    }
    let fracDigits = 0;
    if (c === DOT) {
      const fracStart = ++j;
      for (; j < end; j++) {
        const d = text.charCodeAt(j) - ZERO;
        if (d < 0 || d > 9) break;
        mantissa = mantissa * 10 + d;
      }
      fracDigits = j - fracStart;
    }
    if (intDigits + fracDigits === 0) return this.invalidValue(key, i, end);
    let exponent = false;
    if (j < end && ((c = text.charCodeAt(j)) === LOWER_E || c === UPPER_E)) {
      exponent = true;
      j++;
      if (j < end && ((c = text.charCodeAt(j)) === PLUS || c === MINUS)) j++;
      const expStart = j;
      while (j < end && (c = text.charCodeAt(j)) >= ZERO && c <= NINE) j++;
      if (j === expStart) return this.invalidValue(key, i, end);
    }
    if (j < end && (c = text.charCodeAt(j)) !== COMMA && c !== SPACE) return this.invalidValue(key, i, end);
    let value: number;
    if (!exponent && mantissa <= Number.MAX_SAFE_INTEGER && fracDigits < POW10.length) {
      // Every digit was accumulated exactly (a rounded mantissa would exceed 2^53 - 1) and
      // the power of ten is exact, so the one rounding of the division is the correctly
      // rounded decimal: the same double as Number(), without slicing a string per value.
      value = mantissa / POW10[fracDigits];
      if (negative) value = -value;
    } else {
      value = Number(text.slice(i, j));
    }
    if (!Number.isFinite(value)) return this.fail(`float value ${quote(text.slice(i, j))} of field ${quote(key)} is out of float64 range`);
    this.stage.addFloat(key, value);
    return j;
  }

  /** A `"..."` string value; only `\"` and `\\` are escapes, any other backslash is kept. */
  private parseString(key: string, i: number, end: number): number {
    const text = this.text;
    let j = i + 1;
    let escaped = false;
    for (;;) {
      if (j >= end) return this.fail(`unterminated string in field ${quote(key)}`);
      const c = text.charCodeAt(j);
      if (c === QUOTE) break;
      if (c === BACKSLASH && j + 1 < end && isEscapable(IN_STRING, text.charCodeAt(j + 1))) {
        escaped = true;
        j += 2;
      } else {
        j++;
      }
    }
    this.stage.addString(key, escaped ? unescape(text, i + 1, j, IN_STRING) : text.slice(i + 1, j));
    return j + 1;
  }

  private invalidValue(key: string, i: number, end: number): -1 {
    const text = this.text;
    let j = i;
    let c = 0;
    while (j < end && (c = text.charCodeAt(j)) !== COMMA && c !== SPACE) j++;
    return this.fail(
      `invalid field value for ${quote(key)} (${quote(text.slice(i, j))}): ` +
      'expected a number, an integer (123i), unsigned (123u), boolean or "string"',
    );
  }

  /**
   * The timestamp token at `i` in integral µs, or NaN. The digits are split rather
   * than read as one double, which cannot hold 19-digit nanoseconds exactly: for
   * `ns` the last three digits only decide the floor (so -1500 ns is -2 µs).
   */
  private parseTime(i: number, end: number): number {
    const text = this.text;
    let stop = i;
    while (stop < end && text.charCodeAt(stop) !== SPACE) stop++;
    let j = i;
    const negative = text.charCodeAt(j) === MINUS;
    if (negative) j++;
    if (j === stop) return this.badTime(`timestamp ${quote(text.slice(i, stop))} is not an integer`);
    const multiplier = this.multiplier;
    const split = multiplier === 0 ? Math.max(j, stop - 3) : stop;
    // `high` may round once it passes 2^53, but rounding is monotonic, so the range check below stays right.
    let high = 0;
    let low = 0;
    for (; j < stop; j++) {
      const d = text.charCodeAt(j) - ZERO;
      if (d < 0 || d > 9) return this.badTime(`timestamp ${quote(text.slice(i, stop))} is not an integer`);
      if (j < split) high = high * 10 + d;
      else low = low * 10 + d;
    }
    let us: number;
    if (multiplier === 0) us = negative ? 0 - high - (low > 0 ? 1 : 0) : high;
    else us = negative ? 0 - high * multiplier : high * multiplier;
    if (!inTimeRange(us)) {
      return this.badTime(`timestamp ${quote(text.slice(i, stop))} (precision ${this.precision}) is out of range: ` +
        'must be within ±2^53 µs of 1970 (1684-07-28 to 2255-06-05)');
    }
    while (stop < end && text.charCodeAt(stop) === SPACE) stop++;
    if (stop < end) return this.badTime(`unexpected text after timestamp: ${quote(text.slice(stop, end))}`);
    return us;
  }

  /** Copies the scanned line into its builder; returns why it was rejected after all (a `_value` rename that clashes), or undefined. */
  private emit(m: Measurement, timeUs: number, line: number): string | undefined {
    const stage = this.stage;
    if (stage.tagCount !== m.clearTags || stage.fieldCount !== m.clearFields) {
      const fault = stage.resolveFieldNames();
      if (fault !== undefined) return fault;
      if (stage.renamed === 0) {
        m.clearTags = stage.tagCount;
        m.clearFields = stage.fieldCount;
      }
    }
    stage.emit(m.builder, timeUs, line);
    if (!m.listed) {
      this.measurements.set(m.builder.measurement, m);
      m.listed = true;
    }
    this.accepted++;
    return undefined;
  }
}

/**
 * Parses an InfluxDB line-protocol text into one `ColumnarBatch` per measurement.
 *
 * `text` holds whole lines separated by '\n' (a trailing '\r' is dropped; blank lines
 * and `#` comments are skipped but counted; a '\n' inside a quoted string field value
 * is part of the value, and its line keeps the number of its first physical line). Timestamps are integers in `precision`
 * and become integral µs exactly (`ns` floors, so -1500 ns is -2 µs); lines without
 * one get `nowUs` (µs). `firstLine` is the physical line number of the text's first
 * line (default 1), used in `errors` and in the batches' `sourceLine`.
 *
 * Never throws for bad input: each malformed line (syntax, bad value, int64 or
 * timestamp range, `nameError`) is listed in `errors` with a message that names the
 * fault and the key, and the valid lines are kept (InfluxDB's partial write). A
 * field whose key is also a tag key of the line is stored as `<key>_value`; a line
 * where that name is taken by another of its fields or tags is rejected.
 */
export function parseLineProtocol(text: string, precision: Precision, nowUs: number, firstLine = 1): ParseResult {
  const parser = new LineProtocolParser(precision, nowUs);
  parser.feed(text, firstLine);
  return parser.finish();
}
