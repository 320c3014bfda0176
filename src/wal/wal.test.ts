/**
 * The write-ahead log's group commit on a real directory: a write the log cannot encode
 * fails alone, and the appends grouped with it are logged, replayed and settled, so no
 * request waits for an answer that never comes and `close` does not hang.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DecodedWrite } from '../parse/body.js';
import type { Precision } from '../parse/time.js';
import { WriteAheadLog } from './wal.js';

const log = { warn: () => undefined, error: () => undefined };

function write(n: number, precision: Precision = 's'): DecodedWrite {
  return { database: 'db', format: 'line-protocol', precision, nowUs: 0, body: Buffer.from(`m v=${n}i ${1767225600 + n}\n`) };
}

/** A log in `dir` (fsync mode, 1 MiB segments); when `fresh`, opened, checked to replay nothing, and appending. */
async function walIn(dir: string, fresh: boolean): Promise<WriteAheadLog> {
  const wal = new WriteAheadLog({ dir, sync: 'fsync', syncIntervalMs: 100, segmentBytes: 1 << 20, log });
  await wal.open();
  if (!fresh) return wal;
  for await (const entry of wal.recover()) assert.fail(`a new log replayed ${entry.lsn}`);
  await wal.startAppending();
  return wal;
}

test('a write the log cannot encode is rejected alone; the rest of its group is logged and replays', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-wal-'));
  try {
    const wal = await walIn(dir, true);
    // Appended in one tick: one group. The precision is one no caller passes validation with.
    const appends = [wal.append(write(1)), wal.append(write(2, 'constructor' as Precision)), wal.append(write(3))];
    const settled = await Promise.allSettled(appends);
    assert.deepEqual(settled.map((s) => s.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.match(((settled[1] as PromiseRejectedResult).reason as Error).message, /^write-ahead log cannot encode this write: /);
    const lsns = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    assert.deepEqual(lsns, [1, 2]);
    assert.equal(await wal.append(write(4)), 3, 'the log goes on');
    await wal.close();

    const again = await walIn(dir, false);
    const replayed: [number, string][] = [];
    for await (const entry of again.recover()) replayed.push([entry.lsn, entry.write.body.toString()]);
    assert.deepEqual(replayed, [[1, write(1).body.toString()], [2, write(3).body.toString()], [3, write(4).body.toString()]]);
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const how of ['deleted', 'emptied'] as const) {
  test(`a WAL directory ${how} while running: the append finding its segment gone is refused, and the log goes on in the directory made again, with its id`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-wal-'));
    try {
      const wal = await walIn(dir, true);
      assert.equal(await wal.append(write(1)), 1);
      const id = wal.id;
      if (how === 'deleted') rmSync(dir, { recursive: true });
      else for (const name of readdirSync(dir)) rmSync(join(dir, name));
      // Written and synced into a file no directory holds: gone at the next start.
      await assert.rejects(wal.append(write(2)), /write-ahead log append failed: its segment file was removed/);
      const lsn = await wal.append(write(3));
      assert.equal(readFileSync(join(dir, 'wal-id'), 'utf8'), id);
      await wal.close();

      const again = await walIn(dir, false);
      assert.equal(again.id, id);
      const replayed: number[] = [];
      for await (const entry of again.recover()) replayed.push(entry.lsn);
      assert.deepEqual(replayed, [lsn], 'the acknowledged append is in the log made again');
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('a start that leaves nothing to replay takes a new log id, so copies of one directory (a cloned volume) log under ids of their own; one that leaves entries keeps its id', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-wal-'));
  const copy = `${dir}-copy`;
  try {
    const wal = await walIn(dir, true);
    const first = wal.id;
    assert.equal(await wal.append(write(1)), 1);
    await wal.close();
    cpSync(dir, copy, { recursive: true });

    /** Opens the log in `at`, replays it (releasing its entries, as once their records are in storage, when `flushed`), and starts appending. */
    const restart = async (at: string, flushed: boolean): Promise<{ wal: WriteAheadLog; replayed: number[] }> => {
      const again = await walIn(at, false);
      assert.equal(again.id, first, 'replayed under the id that logged it');
      const replayed: number[] = [];
      for await (const entry of again.recover()) {
        replayed.push(entry.lsn);
        if (flushed) again.release([entry.lsn]);
      }
      await again.startAppending();
      return { wal: again, replayed };
    };
    const kept = await restart(dir, false);
    assert.deepEqual(kept.replayed, [1]);
    assert.equal(kept.wal.id, first, 'an entry is left: the id it was logged under stays');
    kept.wal.release([1]);
    await kept.wal.close();

    const ids = [];
    // The original's entry was released before its clean close; the copy's is replayed.
    for (const [at, expected] of [[dir, []], [copy, [1]]] as const) {
      const { wal: again, replayed } = await restart(at, true);
      assert.deepEqual(replayed, expected);
      assert.notEqual(again.id, first);
      assert.equal(readFileSync(join(at, 'wal-id'), 'utf8'), again.id, 'written down');
      assert.equal(await again.append(write(2)), 2, 'LSNs go on');
      ids.push(again.id);
      await again.close();
    }
    assert.notEqual(ids[0], ids[1], 'the copies took ids of their own');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(copy, { recursive: true, force: true });
  }
});
