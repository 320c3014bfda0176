/**
 * Compression of query answers (`Content-Encoding`), as the client's `Accept-Encoding`
 * asks: Arc compresses its JSON answers the same way (../shared/notes/arc-wire-contract.md
 * §5.2, `response_compression.go`), and Python's `requests`, browsers and Grafana ask for it
 * on every request; a JSON result shrinks about tenfold, which counts on a link slower
 * than loopback.
 *
 * The encoding is negotiated here (`negotiator`, as for `Accept`), and `@fastify/compress`
 * compresses with it, sets `Vary: accept-encoding` on what it compresses and honours
 * `x-no-compression`; it leaves `HEAD` answers as they are. A body up to its sync
 * threshold (8 KiB on two cores; more on fewer) is compressed in one call and keeps a
 * Content-Length; a larger one, whole (up to 256 KiB) or streamed, goes through a zlib
 * stream, on libuv's threadpool rather than the event loop, with backpressure, chunked.
 * Encodings: zstd (on Node ≥ 22.15, whose zlib has it; Arc's first choice), gzip, br
 * (quality 4, the plugin's default: near gzip's speed), deflate. Bodies under 1 KiB, error
 * bodies mostly, and types that do not compress (the Arrow stream) are sent as they are.
 * Request bodies are not its business: `content-type-parser.ts` and `decodeBody`
 * decompress those.
 */
import zlib from 'node:zlib';
import compress from '@fastify/compress';
import type { FastifyInstance } from 'fastify';
import Negotiator from 'negotiator';

/** What this Node's zlib can send, in the order a `*` takes them; `identity` last. */
const ENCODINGS = [...('createZstdCompress' in zlib ? ['zstd'] : []), 'gzip', 'br', 'deflate', 'identity'];

/**
 * Registers response compression on `app`'s routes (its encapsulation context: the query
 * routes, not the write endpoints, whose answers are empty).
 */
export async function compressResponses(app: FastifyInstance): Promise<void> {
  // The plugin reads `*` as gzip even where the client refuses gzip (`gzip;q=0, *`): it is
  // handed the one encoding negotiated here (RFC 9110 §12.5.3, q=0 meaning "not
  // acceptable"; none acceptable, not even identity: identity, as the plugin would send).
  app.addHook('onRequest', async (request) => {
    if (request.headers['accept-encoding'] === undefined) return;
    request.headers['accept-encoding'] = new Negotiator(request.raw).encoding(ENCODINGS) ?? 'identity';
  });
  await app.register(compress, { global: true, globalDecompression: false, threshold: 1024 });
}
