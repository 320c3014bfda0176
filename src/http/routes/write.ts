/**
 * Write endpoints, wire-compatible with Arc and InfluxDB:
 *
 * - `POST /api/v1/write/msgpack` — Arc MessagePack (columnar, row, `{"batch": …}`, array).
 * - `POST /api/v1/write/line-protocol` — Arc's line-protocol endpoint.
 * - `POST /write` — InfluxDB v1 (`db`, `precision` = n|ns|u|us|ms|s|m|h).
 * - `POST /api/v2/write` — InfluxDB v2 (`bucket`, `org` ignored, `precision` = ns|us|ms|s).
 * - `POST /api/v1/write/flush` (alias `/api/v1/write/line-protocol/flush`) — writes every
 *   buffer to Parquet and answers once the files are in storage.
 * - `GET /api/v1/write/stats` — buffer, flush and backpressure counters (`stats`), and
 *   the write-ahead log's segments, bytes, last LSN and sync mode (`wal`).
 *
 * Success is 204 with an empty body. A body with rejected lines answers 400
 * `{"error": "partial write: line N: …", "accepted": A, "rejected": R}` while its valid
 * lines are kept (InfluxDB's partial write; InfluxDB's clients do not send a 4xx body
 * again). A MessagePack body with some items accepted and some rejected answers 200
 * `{"partial": true, "message": "partial write: item N: …", "accepted": A, "rejected": R}`
 * instead, logged as a warning: Arc's clients send any body not answered 2xx again, and
 * Arc itself skips bad items of a batch. `/api/v2/write` errors also carry InfluxDB
 * v2's `code` and `message`, and a partial write whose lines all parsed but some were
 * refused (a field type conflict) is a 422, as InfluxDB v2 answers it. Bodies may be
 * gzip/deflate/br/zstd compressed.
 * Each request adds its body bytes and its accepted and rejected records to its
 * protocol's totals (`GET /metrics`).
 *
 * Durability: a write is taken in this order — backpressure check (429/503 with
 * Retry-After, nothing taken), decode and parse, load the stored schemas of its
 * measurements not seen since start-up (503 with Retry-After past
 * `buffer.schema_timeout_ms`, nothing taken; nothing either once the client is gone),
 * append to the write-ahead log and wait until it is durable (503 if the log cannot be
 * written), then buffer. So every 204 (and every record counted `accepted` in a partial
 * write) is in the log first.
 * Replay reproduces the records from the logged body with the same parser, precision
 * and server time (`parse/body.ts`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BufferManager } from '../../buffer/buffer-manager.js';
import { BadRequestError, PartialWriteError, WriteAbandonedError } from '../../errors.js';
import { parseDecodedWrite, type BodyFormat } from '../../parse/body.js';
import { nowMicros, parsePrecision } from '../../parse/time.js';
import type { WriteAheadLog } from '../../wal/wal.js';
import { acceptRawBodies, decodeBody } from '../content-type-parser.js';
import { databaseOf } from '../database.js';
import type { ErrorShapeConfig } from '../error-handler.js';
import { whenGone } from '../exchange.js';
import type { WriteCounters, WriteProtocol } from './metrics.js';

/** What the write routes need (passed by `buildServer`). */
export interface WriteRouteOptions {
  /** Admits (backpressure), takes and flushes the parsed records; serves `stats`. */
  buffers: BufferManager;
  /** Cap on the raw body, bytes. */
  maxBodyBytes: number;
  /** Cap on the decompressed body, bytes. */
  maxDecompressedBytes: number;
  /** Refuses writes while the server is not ready (start-up, shutdown). */
  assertAccepting: () => void;
  /** The write-ahead log, or undefined when it is disabled. */
  wal: WriteAheadLog | undefined;
  /** Per-protocol totals for `GET /metrics`, added to once per request. */
  counters: Readonly<Record<WriteProtocol, WriteCounters>>;
}

