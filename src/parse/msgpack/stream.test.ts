import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { CpuGenerator } from '../../../bench/tsbs.js';
import { BadRequestError } from '../../errors.js';
import { parseMsgpack } from './parser.js';
import { parseMsgpackBody } from './stream.js';

const NOW = 1_767_225_600_000_000;
const packr = { pack: (v: unknown): Buffer => Buffer.from(encode(v, { useBigInt64: true })) };

/** A top-level array of `n` row items, every 10th one invalid (no fields). */
function rowItems(n: number): Uint8Array {
  const items = Array.from({ length: n }, (_, i) =>
    i % 10 === 9 ? { m: 'cpu', t: 1_767_225_600 + i } : { m: i % 2 ? 'cpu' : 'mem', t: 1_767_225_600 + i, tags: { host: `h${i % 7}` }, fields: { v: i + 0.5 } });
  return packr.pack(items);
}

test('same result as parseMsgpack for every top-level shape', async () => {
  const columnar = new CpuGenerator({ hosts: 10 }).msgpackColumnar(50);
  const bodies = [columnar, rowItems(100), packr.pack({ batch: [{ m: 'a', columns: { v: [1.5, 2.5] } }, { m: 'b', fields: { v: 1 } }] })];
  for (const body of bodies) assert.deepEqual(await parseMsgpackBody(body, NOW), parseMsgpack(body, NOW));
});

test('a large body yields to the event loop between items and still decodes every item', async () => {
  const body = rowItems(200_000);
  let turns = 0;
  const tick = setInterval(() => turns++, 1);
  const started = performance.now();
  const result = await parseMsgpackBody(body, NOW);
  const elapsed = performance.now() - started;
  clearInterval(tick);
  assert.ok(elapsed > 30, `decoding took ${elapsed} ms, too short to show slicing`);
  assert.ok(turns >= 2, `timers ran ${turns} times while decoding for ${elapsed.toFixed(0)} ms`);
  assert.equal(result.accepted, 180_000);
  assert.equal(result.errors.count, 20_000);
  assert.deepEqual(result.errors.first[0], { line: 9, message: "missing required field 'fields' or 'f'" });
  const cpu = result.batches.find((b) => b.measurement === 'cpu');
  assert.ok(cpu);
  assert.equal(cpu.rowCount, 80_000);
  assert.equal(cpu.time[0], NOW + 1_000_000);
  assert.equal(cpu.sourceLine[cpu.rowCount - 1], 199_997);
});

test('payload-level faults reject the promise with BadRequestError', async () => {
  await assert.rejects(parseMsgpackBody(packr.pack('x'), NOW), BadRequestError);
  const truncated = rowItems(1000);
  await assert.rejects(parseMsgpackBody(truncated.subarray(0, truncated.length - 1), NOW), /unexpected end of data/);
});
