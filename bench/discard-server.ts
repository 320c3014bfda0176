/**
 * The HTTP ceiling for the ingest benchmark: a Fastify server that receives every
 * POST body in full, exactly as Strata's write routes do (raw `Buffer`, any content
 * type, 100 MiB limit), then discards it and answers 204.
 *
 * Whatever the loader reaches against this server is the most any Fastify-based
 * ingest path can reach on this machine with the same loader; the gap between it and
 * Strata is the cost of parsing, buffering and writing Parquet.
 *
 * In-process: `await startDiscardServer()`. As a child process (what `ingest.ts`
 * does, so that server and loader compete for the cores as they do with Strata):
 * `node dist/bench/discard-server.js`, port from `DISCARD_PORT` (default 0 = any free
 * port); it prints `Server listening at http://127.0.0.1:PORT` and exits on SIGTERM/SIGINT.
 */
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';

/** Largest accepted body, bytes: Strata's default `server.max_body_bytes`. */
const BODY_LIMIT = 100 * 1024 * 1024;

/** A listening discard server. */
export interface DiscardServer {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Stops listening and closes idle keep-alive connections. */
  close(): Promise<void>;
}

/**
 * Starts a discard server on 127.0.0.1:`port` (0 = any free port).
 * @throws when the port cannot be bound.
 */
export async function startDiscardServer(port = 0): Promise<DiscardServer> {
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT });
  app.removeAllContentTypeParsers();
  // Same body handling as Strata's acceptRawBodies: the whole body as one Buffer.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_req, body, done) => done(null, body));
  app.post('*', async (_request, reply) => {
    void reply.code(204).send();
  });
  const url = await app.listen({ host: '127.0.0.1', port });
  return { url, close: () => app.close() };
}

async function main(): Promise<void> {
  const server = await startDiscardServer(Number(process.env.DISCARD_PORT ?? 0));
  process.stdout.write(`Server listening at ${server.url}\n`);
  const stop = (): void => {
    server.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`discard-server: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