/** Registers the write routes on `app` (an encapsulated plugin: raw-body parsing stays local). */
export async function writeRoutes(app: FastifyInstance, o: WriteRouteOptions): Promise<void> {
  acceptRawBodies(app, o.maxBodyBytes);
  // A write that arrived while writes were taken is taken even if shutdown began while
  // its body was read (requests in flight are finished: the buffers and the log stay
  // open until every request is answered); one that arrived otherwise is checked again
  // once its body is in, as start-up may have ended meanwhile.
  const arrivedAccepting = new WeakSet<FastifyRequest>();
  app.addHook('onRequest', async (request) => {
    try {
      o.assertAccepting();
      arrivedAccepting.add(request);
    } catch {
      // Refused in the handler, with the reason it gives then.
    }
  });

  const write = (format: BodyFormat, protocol: WriteProtocol) => {
    const counters = o.counters[protocol];
    return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const raw = request.body;
      counters.requests++;
      if (Buffer.isBuffer(raw)) counters.bytes += raw.length;
      if (!arrivedAccepting.has(request)) o.assertAccepting();
      o.buffers.admit();
      const database = databaseOf(request);
      if (!Buffer.isBuffer(raw) || raw.length === 0) throw new BadRequestError('Empty request body');
      // MessagePack guesses the unit of each timestamp; `precision` is line protocol's.
      const precision = format === 'msgpack' ? 'ns' : parsePrecision((request.query as Record<string, string | undefined>).precision, protocol === 'influxdb_v2');
      const body = await decodeBody(raw, request.headers['content-encoding'], o.maxDecompressedBytes);
      const decoded = { database, format, precision, nowUs: nowMicros(), body };
      const parsed = await parseDecodedWrite(decoded);
      // InfluxDB 2.x writes nothing of a body holding a malformed line (a 400); only lines
      // refused for what they hold (a type conflict, a 422) leave the others written. A
      // client that fixes the line and sends the body again would otherwise store the rest twice.
      const unwritten = protocol === 'influxdb_v2' && parsed.errors.count > 0 ? parsed.accepted : 0;
      o.buffers.countRejected(parsed.errors.count + unwritten);
      counters.rejected += parsed.errors.count + unwritten;
      if (unwritten > 0) throw new PartialWriteError(parsed.errors, 0, 'line', 400, unwritten);
      // A body without a single valid record has nothing to make durable.
      let lsn: number | undefined;
      if (parsed.accepted > 0) {
        // Given up, nothing of the request taken, once its client disconnects: the client
        // will send the records again, so taking them too could store them twice.
        await o.buffers.loadSchemas(database, parsed.batches, (stop) => whenGone(request.raw, reply.raw, () => stop(new WriteAbandonedError())));
        if (o.wal !== undefined) lsn = await o.wal.append(decoded);
      }
      let ingested;
      try {
        ingested = await o.buffers.ingest(database, parsed.batches, { lsn });
      } finally {
        if (lsn !== undefined) o.wal!.release([lsn]);
      }
      counters.accepted += ingested.accepted;
      counters.rejected += ingested.errors.count;
      // InfluxDB v2 answers 400 for malformed line protocol and 422 for lines it could
      // parse but refused (a field type conflict, here also the column limit).
      const status = protocol === 'influxdb_v2' && parsed.errors.count === 0 ? 422 : 400;
      // A body may reject millions of lines: only their count and the first are kept.
      parsed.errors.addAll(ingested.errors);
      if (parsed.errors.count > 0) {
        const partial = new PartialWriteError(parsed.errors, ingested.accepted, format === 'msgpack' ? 'item' : 'line', status);
        // Arc's clients (Telegraf's arc output, Redpanda Connect's) send a whole body again on
        // any status but 2xx, which would store its accepted items once more on every try.
        if (format === 'msgpack' && ingested.accepted > 0) {
          request.log.warn({ accepted: partial.accepted, rejected: partial.rejected }, partial.message);
          return void reply.code(200).send({ partial: true, message: partial.message, accepted: partial.accepted, rejected: partial.rejected });
        }
        throw partial;
      }
      void reply.code(204).send();
    };
  };

  app.post('/api/v1/write/msgpack', write('msgpack', 'msgpack'));
  app.post('/api/v1/write/line-protocol', write('line-protocol', 'line_protocol'));
  app.post('/write', write('line-protocol', 'influxdb_v1'));
  const v2: ErrorShapeConfig = { errorShape: 'influxdb-v2' };
  app.post('/api/v2/write', { config: v2 }, write('line-protocol', 'influxdb_v2'));

  const flush = async (): Promise<{ status: string; message: string }> => {
    await o.buffers.flushAll();
    return { status: 'success', message: 'All buffers flushed' };
  };
  app.post('/api/v1/write/flush', flush);
  app.post('/api/v1/write/line-protocol/flush', flush);
  app.get('/api/v1/write/stats', async () => ({
    status: 'success',
    stats: o.buffers.stats(),
    wal: o.wal === undefined ? { enabled: false } : { enabled: true, ...o.wal.stats() },
  }));
}
