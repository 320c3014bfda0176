/**
 * Runs a real S3 server (`test/s3-server.ts`, s3rver) as a separate process on
 * 127.0.0.1 for end-to-end tests of the S3 backend, and the Strata environment that
 * points a `TestServer` at it. The server can be killed and restarted over the same
 * directory on the same port, to simulate an outage, or paused, to simulate an S3 that
 * stalls.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { removeDir, tempDir } from './harness.js';

const SCRIPT = fileURLToPath(new URL('./s3-server.js', import.meta.url));

/**
 * One s3rver child process with one bucket, for one test file: `start`, then `env()` for
 * the `TestServer`, `stop`/`restart` or `pause`/`resume` to simulate outages, and
 * `destroy` at the end (which deletes `dir`).
 */
export class S3TestServer {
  /** Directory the server keeps its buckets' objects in (a temporary one, kept across restarts). */
  readonly dir: string;
  /** The bucket it serves, created at start (default `strata`). */
  readonly bucket: string;
  private port = 0;
  private child: ChildProcess | undefined;

  private constructor(dir: string, bucket: string) {
    this.dir = dir;
    this.bucket = bucket;
  }

  /** Starts a server on a free port over a new temporary directory with bucket `bucket`. */
  static async start(bucket = 'strata'): Promise<S3TestServer> {
    const server = new S3TestServer(tempDir('strata-s3-'), bucket);
    await server.restart();
    return server;
  }

  /** `http://127.0.0.1:PORT`. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * Environment that makes Strata use this server (plus `extra`). The query result
   * cache is off: these tests count what queries download and list.
   */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      STRATA_QUERY_CACHE_TTL_MS: '0', STRATA_STORAGE_BACKEND: 's3', STRATA_S3_BUCKET: this.bucket, STRATA_S3_ENDPOINT: this.endpoint,
      STRATA_S3_FORCE_PATH_STYLE: 'true', STRATA_S3_REGION: 'us-east-1',
      STRATA_S3_ACCESS_KEY_ID: 'S3RVER', STRATA_S3_SECRET_ACCESS_KEY: 'S3RVER', ...extra,
    };
  }

  /** (Re)starts the process over the same directory, on the same port once one was chosen. */
  async restart(): Promise<void> {
    if (this.child !== undefined) throw new Error('S3 server already running');
    // s3rver's continuation tokens use DES, which Node 20's OpenSSL 3 refuses without the
    // legacy provider: a listing of more than 1,000 keys would fail on its second page.
    const child = spawn(process.execPath, ['--openssl-legacy-provider', SCRIPT, `--dir=${this.dir}`, `--bucket=${this.bucket}`, `--port=${this.port}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    this.port = await new Promise<number>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        const m = /S3 listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
        if (m) resolve(Number(m[1]));
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('close', (code) => reject(new Error(`S3 server exited with ${code}:\n${output}`)));
      setTimeout(() => reject(new Error(`S3 server did not start in 10 s:\n${output}`)), 10_000).unref();
    });
    this.child = child;
  }

  /** Stops the process (SIGKILL by default: an abrupt outage) and waits for its exit. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  /**
   * Freezes the process (SIGSTOP): connections are still accepted by the kernel but
   * nothing is answered, as with an S3 that stalls; `resume` lets it answer again.
   */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Lets a `pause`d process run again (SIGCONT). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Stops the process and deletes its directory. */
  async destroy(): Promise<void> {
    await this.stop();
    removeDir(this.dir);
  }
}
