/**
 * Entry point of a JSON encoder worker thread (`JsonEncoders`): encodes the result chunks
 * it is sent with `jsonRowsBytes` and sends the bytes back.
 *
 * In: `EncodeRequest` (the chunk's `Column`s, structured-cloned) from the parent. Out:
 * `EncodeReply` on the MessagePort given as `workerData`, the bytes in an ArrayBuffer of
 * their own, transferred, not copied.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Column } from './chunk-columns.js';
import { jsonRowsBytes } from './json-result.js';

/** One chunk to encode, as `jsonRowsBytes` takes it; `id` pairs it with its reply. */
export interface EncodeRequest {
  id: number;
  columns: Column[];
  rowCount: number;
  continued: boolean;
}

/** The JSON of request `id`. */
export interface EncodeReply {
  id: number;
  bytes: ArrayBuffer;
}

const port = parentPort;
if (port === null) throw new Error('json-encode-worker.js runs as a worker thread only');
const replies = workerData as MessagePort;
// Whatever `jsonRowsBytes` throws ends the thread: its 'error' fails the chunks it held.
port.on('message', ({ id, columns, rowCount, continued }: EncodeRequest) => {
  const json = jsonRowsBytes(columns, rowCount, continued);
  // A slice of its own: the encoder's output may share an ArrayBuffer (Node's pool for
  // small Buffers) that transferring would take from this thread.
  const bytes = json.buffer.slice(json.byteOffset, json.byteOffset + json.length) as ArrayBuffer;
  replies.postMessage({ id, bytes } satisfies EncodeReply, [bytes]);
});
