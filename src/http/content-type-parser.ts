/**
 * Write bodies: taken as raw bytes whatever their Content-Type (InfluxDB clients send
 * `text/plain`, Telegraf and Arc clients `application/msgpack`, some nothing), then
 * decompressed.
 *
 * Compression is recognised by `Content-Encoding` (gzip, deflate, br, zstd) or, as Arc
 * does, by the magic bytes of gzip (`1f 8b`) or zstd (`28 b5 2f fd`) when the header is
 * absent. The decompressed size is capped while inflating, so a bomb is refused without
 * allocating it.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate, type ZlibOptions } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { Decompress } from 'fzstd';
import { BadRequestError, PayloadTooLargeError, StrataError } from '../errors.js';

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

/** Compressed bytes decoded between two turns of the event loop: zstd is decoded in JavaScript, on the main thread. */
const ZSTD_SLICE_BYTES = 256 * 1024;

/**
 * Decodes Zstandard (RFC 8878; every frame of the body, skippable ones skipped) with
 * `fzstd`, as Node 20's zlib has no zstd: Redpanda Connect's Arc output sends it by default.
 */
async function unzstd(raw: Buffer, maxBytes: number): Promise<Buffer> {
  const blocks: Uint8Array[] = [];
  let size = 0;
  // Each block (at most 128 KiB) is checked as it comes, so a bomb stops at the cap.
  const stream = new Decompress((block) => {
    size += block.length;
    if (size > maxBytes) throw new PayloadTooLargeError(maxBytes, 'decompressed body');
    blocks.push(block);
  });
  for (let at = 0; at < raw.length; at += ZSTD_SLICE_BYTES) {
    if (at > 0) await nextTurn();
    stream.push(raw.subarray(at, at + ZSTD_SLICE_BYTES), at + ZSTD_SLICE_BYTES >= raw.length);
  }
  return Buffer.concat(blocks, size);
}

// A Map, not an object literal: `Content-Encoding: constructor` must not find Object.prototype's.
const decoders = new Map<string, (raw: Buffer, maxBytes: number) => Promise<Buffer>>([
  ['gzip', zlibDecoder(promisify(gunzip) as never)],
  ['x-gzip', zlibDecoder(promisify(gunzip) as never)],
  ['deflate', zlibDecoder(promisify(inflate) as never)],
  ['br', zlibDecoder(promisify(brotliDecompress) as never)],
  ['zstd', unzstd],
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
    if (err instanceof PayloadTooLargeError) throw err;
    throw new BadRequestError(`invalid ${encoding} body: ${(err as Error).message}`);
  }
}
