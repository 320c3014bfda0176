/**
 * Feeds a whole (decompressed) line-protocol request body to the parser in chunks,
 * as VictoriaMetrics' `lib/protoparser/influx/stream` does, so that parsing a large
 * body never holds the event loop for long.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Precision } from '../time.js';
import { LineProtocolParser, type ParseResult } from './parser.js';

/** About 1 MiB: some 4–8 ms of parsing at the parser's TSBS speed, between two turns of the event loop. */
export const DEFAULT_CHUNK_BYTES = 1 << 20;

const LF = 0x0a;

/**
 * Parses `body` (UTF-8 line protocol, `precision` timestamps, `nowUs` µs for lines
 * without one) in chunks of about `chunkBytes` bytes, each cut just after a '\n'
 * (a line longer than `chunkBytes` makes its chunk longer), awaiting `setImmediate`
 * between chunks so that a 100 MB body lets other requests run.
 *
 * Returns the same `ParseResult` as `parseLineProtocol(body.toString('utf8'), ...)`:
 * line numbers are global to the body, and since one parser takes all chunks,
 * lines of one measurement end up in one batch whatever the chunking.
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
  let line = 1;
  for (let start = 0; start < body.length;) {
    let end = body.length;
    if (body.length - start > chunkBytes) {
      const newline = body.indexOf(LF, start + chunkBytes - 1);
      if (newline !== -1) end = newline + 1;
    }
    // A '\n' byte never occurs inside a UTF-8 sequence, so each chunk decodes on its own.
    line = parser.feed(body.toString('utf8', start, end), line);
    start = end;
    if (start < body.length) await yieldToEventLoop();
  }
  return parser.finish();
}
