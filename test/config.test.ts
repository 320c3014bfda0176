/**
 * End to end: configuration. A bad value, from the environment or from the file named by
 * STRATA_CONFIG, stops `node dist/src/main.js` with exit code 1 and a message naming the
 * key; a valid file takes effect and an environment variable beats it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { parquetFiles, removeDir, sleep, stopWithin, tempDir, TestServer, waitFor } from './harness.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const DEFAULT_TOML = fileURLToPath(new URL('../../config/strata.toml', import.meta.url));

interface Outcome {
  /** Exit code, or 'started' when the server came up (it is then stopped). */
  code: number | null | 'started';
  stderr: string;
  stdout: string;
}

/**
 * Runs the server with `env` (undefined = unset) on top of an environment cleared of every
 * STRATA_ variable (so the runner's own settings cannot leak in), and resolves when it exits, or when it
 * starts listening (then it is stopped), or after `timeoutMs`.
 */
function runMain(env: Record<string, string | undefined>, timeoutMs = 15_000): Promise<Outcome> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('STRATA_')));
  const dataDir = tempDir('strata-config-');
  const merged: Record<string, string | undefined> = { ...base, STRATA_HOST: '127.0.0.1', STRATA_PORT: '0', STRATA_DATA_DIR: dataDir, STRATA_LOG_LEVEL: 'info', ...env };
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  const child = spawn(process.execPath, [MAIN], { env: merged, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  return new Promise<Outcome>((resolve) => {
    let started = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const onData = (): void => {
      if (!started && /Server listening at/.test(stdout + stderr)) {
        started = true;
        child.kill('SIGTERM');
      }
    };
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); onData(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); onData(); });
    // 'close', not 'exit': the last stderr chunk can arrive after 'exit'.
    child.once('close', (code) => {
      clearTimeout(timer);
      removeDir(dataDir);
      resolve({ code: started ? 'started' : code, stderr, stdout });
    });
  });
}

/** Asserts that the server refused to start: exit 1, one `strata: invalid configuration <key>: …` line. */
async function assertRefused(env: Record<string, string | undefined>, key: string): Promise<string> {
  const { code, stderr, stdout } = await runMain(env);
  assert.equal(code, 1, `expected exit 1, got ${code}\nstderr: ${stderr}\nstdout: ${stdout.slice(0, 500)}`);
  assert.ok(stderr.includes(`strata: invalid configuration ${key}: `), `stderr does not name ${key}:\n${stderr}`);
  assert.ok(!/Server listening/.test(stdout), 'it must not have listened first');
  return stderr;
}

/** The default config file with `replacements` applied ([regex, replacement]), each required to match. */
function tomlWith(replacements: [RegExp, string][]): string {
  let text = readFileSync(DEFAULT_TOML, 'utf8');
  for (const [pattern, value] of replacements) {
    assert.match(text, pattern, `config/strata.toml has no line matching ${pattern}`);
    text = text.replace(pattern, value);
  }
  return text;
}

/** Per test: every wait in this file is bounded. */
const BOUND = { timeout: 60_000 };

let scratch: string;
before(() => {
  scratch = tempDir('strata-config-files-');
});
after(() => {
  removeDir(scratch);
});

