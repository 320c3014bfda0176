/**
 * An HTTP proxy in front of the test S3 server (`s3-harness.ts`) that lets a test act
 * between S3's answer and Strata's receipt of it: say, replace an object after Strata
 * read part of it and before it reads the rest. Requests pass on unchanged (their
 * signatures stay valid: the Host header is the proxy's, as the client signed it);
 * `beforeRequest` runs before a request is passed on (to hold it back), and each answer is
 * read whole, then `beforeAnswer` runs, then the answer is sent: whole, cut off after the
 * bytes of its body `beforeAnswer` names (the connection reset there, as a network can), or
 * replaced by an error answer it names.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the proxy saw it. */
export interface ProxiedRequest {
  readonly method: string;
  /** Path and query, as sent (`/bucket/key?…`, percent-encoded). */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/**
 * What `beforeAnswer` may ask for instead of S3's answer as it is: its headers and its
 * body's first `cutAfter` bytes, then the connection reset; or another answer, `status`
 * with an XML `body` (an S3 error document).
 */
export type AnswerChange = { readonly cutAfter: number } | { readonly status: number; readonly body: string };

/**
 * One proxy server on 127.0.0.1 in front of one S3 endpoint: `start` it, point Strata's
 * `STRATA_S3_ENDPOINT` at its `endpoint`, `close` it at the end. Answers are buffered
 * whole (test-sized objects only).
 */
export class S3Proxy {
  private readonly server: Server;

  private constructor(server: Server) {
    this.server = server;
  }

  /**
   * Listens on a free port of 127.0.0.1 and forwards to `target` (`http://127.0.0.1:PORT`).
   * @param beforeAnswer runs once S3's answer to a request is read, before it is sent on;
   *   resolving to an `AnswerChange` sends part of it or another answer.
   * @param beforeRequest runs before a request is passed on to S3 (its body waits meanwhile).
   */
  static async start(target: string, beforeAnswer: (request: ProxiedRequest) => Promise<void | AnswerChange>,
    beforeRequest: (request: ProxiedRequest) => Promise<void> = async () => undefined): Promise<S3Proxy> {
    const upstream = new URL(target);
    const server = createServer((req, res) => {
      req.pause();
      beforeRequest({ method: req.method ?? '', url: req.url ?? '', headers: req.headers }).then(() => pass(req, res), (err: unknown) => res.destroy(err as Error));
    });
    const pass = (req: IncomingMessage, res: ServerResponse): void => {
      const forward = httpRequest({
        host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers,
      }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          beforeAnswer({ method: req.method ?? '', url: req.url ?? '', headers: req.headers }).then((change) => {
            if (change !== undefined && 'status' in change) {
              res.writeHead(change.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(change.body) });
              return void res.end(change.body);
            }
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            const body = Buffer.concat(chunks);
            if (change === undefined) res.end(body);
            else res.write(body.subarray(0, change.cutAfter), () => res.socket?.resetAndDestroy());
          }, (err: unknown) => res.destroy(err as Error));
        });
      });
      forward.on('error', (err) => res.destroy(err));
      req.pipe(forward);
      req.resume();
    };
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new S3Proxy(server);
  }

  /** `http://127.0.0.1:PORT`. */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
