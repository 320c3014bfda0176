/**
 * Write endpoints, wire-compatible with Arc and InfluxDB:
 *
 * - `POST /api/v1/write/msgpack` — Arc MessagePack (columnar, row, `{"batch": …}`, array).
 * - `POST /api/v1/write/line-protocol` — Arc's line-protocol endpoint.
 * - `POST /write` — InfluxDB v1 (`db`, `precision` = n|ns|u|us|ms|s|m|h).
 * - `POST /api/v2/write` — InfluxDB v2 (`bucket`, `org` ignored, `precision` = ns|us|ms|s).
 * - `POST /api/v1/write/flush` (alias `/api/v1/write/line-protocol/flush`) — writes every
 *   buffer to Parquet and answers once the files are in storage.
 * - `GET /api/v1/write/stats` — buffer and flush counters.
 *
 * Success is 204 with an empty body. A body with rejected lines answers 400
 * `{"error": "partial write: line N: …", "accepted": A, "rejected": R}` while its valid
 * lines are kept (InfluxDB's partial write). Bodies may be gzip/deflate/br compressed.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BufferManager } from '../../buffer/buffer-manager.js';
import { BadRequestError, PartialWriteError, type LineError } from '../../errors.js';
import type { ColumnarBatch } from '../../parse/batch.js';
import { parseLineProtocolBody } from '../../parse/lineprotocol/stream.js';
import { parseMsgpackBody } from '../../parse/msgpack/stream.js';
import { nowMicros, parsePrecision } from '../../parse/time.js';
import { acceptRawBodies, decodeBody } from '../content-type-parser.js';
import { databaseOf } from '../database.js';

export interface WriteRouteOptions {
  buffers: BufferManager;
  /** Cap on the raw body, bytes. */
  maxBodyBytes: number;
  /** Cap on the decompressed body, bytes. */
  maxDecompressedBytes: number;
  /** Refuses writes while the server is not ready (start-up, shutdown). */
  assertAccepting: () => void;
}

interface Parsed {
  batches: ColumnarBatch[];
  errors: LineError[];
}

/** Registers the write routes on `app` (an encapsulated plugin: raw-body parsing stays local). */
export async function writeRoutes(app: FastifyInstance, o: WriteRouteOptions): Promise<void> {
  acceptRawBodies(app, o.maxBodyBytes);

  const write = (unit: 'line' | 'item', parse: (body: Buffer, request: FastifyRequest) => Promise<Parsed>) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      o.assertAccepting();
      const database = databaseOf(request);
      const raw = request.body;
      if (!Buffer.isBuffer(raw) || raw.length === 0) throw new BadRequestError('Empty request body');
      const body = await decodeBody(raw, request.headers['content-encoding'], o.maxDecompressedBytes);
      const parsed = await parse(body, request);
      o.buffers.countRejected(parsed.errors.length);
      const ingested = await o.buffers.ingest(database, parsed.batches);
      const errors = [...parsed.errors, ...ingested.errors].sort((a, b) => a.line - b.line);
      if (errors.length > 0) throw new PartialWriteError(errors, ingested.accepted, unit);
      void reply.code(204).send();
    };

  const lineProtocol = write('line', (body, request) =>
    parseLineProtocolBody(body, parsePrecision((request.query as Record<string, string | undefined>).precision), nowMicros()));

  app.post('/api/v1/write/msgpack', write('item', (body) => parseMsgpackBody(body, nowMicros())));
  app.post('/api/v1/write/line-protocol', lineProtocol);
  app.post('/write', lineProtocol);
  app.post('/api/v2/write', lineProtocol);

  const flush = async (): Promise<{ status: string; message: string }> => {
    await o.buffers.flushAll();
    return { status: 'success', message: 'All buffers flushed' };
  };
  app.post('/api/v1/write/flush', flush);
  app.post('/api/v1/write/line-protocol/flush', flush);
  app.get('/api/v1/write/stats', async () => ({ status: 'success', stats: o.buffers.stats() }));
}
