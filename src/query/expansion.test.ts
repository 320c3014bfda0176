import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QueryRejectedError } from '../errors.js';
import { checkCaseExpansion, checkMacroExpansion, macroUses, MAX_COPIED_NODES } from './expansion.js';
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
  checkMacroExpansion(call(depth - 2), uses);
  assert.throws(() => checkMacroExpansion(call(depth + 2), uses), /^QueryRejectedError: query too complex: .*macro calls/);
  // A function that is no macro copies nothing, however deep.
  checkMacroExpansion(call(depth + 2), new Map());
});

test('a macro whose body calls another macro copies its arguments as often as that one does', () => {
  const uses = macroUses([['thrice', ['x', 'n'], 'CASE WHEN x > n THEN x ELSE x END'], ['alias_of', ['x', 'n'], 'thrice(x, n)'], ['outer', ['y'], 'alias_of(y, 1) + y']]);
  assert.deepEqual(uses.get('thrice'), [3, 1]);
  assert.deepEqual(uses.get('alias_of'), [3, 3]);
  assert.deepEqual(uses.get('outer'), [6]);
});
