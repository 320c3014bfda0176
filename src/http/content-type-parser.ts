/**
 * Write bodies: taken as raw bytes whatever their Content-Type (InfluxDB clients send
 * `text/plain`, Telegraf and Arc clients `application/msgpack`, some nothing), then
 * decompressed.
 *
 * Compression is recognised by `Content-Encoding` (gzip, deflate, br, zstd) or, as Arc
 * does, by the magic bytes of gzip (`1f 8b`) or zstd (`28 b5 2f fd`) when the header is
 * absent (zstd: `./zstd.ts`). The decompressed size is capped while inflating, so a bomb
 * is refused without allocating it.
 */
import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate, type ZlibOptions } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { BadRequestError, PayloadTooLargeError, StrataError } from '../errors.js';
import { decodeZstd } from './zstd.js';

type ZlibDecoder = (buf: Buffer, o: ZlibOptions) => Promise<Buffer>;

/** Decodes with zlib in libuv's thread pool, capped by zlib itself. */
function zlibDecoder(decode: ZlibDecoder): (raw: Buffer, maxBytes: number) => Promise<Buffer> {
  return async (raw, maxBytes) => {
    try {
      return await decode(raw, { maxOutputLength: maxBytes });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new PayloadTooLargeError(maxBytes, 'decompressed body');
      throw err;
    }
  };
}

// A Map, not an object literal: `Content-Encoding: constructor` must not find Object.prototype's.
const decoders = new Map<string, (raw: Buffer, maxBytes: number) => Promise<Buffer>>([
  ['gzip', zlibDecoder(promisify(gunzip) as never)],
  ['x-gzip', zlibDecoder(promisify(gunzip) as never)],
  ['deflate', zlibDecoder(promisify(inflate) as never)],
  ['br', zlibDecoder(promisify(brotliDecompress) as never)],
  ['zstd', decodeZstd],
]);

/** What an absent `Content-Encoding` stands for, by the body's first bytes. */
function sniffed(raw: Buffer): string {
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) return 'gzip';
  if (raw.length >= 4 && raw[0] === 0x28 && raw[1] === 0xb5 && raw[2] === 0x2f && raw[3] === 0xfd) return 'zstd';
  return 'identity';
}

/** Makes every content type of `app`'s routes arrive as a `Buffer` of at most `maxBodyBytes` (413 above). */
export function acceptRawBodies(app: FastifyInstance, maxBodyBytes: number): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxBodyBytes }, (_req, body, done) => done(null, body));
}

/**
 * Returns the decompressed body.
 * @param contentEncoding the request's `Content-Encoding` header, if any.
 * @param maxBytes cap on the decompressed size in bytes.
 * @throws PayloadTooLargeError (413) above the cap; BadRequestError (400) for a corrupt or
 *   truncated stream; StrataError 415 for an encoding Strata does not decode.
 */
export async function decodeBody(raw: Buffer, contentEncoding: string | undefined, maxBytes: number): Promise<Buffer> {
  let encoding = (contentEncoding ?? '').trim().toLowerCase();
  if (encoding === '' || encoding === 'identity') encoding = sniffed(raw);
  if (encoding === 'identity') return raw;
  const decode = decoders.get(encoding);
  if (decode === undefined) throw new StrataError(`unsupported Content-Encoding "${encoding}": use gzip, deflate, br or zstd`, 415, 'unsupported_encoding');
  try {
    return await decode(raw, maxBytes);
  } catch (err) {
    if (err instanceof StrataError) throw err;
    throw new BadRequestError(`invalid ${encoding} body: ${(err as Error).message}`);
  }
}
