/**
 * End to end: bad write requests against the real server. Each case checks the status,
 * the error text (which line or item, and what is wrong with it) and, by reading the
 * data back, that the good records of the same request were kept and the bad ones
 * were not.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { encode } from '@msgpack/msgpack';
import { inspector, removeDir, stopWithin, tempDir, TestServer } from './harness.js';

interface ErrorBody {
  error: string;
  accepted?: number;
  rejected?: number;
}

// MessagePack as Arc clients send it (the project encodes with @msgpack/msgpack).
const packr = { pack: (v: unknown): Buffer => Buffer.from(encode(v, { useBigInt64: true })) };

/** 2023-11-14T22:13:20Z in ns, and that instant plus `s` seconds. */
const T0 = 1_700_000_000_000_000_000n;
const ns = (s: number): string => String(T0 + BigInt(s) * 1_000_000_000n);

/** A name no other run or test can have chosen. */
const unique = (prefix: string): string => `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`;

let server: TestServer;

/** Per test and per hook: every wait in this file is bounded. */
const BOUND = { timeout: 60_000 };

before(async () => {
  server = await TestServer.start();
}, BOUND);
after(async () => {
  assert.equal(await stopWithin(server), 0);
  removeDir(server.dataDir);
}, BOUND);

/** Reads an error response, asserting its status and the `{"error"}` shape. */
async function errorOf(res: Response, status: number): Promise<ErrorBody> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${text}`);
  const body = JSON.parse(text) as ErrorBody;
  assert.equal(typeof body.error, 'string', text);
  return body;
}

/**
 * The answer to a MessagePack body with items both accepted and rejected: 200 (Arc's clients
 * send any body not answered 2xx again, which would store its accepted items twice) with the
 * partial write's message, returned in an error's shape.
 */
async function partialOf(res: Response): Promise<ErrorBody> {
  const text = await res.text();
  assert.equal(res.status, 200, `expected 200, got ${res.status}: ${text}`);
  const body = JSON.parse(text) as { partial: boolean; message: string; accepted: number; rejected: number };
  assert.equal(body.partial, true, text);
  assert.match(body.message, /^partial write: /);
  return { error: body.message, accepted: body.accepted, rejected: body.rejected };
}

/**
 * A Zstandard frame (RFC 8878 §3.1.1) of raw and RLE blocks, as an encoder writes data it
 * cannot shrink and runs: no content size, no checksum, a window of 2^`windowLog` bytes
 * (128 KiB by default).
 */
function zstdFrame(blocks: ({ raw: Uint8Array } | { rle: number; size: number })[], windowLog = 17): Buffer {
  const parts = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (windowLog - 10) << 3])];
  blocks.forEach((b, i) => {
    const [type, size, content] = 'raw' in b ? [0, b.raw.length, b.raw] : [1, b.size, Uint8Array.of(b.rle)];
    const header = (i === blocks.length - 1 ? 1 : 0) | (type << 1) | (size << 3);
    parts.push(Buffer.from([header & 0xff, (header >> 8) & 0xff, header >> 16]), Buffer.from(content));
  });
  return Buffer.concat(parts);
}

async function expect204(res: Response): Promise<void> {
  assert.equal(res.status, 204, await res.text());
}

/** Whether the data dir holds a directory for `database` (encoded as on disk). */
/**
 * Writes Parquet files into directory `dir` as another program would: file name → the
 * SELECT it holds, each with COPY `options` (none: no Strata metadata).
 */
async function foreignFiles(dir: string, files: Record<string, string>, options = ''): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const duck = await inspector();
  try {
    for (const [name, select] of Object.entries(files)) await duck.run(`COPY (${select}) TO '${join(dir, name)}' ${options}`);
  } finally {
    duck.closeSync();
  }
}

/**
 * Writes `seed` (line protocol, database `db`) on a server of its own, flushes it and
 * stops it, then runs `check` on a new server over the same data directory.
 */
async function afterRestart(seed: string, db: string, check: (second: TestServer) => Promise<void>): Promise<void> {
  const first = await TestServer.start();
  let second: TestServer | undefined;
  try {
    await expect204(await first.writeLines(seed, `db=${db}`));
    await first.flush();
    assert.equal(await stopWithin(first), 0);
    second = await TestServer.start({}, first.dataDir);
    await check(second);
  } finally {
    await stopWithin(first);
    if (second !== undefined) assert.equal(await stopWithin(second), 0);
    removeDir(first.dataDir);
  }
}

function hasDatabaseDir(s: TestServer, encoded: string): boolean {
  return existsSync(join(s.dataDir, encoded));
}

describe('rejected lines among good ones (partial write)', BOUND, () => {
  // Each bad line is a different fault; lines 1 and 9 are good and must be stored.
  const body = [
    `mix,host=a v=1 ${ns(0)}`,
    `mix,host=b v=abc ${ns(1)}`,
    'mix,host=c',
    `mix,host=d s="unterminated ${ns(3)}`,
    `mix,host=e v=5 17000000x`,
    `mix,host=f time=6 ${ns(5)}`,
    `mix,host=g v=NaN ${ns(6)}`,
    `mix,host=h v=9223372036854775808i ${ns(7)}`,
    `mix,host=i v=9 ${ns(8)}`,
  ].join('\n');
  const expected = [
    'line 2: invalid field value for "v" ("abc")',
    'line 3: missing fields',
    'line 4: unterminated string in field "s"',
    'line 5: timestamp "17000000x" is not an integer',
    'line 6: field key "time" is reserved for the timestamp',
    'line 7: invalid field value for "v" ("NaN")',
    'line 8: integer value "9223372036854775808i" of field "v" is out of int64 range',
  ];

  const endpoints: { name: string; db: string; send: (db: string) => Promise<Response> }[] = [
    { name: 'InfluxDB v1 /write', db: 'mix_v1', send: (db) => server.post(`/write?db=${db}`, body) },
    {
      name: 'Arc /api/v1/write/line-protocol', db: 'mix_arc',
      send: (db) => server.post('/api/v1/write/line-protocol', body, { 'x-arc-database': db, 'content-type': 'text/plain' }),
    },
  ];
  for (const e of endpoints) {
    test(`${e.name}: 400 naming every bad line; lines 1 and 9 stored`, async () => {
      const err = await errorOf(await e.send(e.db), 400);
      assert.match(err.error, /^partial write: /);
      for (const fragment of expected) assert.ok(err.error.includes(fragment), `missing ${JSON.stringify(fragment)} in ${err.error}`);
      assert.ok(err.error.endsWith('(accepted=2 rejected=7)'), err.error);
      assert.equal(err.accepted, 2);
      assert.equal(err.rejected, 7);
      await server.flush();
      assert.deepEqual(await server.rows('SELECT time, host, v FROM mix ORDER BY time', e.db), [
        ['2023-11-14T22:13:20Z', 'a', 1],
        ['2023-11-14T22:13:28Z', 'i', 9],
      ]);
    });
  }

  test('InfluxDB v2 /api/v2/write: 400 naming every bad line; nothing stored, as InfluxDB v2 writes nothing of a malformed body', async () => {
    const err = await errorOf(await server.post('/api/v2/write?org=o&bucket=mix_v2', body), 400);
    assert.match(err.error, /^write rejected: /);
    for (const fragment of expected) assert.ok(err.error.includes(fragment), `missing ${JSON.stringify(fragment)} in ${err.error}`);
    assert.ok(err.error.endsWith('(its 2 valid lines neither), as InfluxDB 2.x answers a malformed line (accepted=0 rejected=9)'), err.error);
    assert.deepEqual([err.accepted, err.rejected], [0, 9]);
    await server.flush();
    assert.deepEqual(await server.rows('SHOW TABLES', 'mix_v2'), []);
  });

  test('more than ten bad lines: the first ten are named, the rest counted', async () => {
    const lines = ['many v=0 1'];
    for (let i = 0; i < 12; i++) lines.push(`many v=bad${i} 1`);
    const err = await errorOf(await server.writeLines(lines.join('\n'), 'db=many'), 400);
    assert.ok(err.error.includes('line 2: '), err.error);
    assert.ok(err.error.includes('line 11: '), err.error);
    assert.ok(!err.error.includes('line 12: '), err.error);
    assert.ok(err.error.includes('; and 2 more (accepted=1 rejected=12)'), err.error);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT v FROM many', 'many'), [[0]]);
  });

  // Anything kept per bad line ran a 100 MB heap out of memory and killed the server:
  // one error object and message per line, a builder or name per measurement named.
  describe('bad lines by the million, on a server with a 100 MB heap', () => {
    let small: TestServer;
    before(async () => {
      small = await TestServer.start({ NODE_OPTIONS: '--max-old-space-size=100' });
    });
    after(async () => {
      await stopWithin(small);
      removeDir(small.dataDir);
    });
    const assertUp = (): void => assert.equal(small.process.exitCode, null, small.output.slice(-2000));

    test('two million bad lines: counted exactly, the first ten named, the good lines stored', async () => {
      // Line 2 is refused by the buffer's schema check, after the parser refused every later bad line.
      const body = `flood v=1i ${ns(0)}\nflood v=1.5 ${ns(1)}\n${'x\n'.repeat(1_000_000)}${'flood v=\n'.repeat(1_000_000)}flood v=2i ${ns(2)}\n`;
      const gzipped = gzipSync(body);
      assert.ok(gzipped.length < 100_000, `${gzipped.length} B`);
      const err = await errorOf(await small.post('/write?db=flood', gzipped, { 'content-encoding': 'gzip' }), 400);
      assert.match(err.error, /^partial write: line 2: field "v" is float64 but measurement "flood" stores it as int64; line 3: missing fields; /);
      assert.ok(err.error.endsWith('; line 11: missing fields; and 1999991 more (accepted=2 rejected=2000001)'), err.error.slice(0, 2000));
      assert.equal(err.accepted, 2);
      assert.equal(err.rejected, 2_000_001);
      const stats = (await (await fetch(`${small.url}/api/v1/write/stats`)).json()) as { stats: { records_rejected: number } };
      assert.equal(stats.stats.records_rejected, 2_000_001);
      await small.flush();
      assert.deepEqual(await small.rows('SELECT time, v FROM flood ORDER BY time', 'flood'), [['2023-11-14T22:13:20Z', 1], ['2023-11-14T22:13:22Z', 2]]);
      await expect204(await small.writeLines(`flood v=3i ${ns(3)}`, 'db=flood'));
      assertUp();
    });

    test('a million bad lines, then items, each naming a new measurement: the good ones stored', async () => {
      const names = Array.from({ length: 1_000_000 }, (_, i) => `m${i}`);
      const lines = `named v=1 ${ns(0)}\n${names.map((m) => `${m} f=\n`).join('')}named v=2 ${ns(1)}\n`;
      const lineErr = await errorOf(await small.post('/write?db=named', gzipSync(lines), { 'content-encoding': 'gzip' }), 400);
      assert.match(lineErr.error, /^partial write: line 2: missing field value for "f"; .*; and 999990 more \(accepted=2 rejected=1000000\)$/);
      assertUp();
      const items = packr.pack([{ m: 'named', fields: { v: 3.5 }, t: 1_700_000_002_000 }, ...names.map((m) => ({ m: `i${m}`, fields: {} }))]);
      const itemErr = await partialOf(await small.post('/api/v1/write/msgpack', items, { 'x-arc-database': 'named' }));
      assert.match(itemErr.error, /^partial write: item 1: item has no non-nil field; .*; and 999990 more \(accepted=1 rejected=1000000\)$/);
      await small.flush();
      assert.deepEqual(await small.rows('SELECT v FROM named ORDER BY time', 'named'), [[1], [2], [3.5]]);
      assertUp();
    });
  });
});

