/**
 * The local backend, on the real server and used directly: a Parquet file is durable
 * before the write-ahead log forgets its records (checked on the server's system calls
 * with strace), and a put into an existing hour syncs that directory alone; a regular
 * file where a layout directory belongs gives a clear error without the host path
 * while the records stay buffered and are written (and counted) once it is moved
 * away; a data directory whose parent cannot be read still starts; a failed `stat` in
 * a listing carries no host path.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { StorageUnavailableError } from '../src/errors.js';
import { LocalStorage } from '../src/storage/local.js';
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

test('a Parquet file, its directory and the parent of every new directory are fsynced before a WAL segment is deleted; a put into an existing hour syncs its directory alone', { skip: hasStrace ? false : 'strace not installed', timeout: 60_000 }, async () => {
  // Small segments: each request seals one, so the flush lets sealed segments go.
  const server = await TestServer.start({ STRATA_BUFFER_MAX_AGE_MS: '3600000', STRATA_WAL_SEGMENT_BYTES: '1024' });
  const traceFile = join(tempDir('strata-trace-'), 'trace.txt');
  try {
    const tracer = spawn('strace', ['-f', '-y', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat', '-o', traceFile, '-p', String(server.process.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
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
    // The steady state: a second file in an hour whose directories are all known durable.
    assert.equal((await server.writeLines(`dur,host=h0 v=99 ${1767225600 + 50}`, 'db=durable&precision=s')).status, 204);
    await server.flush();
    const exited = new Promise((resolve) => tracer.once('exit', resolve));
    tracer.kill('SIGINT');
    await exited;

    const events = parseTrace(readFileSync(traceFile, 'utf8'));
    const renames = events.flatMap((e, i) => {
      const m = e.at === 'end' && e.ok && /^rename/.test(e.name) ? /"([^"]+\.staging\/[^"]+)", .*"([^"]+\.parquet)"/.exec(e.args) : null;
      return m ? [{ i, staged: m[1], target: m[2] }] : [];
    });
    assert.equal(renames.length, 4, `expected 4 Parquet files renamed into place:\n${renames.map((r) => r.target).join('\n')}`);
    const firstWalUnlink = events.findIndex((e) => e.at === 'start' && /^unlink/.test(e.name) && /\/\.wal\/\d{20}\.wal"/.test(e.args));
    assert.ok(firstWalUnlink !== -1, 'no WAL segment unlink traced');
    const dirSynced = (dir: string, after: number): number =>
      events.findIndex((e, i) => i > after && e.at === 'end' && e.ok && e.name === 'fsync' && e.args.includes(`<${dir}>`));
    for (const r of renames.slice(0, 3)) {
      const stagedSync = events.findIndex((e, i) => i < r.i && e.at === 'end' && e.ok && /^f(data)?sync$/.test(e.name) && e.args.includes(`<${r.staged}>`));
      assert.ok(stagedSync !== -1, `${r.staged} was not fsynced before its rename`);
      // The hour directory gained the file; each directory below the data directory its entry in its parent.
      const synced = dirSynced(dirname(r.target), r.i);
      assert.ok(synced !== -1 && synced < firstWalUnlink, `${dirname(r.target)} was not fsynced after ${r.target} was renamed into it, before a WAL segment was deleted`);
      for (let dir = dirname(r.target); dir.length > server.dataDir.length; dir = dirname(dir)) {
        const made = events.findIndex((e) => e.at === 'end' && e.ok && /^mkdir/.test(e.name) && e.args.includes(`"${dir}"`));
        assert.ok(made !== -1, `${dir} was not created while traced`);
        const parentSynced = dirSynced(dirname(dir), made);
        assert.ok(parentSynced !== -1 && parentSynced < firstWalUnlink, `${dirname(dir)} was not fsynced after ${dir} was created, before a WAL segment was deleted`);
      }
    }
    const last = renames[3];
    assert.equal(dirname(last.target), dirname(renames[0].target));
    const dirSyncs = events.filter((e, i) => i > last.i && e.at === 'end' && e.name === 'fsync' && e.args.includes(`<${server.dataDir}`) && !/\/\.(wal|staging)\b/.test(e.args));
    assert.deepEqual(dirSyncs.map((e) => /<([^>]+)>/.exec(e.args)?.[1]), [dirname(last.target)], 'a put into an existing hour syncs that directory alone');
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
    // A query of that hour lists the measurement, where the file in the way holds no Parquet
    // file: it answers from the records held for the retry.
    const hour = await server.query(`SELECT count(*) FROM cpu WHERE time >= '2026-01-01T00:00:00Z' AND time < '2026-01-01T01:00:00Z'`, 'blocked');
    assert.equal(hour.status, 200, JSON.stringify(hour.body));
    assert.deepEqual(hour.body.data, [[2]]);

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
    // The failed attempts stored nothing and the retry one file: counted once.
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const metric = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
    assert.equal(metric('strata_parquet_files_written_total'), 1);
    assert.equal(metric('strata_parquet_written_bytes_total'), statSync(join(server.dataDir, 'blocked', parquetFiles(join(server.dataDir, 'blocked'))[0])).size);
  } finally {
    assert.equal(await server.stop('SIGTERM'), 0);
    removeDir(server.dataDir);
  }
});

test('a data directory whose parent cannot be read (a root-owned 0711 /srv/strata) starts and stores files, existing or created', { timeout: 30_000 }, async () => {
  // Read permission is what a directory fsync needs; root has it everywhere, so as root the storage runs as nobody.
  const asRoot = process.getuid?.() === 0;
  const existingParent = tempDir('strata-parent-');
  const createdParent = tempDir('strata-parent-');
  const existing = join(existingParent, 'data');
  const created = join(createdParent, 'data');
  mkdirSync(existing);
  if (asRoot) chownSync(existing, 65534, 65534);
  chmodSync(existingParent, asRoot ? 0o711 : 0o311);
  chmodSync(createdParent, asRoot ? 0o733 : 0o311);
  try {
    const script = `
      import { writeFileSync } from 'node:fs';
      import { LocalStorage } from ${JSON.stringify(new URL('../src/storage/local.js', import.meta.url).href)};
      for (const root of process.argv.slice(1)) {
        const storage = new LocalStorage(root);
        await storage.init();
        writeFileSync(storage.stagingDir + '/f.parquet', 'PAR1');
        const size = await storage.putFile('db/m/2026/01/01/00/f.parquet', storage.stagingDir + '/f.parquet');
        if (size !== 4) throw new Error('size ' + size);
      }`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script, existing, created], { encoding: 'utf8', ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
    assert.equal(run.status, 0, run.stderr);
    for (const root of [existing, created]) assert.ok(existsSync(join(root, 'db', 'm', '2026', '01', '01', '00', 'f.parquet')), root);
  } finally {
    chmodSync(existingParent, 0o700);
    chmodSync(createdParent, 0o700);
    removeDir(existingParent);
    removeDir(createdParent);
  }
});

test('a listing whose stat of a file fails (other than ENOENT) gives a StorageUnavailableError without the host path', async () => {
  const root = tempDir();
  try {
    const storage = new LocalStorage(root);
    await storage.init();
    mkdirSync(join(root, 'db', 'm'), { recursive: true });
    writeFileSync(join(root, 'db', 'm', 'a.parquet'), 'PAR1');
    symlinkSync('loop.parquet', join(root, 'db', 'm', 'loop.parquet')); // stat: ELOOP
    await assert.rejects(storage.list('db/m/'), (err: Error) => {
      assert.ok(err instanceof StorageUnavailableError, String(err));
      assert.match(err.message, /listing db\/m\/ failed: ELOOP \(stat\)/);
      assert.ok(!err.message.includes(root), err.message);
      return true;
    });
  } finally {
    removeDir(root);
  }
});
