/**
 * Entry point of a result encoder worker thread (`ResultEncoders`): encodes the result
 * chunks it is sent as JSON or CSV (`rowsBytes`) and sends the bytes back.
 *
 * In: `EncodeRequest` (the chunk's `Column`s, structured-cloned) from the parent. Out:
 * `EncodeReply` on the MessagePort given as `workerData`, the bytes in an ArrayBuffer of
 * their own, transferred, not copied.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { ResultTooLargeError } from '../errors.js';
import type { Column } from './chunk-columns.js';
import { rowsBytes, type TextFormat } from './json-result.js';

/** One chunk to encode, as `rowsBytes` takes it; `id` pairs it with its reply. */
export interface EncodeRequest {
  id: number;
  columns: Column[];
  rowCount: number;
  format: TextFormat;
  continued: boolean;
}

/** The encoded rows of request `id`, or the message of what encoding them threw (`tooLarge`: a ResultTooLargeError). */
export type EncodeReply = { id: number; bytes: ArrayBuffer } | { id: number; error: string; tooLarge: boolean };

const port = parentPort;
if (port === null) throw new Error('result-encode-worker.js runs as a worker thread only');
const replies = workerData as MessagePort;
// A request that cannot be read names no chunk: end the thread, whose exit fails those it held.
port.on('messageerror', () => process.exit(1));
port.on('message', ({ id, columns, rowCount, format, continued }: EncodeRequest) => {
  let rows: Buffer;
  try {
    rows = rowsBytes(columns, rowCount, format, continued);
  } catch (err) {
    // Only this chunk's query fails (a value too long to escape into one string); the thread
    // goes on serving every query's chunks.
    replies.postMessage({ id, error: (err as Error).message, tooLarge: err instanceof ResultTooLargeError } satisfies EncodeReply);
    return;
  }
  // A slice of its own: the encoder's output may share an ArrayBuffer (Node's pool for
  // small Buffers) that transferring would take from this thread.
  const bytes = rows.buffer.slice(rows.byteOffset, rows.byteOffset + rows.length) as ArrayBuffer;
  replies.postMessage({ id, bytes } satisfies EncodeReply, [bytes]);
});