describe('field type conflicts', BOUND, () => {
  test('against data still BUFFERED from an earlier request: 400 per line, never 500', async () => {
    await expect204(await server.writeLines(`tcb,host=a x=1i ${ns(0)}`, 'db=tcbuf'));
    // Not flushed: the conflict must be found against the in-memory buffer's schema.
    const res = await server.writeLines([
      `tcb,host=b x=1.5 ${ns(1)}`,
      `tcb,host=c x=2i ${ns(2)}`,
      `tcb,host=d x=true ${ns(3)}`,
      `tcb,host=e x="s" ${ns(4)}`,
    ].join('\n'), 'db=tcbuf');
    const err = await errorOf(res, 400);
    assert.ok(err.error.includes('line 1: field "x" is float64 but measurement "tcb" stores it as int64'), err.error);
    assert.ok(err.error.includes('line 3: field "x" is bool but measurement "tcb" stores it as int64'), err.error);
    assert.ok(err.error.includes('line 4: field "x" is string but measurement "tcb" stores it as int64'), err.error);
    assert.ok(err.error.endsWith('(accepted=1 rejected=3)'), err.error);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT host, x FROM tcb ORDER BY time', 'tcbuf'), [['a', 1], ['c', 2]]);
    // The column stayed BIGINT: nothing was coerced.
    assert.deepEqual(await server.rows("SELECT typeof(x) FROM tcb LIMIT 1", 'tcbuf'), [['BIGINT']]);
  });

  test('a tag named like a stored field is rejected, naming both', async () => {
    await expect204(await server.writeLines(`tct,host=a x=1i ${ns(0)}`, 'db=tctag'));
    const err = await errorOf(await server.writeLines(`tct,x=oops y=1 ${ns(1)}\ntct,host=b x=2i ${ns(2)}`, 'db=tctag'), 400);
    assert.ok(err.error.includes('line 1: tag "x" conflicts with field "x" of type int64 in measurement "tct"'), err.error);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT host, x FROM tct ORDER BY time', 'tctag'), [['a', 1], ['b', 2]]);
  });

  test('a tag and a string field of one key on different lines or requests: the later refused, naming both (InfluxDB keeps tag and field keys apart)', async () => {
    // Within one request: line 2 refused; then a request naming the tag as a field, and the reverse.
    const inOne = await errorOf(await server.writeLines(`ttf,x=a v=1 ${ns(0)}\nttf x="fieldval" ${ns(1)}`, 'db=tagfield'), 400);
    assert.ok(inOne.error.includes('line 2: field "x" is string but measurement "ttf" stores it as a tag (string)'), inOne.error);
    assert.ok(inOne.error.endsWith('(accepted=1 rejected=1)'), inOne.error);
    const later = await errorOf(await server.writeLines(`ttf x="again" ${ns(2)}`, 'db=tagfield'), 400);
    assert.ok(later.error.includes('line 1: field "x" is string but measurement "ttf" stores it as a tag (string)'), later.error);
    await expect204(await server.writeLines(`tfg x="fieldval" ${ns(0)}`, 'db=tagfield'));
    const reverse = await errorOf(await server.writeLines(`tfg,x=tagval v=1 ${ns(1)}`, 'db=tagfield'), 400);
    assert.ok(reverse.error.includes('line 1: tag "x" conflicts with field "x" of type string in measurement "tfg"'), reverse.error);
    // On one line the field is renamed, as before.
    await expect204(await server.writeLines(`ttf,x=b x="same line" ${ns(3)}`, 'db=tagfield'));
    await server.flush();
    assert.deepEqual(await server.rows('SELECT x, x_value FROM ttf ORDER BY time', 'tagfield'), [['a', null], ['b', 'same line']]);
    assert.deepEqual(await server.rows('SELECT x FROM tfg', 'tagfield'), [['fieldval']]);
  });

  // Arc's columnar form has no tags: Telegraf's Arc output sends tags and string fields alike.
  test('a MessagePack columnar string column given no tag list is a string field where the measurement has one (buffered, stored, or in the same request), a tag otherwise', async () => {
    const columnar = (m: string, t: number, state: string) => packr.pack({ m, columns: { time: [t], host: ['a'], state: [state], up: [0] } });
    const post = (body: Uint8Array) => server.post('/api/v1/write/msgpack', Buffer.from(body), { 'x-arc-database': 'guessed' });
    // Telegraf moving from an InfluxDB output to the Arc output.
    await expect204(await server.writeLines(`svc,host=a state="running",up=1i ${ns(0)}`, 'db=guessed'));
    await expect204(await post(columnar('svc', 1700000001000, 'stopped')));
    await server.flush();
    await expect204(await post(columnar('svc', 1700000002000, 'starting')));
    // In one request: a row item's string field decides for a columnar item of the same measurement.
    await expect204(await post(packr.pack([
      { m: 'req', columns: { time: [1700000000000], host: ['a'], msg: ['x'] } },
      { m: 'req', t: 1700000001000, tags: { host: 'b' }, fields: { msg: 'y' } },
    ])));
    // No field of the name anywhere: a tag, as before; a later line-protocol string field of its name is then refused.
    await expect204(await post(columnar('fresh', 1700000000000, 'on')));
    const err = await errorOf(await server.writeLines(`fresh,host=a state="off" ${ns(1)}`, 'db=guessed'), 400);
    assert.ok(err.error.includes('line 1: field "state" is string but measurement "fresh" stores it as a tag (string)'), err.error);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT host, state, up FROM svc ORDER BY time', 'guessed'), [['a', 'running', 1], ['a', 'stopped', 0], ['a', 'starting', 0]]);
    assert.deepEqual(await server.rows('SELECT host, msg FROM req ORDER BY time', 'guessed'), [['a', 'x'], ['b', 'y']]);
    // Stored so: state a field, host a tag.
    const roles = await errorOf(await server.writeLines(`svc,state=x up=1i ${ns(3)}\nsvc host="b" ${ns(4)}`, 'db=guessed'), 400);
    assert.ok(roles.error.includes('line 1: tag "state" conflicts with field "state" of type string in measurement "svc"'), roles.error);
    assert.ok(roles.error.includes('line 2: field "host" is string but measurement "svc" stores it as a tag (string)'), roles.error);
  });

  test('after a restart, a stored tag and a stored string field keep their roles (strata:tags)', async () => {
    await afterRestart(`tfs,x=tagval s="text" ${ns(0)}`, 'tagfieldstored', async (second) => {
      const err = await errorOf(await second.writeLines(`tfs x="f" ${ns(1)}\ntfs,s=t v=1 ${ns(2)}\ntfs,x=ok s="fine" ${ns(3)}`, 'db=tagfieldstored'), 400);
      assert.ok(err.error.includes('line 1: field "x" is string but measurement "tfs" stores it as a tag (string)'), err.error);
      assert.ok(err.error.includes('line 2: tag "s" conflicts with field "s" of type string in measurement "tfs"'), err.error);
      assert.ok(err.error.endsWith('(accepted=1 rejected=2)'), err.error);
      await second.flush();
      assert.deepEqual(await second.rows('SELECT x, s FROM tfs ORDER BY time', 'tagfieldstored'), [['tagval', 'text'], ['ok', 'fine']]);
    });
  });

  test('a string column of files not written by Strata (no strata:tags) takes the role of the first accepted line, kept across restarts', async () => {
    const dataDir = tempDir();
    let server: TestServer | undefined;
    try {
      for (const m of ['fm', 'fm2']) {
        await foreignFiles(join(dataDir, `foreign/${m}/2023/11/14/22`), {
          [`${m}_20231114_221320_1_outside.parquet`]: "SELECT TIMESTAMPTZ '2023-11-14 22:13:20+00' AS time, 'old' AS x, 1.5::DOUBLE AS v",
        });
      }
      server = await TestServer.start({}, dataDir);
      // Refused for v: the line fixes nothing, so a string field x is still taken next.
      const refused = await errorOf(await server.writeLines(`fm,x=t v="str" ${ns(1)}`, 'db=foreign'), 400);
      assert.ok(refused.error.includes('line 1: field "v" is string but measurement "fm" stores it as float64'), refused.error);
      await expect204(await server.writeLines(`fm x="f",v=2 ${ns(2)}`, 'db=foreign'));
      // In one request, after a line adding another column: the first line naming x fixes it, a later tag x is refused.
      const mixed = await errorOf(await server.writeLines(`fm2 y=1i ${ns(4)}\nfm2 x="g" ${ns(5)}\nfm2,x=t v=3 ${ns(6)}`, 'db=foreign'), 400);
      assert.ok(mixed.error.includes('line 3: tag "x" conflicts with field "x" of type string in measurement "fm2"'), mixed.error);
      assert.ok(mixed.error.endsWith('(accepted=2 rejected=1)'), mixed.error);
      await server.flush();
      assert.deepEqual(await server.rows('SELECT x, y FROM fm2 ORDER BY time', 'foreign'), [['old', null], [null, 1], ['g', null]]);
      assert.equal(await stopWithin(server), 0);
      // Strata's file says x is a field: after a restart a tag x is refused, however many restarts.
      for (let i = 0; i < 2; i++) {
        server = await TestServer.start({}, dataDir);
        const tag = await errorOf(await server.writeLines(`fm,x=t v=3 ${ns(3)}`, 'db=foreign'), 400);
        assert.ok(tag.error.includes('line 1: tag "x" conflicts with field "x" of type string in measurement "fm"'), tag.error);
        assert.equal(await stopWithin(server), 0);
      }
      server = undefined;
    } finally {
      if (server !== undefined) await stopWithin(server);
      removeDir(dataDir);
    }
  });

  test('a stored file whose strata:tags is not a JSON list of names counts as one without it: writes go on', async () => {
    const dataDir = tempDir();
    let server: TestServer | undefined;
    try {
      await foreignFiles(join(dataDir, 'badmeta/bm/2023/11/14/22'), {
        'bm_20231114_221320_1_outside.parquet': "SELECT TIMESTAMPTZ '2023-11-14 22:13:20+00' AS time, 'a' AS host, 1.5::DOUBLE AS v",
      }, "(KV_METADATA {'strata:tags': 'oops'})");
      server = await TestServer.start({}, dataDir);
      await expect204(await server.writeLines(`bm,host=b v=2.5 ${ns(1)}`, 'db=badmeta'));
      assert.deepEqual(await server.rows('SELECT host, v FROM bm ORDER BY time', 'badmeta'), [['a', 1.5], ['b', 2.5]]);
    } finally {
      if (server !== undefined) assert.equal(await stopWithin(server), 0);
      removeDir(dataDir);
    }
  });

  test('against data already STORED in Parquet, after a restart: 400 per line, never 500', async () => {
    // A new process knows the schema only from the Parquet files.
    await afterRestart(`tcs,host=a x=1i ${ns(0)}`, 'tcstored', async (second) => {
      const res = await second.writeLines([
        `tcs,host=b x=2.5 ${ns(1)}`,
        `tcs,host=c x=3i ${ns(2)}`,
        `tcs,host=d x=false ${ns(3)}`,
      ].join('\n'), 'db=tcstored');
      const err = await errorOf(res, 400);
      assert.ok(err.error.includes('line 1: field "x" is float64 but measurement "tcs" stores it as int64'), err.error);
      assert.ok(err.error.includes('line 3: field "x" is bool but measurement "tcs" stores it as int64'), err.error);
      assert.ok(err.error.endsWith('(accepted=1 rejected=2)'), err.error);
      await second.flush();
      assert.deepEqual(await second.rows('SELECT host, x FROM tcs ORDER BY time', 'tcstored'), [['a', 1], ['c', 3]]);
    });
  });

  test('a stored file DuckDB cannot read when the stored schema is loaded: a 500 naming its key, never the data directory', async () => {
    // Never written by this process: the first write loads the schema from the files.
    const key = 'tcdamaged/dmg/2023/11/14/22/dmg_20231114_221320_1_outside.parquet';
    mkdirSync(dirname(join(server.dataDir, key)), { recursive: true });
    writeFileSync(join(server.dataDir, key), 'not a parquet file at all');
    const err = await errorOf(await server.writeLines(`dmg,host=a x=1i ${ns(0)}`, 'db=tcdamaged'), 500);
    assert.equal(err.error, `stored file '${key}' is not a valid Parquet file: No magic bytes found at end of file`);
    assert.ok(!err.error.includes(server.dataDir), err.error);
    assert.ok(!err.error.includes('LINE 1'), err.error);
  });

  test('a clash inside one request (x=1i on line 1, x=2.5 on line 2): line 2 rejected', async () => {
    const res = await server.writeLines(`tci,host=a x=1i ${ns(0)}\ntci,host=b x=2.5 ${ns(1)}\ntci,host=c x=3i ${ns(2)}`, 'db=tcin');
    const err = await errorOf(res, 400);
    assert.ok(err.error.includes('line 2: field "x" is float64 but measurement "tci" stores it as int64'), err.error);
    assert.ok(!err.error.includes('line 1:') && !err.error.includes('line 3:'), err.error);
    assert.equal(err.accepted, 2);
    assert.equal(err.rejected, 1);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT host, x FROM tci ORDER BY time', 'tcin'), [['a', 1], ['c', 3]]);
  });

  // A rejected line stores nothing, so the new fields it carried must not fix a type.
  test('a line rejected for a conflict does not fix the type of its other, new fields', async () => {
    await expect204(await server.writeLines(`tcp,host=a x=1i ${ns(0)}`, 'db=tcphantom'));
    const first = await errorOf(await server.writeLines(`tcp,host=b x=1.5,y="text" ${ns(1)}`, 'db=tcphantom'), 400);
    assert.ok(first.error.includes('line 1: field "x" is float64'), first.error);
    // No string y was ever stored; an integer y must be accepted.
    await expect204(await server.writeLines(`tcp,host=c y=7i ${ns(2)}`, 'db=tcphantom'));
    // Within one request too: line 2 is rejected for x, so its w fixes nothing for line 3.
    const second = await errorOf(await server.writeLines([`tcp,host=d x=2i ${ns(3)}`, `tcp,host=e x=2.5,w=1i ${ns(4)}`, `tcp,host=f w=3.5 ${ns(5)}`].join('\n'), 'db=tcphantom'), 400);
    assert.ok(second.error.includes('line 2: field "x" is float64'), second.error);
    assert.ok(second.error.endsWith('(accepted=2 rejected=1)'), second.error);
    // Line 2's new z comes before the field that rejects it, which is new too (line 1 gave q its type).
    const third = await errorOf(await server.writeLines([`tcq,host=g q=1i ${ns(6)}`, `tcq,host=h z=1i,q=2.5 ${ns(7)}`, `tcq,host=i z=3.5 ${ns(8)}`].join('\n'), 'db=tcphantom'), 400);
    assert.ok(third.error.includes('line 2: field "q" is float64'), third.error);
    assert.ok(third.error.endsWith('(accepted=2 rejected=1)'), third.error);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT host, x, y, w FROM tcp ORDER BY time', 'tcphantom'),
      [['a', 1, null, null], ['c', null, 7, null], ['d', 2, null, null], ['f', null, null, 3.5]]);
    assert.deepEqual(await server.rows('SELECT host, q, z FROM tcq ORDER BY time', 'tcphantom'), [['g', 1, null], ['i', null, 3.5]]);
  });
});

