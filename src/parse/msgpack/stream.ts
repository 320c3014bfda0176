/**
 * Decodes a whole Arc MessagePack request body without holding the event loop for the
 * whole of it: the top-level items of a batch or array are decoded in time slices, with a
 * turn of the event loop between slices (as VictoriaMetrics' protoparser `stream` parts
 * feed a parser block by block).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { LIVE_RULES, PayloadDecoder, type MsgpackRules, type ParseResult } from './parser.js';

/** Longest run of decoding between two turns of the event loop, in milliseconds. */
const SLICE_MS = 10;

/**
 * Same result and errors as `parseMsgpack(body, nowUs, rules)`, but yields to the event loop
 * (`setImmediate`) between top-level items once a slice of ~10 ms is used up, so that a
 * huge body does not stall other requests. A single item is never split.
 *
 * Follows the MessagePack spec (https://github.com/msgpack/msgpack/blob/master/spec.md)
 * and Arc's `/api/v1/write/msgpack` payload contract (see `PayloadDecoder`).
 *
 * @param body the decompressed request body; must not change until the promise settles
 * @param nowUs server time in µs since the epoch, for records without a time
 * @param rules `LIVE_RULES`, or an earlier version's for replay (`PayloadDecoder`)
 * @throws BadRequestError (as a rejection) `Invalid MessagePack payload: …` when the bytes
 *   are not MessagePack or the top-level shape is wrong; item faults go into `errors`.
 */
export async function parseMsgpackBody(body: Uint8Array, nowUs: number, rules: MsgpackRules = LIVE_RULES): Promise<ParseResult> {
  const decoder = new PayloadDecoder(body, nowUs, rules);
  let sliceStart = performance.now();
  for (let n = decoder.start(); n > 0; n--) {
    decoder.next();
    if (performance.now() - sliceStart >= SLICE_MS) {
      await nextTurn();
      sliceStart = performance.now();
    }
  }
  return decoder.finish();
}
