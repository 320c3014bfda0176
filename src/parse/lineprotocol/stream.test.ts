import { constants } from 'node:buffer';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLineProtocol } from './parser.js';
import { NOT_UTF8, parseLineProtocolBody, TOO_LONG } from './stream.js';

const NOW = Date.UTC(2026, 0, 1) * 1000;

/** 300 lines mixing measurements, CRLF, comments, multi-byte UTF-8 and a bad line every 37. */
function mixedBody(): Buffer {
  const lines: string[] = [];
  for (let i = 1; i <= 300; i++) {
    if (i % 37 === 0) lines.push(`cpu,host=h${i} usage=oops`);
    else if (i % 50 === 0) lines.push('# comment');
    else if (i % 3 === 0) lines.push(`mem,host=h${i % 7} used=${i}i,note="ä ✓ ${i}" ${i}000\r`);
    else lines.push(`cpu,host=h${i % 7},région=é usage=${i / 4} ${i}000`);
  }
  return Buffer.from(lines.join('\n') + '\n');
}

test('a body larger than chunkBytes parses as the direct parser does, with global line numbers', async () => {
  const body = mixedBody();
  const direct = parseLineProtocol(body.toString('utf8'), 'ns', NOW);
  for (const chunkBytes of [1, 64, 1000, body.length, 1 << 20]) {
    const streamed = await parseLineProtocolBody(body, 'ns', NOW, chunkBytes);
    assert.deepStrictEqual(streamed, direct, `chunkBytes ${chunkBytes}`);
  }
  assert.deepEqual(direct.errors.first.map((e) => e.line), [37, 74, 111, 148, 185, 222, 259, 296]);
  assert.equal(direct.accepted, 300 - 8 - 6);
  assert.deepEqual(direct.batches.map((b) => b.measurement), ['cpu', 'mem']);
});

test('a string field value holding newlines across piece boundaries parses as the direct parser does, even unterminated', async () => {
  const lines: string[] = [];
  for (let i = 1; i <= 60; i++) {
    lines.push(i % 5 === 0 ? `log,i=${i} msg="line one\nline two\n\\"three\\"",n=${i}i ${i}` : `log,i=${i} n=${i}i ${i}`);
  }
  lines.push('log,i=bad msg="never closed', 'log,i=after n=1i 1');
  const body = Buffer.from(lines.join('\n') + '\n');
  const direct = parseLineProtocol(body.toString('utf8'), 'ns', NOW);
  assert.equal(direct.accepted, 61);
  assert.deepEqual(direct.errors.first.map((e) => e.line), [85]);
  for (const chunkBytes of [1, 7, 64, 1000, body.length]) {
    assert.deepStrictEqual(await parseLineProtocolBody(body, 'ns', NOW, chunkBytes), direct, `chunkBytes ${chunkBytes}`);
  }
});

test('a body without a final newline keeps its last line', async () => {
  const result = await parseLineProtocolBody(Buffer.from('m v=1\nm v=2\nm v=3'), 'ns', NOW, 4);
  assert.equal(result.accepted, 3);
  assert.deepEqual([...result.batches[0].sourceLine], [1, 2, 3]);
});

/** `parse`'s result and how many turns the event loop took while it ran. */
async function withTurns<T>(parse: () => Promise<T>): Promise<{ result: T; ticks: number }> {
  let ticks = 0;
  let done = false;
  const tick = (): void => {
    ticks++;
    if (!done) setImmediate(tick);
  };
  setImmediate(tick);
  const result = await parse();
  done = true;
  return { result, ticks };
}

test('yields to the event loop between chunks', async () => {
  const { result, ticks } = await withTurns(() => parseLineProtocolBody(mixedBody(), 'ns', NOW, 2048));
  assert.ok(ticks >= 3, `only ${ticks} event-loop turns while parsing`);
  assert.equal(result.accepted, 286);
});

test('a body of many 64 KiB pieces and several chunks parses as the direct parser does, yielding once per chunk', async () => {
  // ~3.7 MB: ~57 pieces of at most 64 KiB, parsed in four chunks of ~1 MiB (the default).
  const body = Buffer.concat(Array.from({ length: 300 }, () => mixedBody()));
  const direct = parseLineProtocol(body.toString('utf8'), 'ns', NOW);
  const { result: streamed, ticks } = await withTurns(() => parseLineProtocolBody(body, 'ns', NOW));
  assert.deepStrictEqual(streamed, direct);
  assert.equal(direct.accepted, 300 * 286);
  // Three yields between four chunks; not one per piece.
  assert.ok(ticks >= 3 && ticks <= 6, `${ticks} event-loop turns while parsing ${body.length} bytes in ~1 MiB chunks`);
});

test('rejects a chunk size below 1', async () => {
  await assert.rejects(parseLineProtocolBody(Buffer.from('m v=1'), 'ns', NOW, 0), RangeError);
});

// Read with U+FFFD for its bad bytes, Latin-1 `caf\xe9` and `caf\xe8` were one tag value.
test('a line that is not UTF-8 is refused; comments and a U+FFFD sent as UTF-8 pass; whatever the chunking', async () => {
  const body = Buffer.concat([
    Buffer.from('m,host=a v=1 1\n'),
    Buffer.from([...Buffer.from('m,host=caf'), 0xe9, ...Buffer.from(' v=2 2\r\n')]),
    Buffer.from([...Buffer.from('  # caf'), 0xe8, 0x0a]),
    Buffer.from('m,host=\ufffd v=3 3\n'),
    Buffer.from([...Buffer.from('m '), 0xc3, 0x28, ...Buffer.from('=4 4\n')]),
    Buffer.from([...Buffer.from('m v="'), 0xed, 0xa0, 0x80, ...Buffer.from('" 5')]),
  ]);
  for (const chunkBytes of [1, 20, 1 << 20]) {
    const r = await parseLineProtocolBody(body, 'ns', NOW, chunkBytes);
    assert.deepEqual(r.errors.first, [2, 5, 6].map((line) => ({ line, message: NOT_UTF8 })), `chunkBytes ${chunkBytes}`);
    assert.equal(r.accepted, 2);
    assert.deepEqual(r.batches[0].tags[0].dictionary, ['a', '\ufffd']);
    assert.deepEqual([...r.batches[0].sourceLine], [1, 4]);
  }
});

// V8 cannot hold a longer string: decoding the line threw, and the write failed with a 500.
test('a line longer than the longest string is refused; the other lines are kept', async () => {
  const head = Buffer.from('m v=1 1\nm s="');
  const tail = Buffer.from('" 2\nm v=3 3\n');
  const body = Buffer.alloc(head.length + constants.MAX_STRING_LENGTH + tail.length, 0x61);
  head.copy(body);
  tail.copy(body, body.length - tail.length);
  const r = await parseLineProtocolBody(body, 'ns', NOW);
  assert.deepEqual(r.errors.first, [{ line: 2, message: TOO_LONG }]);
  assert.equal(r.accepted, 2);
  assert.deepEqual([...r.batches[0].sourceLine], [1, 3]);
});
