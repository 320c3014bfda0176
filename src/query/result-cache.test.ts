import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResultCache } from './result-cache.js';

test('a stored result holds exactly its bytes, not the larger buffers its chunks were views of', () => {
  const cache = new ResultCache(60_000, 1 << 20, () => false);
  const recorder = cache.recorder()!;
  const grown = Buffer.alloc(100_000, 0x61);
  recorder.add('{"data":[é');
  recorder.add(grown.subarray(10, 20));
  // Small Buffers are slices of Node's shared 8 KiB pool.
  recorder.add(Buffer.from(']}'));
  cache.set('json', 'db', 'SELECT 1', recorder.result(1, [{ database: 'db', measurement: 'm' }]), 0, true);
  const stored = cache.get('json', 'db', 'SELECT 1')!;
  const text = '{"data":[é' + 'a'.repeat(10) + ']}';
  assert.equal(stored.bytes, Buffer.byteLength(text));
  assert.equal(Buffer.concat(stored.chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c))).toString(), text);
  const held = stored.chunks.reduce((n, c) => n + (typeof c === 'string' ? Buffer.byteLength(c) : c.buffer.byteLength), 0);
  assert.equal(held, stored.bytes, 'no byte kept beyond those counted');
});

test('the counters leave out expired entries', async () => {
  const cache = new ResultCache(30, 1 << 20, () => false);
  const recorder = cache.recorder()!;
  recorder.add('{"data":[[1]]}');
  cache.set('json', 'db', 'SELECT 1', recorder.result(1, [{ database: 'db', measurement: 'm' }]), 0, true);
  assert.deepEqual([cache.stats().entries, cache.stats().bytes], [1, 14]);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual([cache.stats().entries, cache.stats().bytes], [0, 0]);
});