function writeToml(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

// Each case is its own short-lived process: run a few at a time.
describe('a bad environment variable stops the server, naming the variable', { concurrency: 6, timeout: 120_000 }, () => {
  const cases: [Record<string, string>, string][] = [
    [{ STRATA_PORT: 'abc' }, 'STRATA_PORT'],
    [{ STRATA_PORT: '70000' }, 'STRATA_PORT'],
    [{ STRATA_PORT: '-1' }, 'STRATA_PORT'],
    [{ STRATA_HOST: '' }, 'STRATA_HOST'],
    [{ STRATA_DATA_DIR: '' }, 'STRATA_DATA_DIR'],
    [{ STRATA_PARQUET_COMPRESSION: 'lz5' }, 'STRATA_PARQUET_COMPRESSION'],
    [{ STRATA_PARQUET_ROW_GROUP_SIZE: '0' }, 'STRATA_PARQUET_ROW_GROUP_SIZE'],
    [{ STRATA_BUFFER_MAX_RECORDS: '-1' }, 'STRATA_BUFFER_MAX_RECORDS'],
    [{ STRATA_BUFFER_MAX_RECORDS: '1.5' }, 'STRATA_BUFFER_MAX_RECORDS'],
    [{ STRATA_BUFFER_MAX_AGE_MS: 'soon' }, 'STRATA_BUFFER_MAX_AGE_MS'],
    // Past 2^31 - 1 ms Node's timers fire after 1 ms: every query would time out at once.
    [{ STRATA_QUERY_TIMEOUT_MS: '3000000000' }, 'STRATA_QUERY_TIMEOUT_MS'],
    [{ STRATA_BUFFER_SCHEMA_TIMEOUT_MS: '2147483648' }, 'STRATA_BUFFER_SCHEMA_TIMEOUT_MS'],
    [{ STRATA_S3_REQUEST_TIMEOUT_MS: '1e12' }, 'STRATA_S3_REQUEST_TIMEOUT_MS'],
    [{ STRATA_WAL_SYNC_INTERVAL_MS: '9999999999' }, 'STRATA_WAL_SYNC_INTERVAL_MS'],
    [{ STRATA_SHUTDOWN_DRAIN_MS: '3000000000' }, 'STRATA_SHUTDOWN_DRAIN_MS'],
    [{ STRATA_MAX_BODY_BYTES: 'Infinity' }, 'STRATA_MAX_BODY_BYTES'],
    [{ STRATA_MAX_DECOMPRESSED_BYTES: '0' }, 'STRATA_MAX_DECOMPRESSED_BYTES'],
    [{ STRATA_QUERY_POOL_SIZE: '0' }, 'STRATA_QUERY_POOL_SIZE'],
    [{ STRATA_QUERY_THREADS: '-2' }, 'STRATA_QUERY_THREADS'],
    [{ STRATA_QUERY_MEMORY_LIMIT: 'lots' }, 'STRATA_QUERY_MEMORY_LIMIT'],
    [{ STRATA_QUERY_MEMORY_LIMIT: '0GB' }, 'STRATA_QUERY_MEMORY_LIMIT'],
    [{ STRATA_QUERY_MEMORY_LIMIT: '0.0 MiB' }, 'STRATA_QUERY_MEMORY_LIMIT'],
    [{ STRATA_QUERY_MAX_SPILL: '10' }, 'STRATA_QUERY_MAX_SPILL'],
    [{ STRATA_QUERY_MAX_SPILL: '-1GB' }, 'STRATA_QUERY_MAX_SPILL'],
    [{ STRATA_LOG_LEVEL: 'loud' }, 'STRATA_LOG_LEVEL'],
    [{ STRATA_STORAGE_BACKEND: 'ftp' }, 'STRATA_STORAGE_BACKEND'],
    [{ STRATA_NODE_ID: 'Node-1' }, 'STRATA_NODE_ID'],
    [{ STRATA_S3_PREFIX: '/warehouse' }, 'STRATA_S3_PREFIX'],
    [{ STRATA_S3_PREFIX: 'warehouse//' }, 'STRATA_S3_PREFIX'],
  ];
  for (const [env, key] of cases) {
    test(`${Object.entries(env).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')} → exit 1 naming ${key}`, async () => {
      await assertRefused(env, key);
    });
  }

  // An unset-but-present variable (`STRATA_PORT=` in a compose file) coerces to 0 and
  // silently means "any free port".
  test('STRATA_PORT="" is refused rather than read as port 0', async () => {
    await assertRefused({ STRATA_PORT: '' }, 'STRATA_PORT');
  });

  test('an integer out of range is refused with the range it must be in', async () => {
    assert.match(await assertRefused({ STRATA_PORT: '70000' }, 'STRATA_PORT'), /STRATA_PORT: expected an integer from 0 to 65535, got 70000\n/);
    assert.match(await assertRefused({ STRATA_QUERY_POOL_SIZE: '0' }, 'STRATA_QUERY_POOL_SIZE'), /STRATA_QUERY_POOL_SIZE: expected an integer of at least 1, got 0\n/);
  });
});

describe('a bad config file stops the server, naming the file or the key', { concurrency: 6, timeout: 120_000 }, () => {
  test('STRATA_CONFIG=/nonexistent.toml → exit 1 naming the variable and the file', async () => {
    const stderr = await assertRefused({ STRATA_CONFIG: '/nonexistent.toml' }, 'STRATA_CONFIG (/nonexistent.toml)');
    assert.match(stderr, /ENOENT/);
  });

  test('STRATA_CONFIG="" → exit 1 saying it is empty', async () => {
    const stderr = await assertRefused({ STRATA_CONFIG: '' }, 'STRATA_CONFIG');
    assert.match(stderr, /STRATA_CONFIG: empty; name a TOML file, or unset it/);
  });

  test('a file that is not TOML → exit 1 naming the file', async () => {
    const path = writeToml('syntax.toml', '[buffer\nmax_records = 3\n');
    await assertRefused({ STRATA_CONFIG: path }, `STRATA_CONFIG (${path})`);
  });

  test('[buffer] max_age_ms = "x" → exit 1 naming buffer.max_age_ms', async () => {
    const path = writeToml('bad-age.toml', tomlWith([[/^max_age_ms = \d+/m, 'max_age_ms = "x"']]));
    await assertRefused({ STRATA_CONFIG: path }, 'buffer.max_age_ms');
  });

  test('[parquet] compression = "lz5" and [log] level = 3 → exit 1 naming the key', async () => {
    const compression = writeToml('bad-compression.toml', tomlWith([[/^compression = "snappy"/m, 'compression = "lz5"']]));
    await assertRefused({ STRATA_CONFIG: compression }, 'parquet.compression');
    const level = writeToml('bad-level.toml', tomlWith([[/^level = "info"/m, 'level = 3']]));
    // runMain sets STRATA_LOG_LEVEL by default; unset it so that the file's value counts.
    await assertRefused({ STRATA_CONFIG: level, STRATA_LOG_LEVEL: undefined }, 'log.level');
  });

  test('a boolean, an array or a date where an integer belongs → exit 1 naming the key (not read as 1, 3 or ms)', async () => {
    const cases: [string, RegExp, string, string][] = [
      ['port-true.toml', /^port = \d+/m, 'port = true', 'server.port'],
      ['pool-array.toml', /^pool_size = \d+/m, 'pool_size = [3]', 'query.pool_size'],
      ['timeout-date.toml', /^timeout_ms = \d+/m, 'timeout_ms = 1979-05-27T07:32:00Z', 'query.timeout_ms'],
      ['records-hex.toml', /^max_records = \d+/m, 'max_records = "0x10"', 'buffer.max_records'],
    ];
    for (const [name, pattern, line, key] of cases) {
      // runMain sets STRATA_PORT by default; unset it so that the file's value counts.
      const stderr = await assertRefused({ STRATA_CONFIG: writeToml(name, tomlWith([[pattern, line]])), STRATA_PORT: undefined }, key);
      assert.ok(stderr.includes(`${key}: expected an integer`), stderr);
    }
    for (const value of ['0x10', '1e3', ' 10 ']) {
      const stderr = await assertRefused({ STRATA_BUFFER_MAX_RECORDS: value }, 'STRATA_BUFFER_MAX_RECORDS');
      assert.ok(stderr.includes('expected an integer'), stderr);
    }
    const flag = await assertRefused({ STRATA_WAL_ENABLED: 'yes' }, 'STRATA_WAL_ENABLED');
    assert.ok(flag.includes('expected true or false'), flag);
  });

  test('[query] max_spill = "lots" → exit 1 naming query.max_spill', async () => {
    const path = writeToml('bad-spill.toml', tomlWith([[/^max_spill = "10GiB"/m, 'max_spill = "lots"']]));
    await assertRefused({ STRATA_CONFIG: path }, 'query.max_spill');
  });

  test('a misspelt key in the file is reported as an unknown key', async () => {
    const path = writeToml('typo.toml', '[buffer]\nmax_recrods = 3\n');
    assert.match(await assertRefused({ STRATA_CONFIG: path }, 'buffer.max_recrods'), /unknown key/);
  });

  test('a partial file is laid over the defaults', async () => {
    const path = writeToml('partial.toml', '[buffer]\nmax_records = 7\n');
    const { code, stderr } = await runMain({ STRATA_CONFIG: path, STRATA_PORT: '99999' });
    // Only the environment's bad port is reported: every other key came from the defaults.
    assert.equal(code, 1, stderr);
    assert.match(stderr, /STRATA_PORT/);
  });

  test('a section that is not a table, with an environment override into it → exit 1 naming it', async () => {
    // Top-level keys must come before the first table.
    const path = writeToml('scalar-section.toml', `buffer = 3\n${tomlWith([[/^\[buffer\]$/m, '[buffer_unused]']])}`);
    await assertRefused({ STRATA_CONFIG: path, STRATA_BUFFER_MAX_RECORDS: '5' }, 'buffer');
  });
});

describe('start-up failures outside the config values', BOUND, () => {
  test('the data directory is a regular file → exit 1 naming the path', async () => {
    const file = join(scratch, 'not-a-dir');
    writeFileSync(file, 'x');
    const { code, stderr } = await runMain({ STRATA_DATA_DIR: file });
    assert.equal(code, 1, stderr);
    assert.ok(stderr.startsWith(`strata: failed to start: STRATA_DATA_DIR (${file}) cannot be used: ENOTDIR at `), stderr);
    assert.ok(!/\n\s+at /.test(stderr), `a stack trace instead of one line:\n${stderr}`);
  });

  test('a parent of the data directory that cannot be made (a dangling symlink: a volume not mounted) → exit 1 in one line naming STRATA_DATA_DIR', async () => {
    const link = join(scratch, 'unmounted');
    symlinkSync(join(scratch, 'no-such-volume', 'mnt'), link);
    const dataDir = join(link, 'strata', 'data');
    const { code, stderr } = await runMain({ STRATA_DATA_DIR: dataDir });
    assert.equal(code, 1, stderr);
    assert.ok(stderr.startsWith(`strata: failed to start: STRATA_DATA_DIR (${dataDir}) cannot be used: `), stderr);
    assert.ok(!/\n\s+at /.test(stderr), `a stack trace instead of one line:\n${stderr}`);
  });

  test('a data directory whose .node-id is a directory, or holds an invalid id → exit 1 in one line naming it', async () => {
    const dataDir = join(scratch, 'node-id-dir');
    mkdirSync(join(dataDir, '.node-id'), { recursive: true });
    let { code, stderr } = await runMain({ STRATA_DATA_DIR: dataDir });
    assert.equal(code, 1, stderr);
    assert.equal(stderr, `strata: failed to start: STRATA_DATA_DIR (${dataDir}) cannot be used: EISDIR at ${join(dataDir, '.node-id')}\n`);
    const invalid = join(scratch, 'node-id-invalid');
    mkdirSync(invalid);
    writeFileSync(join(invalid, '.node-id'), 'Not An Id\n');
    ({ code, stderr } = await runMain({ STRATA_DATA_DIR: invalid }));
    assert.equal(code, 1, stderr);
    assert.match(stderr, /^strata: failed to start: invalid configuration .*\.node-id: holds an invalid node id "Not An Id": .*set STRATA_NODE_ID\n$/);
  });

  test('the WAL directory is a regular file → exit 1 naming STRATA_WAL_DIR in one line', async () => {
    const file = join(scratch, 'not-a-wal-dir');
    writeFileSync(file, 'x');
    const { code, stderr } = await runMain({ STRATA_DATA_DIR: join(scratch, 'wal-case'), STRATA_WAL_DIR: file });
    assert.equal(code, 1, stderr);
    // ENOTDIR: the directory lock opens it as a directory before the WAL would create it (EEXIST).
    assert.equal(stderr, `strata: failed to start: STRATA_WAL_DIR (${file}) cannot be used: ENOTDIR at ${file}\n`);
  });

  test('the port is already taken → exit 1 with EADDRINUSE', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = blocker.address() as AddressInfo;
      const { code, stderr, stdout } = await runMain({ STRATA_PORT: String(port) });
      assert.equal(code, 1, stderr + stdout);
      assert.equal(stderr, `strata: failed to start: cannot listen on 127.0.0.1:${port} (STRATA_HOST, STRATA_PORT): EADDRINUSE\n`);
    } finally {
      blocker.close();
    }
  });
});


