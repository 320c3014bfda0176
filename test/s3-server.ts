/**
 * A real S3 server for the tests and benchmarks: s3rver (S3's REST API over a local
 * directory, path-style addressing), run as its own process by `test/s3-harness.ts`.
 *
 * Usage: `node dist/test/s3-server.js --dir=DIR --bucket=NAME [--port=N]` (port 0 or
 * absent = a free port). Listens on 127.0.0.1 only and prints
 * `S3 listening on http://127.0.0.1:PORT` once ready. Restarting it over the same
 * directory serves the same objects. Without `--dir` it does nothing and exits 0:
 * `node --test dist/` runs every file under `test/`, this one included.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import S3rver from 's3rver';
import FilesystemStore from 's3rver/lib/stores/filesystem.js';

// s3rver 3.7.1 writes a PUT's body straight over the stored object, as it arrives: an
// attempt its client gave up on (timed out, then retried and stored whole) truncates the
// object when it dies. S3 stores a body whole or not at all ("never adds partial objects"),
// so here the body is read whole first (an aborted one rejects, touching nothing) and the
// object replaced by a rename.
FilesystemStore.prototype.putObject = async function (object) {
  let content: Buffer;
  if (Buffer.isBuffer(object.content)) content = object.content;
  else {
    const chunks: Buffer[] = [];
    for await (const chunk of object.content) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    content = Buffer.concat(chunks);
  }
  const path = this.getResourcePath(object.bucket, object.key, 'object');
  await mkdir(dirname(path), { recursive: true });
  const staged = `${path}.${randomBytes(6).toString('hex')}.uploading`;
  await writeFile(staged, content);
  await rename(staged, path);
  const md5 = createHash('md5').update(content).digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size: content.length, md5 };
};

// s3rver 3.7.1 bug: with a delimiter, its directory walk skips every directory more
// than one level below the prefix, so `ListObjectsV2(Prefix='db/', Delimiter='/')`
// finds no common prefix for `db/m/2026/…/f.parquet` (real S3 and MinIO do). Delimited
// listings are therefore computed here from the undelimited one (without paging,
// which the tests' small buckets never need).
const listObjects = FilesystemStore.prototype.listObjects;
FilesystemStore.prototype.listObjects = async function (bucket, options) {
  const delimiter = options.delimiter ?? '';
  if (delimiter === '') return listObjects.call(this, bucket, options);
  const prefix = options.prefix ?? '';
  const all = await listObjects.call(this, bucket, { ...options, delimiter: '', maxKeys: Infinity });
  const commonPrefixes = new Set<string>();
  const objects = all.objects.filter((o) => {
    const at = o.key.slice(prefix.length).indexOf(delimiter);
    if (at === -1) return true;
    commonPrefixes.add(o.key.slice(0, prefix.length + at + delimiter.length));
    return false;
  });
  return { objects, commonPrefixes: [...commonPrefixes].sort(), isTruncated: false };
};

const args = new Map(process.argv.slice(2).map((a) => {
  const [k, ...v] = a.replace(/^--/, '').split('=');
  return [k, v.join('=')] as const;
}));
const directory = args.get('dir');
if (directory !== undefined) {
  const server = new S3rver({
    address: '127.0.0.1',
    port: Number(args.get('port') ?? '0'),
    directory,
    silent: true,
    configureBuckets: [{ name: args.get('bucket') ?? 'strata', configs: [] }],
  });
  const { port } = await server.run();
  process.stdout.write(`S3 listening on http://127.0.0.1:${port}\n`);
  const stop = (): void => {
    server.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