// InfluxDB keys are case-sensitive, but DuckDB takes `Usage` and `usage` for one column: a
// buffer holding both could never be flushed (and every query of it failed), so such a key
// is refused per line, as a type conflict is.
describe('a tag or field key differing only in case from a column', BOUND, () => {
  const clash = (what: 'tag' | 'field', key: string, column: string, m: string): string =>
    `${what} "${key}" clashes with column "${column}" of measurement "${m}" (column names are case-insensitive)`;

  // InfluxDB v2 answers lines it parsed but refused with 422 (unprocessable entity).
  const endpoints: { name: string; db: string; status: number; send: (body: string, db: string) => Promise<Response> }[] = [
    { name: 'InfluxDB v1 /write', db: 'ci_v1', status: 400, send: (body, db) => server.post(`/write?db=${db}`, body) },
    { name: 'InfluxDB v2 /api/v2/write', db: 'ci_v2', status: 422, send: (body, db) => server.post(`/api/v2/write?org=o&bucket=${db}`, body) },
  ];
  for (const e of endpoints) {
    test(`${e.name}: within one request, the spelling of the first accepted line wins (${e.status})`, async () => {
      const err = await errorOf(await e.send([
        `cir,host=a Usage=1 ${ns(0)}`,
        `cir,host=b usage=2 ${ns(1)}`,
        `cir,host=c Usage=3 ${ns(2)}`,
        `cir,host=d USAGE=4,v=1 ${ns(3)}`,
      ].join('\n'), e.db), e.status);
      assert.match(err.error, /^partial write: /);
      assert.ok(err.error.includes(`line 2: ${clash('field', 'usage', 'Usage', 'cir')}`), err.error);
      assert.ok(err.error.includes(`line 4: ${clash('field', 'USAGE', 'Usage', 'cir')}`), err.error);
      assert.equal(err.accepted, 2);
      assert.equal(err.rejected, 2);
      await server.flush();
      const all = await server.query('SELECT * FROM cir ORDER BY time', e.db);
      assert.equal(all.status, 200, JSON.stringify(all.body));
      assert.deepEqual(all.body.columns, ['time', 'host', 'Usage']);
      assert.deepEqual(all.body.data, [['2023-11-14T22:13:20Z', 'a', 1], ['2023-11-14T22:13:22Z', 'c', 3]]);
    });
  }

  test('against records still BUFFERED from an earlier request', async () => {
    await expect204(await server.writeLines(`cib,host=a Usage=1 ${ns(0)}`, 'db=cibuf'));
    // Not flushed: the clash must be found against the in-memory buffer's schema.
    const err = await errorOf(await server.writeLines([
      `cib,host=b usage=2 ${ns(1)}`,
      `cib,host=c Usage=3 ${ns(2)}`,
      `cib,HOST=d Usage=4 ${ns(3)}`,
    ].join('\n'), 'db=cibuf'), 400);
    assert.ok(err.error.includes(`line 1: ${clash('field', 'usage', 'Usage', 'cib')}`), err.error);
    assert.ok(err.error.includes(`line 3: ${clash('tag', 'HOST', 'host', 'cib')}`), err.error);
    assert.ok(err.error.endsWith('(accepted=1 rejected=2)'), err.error);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT * FROM cib ORDER BY time', 'cibuf'),
      [['2023-11-14T22:13:20Z', 'a', 1], ['2023-11-14T22:13:22Z', 'c', 3]]);
  });

  test('against columns STORED in Parquet, after a restart', async () => {
    // A new process knows the column names only from the Parquet files.
    await afterRestart(`cis,host=a Usage=1i ${ns(0)}`, 'cistored', async (second) => {
      const err = await errorOf(await second.writeLines([
        `cis,host=b usage=2i ${ns(1)}`,
        `cis,Host=c Usage=3i ${ns(2)}`,
        `cis,host=d Usage=4i ${ns(3)}`,
      ].join('\n'), 'db=cistored'), 400);
      assert.ok(err.error.includes(`line 1: ${clash('field', 'usage', 'Usage', 'cis')}`), err.error);
      assert.ok(err.error.includes(`line 2: ${clash('tag', 'Host', 'host', 'cis')}`), err.error);
      assert.ok(err.error.endsWith('(accepted=1 rejected=2)'), err.error);
      await second.flush();
      assert.deepEqual(await second.rows('SELECT * FROM cis ORDER BY time', 'cistored'),
        [['2023-11-14T22:13:20Z', 'a', 1], ['2023-11-14T22:13:23Z', 'd', 4]]);
    });
  });

  test('a tag and a field differing only in case, across lines and on one line', async () => {
    const err = await errorOf(await server.writeLines([
      `citf,Host=a v=1 ${ns(0)}`,
      `citf,Host=b host="x",v=2 ${ns(1)}`,
      `citf,host=c v=3 ${ns(2)}`,
      // Both new: the line is refused whole, and neither spelling becomes a column.
      `citf,Region=eu region="x",v=4 ${ns(3)}`,
      `citf,region=us v=5 ${ns(4)}`,
    ].join('\n'), 'db=citf'), 400);
    assert.ok(err.error.includes(`line 2: ${clash('field', 'host', 'Host', 'citf')}`), err.error);
    assert.ok(err.error.includes(`line 3: ${clash('tag', 'host', 'Host', 'citf')}`), err.error);
    assert.ok(err.error.includes(`line 4: ${clash('field', 'region', 'Region', 'citf')}`), err.error);
    assert.ok(err.error.endsWith('(accepted=2 rejected=3)'), err.error);
    await server.flush();
    const all = await server.query('SELECT * FROM citf ORDER BY time', 'citf');
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.deepEqual(all.body.columns, ['time', 'Host', 'region', 'v']);
    assert.deepEqual(all.body.data, [['2023-11-14T22:13:20Z', 'a', null, 1], ['2023-11-14T22:13:24Z', null, 'us', 5]]);
  });

  test('a tag or field named Time or TIME clashes with the time column', async () => {
    const err = await errorOf(await server.writeLines([
      `citime,host=a v=1 ${ns(0)}`,
      `citime,host=b Time=2 ${ns(1)}`,
      `citime,TIME=c v=3 ${ns(2)}`,
      `citime,host=d v=4 ${ns(3)}`,
    ].join('\n'), 'db=citime'), 400);
    assert.ok(err.error.includes('line 2: field key "Time" clashes with the timestamp column "time" (column names are case-insensitive)'), err.error);
    assert.ok(err.error.includes('line 3: tag key "TIME" clashes with the timestamp column "time" (column names are case-insensitive)'), err.error);
    assert.ok(err.error.endsWith('(accepted=2 rejected=2)'), err.error);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT * FROM citime ORDER BY time', 'citime'),
      [['2023-11-14T22:13:20Z', 'a', 1], ['2023-11-14T22:13:23Z', 'd', 4]]);
  });

  test('MessagePack: reported per item, the other items stored', async () => {
    const items = [
      { m: 'cimp', t: 1700000000000, tags: { host: 'a' }, fields: { Usage: 1.5 } },
      { m: 'cimp', t: 1700000001000, tags: { host: 'b' }, fields: { usage: 2.5 } },
      { m: 'cimp', t: 1700000002000, tags: { Host: 'c' }, fields: { Usage: 3.5 } },
      { m: 'cimp', t: 1700000003000, tags: { host: 'd' }, fields: { TIME: 4.5 } },
      { m: 'cimp', t: 1700000004000, tags: { host: 'e' }, fields: { Usage: 5.5 } },
    ];
    const err = await partialOf(await server.post('/api/v1/write/msgpack', packr.pack(items), { 'x-arc-database': 'cimp' }));
    assert.ok(err.error.includes(`item 1: ${clash('field', 'usage', 'Usage', 'cimp')}`), err.error);
    assert.ok(err.error.includes(`item 2: ${clash('tag', 'Host', 'host', 'cimp')}`), err.error);
    assert.ok(err.error.includes('item 3: field key "TIME" clashes with the timestamp column "time"'), err.error);
    assert.ok(err.error.endsWith('(accepted=2 rejected=3)'), err.error);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT * FROM cimp ORDER BY time', 'cimp'),
      [['2023-11-14T22:13:20Z', 'a', 1.5], ['2023-11-14T22:13:24Z', 'e', 5.5]]);
  });

  // Written before such keys were refused (each flush then held one spelling), or by two writers.
  test('stored files spelling a column in two cases read as one column; a write takes the spelling of the first file', async () => {
    const dataDir = tempDir();
    let second: TestServer | undefined;
    try {
      await foreignFiles(join(dataDir, 'cimixed/cim/2023/11/14/22'), {
        'cim_20231114_221320_1_olda.parquet': `SELECT TIMESTAMPTZ '2023-11-14 22:13:20+00' AS time, 'a' AS host, 1.5::DOUBLE AS "Usage"`,
        'cim_20231114_221321_1_oldb.parquet': `SELECT TIMESTAMPTZ '2023-11-14 22:13:21+00' AS time, 'b' AS host, 2.5::DOUBLE AS "usage"`,
      });
      second = await TestServer.start({}, dataDir);
      const all = await second.query('SELECT * FROM cim ORDER BY time', 'cimixed');
      assert.equal(all.status, 200, JSON.stringify(all.body));
      assert.deepEqual(all.body.columns, ['time', 'host', 'Usage']);
      assert.deepEqual(all.body.data, [['2023-11-14T22:13:20Z', 'a', 1.5], ['2023-11-14T22:13:21Z', 'b', 2.5]]);
      assert.deepEqual(await second.rows('SELECT usage, "USAGE" FROM cim WHERE time >= \'2023-11-14T22:13:21Z\'', 'cimixed'), [[2.5, 2.5]]);
      const err = await errorOf(await second.writeLines(`cim,host=c usage=3.5 ${ns(2)}\ncim,host=d Usage=4.5 ${ns(3)}`, 'db=cimixed'), 400);
      assert.ok(err.error.includes(`line 1: ${clash('field', 'usage', 'Usage', 'cim')}`), err.error);
      assert.ok(err.error.endsWith('(accepted=1 rejected=1)'), err.error);
      await second.flush();
      assert.deepEqual(await second.rows('SELECT host, Usage FROM cim ORDER BY time', 'cimixed'), [['a', 1.5], ['b', 2.5], ['d', 4.5]]);
    } finally {
      if (second !== undefined) assert.equal(await stopWithin(second), 0);
      removeDir(dataDir);
    }
  });
});

