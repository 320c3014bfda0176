/**
 * S3-compatible object storage backend (AWS S3, MinIO, Ceph RGW, R2) with
 * `@aws-sdk/client-s3`, read through a local Parquet cache (`file-cache.ts`).
 *
 * - Objects: `{prefix}{key}` in `bucket`, key as in the local layout.
 * - Writes: `@aws-sdk/lib-storage`'s `Upload` (one PutObject up to `PART_BYTES`,
 *   multipart above, parts sent `PART_QUEUE` at a time; a failed multipart upload is
 *   aborted). S3 PUTs are atomic: a reader sees no object or the whole object. The
 *   uploaded file then moves into the cache (write-through).
 * - Retries and timeouts: the SDK's standard retry strategy (exponential backoff with
 *   full jitter, `maxAttempts` tries, throttling and 5xx and network errors retried);
 *   a connection must open within `CONNECT_TIMEOUT_MS` and a socket idle longer than
 *   `requestTimeoutMs` fails the attempt. The SDK's tries end once an answer's headers
 *   are in, so GETs of objects (downloads, footer reads) are tried here instead
 *   (`getRetried`): one request per try, again while it fails as the SDK's standard
 *   strategy would retry it or its body breaks off part-way (a reset, a stalled socket),
 *   `maxAttempts` tries in all, with a jittered exponential backoff. A put that still fails throws: the writer's
 *   caller (`BufferManager`) keeps the records and retries the flush with its own
 *   jittered backoff, re-staging the file.
 * - A query's AbortSignal (its deadline, its client gone) aborts the requests that are
 *   its alone (footer reads, listings when none are cached), retries included, and is no
 *   failure of S3 (`health`). A download is shared by the queries that want its object:
 *   it runs on while one of them still waits and is aborted once none does; a cached
 *   listing is shared with later queries too, so it runs on (`abortable.ts`).
 * - Listings are cached for `listTtlMs` (an LRU of at most `LISTING_CACHE_ENTRIES`
 *   prefixes), so a file written by another node appears within that delay; this
 *   node's writes invalidate the cached listings they touch at once.
 * - Footers: files a query only needs the columns of are not downloaded; their Parquet
 *   footer is read with ranged GETs of the object's end (`parquet-footer.ts`), explicit
 *   `bytes=start-end` ranges from the listed size (s3rver, the test server, reads a
 *   suffix range `bytes=-N` as `bytes=0-N`); each answer's size and ETag tell whether
 *   the two reads of a long footer read one object.
 * - Checksums are only sent when an operation requires them (`WHEN_REQUIRED`):
 *   S3-compatible servers other than AWS often reject the SDK's default CRC32 trailers.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat, writeFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command,
  PutObjectCommand, S3Client, type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { LRUCache } from 'lru-cache';
import pRetry, { AbortError } from 'p-retry';
import { isThrottlingError, isTransientError } from '@smithy/core/retry';
import { StorageUnavailableError, StoredFileGoneError } from '../errors.js';
import { untilAborted } from './abortable.js';
import { cacheFault, onCacheDisk, type FileCache } from './file-cache.js';
import { HealthTracker } from './health.js';
import { footerStub, type ObjectRange } from './parquet-footer.js';
import type { LocalFiles, Storage, StorageHealth, StorageStats, StoredObject } from './storage.js';

/** Connection, retry and cache settings of an `S3Storage` (from `s3.*` and `cache.*`, src/app.ts). */
export interface S3StorageOptions {
  /** Bucket the objects are in; must exist (`init` checks it). */
  bucket: string;
  /** Key prefix inside the bucket; `''` or a string ending in `/` (one is appended otherwise). */
  prefix: string;
  /** Endpoint URL for S3-compatible servers (`http://minio:9000`); `''` = AWS. */
  endpoint: string;
  /** AWS region the client signs for (any value for most S3-compatible servers). */
  region: string;
  /** Path-style addressing (`endpoint/bucket/key`), which MinIO and s3rver need. */
  forcePathStyle: boolean;
  /** Static credentials; both empty = the standard AWS credential chain (env, profile, IMDS…). */
  accessKeyId: string;
  /** Secret of `accessKeyId`; see there. */
  secretAccessKey: string;
  /** Tries per request, the first included (SDK standard retry strategy). */
  maxAttempts: number;
  /** Socket inactivity limit per attempt, ms. */
  requestTimeoutMs: number;
  /** How long a listing is reused, ms (0 = never cached). */
  listTtlMs: number;
  /** This node's id: names the start-up probe object so that nodes do not race on it. */
  nodeId: string;
  /** Local Parquet cache; its `partDir` is the staging directory (files are renamed from it into the cache). */
  cache: FileCache;
}

