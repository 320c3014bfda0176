import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseShowCommand } from './show.js';

test('SHOW commands are recognised through comments (nested, or ended by \\r), case and a trailing semicolon; quoted names keep what looks like a comment', () => {
  const cases: [string, ReturnType<typeof parseShowCommand>][] = [
    ['SHOW DATABASES', { kind: 'databases' }],
    ['show tables;', { kind: 'tables', database: undefined }],
    ['SHOW MEASUREMENTS ON db1', { kind: 'tables', database: 'db1' }],
    ['SHOW TABLES FROM "my db"', { kind: 'tables', database: 'my db' }],
    ['SHOW TABLES FROM "a -- b /* c */"', { kind: 'tables', database: 'a -- b /* c */' }],
    ['SHOW TABLES /* a /* b */ c */;', { kind: 'tables', database: undefined }],
    ['-- the catalogue\rSHOW\u00a0TABLES -- of the default database', { kind: 'tables', database: undefined }],
    ['SHOW /* tables of */ TABLES FROM db2 -- x', { kind: 'tables', database: 'db2' }],
    ['SELECT 1', undefined],
    ['SHOW TABLES; SELECT 1', undefined],
  ];
  for (const [sql, expected] of cases) assert.deepEqual(parseShowCommand(sql), expected, JSON.stringify(sql));
});
