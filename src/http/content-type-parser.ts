/**
 * Write bodies: taken as raw bytes whatever their Content-Type (InfluxDB clients send
 * `text/plain`, Telegraf and Arc clients `application/msgpack`, some nothing), then
 * decompressed.
 *
 * Compression is recognised by `Content-Encoding` (gzip, deflate, br) or, as Arc
 * does, by the gzip magic bytes `1f 8b` when the header is absent. The decompressed
 * size is capped while inflating, so a gzip bomb is refused without allocating it.
 */
import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate, type ZlibOptions } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { BadRequestError, PayloadTooLargeError, StrataError } from '../errors.js';

// A Map, not an object literal: `Content-Encoding: constructor` must not find Object.prototype's.
const decoders = new Map<string, (buf: Buffer, o: ZlibOptions) => Promise<Buffer>>([
  ['gzip', promisify(gunzip) as never],
  ['x-gzip', promisify(gunzip) as never],
  ['deflate', promisify(inflate) as never],
  ['br', promisify(brotliDecompress) as never],
]);

/** Makes every content type of `app`'s routes arrive as a `Buffer` of at most `maxBodyBytes` (413 above). */
export function acceptRawBodies(app: FastifyInstance, maxBodyBytes: number): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxBodyBytes }, (_req, body, done) => done(null, body));
}

/**
 * Returns the decompressed body.
 * @param contentEncoding the request's `Content-Encoding` header, if any.
 * @param maxBytes cap on the decompressed size in bytes.
 * @throws PayloadTooLargeError (413) above the cap; BadRequestError (400) for a corrupt
 *   stream; StrataError 415 for an encoding Strata does not decode.
 */
export async function decodeBody(raw: Buffer, contentEncoding: string | undefined, maxBytes: number): Promise<Buffer> {
  let encoding = (contentEncoding ?? '').trim().toLowerCase();
  if ((encoding === '' || encoding === 'identity') && raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) encoding = 'gzip';
  if (encoding === '' || encoding === 'identity') return raw;
  const decode = decoders.get(encoding);
  if (decode === undefined) throw new StrataError(`unsupported Content-Encoding "${encoding}": use gzip, deflate or br`, 415, 'unsupported_encoding');
  try {
    return await decode(raw, { maxOutputLength: maxBytes });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new PayloadTooLargeError(maxBytes, 'decompressed body');
    throw new BadRequestError(`invalid ${encoding} body: ${(err as Error).message}`);
  }
}