const CONNECT_TIMEOUT_MS = 5_000;
/** Objects up to this size go up in one PutObject; larger ones in parts of this size. */
const PART_BYTES = 16 * 1024 * 1024;
const PART_QUEUE = 4;
const LISTING_CACHE_ENTRIES = 10_000;
/** Backoff before the first retry of a GET (`getRetried`), ms, doubled at each retry, then jittered ×1–2, at most `GET_RETRY_MAX_MS` (the SDK's base and cap). */
const GET_RETRY_MIN_MS = 100;
const GET_RETRY_MAX_MS = 20_000;

/**
 * `Storage` on an S3 bucket (the module comment gives the write, retry, abort, listing
 * and footer rules), DuckDB reading local copies from the `FileCache` it is given. Created
 * by the composition root (src/app.ts) for `storage.backend = s3`; `init` once before use.
 * One `S3Client` serves every concurrent call; a failure of any S3 request counts
 * towards `health()` unless its caller aborted it.
 */
export class S3Storage implements Storage {
  /** `s3://{bucket}/{prefix}`, plus ` at {endpoint}` for a non-AWS server; for logs and stats. */
  readonly description: string;
  /** The cache's scratch directory (`FileCache.partDir`): uploaded files are renamed from it into the cache. */
  readonly stagingDir: string;
  private readonly o: S3StorageOptions;
  private readonly prefix: string;
  private readonly client: S3Client;
  /** The same bucket, one try per request: for the GETs `getRetried` tries itself. */
  private readonly once: S3Client;
  private readonly healthTracker = new HealthTracker();
  private readonly listings: LRUCache<string, Promise<StoredObject[] | string[]>> | undefined;