describe('a valid config file takes effect; the environment beats it', BOUND, () => {
  // max_records = 3, and an hour of max age so that only the size can trigger a flush.
  let file: string;
  before(() => {
    file = writeToml('small-buffer.toml', tomlWith([
      [/^max_records = \d+/m, 'max_records = 3'],
      [/^max_age_ms = \d+/m, 'max_age_ms = 3600000'],
    ]));
  });

  const line = (i: number): string => `cfg,host=h v=${i} ${1_700_000_000 + i}`;

  test('[buffer] max_records = 3 from STRATA_CONFIG: the third record flushes without a flush call', async () => {
    const server = await TestServer.start({ STRATA_CONFIG: file });
    try {
      assert.equal((await server.writeLines([line(0), line(1)].join('\n'), 'db=cfg&precision=s')).status, 204);
      await sleep(500);
      assert.deepEqual(parquetFiles(server.dataDir), [], 'two records stay buffered');
      assert.equal((await server.writeLines(line(2), 'db=cfg&precision=s')).status, 204);
      assert.ok(await waitFor(() => parquetFiles(server.dataDir).length === 1, 5000), 'the third record triggers a flush');
      assert.deepEqual(await server.rows('SELECT count(*), min(v), max(v) FROM cfg', 'cfg'), [[3, 0, 2]]);
    } finally {
      assert.equal(await stopWithin(server), 0);
      removeDir(server.dataDir);
    }
  });

  test('STRATA_BUFFER_MAX_RECORDS=5 overrides the file\'s 3', async () => {
    const server = await TestServer.start({ STRATA_CONFIG: file, STRATA_BUFFER_MAX_RECORDS: '5' });
    try {
      assert.equal((await server.writeLines([0, 1, 2].map(line).join('\n'), 'db=cfg&precision=s')).status, 204);
      await sleep(500);
      assert.deepEqual(parquetFiles(server.dataDir), [], 'three records stay buffered under the limit of 5');
      assert.equal((await server.writeLines([3, 4].map(line).join('\n'), 'db=cfg&precision=s')).status, 204);
      assert.ok(await waitFor(() => parquetFiles(server.dataDir).length === 1, 5000), 'the fifth record triggers a flush');
      assert.deepEqual(await server.rows('SELECT count(*) FROM cfg', 'cfg'), [[5]]);
    } finally {
      assert.equal(await stopWithin(server), 0);
      removeDir(server.dataDir);
    }
  });
});

test('a libuv thread pool below the query pool size + 7 is reported at start-up as a warning naming the size needed; none at the size', BOUND, async () => {
  for (const [threads, warned] of [['4', true], ['12', false]] as const) {
    const server = await TestServer.start({ UV_THREADPOOL_SIZE: threads, STRATA_QUERY_POOL_SIZE: '5' });
    try {
      const reported = (): { level: number; msg: string }[] => server.logLines().filter((l) => /UV_THREADPOOL_SIZE\)/.test(l.msg));
      // Logged before /ready answered 200; the pipe may bring it a little later.
      await waitFor(() => reported().length > 0 || server.logLines().some((l) => l.msg === 'WAL replayed'), 5000);
      const lines = reported();
      if (!warned) {
        assert.deepEqual(lines, []);
        continue;
      }
      assert.deepEqual(lines.map((l) => l.level), [40]);
      assert.match(lines[0].msg, /^libuv has 4 threads \(UV_THREADPOOL_SIZE\), below the query pool size \+ 7 = 12: .*start Node with UV_THREADPOOL_SIZE=12 or more/);
    } finally {
      assert.equal(await stopWithin(server), 0);
      removeDir(server.dataDir);
    }
  }
});
