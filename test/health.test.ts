/**
 * `GET /health` and `GET /ready` in Arc's shapes (../shared/notes/arc-wire-contract.md §6.1),
 * which Arc's clients (the VS Code extension, `arcctl`) read: `status`, `time`, `uptime` as Go
 * prints a duration, `uptime_sec`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { goDuration } from '../src/http/routes/health.js';
import { removeDir, TestServer } from './harness.js';

test('uptime is printed in whole seconds as Go prints a duration', () => {
  assert.deepEqual([0, 0.4, 59.4, 59.6, 60, 3723.4, 90061].map(goDuration), ['0s', '0s', '59s', '1m0s', '1m0s', '1h2m3s', '25h1m1s']);
});

test('GET /health and GET /ready answer Arc\'s fields', async () => {
  const server = await TestServer.start();
  try {
    for (const [path, status] of [['/health', 'ok'], ['/ready', 'ready']] as const) {
      const res = await fetch(`${server.url}${path}`);
      assert.equal(res.status, 200, path);
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(body.status, status, path);
      assert.ok(!Number.isNaN(Date.parse(String(body.time))), path);
      assert.equal(typeof body.uptime_sec, 'number', path);
      assert.equal(body.uptime, goDuration(body.uptime_sec as number), path);
    }
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
  }
});