test('a body where every line is bad: 400 "write rejected", nothing written', BOUND, async () => {
  const res = await server.writeLines(['allbad', 'allbad v=', `allbad v="open ${ns(0)}`, 'allbad,host v=1'].join('\n'), 'db=allbad');
  const err = await errorOf(res, 400);
  // With nothing accepted the message says so instead of "partial write".
  assert.match(err.error, /^write rejected: line 1: missing fields; line 2: missing field value for "v"; line 3: unterminated string in field "v"; line 4: missing tag value for key "host"/);
  assert.ok(err.error.endsWith('(accepted=0 rejected=4)'), err.error);
  assert.equal(err.accepted, 0);
  assert.equal(err.rejected, 4);
  await server.flush();
  assert.deepEqual(await server.rows('SELECT * FROM allbad', 'allbad'), []);
  assert.equal(hasDatabaseDir(server, 'allbad'), false);
  assert.ok(!(await server.rows('SHOW DATABASES')).some(([d]) => d === 'allbad'));
});

describe('precision', BOUND, () => {
  // One instant per unit, with as much sub-second detail as the unit can carry:
  // [precision, timestamp, RFC 3339 read back, exact µs since the epoch].
  const cases: [string, string, string, number][] = [
    ['ns', '1700000000123456789', '2023-11-14T22:13:20.123456Z', 1700000000123456],
    ['n', '1700000000123456789', '2023-11-14T22:13:20.123456Z', 1700000000123456],
    ['us', '1700000000123456', '2023-11-14T22:13:20.123456Z', 1700000000123456],
    ['u', '1700000000654321', '2023-11-14T22:13:20.654321Z', 1700000000654321],
    ['ms', '1700000000123', '2023-11-14T22:13:20.123Z', 1700000000123000],
    ['s', '1700000000', '2023-11-14T22:13:20Z', 1700000000000000],
    ['m', '28333333', '2023-11-14T22:13:00Z', 1699999980000000],
    ['h', '472222', '2023-11-14T22:00:00Z', 1699999200000000],
  ];
  for (const [precision, stamp, iso, micros] of cases) {
    test(`precision=${precision}: ${stamp} is stored as ${iso}`, async () => {
      const db = `prec_${precision}`;
      await expect204(await server.writeLines(`p,unit=${precision} v=1 ${stamp}`, `db=${db}&precision=${precision}`));
      await server.flush();
      assert.deepEqual(await server.rows('SELECT time, unit, epoch_us(time) FROM p', db), [[iso, precision, micros]]);
    });
  }

  test('negative nanoseconds floor to the µs before (pre-1970)', async () => {
    await expect204(await server.writeLines('neg v=1 -1500', 'db=prec_neg&precision=ns'));
    await server.flush();
    assert.deepEqual(await server.rows('SELECT time, epoch_us(time) FROM neg', 'prec_neg'), [['1969-12-31T23:59:59.999998Z', -2]]);
  });

  test('InfluxDB v2 takes precision=s too', async () => {
    await expect204(await server.post('/api/v2/write?org=o&bucket=prec_v2&precision=s', 'p v=2 1700000000'));
    await server.flush();
    assert.deepEqual(await server.rows('SELECT time, v FROM p', 'prec_v2'), [['2023-11-14T22:13:20Z', 2]]);
  });

  test('precision=xyz: 400 naming the value, nothing written', async () => {
    for (const path of ['/write?db=prec_bad&precision=xyz', '/api/v2/write?bucket=prec_bad&precision=xyz']) {
      const err = await errorOf(await server.post(path, 'p v=1 1700000000'), 400);
      assert.ok(err.error.includes('invalid precision "xyz"'), err.error);
    }
    await server.flush();
    assert.deepEqual(await server.rows('SELECT * FROM p', 'prec_bad'), []);
    assert.equal(hasDatabaseDir(server, 'prec_bad'), false);
  });

  test('InfluxDB v2 refuses the v1 precisions (n, u, m, h) as InfluxDB 2.x does; /write takes them', async () => {
    for (const p of ['n', 'u', 'µs', 'm', 'h']) {
      const err = await errorOf(await server.post(`/api/v2/write?bucket=prec_v1only&precision=${encodeURIComponent(p)}`, 'p v=1 1'), 400);
      assert.ok(err.error.startsWith(`invalid precision "${p}": must be one of ns, us, ms, s`), err.error);
      await expect204(await server.writeLines('p v=1 1', `db=prec_v1only&precision=${encodeURIComponent(p)}`));
    }
    await server.flush();
    assert.deepEqual(await server.rows('SELECT count(*) FROM p', 'prec_v1only'), [[5]]);
  });

  test("precision named like an Object.prototype member: 400, and the writes logged with it are answered and kept", async () => {
    const bad = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];
    // Sent at once, so that good writes share the WAL's group commit with the bad ones.
    const [answers, good] = await Promise.all([
      Promise.all(bad.flatMap((p) => ['p v=1', 'p v=1 1700000000'].flatMap((line) => [
        server.post(`/write?db=prec_proto&precision=${p}`, line), server.post(`/api/v2/write?bucket=prec_proto&precision=${p}`, line)]))),
      Promise.all(Array.from({ length: 20 }, (_, i) => server.post('/write?db=prec_proto_ok&precision=s', `ok v=${i}i ${1700000000 + i}`))),
    ]);
    for (const [i, res] of answers.entries()) {
      const err = await errorOf(res, 400);
      assert.ok(err.error.startsWith(`invalid precision "${bad[Math.floor(i / 4)]}"`), err.error);
    }
    assert.deepEqual(good.map((r) => r.status), Array(20).fill(204));
    await server.flush();
    assert.equal(hasDatabaseDir(server, 'prec_proto'), false);
    assert.deepEqual(await server.rows('SELECT count(*), sum(v) FROM ok', 'prec_proto_ok'), [[20, 190]]);
  });
});

