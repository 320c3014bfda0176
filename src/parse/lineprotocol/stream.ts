/**
 * Feeds a whole (decompressed) line-protocol request body to the parser in chunks,
 * as VictoriaMetrics' `lib/protoparser/influx/stream` does, so that parsing a large
 * body never holds the event loop for long.
 */
import { constants, isUtf8 } from 'node:buffer';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Precision } from '../time.js';
import { LineProtocolParser, type ParseResult } from './parser.js';

/** About 1 MiB: some 4–8 ms of parsing at the parser's TSBS speed, between two turns of the event loop. */
export const DEFAULT_CHUNK_BYTES = 1 << 20;

/**
 * Most bytes decoded into one string (unless one line is longer). V8 puts a string past
 * ~128 KiB in its large-object space, mapped afresh for each string and unmapped when
 * collected, so every one of its pages is faulted in anew; on the VMs Strata is measured
 * on, a page fault costs ~10 µs (`bench/page-faults.ts`), which made decoding 1 MiB
 * pieces a third of the parse (bench/README.md, "Line protocol: decoding in 64 KiB
 * pieces"). Smaller strings are allocated in the young generation, whose pages stay mapped
 * (a piece of text past U+00FF is a two-byte string of twice its length, which may still go
 * to the large-object space: rare in line protocol, and no worse than before).
 */
const DECODE_BYTES = 64 << 10;

const LF = 0x0a;
const TAB = 0x09;
const SPACE = 0x20;
const HASH = 0x23;

/** Why a line that is not UTF-8 is refused. */
export const NOT_UTF8 = 'line is not valid UTF-8 text';
/** Why a line longer than V8's longest string is refused. */
export const TOO_LONG = `line longer than ${constants.MAX_STRING_LENGTH} bytes`;

/**
 * Parses `body` (UTF-8 line protocol, `precision` timestamps, `nowUs` µs for lines
 * without one) in pieces of at most `DECODE_BYTES` (64 KiB) and `chunkBytes` bytes,
 * each cut just after a '\n' (a longer line makes its piece longer), awaiting
 * `setImmediate` once about `chunkBytes` bytes were parsed since the last wait, so
 * that a 100 MB body lets other requests run.
 *
 * Returns the same `ParseResult` as `parseLineProtocol(body.toString('utf8'), ...)`:
 * line numbers are global to the body, and since one parser takes all chunks,
 * lines of one measurement end up in the same batches whatever the chunking. Except that a
 * line whose bytes are not UTF-8 (Latin-1 text, say) is refused (`NOT_UTF8`) instead
 * of being read with U+FFFD for its bad bytes, which would make different names and
 * values one (`caf\xe9` and `caf\xe8`); comments are skipped whatever their bytes. A
 * line longer than V8's longest string (`TOO_LONG`, 512 MiB) is refused too.
 *
 * @throws RangeError if `chunkBytes` is not a positive number. Malformed lines never throw; they are listed in `errors`.
 */
export async function parseLineProtocolBody(
  body: Buffer,
  precision: Precision,
  nowUs: number,
  chunkBytes = DEFAULT_CHUNK_BYTES,
): Promise<ParseResult> {
  if (!(chunkBytes >= 1)) throw new RangeError(`chunkBytes must be at least 1, got ${chunkBytes}`);
  const parser = new LineProtocolParser(precision, nowUs);
  const pieceBytes = Math.min(chunkBytes, DECODE_BYTES);
  let line = 1;
  let sinceYield = 0;
  for (let start = 0; start < body.length;) {
    let end = body.length;
    if (body.length - start > pieceBytes) {
      const newline = body.indexOf(LF, start + pieceBytes - 1);
      if (newline !== -1) end = newline + 1;
    }
    const chunk = body.subarray(start, end);
    // Decoding a chunk longer than V8's longest string throws, which failed the whole body.
    if (chunk.length > constants.MAX_STRING_LENGTH) {
      line = feedLines(parser, chunk, line);
    } else {
      // A '\n' byte never occurs inside a UTF-8 sequence, so each chunk decodes on its own.
      const text = chunk.toString('utf8');
      // Bytes that are not UTF-8 decode to U+FFFD, which may also be sent as such: only a
      // chunk holding one has its bytes checked.
      if (text.includes('\ufffd') && !isUtf8(chunk)) line = feedLines(parser, chunk, line);
      else line = parser.feed(text, line);
    }
    sinceYield += end - start;
    start = end;
    if (start < body.length && sinceYield >= chunkBytes) {
      sinceYield = 0;
      await yieldToEventLoop();
    }
  }
  return parser.finish();
}

/**
 * Feeds `chunk` (whole lines, some not UTF-8 or too long) one line at a time, refusing
 * the lines longer than V8's longest string and those that are not UTF-8 and are not
 * comments; returns the number of the line after it.
 */
function feedLines(parser: LineProtocolParser, chunk: Buffer, firstLine: number): number {
  let line = firstLine;
  for (let start = 0; start < chunk.length;) {
    const newline = chunk.indexOf(LF, start);
    const end = newline === -1 ? chunk.length : newline + 1;
    const bytes = chunk.subarray(start, end);
    const fault = bytes.length > constants.MAX_STRING_LENGTH ? TOO_LONG : isUtf8(bytes) || isComment(bytes) ? undefined : NOT_UTF8;
    if (fault === undefined) {
      line = parser.feed(bytes.toString('utf8'), line);
    } else {
      parser.rejectLine(line, fault);
      if (newline !== -1) line++;
    }
    start = end;
  }
  return line;
}

/** Whether `bytes` is a comment line: `#` after optional spaces and tabs (as the parser skips them). */
function isComment(bytes: Buffer): boolean {
  let i = 0;
  while (i < bytes.length && (bytes[i] === SPACE || bytes[i] === TAB)) i++;
  return bytes[i] === HASH;
}
