import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineErrors } from './line-errors.js';

const linesOf = (errors: LineErrors): number[] => errors.first.map((e) => e.line);

test('counts every rejection and keeps the lowest lines, whatever the order they come in', () => {
  const errors = new LineErrors();
  for (let line = 1_000_000; line > 0; line -= 7) errors.add(line, `bad ${line}`);
  errors.add(3, 'late but low');
  assert.equal(errors.count, Math.ceil(1_000_000 / 7) + 1);
  assert.equal(errors.first.length, LineErrors.KEPT);
  assert.deepEqual(linesOf(errors), [1, 3, 8, 15, 22, 29, 36, 43, 50, 57]);
  assert.deepEqual(errors.first[1], { line: 3, message: 'late but low' });
});

test('rejections of one line (rows of one item) stay in the order they were added', () => {
  const errors = new LineErrors();
  for (let row = 0; row < 12; row++) errors.add(4, `row ${row}`);
  errors.add(2, 'item 2');
  assert.equal(errors.count, 13);
  assert.deepEqual(errors.first.map((e) => e.message), ['item 2', ...Array.from({ length: 9 }, (_, row) => `row ${row}`)]);
});

test('a message repeated for one line (the rows of one item) is kept once and counted each time', () => {
  const errors = new LineErrors();
  for (let row = 0; row < 20; row++) errors.add(1, 'field "v" is float64, the column is int64');
  errors.add(1, 'another reason');
  errors.add(2, 'item is not a map');
  errors.add(3, 'field "v" is float64, the column is int64');
  assert.equal(errors.count, 23);
  assert.deepEqual(errors.first.map((e) => [e.line, e.message]), [
    [1, 'field "v" is float64, the column is int64'], [1, 'another reason'], [2, 'item is not a map'], [3, 'field "v" is float64, the column is int64'],
  ]);
});

test('addAll merges two stages as if every rejection had been added to one', () => {
  const parsed = new LineErrors();
  const ingested = new LineErrors();
  const all = new LineErrors();
  for (let line = 1; line <= 50; line++) {
    const stage = line % 3 === 0 ? ingested : parsed;
    stage.add(line * 2, `line ${line}`);
  }
  for (let line = 1; line <= 50; line++) all.add(line * 2, `line ${line}`);
  parsed.addAll(ingested);
  assert.equal(parsed.count, 50);
  assert.deepEqual(parsed.first, all.first);
  assert.deepEqual(linesOf(new LineErrors()), []);
});