describe('bodies: empty, compressed, too large', BOUND, () => {
  test('empty body: 400 on every write endpoint', async () => {
    for (const path of ['/write?db=empty', '/api/v2/write?bucket=empty', '/api/v1/write/line-protocol', '/api/v1/write/msgpack']) {
      const err = await errorOf(await server.post(path, ''), 400);
      assert.match(err.error, /Empty request body/, path);
    }
  });

  test('a body of only comments and blank lines: 204 and nothing written, as InfluxDB 1.x and 2.x answer', async () => {
    // InfluxDB 2.x refuses only a zero-byte body ("writing requires points"); 1.x and 2.x
    // parse comments and blank lines to zero points without error and answer 204.
    const walAppends = async (): Promise<number> => ((await (await fetch(`${server.url}/api/v1/write/stats`)).json()) as { wal: { appends: number } }).wal.appends;
    const before = await walAppends();
    for (const path of ['/write?db=comments', '/api/v2/write?bucket=comments', '/api/v1/write/line-protocol?db=comments']) {
      await expect204(await server.post(path, '# a comment\n\n   \n# another one\n'));
    }
    assert.equal(await walAppends(), before, 'nothing to make durable: no WAL entry');
    await server.flush();
    assert.equal(hasDatabaseDir(server, 'comments'), false);
  });

  test('gzip, deflate and br bodies with Content-Encoding: 204 and stored', async () => {
    await expect204(await server.post('/write?db=enc', gzipSync(`enc,how=gzip v=1 ${ns(0)}`), { 'content-encoding': 'gzip' }));
    await expect204(await server.post('/write?db=enc', deflateSync(`enc,how=deflate v=2 ${ns(1)}`), { 'content-encoding': 'deflate' }));
    await expect204(await server.post('/write?db=enc', brotliCompressSync(`enc,how=br v=3 ${ns(2)}`), { 'content-encoding': 'br' }));
    await expect204(await server.post('/api/v1/write/msgpack', gzipSync(packr.pack({ m: 'enc', t: 1700000003000, tags: { how: 'mp' }, fields: { v: 4.5 } })),
      { 'content-encoding': 'gzip', 'x-arc-database': 'enc' }));
    await server.flush();
    assert.deepEqual(await server.rows('SELECT how, v FROM enc ORDER BY time', 'enc'), [['gzip', 1], ['deflate', 2], ['br', 3], ['mp', 4.5]]);
  });

  test('corrupt gzip: 400 naming the encoding, nothing written', async () => {
    const good = gzipSync(`corrupt v=1 ${ns(0)}\n`.repeat(50));
    const truncated = good.subarray(0, good.length - 10);
    const garbage = Buffer.from('this is not gzip at all');
    for (const [body, headers] of [
      [truncated, { 'content-encoding': 'gzip' }],
      [truncated, {}], // recognised as gzip by its magic bytes
      [garbage, { 'content-encoding': 'gzip' }],
    ] as const) {
      const err = await errorOf(await server.post('/write?db=corrupt', body, headers), 400);
      assert.match(err.error, /^invalid gzip body: /);
    }
    await server.flush();
    assert.deepEqual(await server.rows('SELECT * FROM corrupt', 'corrupt'), []);
  });

  // Redpanda Connect's Arc output sends zstd by default, by Content-Encoding; Arc also recognises its magic bytes.
  test('zstd bodies, by Content-Encoding or by magic bytes, several frames and raw blocks included: 204 and stored; truncated: 400', async () => {
    // The 20 lines `zst,host=h<i % 3> v=<i>.5 <1700000000 + i s>`, by the zstd command-line tool (-19, with its checksum).
    const lines = Buffer.from('KLUv/WQCAnUDAPJEDRGgqwPgCKaq5tR1bdti34pTMf/38/9+/t/PX6mmlAh9To3JUiakmfmDooMZXTCUrecaE8/FO6gR4O9/BrAzSgeBhRWihhLqA0iUjvjm4V3Du4VLCZcOvil4N/Au4Fptthvb7DZbHiTd8wlVuCRgSQ==', 'base64');
    await expect204(await server.post('/write?db=zstdb', lines, { 'content-encoding': 'zstd' }));
    await expect204(await server.post('/api/v2/write?bucket=zstdb2', lines));
    const item = packr.pack({ m: 'zst', t: 1700000100000, tags: { host: 'mp' }, fields: { v: 99.5 } });
    const half = Math.floor(item.length / 2);
    const frames = Buffer.concat([zstdFrame([{ raw: item.subarray(0, half) }]), zstdFrame([{ raw: item.subarray(half, half + 1) }, { raw: item.subarray(half + 1) }])]);
    await expect204(await server.post('/api/v1/write/msgpack', frames, { 'content-encoding': 'zstd', 'x-arc-database': 'zstdb' }));
    for (const [body, headers] of [[lines.subarray(0, lines.length - 20), { 'content-encoding': 'zstd' }], [frames.subarray(0, frames.length - 1), {}]] as const) {
      const err = await errorOf(await server.post('/write?db=zstdb', body, headers), 400);
      assert.match(err.error, /^invalid zstd body: truncated block$/);
    }
    // Corrupted: the checksum and the content size a frame states are checked (fzstd checks neither).
    const badSum = Buffer.from(lines);
    badSum[badSum.length - 1] ^= 0xff;
    assert.equal((await errorOf(await server.post('/write?db=zstdb', badSum, { 'content-encoding': 'zstd' }), 400)).error, 'invalid zstd body: frame 1 does not match its checksum');
    const badSize = Buffer.from(lines);
    badSize[5] += 1; // the content size, 770 as 0x0202 + 256
    assert.equal((await errorOf(await server.post('/write?db=zstdb', badSize, { 'content-encoding': 'zstd' }), 400)).error, 'invalid zstd body: frame 1 states 771 bytes of content and holds 770');
    // Frames the decoder would read wrongly: one needing a dictionary, a block past the 128 KiB every block keeps to.
    const withDictionary = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x01, 7 << 3, 7]), zstdFrame([{ raw: Buffer.from('x v=1') }]).subarray(6)]);
    assert.equal((await errorOf(await server.post('/write?db=zstdb', withDictionary), 400)).error, 'invalid zstd body: frames compressed with a dictionary are not supported');
    const oversized = zstdFrame([{ raw: Buffer.alloc(200_000, 0x20) }], 18);
    assert.equal((await errorOf(await server.post('/write?db=zstdb', oversized), 400)).error, 'invalid zstd body: a block of 200000 bytes, above the 131072 its frame allows');
    // The decoder would allocate a declared window whole and move it after every block: a
    // 2 GiB window, or a few bytes per block through an 8 MiB one, would hold the server.
    const huge = await errorOf(await server.post('/write?db=zstdb', zstdFrame([{ raw: Buffer.from('x v=1') }], 31)), 400);
    assert.equal(huge.error, 'invalid zstd body: a frame needs a window of 2147483648 bytes, above the 8388608 accepted (compress at a level of 19 or below, without --long)');
    const started = performance.now();
    const tiny = await errorOf(await server.post('/write?db=zstdb', zstdFrame(Array.from({ length: 9000 }, () => ({ raw: Buffer.from('x') })), 23)), 400);
    assert.match(tiny.error, /^invalid zstd body: 9000 blocks, more than an encoder writes for at most \d+ bytes$/);
    assert.ok(performance.now() - started < 5000, 'refused before decoding');
    // Blocks at an 8 MiB window, as zstd -19 writes them, decode.
    const item8 = packr.pack({ m: 'zst', t: 1700000200000, tags: { host: 'w8' }, fields: { v: 8.5 } });
    await expect204(await server.post('/api/v1/write/msgpack', zstdFrame(Array.from(item8, (byte) => ({ raw: Uint8Array.of(byte) })), 23), { 'x-arc-database': 'zstdb' }));
    await server.flush();
    const expected = Array.from({ length: 20 }, (_, i) => [`h${i % 3}`, i + 0.5]);
    assert.deepEqual(await server.rows('SELECT host, v FROM zst ORDER BY time', 'zstdb'), [...expected, ['mp', 99.5], ['w8', 8.5]]);
    assert.deepEqual(await server.rows('SELECT host, v FROM zst ORDER BY time', 'zstdb2'), expected);
  });

  test('a Content-Encoding Strata does not decode, or a name of an Object.prototype member, is refused with 415, nothing written', async () => {
    for (const encoding of ['compress', 'constructor', '__proto__', 'toString']) {
      const res = await server.post('/write?db=zstd', `zstd v=1 ${ns(0)}`, { 'content-encoding': encoding });
      assert.equal(res.headers.get('accept-encoding'), 'gzip, deflate, br, zstd');
      const err = await errorOf(res, 415);
      assert.ok(err.error.includes(`unsupported Content-Encoding "${encoding.toLowerCase()}"`), err.error);
    }
    await server.flush();
    assert.deepEqual(await server.rows('SELECT * FROM zstd', 'zstd'), []);
  });

  test('gzip bomb and oversized raw body: 413, nothing written, server still serves', async () => {
    const limited = await TestServer.start({ STRATA_MAX_DECOMPRESSED_BYTES: '1000000', STRATA_MAX_BODY_BYTES: '200000' });
    try {
      const line = `bomb,host=a v=1 ${ns(0)}\n`;
      const inflated = Buffer.from(line.repeat(Math.ceil(10_000_000 / line.length)));
      const bomb = gzipSync(inflated, { level: 9 });
      assert.ok(bomb.length < 200_000, `the bomb itself (${bomb.length} B) must pass the raw-body cap`);
      const err = await errorOf(await limited.post('/write?db=limits', bomb, { 'content-encoding': 'gzip' }), 413);
      assert.match(err.error, /decompressed body exceeds the limit of 1000000 bytes/);
      // Without the header, by magic bytes: same cap.
      await errorOf(await limited.post('/write?db=limits', bomb), 413);
      // 128 MiB of zstd runs in 4 KB: refused from the sizes its blocks state, not inflated.
      const zstdBomb = zstdFrame(Array.from({ length: 1024 }, () => ({ rle: 0x78, size: 128 * 1024 })));
      assert.ok(zstdBomb.length < 5000);
      for (const headers of [{ 'content-encoding': 'zstd' }, {}] as Record<string, string>[]) {
        const zerr = await errorOf(await limited.post('/write?db=limits', zstdBomb, headers), 413);
        assert.match(zerr.error, /decompressed body exceeds the limit of 1000000 bytes/);
      }

      const raw = Buffer.from(`big,host=a v=1 ${ns(0)}\n`.repeat(Math.ceil(250_000 / line.length)));
      assert.ok(raw.length > 200_000);
      const tooBig = await errorOf(await limited.post('/write?db=limits', raw), 413);
      assert.ok(tooBig.error.length > 0);
      // A MessagePack body goes through the same cap.
      await errorOf(await limited.post('/api/v1/write/msgpack', Buffer.concat([packr.pack({ m: 'big', fields: { v: 1.5 } }), Buffer.alloc(200_001)]),
        { 'x-arc-database': 'limits' }), 413);

      // Still serving, and neither body left a record behind.
      await expect204(await limited.writeLines(`ok v=1 ${ns(0)}`, 'db=limits'));
      await limited.flush();
      assert.deepEqual(await limited.rows('SELECT * FROM bomb', 'limits'), []);
      assert.deepEqual(await limited.rows('SELECT * FROM big', 'limits'), []);
      assert.deepEqual(await limited.rows('SELECT v FROM ok', 'limits'), [[1]]);
    } finally {
      assert.equal(await stopWithin(limited), 0);
      removeDir(limited.dataDir);
    }
  });
});

