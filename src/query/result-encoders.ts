/**
 * Encodes JSON and CSV result chunks on worker threads beside the event loop.
 *
 * Printing doubles is most of a large text result's cost (V8's shortest round-trip
 * digits, ~180 ns per 15–17-digit value; bench/README.md), and on the event loop it is
 * one core's work however many the machine has. Chunks handed to workers are encoded
 * while the event loop encodes the next ones itself, reads DuckDB's chunks and writes the
 * response; the caller keeps the order (`encode` returns a `WorkerRows` for a worker's chunk).
 *
 * A worker holds the chunks of one query at a time: another query's chunk never waits
 * behind them (a chunk may hold up to 128 MiB of text, `chunk-budget.ts`) but is encoded on
 * another worker or the event loop.
 *
 * A chunk whose encoding throws fails its own query, with ResultTooLargeError (a value too
 * long to escape into one string) or QueryExecutionError; the worker goes on. A worker that dies (out of
 * memory) fails the chunks it had not finished and is not replaced: later chunks go to
 * the other workers or the event loop.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { QueryExecutionError, ResultTooLargeError, type StrataError } from '../errors.js';
import type { Column } from './chunk-columns.js';
import type { EncodeReply, EncodeRequest } from './result-encode-worker.js';
import { rowsBytes, type TextFormat } from './json-result.js';

/** Chunks a worker holds at most: one it encodes and one waiting, so it never idles waiting for a message. */
const PER_WORKER = 2;
/** Chunks of fewer rows are encoded on the event loop: a round trip to a worker costs more than encoding them. */
const MIN_WORKER_ROWS = 512;

/**
 * A chunk given to a worker: `bytes` once its reply has been read (as `encode` reads the
 * replies waiting, this may be before the event loop's next turn), or `error`; and `done`,
 * which resolves with the bytes or rejects with the error.
 */
export interface WorkerRows {
  bytes?: Buffer;
  error?: StrataError;
  readonly done: Promise<Buffer>;
}

interface Pending {
  rows: WorkerRows;
  resolve: (bytes: Buffer) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  worker: Worker;
  /** Where the worker's replies arrive. */
  replies: MessagePort;
  pending: Map<number, Pending>;
  /** Why the thread died ('error'), for the chunks its exit fails; no chunk goes to it once set. */
  failure?: Error;
  /** Whose chunks `pending` holds (see `encode`); undefined when it holds none. */
  owner?: object;
}

/**
 * The result encoder threads of the query endpoints. Created once by the composition root
 * (src/app.ts) with `query.encode_workers` threads (0: everything on the event loop);
 * `close` at shutdown.
 */
export class ResultEncoders {
  private readonly slots: Slot[] = [];
  private nextId = 0;

  /** Starts `workers` threads (their start-up runs in the background). */
  constructor(workers: number) {
    for (let i = 0; i < workers; i++) this.slots.push(this.spawn());
  }

  /** Worker threads alive. */
  get workers(): number {
    return this.slots.length;
  }

  /**
   * `rowsBytes(columns, rowCount, format, continued)`: on a worker when one has room and
   * the chunk is worth the trip (then as `WorkerRows`); otherwise at once, on the event loop.
   * `owner` is the query the chunk belongs to (any object that is the same for all its
   * chunks): a worker holding another query's chunks has no room for it.
   * `columns` are copied to the worker, never taken from the caller. A worker's chunk fails
   * (`WorkerRows.error`; `done` rejects) with ResultTooLargeError for a value too long to
   * escape, QueryExecutionError when its encoding throws otherwise or the worker dies; on the
   * event loop, the same ResultTooLargeError is thrown.
   */
  encode(columns: Column[], rowCount: number, format: TextFormat, continued: boolean, owner: object): Buffer | WorkerRows {
    if (rowCount >= MIN_WORKER_ROWS) {
      // Replies waiting for the event loop's next turn: a caller reading chunks DuckDB already
      // produced gives it none, and would count a worker busy that has finished.
      for (const s of this.slots) this.readReplies(s);
      let slot: Slot | undefined;
      for (const s of this.slots) {
        const room = s.failure === undefined && s.pending.size < PER_WORKER && (s.owner === undefined || s.owner === owner);
        if (room && (slot === undefined || s.pending.size < slot.pending.size)) slot = s;
      }
      if (slot !== undefined) {
        try {
          const rows = this.send(slot, { id: this.nextId++, columns, rowCount, format, continued });
          slot.owner = owner;
          return rows;
        } catch {
          // Not cloned (out of memory for the copy): the event loop encodes it below.
        }
      }
    }
    return rowsBytes(columns, rowCount, format, continued);
  }

  /** Stops the threads; chunks they still held fail. */
  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  /** Sends `request` to `slot`'s worker; @throws what `postMessage` throws (nothing is then pending). */
  private send(slot: Slot, request: EncodeRequest): WorkerRows {
    slot.worker.postMessage(request);
    let resolve!: (bytes: Buffer) => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<Buffer>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A caller that stopped reading (its query failed meanwhile) never awaits it: no unhandled rejection.
    done.catch(() => undefined);
    const rows: WorkerRows = { done };
    slot.pending.set(request.id, { rows, resolve, reject });
    // Referenced only while it holds work: an idle pool keeps no process alive.
    slot.worker.ref();
    return rows;
  }

  /** Settles the chunks whose replies wait on `slot`'s port. */
  private readReplies(slot: Slot): void {
    for (let m = receiveMessageOnPort(slot.replies); m !== undefined; m = receiveMessageOnPort(slot.replies)) this.settle(slot, m.message as EncodeReply);
  }

  private settle(slot: Slot, reply: EncodeReply): void {
    const pending = slot.pending.get(reply.id)!;
    slot.pending.delete(reply.id);
    if (slot.pending.size === 0) {
      slot.worker.unref();
      slot.owner = undefined;
    }
    if ('error' in reply) {
      pending.rows.error = reply.tooLarge ? new ResultTooLargeError(reply.error) : new QueryExecutionError(`encoding the result failed: ${reply.error}`);
      pending.reject(pending.rows.error);
      return;
    }
    pending.rows.bytes = Buffer.from(reply.bytes);
    pending.resolve(pending.rows.bytes);
  }

  private spawn(): Slot {
    const { port1: replies, port2 } = new MessageChannel();
    // Not the server's Node flags (a worker's default): a CLI-only one (`--input-type`) fails its start.
    const worker = new Worker(new URL('./result-encode-worker.js', import.meta.url), { workerData: port2, transferList: [port2], execArgv: [] });
    const slot: Slot = { worker, replies, pending: new Map() };
    replies.on('message', (reply: EncodeReply) => this.settle(slot, reply));
    // A reply that cannot be read names no chunk: end the thread, whose exit fails those it held.
    replies.on('messageerror', () => void worker.terminate());
    // The worker holds the process while it has work (`send`), the port never (a 'message'
    // listener refs it: unref after).
    worker.unref();
    replies.unref();
    worker.on('error', (err) => (slot.failure = err));
    worker.on('exit', () => {
      const at = this.slots.indexOf(slot);
      if (at !== -1) this.slots.splice(at, 1);
      // Chunks it finished before it died keep their bytes.
      this.readReplies(slot);
      const err = new QueryExecutionError(`encoding the result failed${slot.failure === undefined ? '' : `: ${slot.failure.message}`}`);
      for (const { rows, reject } of slot.pending.values()) {
        rows.error = err;
        reject(err);
      }
      slot.pending.clear();
      replies.close();
    });
    return slot;
  }
}
