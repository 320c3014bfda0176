import assert from 'node:assert/strict';
import { test } from 'node:test';
import { numberText, rfc3339FromMicros } from './json-result.js';

test('numberText matches String for short decimals, long digits, integers, signs and limits', () => {
  const values = [0, -0, 1, -1, 0.1, 0.5, 12.3457, -12.3457, 0.000001, 0.0000015, 1e-7, 0.1 + 0.2, 123456789.123456,
    999999999.999999, 1e9, 1e9 + 0.5, 2 ** -20, 12.3456 + 0.0001, 1e21, Number.MIN_VALUE, Number.MAX_VALUE];
  for (let i = 0; i < 100_000; i++) values.push(i / 1000, -i / 7, i * 1e-6, Math.round(i * 7919.123) / 1e4 + 0.0001);
  for (const v of values) assert.equal(numberText(v), String(v), `${v}`);
});

test('rfc3339FromMicros: fraction trimmed, before 1970, outside ±2^53 µs, infinities', () => {
  assert.equal(rfc3339FromMicros(0n), '1970-01-01T00:00:00Z');
  assert.equal(rfc3339FromMicros(10_500_000n), '1970-01-01T00:00:10.5Z');
  assert.equal(rfc3339FromMicros(-1n), '1969-12-31T23:59:59.999999Z');
  assert.equal(rfc3339FromMicros(-86_400_000_001n), '1969-12-30T23:59:59.999999Z');
  assert.equal(rfc3339FromMicros(1_767_225_723_000_120n), '2026-01-01T00:02:03.00012Z');
  assert.equal(rfc3339FromMicros(-62_135_596_800_000_000n), '0001-01-01T00:00:00Z');
  assert.equal(rfc3339FromMicros(253_402_300_800_000_001n), '+010000-01-01T00:00:00.000001Z');
  assert.equal(rfc3339FromMicros(9223372036854775807n), 'infinity');
  assert.equal(rfc3339FromMicros(-9223372036854775807n), '-infinity');
});