describe('names', BOUND, () => {
  test('database ".." (query and header) and other escaping names: 400, nothing outside the data dir', async () => {
    const probe = unique('escape');
    const outside = dirname(server.dataDir);
    const existing = new Set(readdirSync(outside));
    const attempts: [string, Record<string, string>, string][] = [
      ['/write?db=..', {}, 'invalid database name: database ".." is not allowed'],
      ['/write?db=%2E%2E', {}, 'invalid database name: database ".." is not allowed'],
      ['/write?db=.', {}, 'invalid database name: database "." is not allowed'],
      ['/api/v2/write?bucket=..', {}, 'invalid database name: database ".." is not allowed'],
      [`/api/v2/write?bucket=${encodeURIComponent(`../${probe}`)}`, {}, 'invalid database name: database ".." is not allowed'],
      [`/api/v2/write?bucket=${encodeURIComponent(`a/../${probe}`)}`, {}, 'contains "/"'],
      [`/write?db=${encodeURIComponent(`../${probe}`)}`, {}, `contains "/"`],
      ['/write?db=ok', { 'x-arc-database': `../${probe}` }, `invalid database name: database "../${probe}" contains "/"`],
      ['/api/v1/write/line-protocol', { 'x-arc-database': '..' }, 'invalid database name: database ".." is not allowed'],
    ];
    for (const [path, headers, message] of attempts) {
      const err = await errorOf(await server.post(path, `${probe} v=1 ${ns(0)}`, headers), 400);
      assert.ok(err.error.includes(message), `${path}: ${err.error}`);
    }
    const mp = await errorOf(await server.post('/api/v1/write/msgpack', packr.pack({ m: probe, fields: { v: 1.5 } }), { 'x-arc-database': `../${probe}` }), 400);
    assert.ok(mp.error.includes('contains "/"'), mp.error);
    await server.flush();
    assert.deepEqual([...readdirSync(outside)].filter((n) => !existing.has(n) && n.includes(probe)), []);
    assert.equal(existsSync(join(outside, probe)), false);
    assert.equal(existsSync(join(server.dataDir, probe)), false);
    // The "ok" database of the header attempt was not used instead.
    assert.equal(hasDatabaseDir(server, 'ok'), false);
  });

  test("InfluxDB 1.8's v2 bucket form db/rp (and db/) writes into db, the retention policy ignored", async () => {
    await expect204(await server.post('/api/v2/write?org=o&bucket=bucketdb%2Fautogen&precision=s', 'rp v=1 1700000000'));
    await expect204(await server.post('/api/v2/write?org=o&bucket=bucketdb/&precision=s', 'rp v=2 1700000001'));
    await server.flush();
    assert.deepEqual(await server.rows('SELECT v FROM rp ORDER BY v', 'bucketdb'), [[1], [2]]);
  });

  test('a repeated ?db= parameter is a 400, not a 500, and writes nothing', async () => {
    const err = await errorOf(await server.post('/write?db=dup1&db=dup2', `dup v=1 ${ns(0)}`), 400);
    assert.ok(err.error.includes('more than once'), err.error);
    await server.flush();
    assert.equal(hasDatabaseDir(server, 'dup1') || hasDatabaseDir(server, 'dup2'), false);
  });

  test('measurement ".." or containing "/": that line rejected, the others stored', async () => {
    const res = await server.writeLines([`..,host=a v=1 ${ns(0)}`, `a/b v=2 ${ns(1)}`, `.,host=c v=3 ${ns(2)}`, `good v=4 ${ns(3)}`].join('\n'), 'db=badmeas');
    const err = await errorOf(res, 400);
    assert.ok(err.error.includes('line 1: measurement ".." is not allowed'), err.error);
    assert.ok(err.error.includes('line 2: measurement "a/b" contains "/"'), err.error);
    assert.ok(err.error.includes('line 3: measurement "." is not allowed'), err.error);
    assert.ok(err.error.endsWith('(accepted=1 rejected=3)'), err.error);
    await server.flush();
    assert.deepEqual(readdirSync(join(server.dataDir, 'badmeas')).filter((n) => !n.startsWith('.')), ['good']);
    assert.deepEqual(await server.rows('SELECT v FROM good', 'badmeas'), [[4]]);
    assert.equal(existsSync(join(server.dataDir, 'a')), false);
  });

  test('NUL characters and names over 200 characters are refused', async () => {
    const nul = await errorOf(await server.post('/write?db=a%00b', `nul v=1 ${ns(0)}`), 400);
    assert.ok(nul.error.includes('invalid database name: database contains a NUL character'), nul.error);
    const longDb = await errorOf(await server.post(`/write?db=${'d'.repeat(201)}`, `nul v=1 ${ns(0)}`), 400);
    assert.ok(longDb.error.includes('database longer than 200 characters'), longDb.error);
    // A directory name may take 180 bytes (the file name adds about 60 to it).
    const res = await server.writeLines([`a\u0000b v=1 ${ns(0)}`, `${'m'.repeat(201)} v=2 ${ns(1)}`,
      `${'m'.repeat(180)} v=3 ${ns(2)}`, `${'m'.repeat(181)} v=4 ${ns(3)}`].join('\n'), 'db=namelen');
    const err = await errorOf(res, 400);
    assert.ok(err.error.includes('line 1: measurement contains a NUL character'), err.error);
    assert.ok(err.error.includes('line 2: measurement longer than 200 characters'), err.error);
    assert.ok(err.error.includes('line 4: measurement longer than 180 bytes as a directory name'), err.error);
    assert.ok(err.error.endsWith('(accepted=1 rejected=3)'), err.error);
    await server.flush();
    assert.deepEqual(await server.rows(`SELECT v FROM "${'m'.repeat(180)}"`, 'namelen'), [[3]]);
  });

  // A name within 200 characters can still be too long for the file system once
  // percent-encoded or UTF-8 encoded (255 bytes per path segment); accepting it makes
  // every later flush fail. Its own server, because it poisons the flush queue.
  test('a name too long on disk once encoded is refused at write time and does not block flushing', async () => {
    const own = await TestServer.start();
    try {
      const long = [':'.repeat(200), '\u00e9'.repeat(200)];
      const res = await own.writeLines([...long.map((m, i) => `${m} v=${i} ${ns(i)}`), `fine v=9 ${ns(9)}`].join('\n'), 'db=toolong');
      const text = await res.text();
      assert.equal(res.status, 400, text);
      assert.match(text, /line 1: measurement longer than 180 bytes as a directory name; line 2: measurement longer than 180 bytes as a directory name/);
      const flush = await own.post('/api/v1/write/flush', '');
      assert.equal(flush.status, 200, await flush.text());
      assert.deepEqual(await own.rows('SELECT v FROM fine', 'toolong'), [[9]]);
    } finally {
      // A server that cannot write its buffers exits 1, or sometimes hangs on exit
      // (reported separately): not what is tested here.
      await stopWithin(own, 5_000);
      removeDir(own.dataDir);
    }
  });

  test('dotted and unusual names are accepted, read back by name, percent-encoded on disk where needed', async () => {
    // [line-protocol measurement, real name, directory on disk]
    const names: [string, string, string][] = [
      ['net.bytes', 'net.bytes', 'net.bytes'],
      ['a:b', 'a:b', 'a%3Ab'],
      ['c*d', 'c*d', 'c%2Ad'],
      ['e%f', 'e%f', 'e%25f'],
      ['g\\ h', 'g h', 'g h'],
      ["it's", "it's", "it's"],
      ['.hidden', '.hidden', '%2Ehidden'],
      ['q?[x]{y}', 'q?[x]{y}', 'q%3F%5Bx%5D%7By%7D'],
      ['x%41', 'x%41', 'x%2541'],
    ];
    const body = names.map(([lp], i) => `${lp},host=h${i} v=${i} ${ns(i)}`).join('\n');
    await expect204(await server.writeLines(body, 'db=odd'));
    await server.flush();
    const onDisk = readdirSync(join(server.dataDir, 'odd')).filter((n) => !n.startsWith('.')).sort();
    assert.deepEqual(onDisk, names.map(([, , dir]) => dir).filter((d) => !d.startsWith('.')).sort());
    for (const [i, [, name]] of names.entries()) {
      const ident = `"${name.replaceAll('"', '""')}"`;
      assert.deepEqual(await server.rows(`SELECT host, v FROM ${ident}`, 'odd'), [[`h${i}`, i]], name);
    }
    assert.deepEqual(await server.rows('SELECT v FROM odd."net.bytes"'), [[0]]);
    const tables = (await server.rows('SHOW TABLES FROM odd')).map((r) => r[1]).sort();
    assert.deepEqual(tables, names.map(([, name]) => name).sort());
  });

  test('database names needing encoding are stored encoded and listed by their real names', async () => {
    await expect204(await server.post(`/write?db=${encodeURIComponent('my:db*1')}`, `m v=1 ${ns(0)}`));
    // Named like Strata's own staging directory, which is wiped at start-up: must not land there.
    await expect204(await server.post('/write?db=.staging', `m v=2 ${ns(0)}`));
    await server.flush();
    assert.equal(hasDatabaseDir(server, 'my%3Adb%2A1'), true);
    assert.equal(hasDatabaseDir(server, '%2Estaging'), true);
    const databases = (await server.rows('SHOW DATABASES')).map(([d]) => d);
    assert.ok(databases.includes('my:db*1') && databases.includes('.staging'), JSON.stringify(databases));
    assert.deepEqual(await server.rows('SELECT v FROM m', 'my:db*1'), [[1]]);
    assert.deepEqual(await server.rows('SELECT v FROM m', '.staging'), [[2]]);
  });
});

