import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyLog } from './key-log.js';

test('a cut hides the keys noted after it, not those before', () => {
  const log = new KeyLog();
  log.note('before');
  const cut = log.cut();
  log.note('a');
  log.note('b');
  assert.deepEqual([...cut.hidden()].sort(), ['a', 'b']);
  cut.close();
});

test('overlapping cuts each hide what was noted after their own start; keys are forgotten once no open cut hides them', () => {
  const log = new KeyLog();
  const first = log.cut();
  log.note('a');
  const second = log.cut();
  const third = log.cut();
  log.note('b');
  assert.deepEqual([...first.hidden()].sort(), ['a', 'b']);
  assert.deepEqual([...second.hidden()], ['b']);
  first.close();
  assert.equal(log.size, 1, 'a: no open cut hides it');
  second.close();
  second.close();
  assert.deepEqual([...third.hidden()], ['b'], 'a second close of the same cut does not end another at the same point');
  third.close();
  assert.equal(log.size, 0);
  log.note('c');
  assert.equal(log.size, 0, 'nothing is kept while no cut is open');
  assert.deepEqual([...log.cut().hidden()], []);
});

test('the set a cut gives is its caller\'s to change', () => {
  const log = new KeyLog();
  const cut = log.cut();
  log.note('a');
  cut.hidden().add('x');
  assert.deepEqual([...cut.hidden()], ['a']);
  cut.close();
});
