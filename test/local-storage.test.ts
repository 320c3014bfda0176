/**
 * The local backend end to end, on the real server: a Parquet file is durable before
 * the write-ahead log forgets its records (checked on the server's system calls with
 * strace), and a regular file where a layout directory belongs gives a clear error
 * without the host path while the records stay buffered and are written once it is
 * moved away.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { parquetFiles, removeDir, sleep, tempDir, TestServer, waitFor } from './harness.js';

const hasStrace = spawnSync('strace', ['-V']).status === 0;

/** One traced system call, in the order strace saw it end (or start, for `start` events). */
interface SysEvent {
  readonly at: 'start' | 'end';
  readonly name: string;
  readonly args: string;
  readonly ok: boolean;
}

/**
 * Parses `strace -f -y` output into start and end events, joining calls that another
 * thread interrupted (`<unfinished ...>` / `<... x resumed>`).
 */
function parseTrace(text: string): SysEvent[] {
  const events: SysEvent[] = [];
  const pending = new Map<string, { name: string; args: string }>();
  for (const line of text.split('\n')) {
    let m = /^(\d+)\s+(\w+)\((.*) <unfinished \.\.\.>$/.exec(line);
    if (m) {
      pending.set(m[1], { name: m[2], args: m[3] });
      events.push({ at: 'start', name: m[2], args: m[3], ok: true });
      continue;
    }
    m = /^(\d+)\s+<\.\.\. (\w+) resumed>(.*)\)\s+=\s+(-?\d+)/.exec(line);
    if (m) {
      const started = pending.get(m[1]);
      pending.delete(m[1]);
      events.push({ at: 'end', name: m[2], args: (started?.args ?? '') + m[3], ok: m[4] === '0' });
      continue;
    }
    m = /^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+)/.exec(line);
    if (m) {
      events.push({ at: 'start', name: m[2], args: m[3], ok: true });
      events.push({ at: 'end', name: m[2], args: m[3], ok: m[4] === '0' });
    }
  }
  return events;
}