describe('MessagePack', BOUND, () => {
  const mp = (payload: unknown, db: string): Promise<Response> =>
    server.post('/api/v1/write/msgpack', packr.pack(payload), { 'content-type': 'application/msgpack', 'x-arc-database': db });

  test('undecodable bytes: 400 "Invalid MessagePack payload", nothing written', async () => {
    const good = packr.pack([{ m: 'undec', t: 1700000000000, fields: { v: 1.5 } }, { m: 'undec', t: 1700000001000, fields: { v: 2.5 } }]);
    const bodies: [Buffer, RegExp][] = [
      [Buffer.from([0xc1]), /invalid type byte 0xc1 at byte 0/],
      [good.subarray(0, good.length - 3), /unexpected end of data/],
      [Buffer.concat([good, Buffer.from([0x01])]), /1 trailing bytes after the top-level value/],
      [Buffer.from('"just a string"'), /Invalid MessagePack payload/],
      [packr.pack(42), /unsupported top-level type int/],
    ];
    for (const [body, detail] of bodies) {
      const err = await errorOf(await server.post('/api/v1/write/msgpack', body, { 'x-arc-database': 'mpundec' }), 400);
      assert.match(err.error, /^Invalid MessagePack payload: /);
      assert.match(err.error, detail);
    }
    await server.flush();
    assert.deepEqual(await server.rows('SELECT * FROM undec', 'mpundec'), []);
  });

  test('an array with one bad item among good ones: 400 naming item 1, the good items stored', async () => {
    const res = await mp([
      { m: 'items', t: 1700000000000, tags: { host: 'a' }, fields: { v: 1.5 } },
      { t: 1700000001000, tags: { host: 'b' }, fields: { v: 2.5 } },
      { m: 'items', t: 1700000002000, tags: { host: 'c' }, fields: { v: 3.5 } },
      { m: 'items', t: 1700000003000, tags: { host: 'd' }, fields: { time: 4.5 } },
      { m: '..', t: 1700000004000, fields: { v: 5.5 } },
    ], 'mpitems');
    const err = await partialOf(res);
    assert.match(err.error, /^partial write: item 1: missing required field 'm' \(measurement\)/);
    assert.ok(err.error.includes('item 3: field key "time" is reserved for the timestamp'), err.error);
    assert.ok(err.error.includes('item 4: measurement ".." is not allowed'), err.error);
    assert.ok(err.error.endsWith('(accepted=2 rejected=3)'), err.error);
    assert.equal(err.accepted, 2);
    assert.equal(err.rejected, 3);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT time, host, v FROM items ORDER BY time', 'mpitems'), [
      ['2023-11-14T22:13:20Z', 'a', 1.5],
      ['2023-11-14T22:13:22Z', 'c', 3.5],
    ]);
  });

  test('a columnar item whose rows all conflict is named once, and the errors of later items still show; the good item stored', async () => {
    const times = (n: number, from: number): number[] => Array.from({ length: n }, (_, i) => 1700000000000 + (from + i) * 1000);
    const res = await mp([
      { m: 'dedup', columns: { time: times(3, 0), v: [1, 2, 3].map((n) => BigInt(n)) } },
      // 20 rows whose v is a bool where item 0 made it an integer: one reason, one message.
      { m: 'dedup', columns: { time: times(20, 3), v: Array.from({ length: 20 }, (_, i) => i % 2 === 0) } },
      'not a map',
    ], 'mpdedup');
    const err = await partialOf(res);
    const item1 = err.error.match(/item 1: /g) ?? [];
    assert.equal(item1.length, 1, err.error);
    assert.match(err.error, /^partial write: item 1: field "v" is bool /);
    assert.ok(err.error.includes('item 2: '), `the non-map item is named too: ${err.error}`);
    assert.ok(err.error.endsWith('(accepted=3 rejected=21)'), err.error);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT v FROM dedup ORDER BY time', 'mpdedup'), [[1], [2], [3]]);
  });

  test('columnar length mismatch: 400 naming the column, the other item stored', async () => {
    const res = await mp({ batch: [
      { m: 'colm', columns: { time: [1700000000000, 1700000001000], host: ['a', 'b'], v: [1.5, 2.5] } },
      { m: 'colm', columns: { time: [1700000002000, 1700000003000], host: ['c', 'd', 'e'], v: [3.5, 4.5] } },
    ] }, 'mpcol');
    const err = await partialOf(res);
    assert.ok(err.error.includes("item 1: columnar format: array length mismatch (expected 2, got 3 for 'host')"), err.error);
    assert.ok(err.error.endsWith('(accepted=2 rejected=1)'), err.error);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT host, v FROM colm ORDER BY time', 'mpcol'), [['a', 1.5], ['b', 2.5]]);
  });

  // pandas sends its gaps as NaN, Prometheus an empty summary's quantiles: refused, a whole
  // columnar item (a data frame) was lost for one gap.
  test('a NaN field value is missing (NULL), ±Infinity is stored (float64 and float32, row and columnar)', async () => {
    const float32 = Buffer.from(encode({ m: 'mpnf', t: 1700000003000, tags: { host: 'd' }, fields: { v: -Infinity, w: NaN } }, { forceFloat32: true }));
    assert.ok(float32.includes(Buffer.from([0xca, 0xff, 0x80, 0, 0])), 'sent as float32');
    const body = Buffer.concat([
      Buffer.from([0x94]), // fixarray of 4 items
      packr.pack({ m: 'mpnf', t: 1700000000000, tags: { host: 'a' }, fields: { v: 1.5, w: 1 } }),
      packr.pack({ m: 'mpnf', t: 1700000001000, tags: { host: 'b' }, fields: { v: NaN, w: 2 } }),
      packr.pack({ m: 'mpnf', columns: { time: [1700000002000, 1700000002500], host: ['c', 'c'], v: [NaN, Infinity], w: [3, NaN] } }),
      float32,
    ]);
    await expect204(await server.post('/api/v1/write/msgpack', body, { 'x-arc-database': 'mpnf' }));
    await server.flush();
    const rows = 'SELECT time, host, v::VARCHAR, w, isnan(v) FROM mpnf ORDER BY time';
    assert.deepEqual(await server.rows(rows, 'mpnf'), [
      ['2023-11-14T22:13:20Z', 'a', '1.5', 1, false],
      ['2023-11-14T22:13:21Z', 'b', null, 2, null],
      ['2023-11-14T22:13:22Z', 'c', null, 3, null],
      ['2023-11-14T22:13:22.5Z', 'c', 'inf', null, false],
      ['2023-11-14T22:13:23Z', 'd', '-inf', null, false],
    ]);
    // Aggregates skip the gaps.
    assert.deepEqual(await server.rows('SELECT avg(w), count(v) FROM mpnf', 'mpnf'), [[2, 3]]);
    // As a nil, a NaN gives no type: integers beside it go into an int64 field.
    await expect204(await server.writeLines(`mpni v=1i ${ns(0)}`, 'db=mpnf'));
    await expect204(await server.post('/api/v1/write/msgpack', packr.pack({ m: 'mpni', columns: { time: [1700000001000, 1700000002000], v: [NaN, 5] } }), { 'x-arc-database': 'mpnf' }));
    assert.deepEqual(await server.rows('SELECT v, typeof(v) FROM mpni ORDER BY time', 'mpnf'), [[1, 'BIGINT'], [null, 'BIGINT'], [5, 'BIGINT']]);
    // A new field of integers and a NaN is a JavaScript encoder's float column with a gap: float64, fractions taken later.
    await expect204(await server.post('/api/v1/write/msgpack', packr.pack({ m: 'mpnj', columns: { time: [1700000001000, 1700000002000, 1700000003000], v: [NaN, 1, 2] } }), { 'x-arc-database': 'mpnf' }));
    await expect204(await server.post('/api/v1/write/msgpack', packr.pack({ m: 'mpnj', columns: { time: [1700000004000], v: [2.5] } }), { 'x-arc-database': 'mpnf' }));
    assert.deepEqual(await server.rows('SELECT v, typeof(v) FROM mpnj ORDER BY time', 'mpnf'), [[null, 'DOUBLE'], [1, 'DOUBLE'], [2, 'DOUBLE'], [2.5, 'DOUBLE']]);
  });

  test('a type conflict with buffered data is reported per item', async () => {
    await expect204(await mp({ m: 'mptc', t: 1700000000000, fields: { x: 1.5 } }, 'mptc'));
    const err = await partialOf(await mp([
      { m: 'mptc', t: 1700000001000, fields: { x: 'text' } },
      { m: 'mptc', t: 1700000002000, fields: { x: 2.5 } },
    ], 'mptc'));
    assert.ok(err.error.includes('item 0: field "x" is string but measurement "mptc" stores it as float64'), err.error);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT x FROM mptc ORDER BY time', 'mptc'), [[1.5], [2.5]]);
  });
});

// Text that is not UTF-8 cannot be stored as it was sent (Parquet strings are UTF-8), and
// decoding it with U+FFFD for the bad bytes made different names and values one: two
// hosts became one series, two tag keys one column that kept one value of the two.
describe('bytes that are not UTF-8', BOUND, () => {
  /** `buf` with the UTF-8 bytes of `placeholder` replaced by `bytes` of the same length (first occurrence). */
  const patch = (buf: Buffer, placeholder: string, bytes: number[]): Buffer => {
    const at = buf.indexOf(placeholder);
    assert.ok(at >= 0 && Buffer.byteLength(placeholder) === bytes.length, placeholder);
    Buffer.from(bytes).copy(buf, at);
    return buf;
  };

  test('line protocol: each such line refused with 400 naming it, the other lines stored', async () => {
    const body = Buffer.concat([
      Buffer.from('utf,host=caf'), Buffer.from([0xe9]), Buffer.from(` v=1 ${ns(0)}\n`), // Latin-1 "café"
      Buffer.from('utf,host=caf'), Buffer.from([0xe8]), Buffer.from(` v=2 ${ns(1)}\n`),
      Buffer.from(`utf,host=café v=3 ${ns(2)}\n`),
      Buffer.from('# a comment may hold any bytes: '), Buffer.from([0xff]), Buffer.from('\n'),
      Buffer.from('utf '), Buffer.from([0xff]), Buffer.from(`=4 ${ns(3)}\n`),
      Buffer.from(`utf,host=\ufffd v=5 ${ns(4)}`),
    ]);
    const err = await errorOf(await server.post('/write?db=utflp', body), 400);
    assert.match(err.error, /^partial write: line 1: line is not valid UTF-8 text; line 2: line is not valid UTF-8 text; line 5: line is not valid UTF-8 text \(accepted=2 rejected=3\)$/);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT host, v FROM utf ORDER BY time', 'utflp'), [['café', 3], ['\ufffd', 5]]);
  });

  test('MessagePack: each item holding such a string refused with 400 naming it, the other items stored', async () => {
    const body = packr.pack([
      { m: 'utf', t: 1700000000000, tags: { K1: 'a', K2: 'b' }, fields: { v: 1 } },
      { m: 'utf', t: 1700000001000, tags: { host: 'ok' }, fields: { v: 2 } },
      { m: 'utf', columns: { time: [1700000002000, 1700000003000], host: ['ok', 'V3'], v: [3, 4] } },
      { m: 'utf', t: 1700000004000, fields: { s: 'S4' } },
      { m: 'M5', t: 1700000005000, fields: { v: 5 } },
    ]);
    // Tag keys 0xff and 0xfe: both decoded to U+FFFD, one tag kept one value of the two.
    patch(body, 'K1', [0x61, 0xff]);
    patch(body, 'K2', [0x61, 0xfe]);
    patch(body, 'V3', [0xc3, 0x28]);
    patch(body, 'S4', [0x80, 0x41]);
    patch(body, 'M5', [0xed, 0xa0]);
    const err = await partialOf(await server.post('/api/v1/write/msgpack', body, { 'x-arc-database': 'utfmp' }));
    assert.match(err.error, /^partial write: item 0: string at byte \d+ is not valid UTF-8; item 2: string at byte \d+ is not valid UTF-8; item 3: string at byte \d+ is not valid UTF-8; item 4: string at byte \d+ is not valid UTF-8 \(accepted=1 rejected=4\)$/);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT * FROM utf', 'utfmp'), [['2023-11-14T22:13:21Z', 'ok', 2]]);
    assert.deepEqual((await server.rows('SHOW TABLES FROM utfmp')).map((r) => r[1]), ['utf']);
  });
});

