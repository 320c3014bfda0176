import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QueryRejectedError } from '../errors.js';
import { checkCaseExpansion, checkGroupingAndPivots, checkBindExpansion, macroUses, MAX_COPIED_NODES, MAX_GROUPING_SETS } from './expansion.js';
import type { JsonValue } from './sql-rewriter.js';

const simpleCase = (depth: number): string => {
  let e = 'x';
  for (let i = 0; i < depth; i++) e = `CASE ${e} WHEN 1 THEN 1 WHEN 2 THEN 2 END`;
  return `SELECT ${e}`;
};

test('simple CASEs nested in their operands are counted as DuckDB copies them; searched CASEs, strings and comments are not', () => {
  checkCaseExpansion(simpleCase(9));
  assert.throws(() => checkCaseExpansion(simpleCase(10)), QueryRejectedError);
  assert.throws(() => checkCaseExpansion(simpleCase(10).toLowerCase()), QueryRejectedError);
  // One WHEN copies nothing more than the operand it had.
  let searched = 'x';
  for (let i = 0; i < 500; i++) searched = `CASE WHEN ${searched} > 0 THEN 1 WHEN y THEN 2 ELSE 3 END`;
  checkCaseExpansion(`SELECT ${searched}`);
  // The same words inside strings, quoted names and comments are no CASE.
  const quoted = Array.from({ length: 2000 }, () => "'CASE' \"when\" /* END */ -- case\n").join(' ');
  checkCaseExpansion(`SELECT ${quoted}`);
});

test('macro calls count each argument once per use of its parameter; nested calls multiply', () => {
  const uses = macroUses([['twice', ['a', 'b'], 'CASE WHEN a = b THEN NULL ELSE A END'], ['twice', ['a'], 'a']]);
  assert.deepEqual(uses.get('twice'), [2, 1]);
  // Shaped as json_serialize_sql's FUNCTION nodes.
  const call = (depth: number): JsonValue => {
    let e: JsonValue = { class: 'COLUMN_REF', column_names: ['x'] };
    for (let i = 0; i < depth; i++) e = { class: 'FUNCTION', function_name: 'TWICE', children: [e, { class: 'CONSTANT', value: 1 }] };
    return e;
  };
  const depth = Math.floor(Math.log2(MAX_COPIED_NODES));
  checkBindExpansion(call(depth - 2), uses);
  assert.throws(() => checkBindExpansion(call(depth + 2), uses), /^QueryRejectedError: query too complex: .*macro calls/);
  // A function that is no macro copies nothing, however deep.
  checkBindExpansion(call(depth + 2), new Map());
});

test('a macro whose body calls another macro copies its arguments as often as that one does', () => {
  const uses = macroUses([['thrice', ['x', 'n'], 'CASE WHEN x > n THEN x ELSE x END'], ['alias_of', ['x', 'n'], 'thrice(x, n)'], ['outer', ['y'], 'alias_of(y, 1) + y']]);
  assert.deepEqual(uses.get('thrice'), [3, 1]);
  assert.deepEqual(uses.get('alias_of'), [3, 3]);
  assert.deepEqual(uses.get('outer'), [6]);
});

test('the CASE count reads tokens as DuckDB does: a number touching a keyword, Unicode spaces, a keyword after a dot', () => {
  const nest = (depth: number, wrap: (e: string) => string): string => {
    let e = 'x';
    for (let i = 0; i < depth; i++) e = wrap(e);
    return `SELECT ${e}`;
  };
  assert.throws(() => checkCaseExpansion(nest(14, (e) => `CASE ${e} WHEN 1 THEN 1 WHEN 2 THEN 2END`)), QueryRejectedError);
  assert.throws(() => checkCaseExpansion(nest(14, (e) => `CASE\u00a0${e} WHEN 1 THEN 1 WHEN 2 THEN 2 END`)), QueryRejectedError);
  assert.throws(() => checkCaseExpansion(nest(14, (e) => `CASE s.end + ${e} WHEN 1 THEN 1 WHEN 2 THEN 2 END`)), QueryRejectedError);
  // Copies in proportion to the text pass: one CASE of 3,000 WHENs on a 4-token operand.
  checkCaseExpansion(`SELECT CASE lower(host) ${Array.from({ length: 3000 }, (_, i) => `WHEN 'h${i}' THEN ${i}`).join(' ')} ELSE 0 END`);
});

test('named macro arguments count as the most used parameter, whatever their order', () => {
  const uses = macroUses([['heavy', ['light', 'big'], 'light || big || big || big || big || big']]);
  let e: JsonValue = { class: 'COLUMN_REF', column_names: ['x'] };
  for (let i = 0; i < 8; i++) {
    // heavy(big := e, light := 1): the heavy parameter's argument first.
    e = { class: 'FUNCTION', function_name: 'heavy', children: [{ ...(e as object), alias: 'big' }, { class: 'CONSTANT', alias: 'light', value: 1 }] };
  }
  assert.throws(() => checkBindExpansion(e, uses), QueryRejectedError);
});

test('more grouping sets than MAX_GROUPING_SETS are refused', () => {
  const sets = (n: number): JsonValue => ({ class: 'SELECT_NODE', group_sets: Array.from({ length: n }, () => [0]) });
  checkGroupingAndPivots(sets(MAX_GROUPING_SETS));
  assert.throws(() => checkGroupingAndPivots({ nested: [sets(MAX_GROUPING_SETS + 1)] }), /grouping sets/);
});