test('a Parquet file, its directory and every new parent are fsynced before a WAL segment is deleted', { skip: hasStrace ? false : 'strace not installed', timeout: 60_000 }, async () => {
  // Small segments: each request seals one, so the flush lets sealed segments go.
  const server = await TestServer.start({ STRATA_BUFFER_MAX_AGE_MS: '3600000', STRATA_WAL_SEGMENT_BYTES: '1024' });
  const traceFile = join(tempDir('strata-trace-'), 'trace.txt');
  try {
    const tracer = spawn('strace', ['-f', '-y', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat', '-o', traceFile, '-p', String(server.process.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let attached = '';
    tracer.stderr.on('data', (c: Buffer) => { attached += c.toString(); });
    assert.ok(await waitFor(() => /attached/.test(attached), 10_000), `strace did not attach: ${attached}`);
    await sleep(300); // every thread of the process is attached within this

    // Three hours, one request each: three sealed segments, three new hour directories.
    for (let h = 0; h < 3; h++) {
      const lines = Array.from({ length: 40 }, (_, i) => `dur,host=h${i} v=${i} ${1767225600 + h * 3600 + i}`).join('\n');
      assert.equal((await server.writeLines(lines, 'db=durable&precision=s')).status, 204);
    }
    await server.flush();
    const deleted = async (): Promise<number> => ((await (await fetch(`${server.url}/api/v1/write/stats`)).json()) as { wal: { segments_deleted: number } }).wal.segments_deleted;
    for (let i = 0; i < 100 && (await deleted()) === 0; i++) await sleep(50);
    assert.ok((await deleted()) > 0, 'no WAL segment was deleted after the flush');
    const exited = new Promise((resolve) => tracer.once('exit', resolve));
    tracer.kill('SIGINT');
    await exited;

    const events = parseTrace(readFileSync(traceFile, 'utf8'));
    const renames = events.flatMap((e, i) => {
      const m = e.at === 'end' && e.ok && /^rename/.test(e.name) ? /"([^"]+\.staging\/[^"]+)", .*"([^"]+\.parquet)"/.exec(e.args) : null;
      return m ? [{ i, staged: m[1], target: m[2] }] : [];
    });
    assert.equal(renames.length, 3, `expected 3 Parquet files renamed into place:\n${renames.map((r) => r.target).join('\n')}`);
    const firstWalUnlink = events.findIndex((e) => e.at === 'start' && /^unlink/.test(e.name) && /\/\.wal\/\d{20}\.wal"/.test(e.args));
    assert.ok(firstWalUnlink !== -1, 'no WAL segment unlink traced');
    for (const r of renames) {
      const stagedSync = events.findIndex((e, i) => i < r.i && e.at === 'end' && e.ok && /^f(data)?sync$/.test(e.name) && e.args.includes(`<${r.staged}>`));
      assert.ok(stagedSync !== -1, `${r.staged} was not fsynced before its rename`);
      // The hour directory and each parent up to the data directory: synced after the rename, before the WAL forgets.
      for (let dir = dirname(r.target); dir.length >= server.dataDir.length; dir = dirname(dir)) {
        const synced = events.findIndex((e, i) => i > r.i && e.at === 'end' && e.ok && /^fsync$/.test(e.name) && e.args.includes(`<${dir}>`));
        assert.ok(synced !== -1, `${dir} was not fsynced after ${r.target} was renamed into it`);
        assert.ok(synced < firstWalUnlink, `${dir} was fsynced only after a WAL segment was deleted`);
      }
    }
  } finally {
    assert.equal(await server.stop('SIGTERM'), 0);
    removeDir(server.dataDir);
    removeDir(dirname(traceFile));
  }
});

test('a regular file where a measurement or hour directory belongs: a clear error without the host path; records kept and written once it is moved', { timeout: 60_000 }, async () => {
  const server = await TestServer.start({ STRATA_BUFFER_MAX_AGE_MS: '3600000' });
  try {
    const t = 1767225600; // 2026-01-01T00:00:00Z
    // Hour directory: the write is taken (the measurement lists), the flush cannot store it.
    mkdirSync(join(server.dataDir, 'blocked', 'cpu', '2026', '01', '01'), { recursive: true });
    writeFileSync(join(server.dataDir, 'blocked', 'cpu', '2026', '01', '01', '00'), 'not a directory');
    assert.equal((await server.writeLines(`cpu,host=a v=1 ${t}\ncpu,host=b v=2 ${t + 1}`, 'db=blocked&precision=s')).status, 204);
    const flush = await server.post('/api/v1/write/flush', '');
    const flushBody = await flush.text();
    assert.equal(flush.status, 503, flushBody);
    assert.match(flushBody, /records kept for retry: storage layout conflict: a file is in the way of the directory of measurement \\"cpu\\" of database \\"blocked\\"/);
    assert.ok(!flushBody.includes(server.dataDir), `host path leaked: ${flushBody}`);
    const stats = await (await fetch(`${server.url}/api/v1/storage/stats`)).text();
    assert.ok(!stats.includes(`${server.dataDir}/blocked`), `host path leaked in health: ${stats}`);
    // A query of that hour lists it: the same typed error, not a 500 leaking the path.
    const hour = await server.query(`SELECT count(*) FROM cpu WHERE time >= '2026-01-01T00:00:00Z' AND time < '2026-01-01T01:00:00Z'`, 'blocked');
    assert.equal(hour.status, 500, JSON.stringify(hour.body));
    assert.match(hour.body.error ?? '', /storage layout conflict: .*measurement "cpu" of database "blocked"/);
    assert.ok(!(hour.body.error ?? '').includes(server.dataDir), hour.body.error);

    // Measurement directory: listing it (the schema check of a write) fails the same way.
    mkdirSync(join(server.dataDir, 'blocked2'), { recursive: true });
    writeFileSync(join(server.dataDir, 'blocked2', 'mem'), 'not a directory');
    const write = await server.writeLines(`mem,host=a v=1 ${t}`, 'db=blocked2&precision=s');
    const writeBody = await write.text();
    assert.equal(write.status, 500, writeBody);
    assert.match(writeBody, /storage layout conflict: .*measurement \\"mem\\" of database \\"blocked2\\"/);
    assert.ok(!writeBody.includes(server.dataDir), writeBody);

    // Moved away: the retried flush stores the held records, none lost.
    rmSync(join(server.dataDir, 'blocked', 'cpu', '2026', '01', '01', '00'));
    assert.ok(await waitFor(() => parquetFiles(join(server.dataDir, 'blocked')).length === 1, 30_000), 'the retried flush did not store the file');
    await server.flush();
    assert.deepEqual(await server.rows('SELECT host, v FROM cpu ORDER BY host', 'blocked'), [['a', 1], ['b', 2]]);
  } finally {
    assert.equal(await server.stop('SIGTERM'), 0);
    removeDir(server.dataDir);
  }
});