// Every column is stored and queried densely (DuckDB's flush table, Parquet), so lines
// each bringing a new key made a measurement cost rows × keys, past what DuckDB can hold:
// the limit (InfluxDB 3's 500 columns per table, time included) refuses such lines.
describe('the limit on columns per measurement (time, tags and fields)', BOUND, () => {
  const past = (what: 'tag' | 'field', key: string, m: string, limit: number): string =>
    `${what} "${key}" would add a column to measurement "${m}" past its limit of ${limit} columns (time, tags and fields)`;
  /** `f1=v,…,f{n}=v`. */
  const fieldList = (n: number, v: number): string => Array.from({ length: n }, (_, k) => `f${k + 1}=${v}`).join(',');

  // time, host and f1..f497: 499 columns; one more fits.
  const body = [
    `cl,host=a ${fieldList(497, 1)} ${ns(0)}`,
    // f498 would be the 500th, f499 the 501st: the line is refused whole and takes no column.
    `cl,host=b f498=2,f499=2 ${ns(1)}`,
    `cl,host=c f498=3 ${ns(2)}`,
    `cl,region=eu f1=4 ${ns(3)}`,
    `cl,host=e f1=5 ${ns(4)}`,
  ].join('\n');
  // InfluxDB v2 answers lines it parsed but refused with 422 (unprocessable entity).
  const endpoints: { name: string; db: string; status: number; send: (db: string) => Promise<Response> }[] = [
    { name: 'InfluxDB v1 /write', db: 'cl_v1', status: 400, send: (db) => server.post(`/write?db=${db}`, body) },
    { name: 'InfluxDB v2 /api/v2/write', db: 'cl_v2', status: 422, send: (db) => server.post(`/api/v2/write?org=o&bucket=${db}`, body) },
    {
      name: 'Arc /api/v1/write/line-protocol', db: 'cl_arc', status: 400,
      send: (db) => server.post('/api/v1/write/line-protocol', body, { 'x-arc-database': db, 'content-type': 'text/plain' }),
    },
  ];
  for (const e of endpoints) {
    test(`${e.name}: the default 500; a line that would pass it is refused (${e.status}), naming the key, and adds no column`, async () => {
      const err = await errorOf(await e.send(e.db), e.status);
      assert.ok(err.error.includes(`line 2: ${past('field', 'f499', 'cl', 500)}`), err.error);
      assert.ok(err.error.includes(`line 4: ${past('tag', 'region', 'cl', 500)}`), err.error);
      assert.ok(err.error.endsWith('(accepted=3 rejected=2)'), err.error);
      await server.flush();
      const all = await server.query('SELECT * FROM cl ORDER BY time', e.db);
      assert.equal(all.status, 200, JSON.stringify(all.body).slice(0, 500));
      assert.equal(all.body.columns.length, 500);
      assert.ok(!all.body.columns.includes('f499') && !all.body.columns.includes('region'), String(all.body.columns));
      assert.deepEqual(await server.rows('SELECT time, host, f1, f497, f498 FROM cl ORDER BY time', e.db), [
        ['2023-11-14T22:13:20Z', 'a', 1, 1, null],
        ['2023-11-14T22:13:22Z', 'c', null, null, 3],
        ['2023-11-14T22:13:24Z', 'e', 5, null, null],
      ]);
    });
  }

  test('MessagePack: against columns still BUFFERED, per item (row and columnar), the other items stored', async () => {
    const fields = Object.fromEntries(Array.from({ length: 497 }, (_, k) => [`f${k + 1}`, 1.5]));
    await expect204(await server.post('/api/v1/write/msgpack', packr.pack({ m: 'clmp', t: 1700000000000, tags: { host: 'a' }, fields }), { 'x-arc-database': 'clmp' }));
    // Not flushed: the 499 columns are known from the buffer only.
    const err = await partialOf(await server.post('/api/v1/write/msgpack', packr.pack([
      { m: 'clmp', t: 1700000001000, tags: { host: 'b' }, fields: { f1: 2.5, x: 2.5, y: 2.5 } },
      { m: 'clmp', columns: { time: [1700000002000, 1700000003000], host: ['c', 'd'], z: [3.5, 4.5], w: [3.5, 4.5] } },
      { m: 'clmp', t: 1700000004000, tags: { host: 'e' }, fields: { y: 5.5 } },
      { m: 'clmp', t: 1700000005000, tags: { host: 'f' }, fields: { x: 6.5 } },
    ]), { 'x-arc-database': 'clmp' }));
    assert.ok(err.error.includes(`item 0: ${past('field', 'y', 'clmp', 500)}`), err.error);
    assert.ok(err.error.includes(`item 1: ${past('field', 'w', 'clmp', 500)}`), err.error);
    assert.ok(err.error.includes(`item 3: ${past('field', 'x', 'clmp', 500)}`), err.error);
    // The columnar item's two rows are refused, each named by the item.
    assert.ok(err.error.endsWith('(accepted=1 rejected=4)'), err.error);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT host, f1, y FROM clmp ORDER BY time', 'clmp'), [['a', 1.5, null], ['e', null, 5.5]]);
  });

  test('against STORED columns after a restart, and stored files with more columns than the limit', async () => {
    const first = await TestServer.start({ STRATA_BUFFER_MAX_COLUMNS: '8' });
    let second: TestServer | undefined;
    try {
      // `under`: time, host, f1, f2 (4 columns); `over`: time, host, f1..f6 (8 columns).
      await expect204(await first.writeLines(`under,host=a ${fieldList(2, 1)} ${ns(0)}\nover,host=a ${fieldList(6, 1)} ${ns(0)}`, 'db=clstored'));
      await first.flush();
      assert.equal(await stopWithin(first), 0);
      // A new process knows the columns from the Parquet files only, and its limit is lower.
      second = await TestServer.start({ STRATA_BUFFER_MAX_COLUMNS: '5' }, first.dataDir);
      const all = await second.query('SELECT * FROM over', 'clstored');
      assert.equal(all.status, 200, JSON.stringify(all.body));
      assert.deepEqual(all.body.columns, ['time', 'host', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6']);
      const err = await errorOf(await second.writeLines([
        `under,host=b f3=2 ${ns(1)}`,
        `under,host=c f4=3 ${ns(2)}`,
        `over,host=b ${fieldList(6, 2)} ${ns(1)}`,
        `over,host=c f7=3 ${ns(2)}`,
      ].join('\n'), 'db=clstored'), 400);
      assert.ok(err.error.includes(`line 2: ${past('field', 'f4', 'under', 5)}`), err.error);
      assert.ok(err.error.includes(`line 4: ${past('field', 'f7', 'over', 5)}`), err.error);
      assert.ok(err.error.endsWith('(accepted=2 rejected=2)'), err.error);
      await second.flush();
      // Named columns: `SELECT *` orders them by the files' names, whose flush second may be the same.
      assert.deepEqual(await second.rows('SELECT time, host, f1, f2, f3 FROM under ORDER BY time', 'clstored'),
        [['2023-11-14T22:13:20Z', 'a', 1, 1, null], ['2023-11-14T22:13:21Z', 'b', null, null, 2]]);
      assert.deepEqual(await second.rows('SELECT host, f1, f6 FROM over ORDER BY time', 'clstored'), [['a', 1, 1], ['b', 2, 2]]);
    } finally {
      await stopWithin(first);
      if (second !== undefined) assert.equal(await stopWithin(second), 0);
      removeDir(first.dataDir);
    }
  });
});

// A field named like a tag is stored as `<key>_value` (Arc's rule); where that name is
// taken by another field of the record, Arc keeps one value and drops the other.
describe('a field named like a tag whose <key>_value is taken', BOUND, () => {
  const clash = 'field "x" has the name of a tag, so it would be stored as "x_value", but the field "x_value" is also given';

  test('line protocol: 400 naming the line and the field, the other lines kept', async () => {
    const err = await errorOf(await server.writeLines([
      `fvc,x=a x=1i ${ns(0)}`,
      `fvc,x=a x=1i,x_value=2i ${ns(1)}`,
      `fvc,x=b x_value=3i ${ns(2)}`,
    ].join('\n'), 'db=fvclp'), 400);
    assert.ok(err.error.includes(`line 2: ${clash}`), err.error);
    assert.ok(err.error.endsWith('(accepted=2 rejected=1)'), err.error);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT x, x_value FROM fvc ORDER BY time', 'fvclp'), [['a', 1], ['b', 3]]);
  });

  test('MessagePack: 400 naming the item and the field, the other items kept', async () => {
    const items = [
      { m: 'fvc', t: 1700000000000, tags: { x: 'a' }, fields: { x: 1 } },
      { m: 'fvc', t: 1700000001000, tags: { x: 'a' }, fields: { x: 1, x_value: 2 } },
      { m: 'fvc', t: 1700000002000, tags: { x: 'b' }, fields: { x_value: 3 } },
    ];
    const err = await partialOf(await server.post('/api/v1/write/msgpack', packr.pack(items), { 'x-arc-database': 'fvcmp' }));
    assert.ok(err.error.includes(`item 1: ${clash}`), err.error);
    assert.ok(err.error.endsWith('(accepted=2 rejected=1)'), err.error);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT x, x_value FROM fvc ORDER BY time', 'fvcmp'), [['a', 1], ['b', 3]]);
  });
});

describe('database selection', BOUND, () => {
  test('the x-arc-database header beats ?db= and ?bucket=', async () => {
    const winner = unique('winner');
    const loser = unique('loser');
    await expect204(await server.post(`/write?db=${loser}`, `hdr v=1 ${ns(0)}`, { 'x-arc-database': winner }));
    await expect204(await server.post(`/api/v2/write?bucket=${loser}`, `hdr v=2 ${ns(1)}`, { 'x-arc-database': winner }));
    await expect204(await server.post(`/api/v1/write/msgpack?db=${loser}`, packr.pack({ m: 'hdr', t: 1700000002000, fields: { v: 3.5 } }), { 'x-arc-database': winner }));
    await server.flush();
    assert.deepEqual(await server.rows('SELECT v FROM hdr ORDER BY time', winner), [[1], [2], [3.5]]);
    assert.deepEqual(await server.rows('SELECT * FROM hdr', loser), []);
    assert.equal(hasDatabaseDir(server, loser), false);
  });

  test('a repeated x-arc-database header is refused (Node would join it into one name, "a, a"), on writes and queries', async () => {
    const name = unique('twice');
    const headers = ['x-arc-database', name, 'X-Arc-Database', name];
    const write = await rawPost(server, '/api/v1/write/line-protocol', 'twice v=1', headers);
    assert.equal(write.status, 400, write.body);
    assert.match(write.body, /given more than once \(repeated x-arc-database header\)/);
    const query = await rawPost(server, '/api/v1/query', JSON.stringify({ sql: 'SELECT 1 AS one' }), [...headers, 'content-type', 'application/json']);
    assert.equal(query.status, 400, query.body);
    assert.match(query.body, /repeated x-arc-database header/);
    assert.equal(hasDatabaseDir(server, name), false);
    assert.equal(hasDatabaseDir(server, `${name}, ${name}`), false);
  });
});

/** POST with headers given as Node's raw list (name, value, …), which may repeat a name. */
function rawPost(s: TestServer, path: string, body: string, headers: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, s.url);
    // A raw list replaces Node's defaults, Host included (Node's server answers 400 without it).
    const req = request(url, { method: 'POST', headers: ['host', url.host, ...headers] }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