  constructor(options: S3StorageOptions) {
    this.o = options;
    this.prefix = options.prefix === '' || options.prefix.endsWith('/') ? options.prefix : `${options.prefix}/`;
    this.stagingDir = options.cache.partDir;
    this.description = `s3://${options.bucket}/${this.prefix}${options.endpoint === '' ? '' : ` at ${options.endpoint}`}`;
    const config = {
      region: options.region,
      endpoint: options.endpoint === '' ? undefined : options.endpoint,
      forcePathStyle: options.forcePathStyle,
      credentials: options.accessKeyId !== '' || options.secretAccessKey !== ''
        ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }
        : undefined,
      retryMode: 'standard',
      requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, socketTimeout: options.requestTimeoutMs },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    } as const;
    this.client = new S3Client({ ...config, maxAttempts: options.maxAttempts });
    this.once = new S3Client({ ...config, maxAttempts: 1 });
    this.listings = options.listTtlMs > 0
      ? new LRUCache({ max: LISTING_CACHE_ENTRIES, ttl: options.listTtlMs })
      : undefined;
  }

  /**
   * Rebuilds the cache index, then checks the bucket: HeadBucket (reachable,
   * credentials valid) and a PutObject + DeleteObject of `{prefix}.strata/probe-{node}`
   * (writable).
   * @throws StorageUnavailableError naming the bucket, endpoint and S3's answer.
   */
  async init(): Promise<void> {
    await this.o.cache.init();
    const probe = `${this.prefix}.strata/probe-${this.o.nodeId}`;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.o.bucket }));
    } catch (err) {
      throw new StorageUnavailableError(`S3 bucket ${this.description} is not reachable: ${describe(err)}`, { cause: err });
    }
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.o.bucket, Key: probe, Body: 'strata write probe' }));
      await this.client.send(new DeleteObjectCommand({ Bucket: this.o.bucket, Key: probe }));
    } catch (err) {
      throw new StorageUnavailableError(`S3 bucket ${this.description} is not writable: ${describe(err)}`, { cause: err });
    }
  }

  /**
   * Uploads the staged file with `Upload` (one PutObject up to 16 MiB, multipart above),
   * drops the cached listings the key belongs to, then moves the file into the cache
   * (write-through; if the cache cannot take it the file is deleted, the put still
   * succeeds). The staged file is deleted when the upload fails.
   * @throws StorageUnavailableError naming the key and S3's answer, after the SDK's retries.
   */
  async putFile(key: string, localPath: string): Promise<number> {
    let size: number;
    try {
      ({ size } = await onCacheDisk(stat(localPath)));
      await this.call(`upload ${key}`, async () => {
        const body = createReadStream(localPath);
        await localFaults(body, new Upload({
          client: this.client,
          params: { Bucket: this.o.bucket, Key: this.prefix + key, Body: body, ContentType: 'application/vnd.apache.parquet' },
          partSize: PART_BYTES,
          queueSize: PART_QUEUE,
          leavePartsOnError: false,
        }).done());
      });
    } catch (err) {
      await rm(localPath, { force: true });
      throw err;
    }
    this.invalidate(key);
    // The object is stored: a cache that cannot take the file costs one download later,
    // while failing the put would hold its records back and upload them again.
    await this.o.cache.adopt(key, localPath, size).catch(() => rm(localPath, { force: true }).catch(() => undefined));
    return size;
  }

  /**
   * Every ListObjectsV2 page under the bucket prefix + `prefix`: `.parquet` objects, none under a
   * `.`-named segment, sorted in JS string order (S3 lists in UTF-8 byte order); reused for
   * `listTtlMs` and shared while cached.
   */
  async list(prefix: string, signal?: AbortSignal): Promise<StoredObject[]> {
    return this.cached(`L${prefix}`, async (own) => {
      const out: StoredObject[] = [];
      for await (const page of this.pages(prefix, undefined, own)) {
        for (const o of page.Contents ?? []) {
          const key = o.Key!.slice(this.prefix.length);
          if (!key.endsWith('.parquet') || key.split('/').some((s) => s.startsWith('.'))) continue;
          out.push({ key, size: o.Size ?? 0 });
        }
      }
      // S3 lists in UTF-8 binary order; the contract is JS string order (as LocalStorage sorts).
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    }, signal) as Promise<StoredObject[]>;
  }

  /** The common prefixes of a ListObjectsV2 with delimiter `/`, not named `.…`; cached as `list`. */
  async listChildren(prefix: string, signal?: AbortSignal): Promise<string[]> {
    return this.cached(`C${prefix}`, async (own) => {
      const out: string[] = [];
      for await (const page of this.pages(prefix, '/', own)) {
        for (const p of page.CommonPrefixes ?? []) {
          const name = p.Prefix!.slice(this.prefix.length + prefix.length, -1);
          if (!name.startsWith('.')) out.push(name);
        }
      }
      return out.sort();
    }, signal) as Promise<string[]>;
  }

  /**
   * Downloads are shared by the queries that want the same object (`FileCache.open`):
   * `signal` stops this caller's wait, and a download once no caller waits for it.
   */
  open(objects: readonly StoredObject[], verify = false, signal?: AbortSignal): Promise<LocalFiles> {
    return this.o.cache.open(objects.map((o) => o.key), verify, (key, destination, own) => this.call(`download ${key}`, () => this.getRetried(async () => {
      const object = await tried(this.once.send(new GetObjectCommand({ Bucket: this.o.bucket, Key: this.prefix + key }), { abortSignal: own }));
      // Truncates what a broken-off try wrote.
      const file = createWriteStream(destination);
      await localFaults(file, pipeline(object.Body as Readable, file, { signal: own }));
    }, own), own, key), signal, sizesOf(objects));
  }

  /** Each footer read is this caller's alone: `signal` aborts its requests. */
  openFooters(objects: readonly StoredObject[], verify = false, signal?: AbortSignal): Promise<LocalFiles> {
    const sizes = sizesOf(objects);
    return this.o.cache.openFooters(objects.map((o) => o.key), verify, async (key, destination, own) => {
      const read = (start: number, end: number): Promise<ObjectRange> =>
        this.call(`footer read ${key}`, () => this.getRetried(() => this.range(key, start, end, own), own), own, key);
      const stub = await footerStub(key, sizes.get(key)!, read);
      // A local write: its failure is no failure of S3 (`health`).
      await onCacheDisk(writeFile(destination, stub));
    }, signal, sizes);
  }

  /** Of every S3 request (uploads, listings, downloads, footer reads) but those their caller aborted. */
  health(): StorageHealth {
    return this.healthTracker.get();
  }

  /** `backend: 's3'` with the file cache's counters. */
  stats(): StorageStats {
    return { backend: 's3', description: this.description, health: this.health(), cache: this.o.cache.stats() };
  }

  /**
   * Bytes `start` to `end` (inclusive) of `key`, the object's size from the answer's
   * `Content-Range` (a server that ignores the range sends the whole object) and its
   * ETag. An object that ends before `start` (replaced by a shorter one since it was
   * listed: S3 answers 416) gives no bytes and its size and ETag from a HeadObject, so
   * that the caller reads again at that size. `signal` aborts the requests.
   * @throws when the answer holds other bytes than those asked for.
   */
  private async range(key: string, start: number, end: number, signal: AbortSignal | undefined): Promise<ObjectRange> {
    let object;
    try {
      object = await this.once.send(new GetObjectCommand({ Bucket: this.o.bucket, Key: this.prefix + key, Range: `bytes=${start}-${end}` }), { abortSignal: signal });
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 416) throw triedFailure(err);
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.o.bucket, Key: this.prefix + key }), { abortSignal: signal }).catch((headErr: unknown) => {
        throw new AbortError(headErr as Error);
      });
      return { bytes: Buffer.alloc(0), size: head.ContentLength ?? 0, version: head.ETag };
    }
    let bytes = Buffer.from(await object.Body!.transformToByteArray());
    const total = /\/(\d+)$/.exec(object.ContentRange ?? '');
    let size = bytes.length;
    if (total !== null) size = Number(total[1]);
    else bytes = bytes.subarray(start, end + 1);
    if (bytes.length !== Math.min(end, size - 1) - start + 1) throw new AbortError(`ranged read of bytes ${start}-${end} returned ${bytes.length} bytes`);
    return { bytes, size, version: object.ETag };
  }

  /**
   * `transfer` (one GET through `once`, marked by `tried`, and the reading of its answer's
   * body), tried again after a jittered exponential backoff while it fails, `maxAttempts`
   * tries in all: the SDK's own tries end once an answer's headers are in, never covering a
   * body that breaks off after them, and a try here is one request, so the two never
   * multiply. What `transfer` throws as p-retry's `AbortError` (a request the SDK would
   * not retry, such as NoSuchKey or AccessDenied; an answer that is wrong rather than cut
   * short) and a `LocalFileFault` end the tries at once, as `signal` aborting does.
   * Resolves or rejects as the last try did.
   */
  private getRetried<T>(transfer: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    return pRetry(transfer, {
      retries: this.o.maxAttempts - 1, minTimeout: GET_RETRY_MIN_MS, maxTimeout: GET_RETRY_MAX_MS, randomize: true, signal,
      shouldRetry: ({ error }) => !(error instanceof LocalFileFault),
    });
  }

  /** Every page of ListObjectsV2 under `prefix`; `signal` aborts the requests. */
  private async *pages(prefix: string, delimiter: string | undefined, signal: AbortSignal | undefined): AsyncGenerator<ListObjectsV2CommandOutput> {
    let token: string | undefined;
    do {
      const page = await this.call(prefix === '' ? 'list' : `list ${prefix}`, () => this.client.send(new ListObjectsV2Command({
        Bucket: this.o.bucket, Prefix: this.prefix + prefix, Delimiter: delimiter, ContinuationToken: token,
      }), { abortSignal: signal }), signal);
      yield page;
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  /**
   * Reuses a listing younger than the TTL; a failed listing is not kept. Without a cache
   * the listing is the caller's alone and `load` gets its `signal` to abort it with; a
   * cached one is shared, so it runs to its end and `signal` only stops this caller's wait.
   */
  private cached(id: string, load: (signal?: AbortSignal) => Promise<StoredObject[] | string[]>, signal: AbortSignal | undefined):
    Promise<StoredObject[] | string[]> {
    if (this.listings === undefined) return load(signal);
    let listing = this.listings.get(id);
    if (listing === undefined) {
      listing = load();
      this.listings.set(id, listing);
      listing.catch(() => {
        if (this.listings!.get(id) === listing) this.listings!.delete(id);
      });
    }
    return untilAborted(listing, signal);
  }

  /** Drops cached listings that `key` belongs to (its file listings and its parents' children). */
  private invalidate(key: string): void {
    if (this.listings === undefined) return;
    for (const id of [...this.listings.keys()]) if (key.startsWith(id.slice(1))) this.listings.delete(id);
  }

  /**
   * Runs one S3 operation, recording health; failures become StorageUnavailableError.
   * Once `signal` (which `operation` aborts its requests with) has aborted, a failure is
   * its reason: the caller stopped the operation, S3 did not fail it. An operation on
   * object `key` that S3 answers with NoSuchKey (deleted since it was listed) is no failure
   * of S3 either: the listings holding it are dropped and StoredFileGoneError is thrown,
   * on which the query service plans again.
   */
  private async call<T>(what: string, operation: () => Promise<T>, signal?: AbortSignal, key?: string): Promise<T> {
    let outcome: { value: T } | { gone: true } | { local: StorageUnavailableError };
    try {
      outcome = await this.healthTracker.track(() => operation().then((value) => ({ value }), (err: unknown) => {
        if (key !== undefined && isNoSuchKey(err)) return { gone: true as const };
        // The local file a download writes or an upload reads: S3 answered.
        if (err instanceof LocalFileFault) return { local: err.local };
        throw err;
      }), signal);
    } catch (err) {
      if (signal?.aborted === true) throw signal.reason;
      throw new StorageUnavailableError(`S3 ${what} failed: ${describe(err)}`, { cause: err });
    }
    if ('value' in outcome) return outcome.value;
    if ('local' in outcome) throw outcome.local;
    this.invalidate(key!);
    throw new StoredFileGoneError(key!);
  }
}

/** A failure of the local file an S3 transfer reads or writes (`localFaults`): the cache's disk, not S3. */
class LocalFileFault extends Error {
  readonly local: StorageUnavailableError;
  constructor(err: unknown) {
    super('local file fault');
    const local = cacheFault(err);
    this.local = local instanceof StorageUnavailableError ? local : new StorageUnavailableError(`the S3 backend's local cache (STRATA_CACHE_DIR) cannot be used: ${String(err)}`, { cause: err });
  }
}

/** `transfer`, its failure marked a `LocalFileFault` when it is the error of `file` (the transfer's local end). */
async function localFaults<T>(file: NodeJS.EventEmitter, transfer: Promise<T>): Promise<T> {
  let fault: unknown;
  file.once('error', (err: unknown) => {
    fault = err;
  });
  try {
    return await transfer;
  } catch (err) {
    throw fault !== undefined && err === fault ? new LocalFileFault(err) : err;
  }
}

/** `request` (one try), its failure as `triedFailure` makes it. */
function tried<T>(request: Promise<T>): Promise<T> {
  return request.catch((err: unknown) => {
    throw triedFailure(err);
  });
}

/**
 * A request's failure, marked final for `getRetried` unless the SDK's standard retry
 * strategy would try it again: throttling or a transient error (500, 502, 503, 504, a
 * network error or timeout), as its `getRetryErrorType` classes them. Not its older
 * `defaultRetryDecider`, which also retries SignatureDoesNotMatch and other clock-skew names
 * (a secret revoked would cost every GET all its tries).
 */
function triedFailure(err: unknown): unknown {
  const e = err as Parameters<typeof isTransientError>[0];
  return isThrottlingError(e) || isTransientError(e) ? err : new AbortError(err as Error);
}

/** S3's error codes for a key or signature it refuses. */
const CREDENTIAL_ERRORS = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden', 'Unauthorized']);

/** Whether S3 answered that the object does not exist (a GET's NoSuchKey; a HEAD's bare 404), not that the bucket does not (NoSuchBucket). */
function isNoSuchKey(err: unknown): boolean {
  const name = (err as { name?: string }).name;
  return name === 'NoSuchKey' || name === 'NotFound';
}

/** S3's error name and message, which alone are often empty (a HEAD has no body). */
function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  // The SDK names an error whose body it could not read (a HEAD's 403 has none) `Unknown`.
  const text = [e.name, e.message].filter((s) => s !== undefined && s !== '' && s !== 'UnknownError' && s !== 'Unknown').join(': ');
  // Not for every 403: RequestTimeTooSkewed, say, is the clock's.
  const credentials = (status === 403 || status === 401) && (text === '' || CREDENTIAL_ERRORS.has(e.name ?? ''));
  const hint = credentials ? ': access denied (check STRATA_S3_ACCESS_KEY_ID and STRATA_S3_SECRET_ACCESS_KEY, and the bucket policy)' : '';
  return status !== undefined ? `${text === '' ? 'error' : text} (HTTP ${status})${hint}` : text;
}

/** Each object's listed size by key, bytes. */
function sizesOf(objects: readonly StoredObject[]): Map<string, number> {
  return new Map(objects.map((o) => [o.key, o.size]));
}
