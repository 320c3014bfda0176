/**
 * A decoded write request as the parsers need it: the one description shared by the
 * live write path (`http/routes/write.ts`) and write-ahead-log replay (`wal/replay.ts`),
 * so that replaying a logged request reproduces exactly the records it produced live.
 */
import type { ParseResult } from './batch.js';
import { parseLineProtocolBody } from './lineprotocol/stream.js';
import { LIVE_RULES, type MsgpackRules } from './msgpack/parser.js';
import { parseMsgpackBody } from './msgpack/stream.js';
import type { Precision } from './time.js';

/**
 * Wire formats of a write body. Live writes are `line-protocol` and `msgpack`; the others
 * are MessagePack logged by earlier versions, replayed under their rules so as to keep the
 * outcome the server answered: `msgpack-finite` refused NaN and ±Infinity floats and
 * took every string column of a columnar item without a tag list for a tag,
 * `msgpack-int64` too, and was logged before integers could be stored as floats
 * (`msgpack/numbers.ts`).
 */
export type BodyFormat = 'line-protocol' | 'msgpack' | 'msgpack-finite' | 'msgpack-int64';

const MSGPACK_RULES: Record<Exclude<BodyFormat, 'line-protocol'>, MsgpackRules> = {
  msgpack: LIVE_RULES,
  'msgpack-finite': { wholeFloats: true, nonFinite: false, guessedTags: false },
  'msgpack-int64': { wholeFloats: false, nonFinite: false, guessedTags: false },
};

/** Everything that determines the records of one write request. */
export interface DecodedWrite {
  readonly database: string;
  readonly format: BodyFormat;
  /** Timestamp precision of line protocol (ignored for MessagePack, which guesses per value). */
  readonly precision: Precision;
  /** Server time in integral µs since the epoch given to records without a timestamp. */
  readonly nowUs: number;
  /** The decompressed request body. */
  readonly body: Buffer;
  /**
   * Logged by a version that let a tag and a string field of one key share a column
   * (write-ahead-log formats 1 to 3): replayed so, its records are kept as they were
   * answered (`SchemaRegistry.check`). Never set on live writes.
   */
  readonly sharedRoles?: true;
}

/**
 * Parses `w.body` with the parser of `w.format`. Deterministic: the same `DecodedWrite`
 * always yields the same batches (in the same order) and the same rejected lines.
 * @throws BadRequestError when a MessagePack body is not MessagePack at all (line
 *   protocol never throws: bad lines are listed in `errors`).
 */
export function parseDecodedWrite(w: DecodedWrite): Promise<ParseResult> {
  if (w.format === 'line-protocol') return parseLineProtocolBody(w.body, w.precision, w.nowUs);
  return parseMsgpackBody(w.body, w.nowUs, MSGPACK_RULES[w.format]);
}
