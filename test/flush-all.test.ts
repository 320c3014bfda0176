/**
 * `BufferManager.flushAll` (behind `POST /api/v1/write/flush`) answers once the records
 * accepted before it are written, whatever is written after: under a steady stream of
 * writes the flush queue never empties, and a flush that waited for an empty queue never
 * answered (a probe's client called flush while another wrote: no answer for 26 s, until
 * the writer stopped). The real components are wired as in `src/app.ts`; each snapshot
 * write waits for a gate the test opens, so the order is not left to timing.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { parseLineProtocol } from '../src/parse/lineprotocol/parser.js';
import { QueryService } from '../src/query/query-service.js';
import { HeldTables } from '../src/query/held-tables.js';
import { PreparedStatements } from '../src/query/prepared-statements.js';
import { wireComponents } from './components.js';

const T0 = 1767225600; // 2026-01-01T00:00:00Z, s

/** One gate per snapshot write, in the order the writes start: `open` lets that write through. */
const gates: { open: () => void }[] = [];
let arrive: (() => void) | undefined;
/** Resolves when the next snapshot write reaches its gate. */
function nextArrival(): Promise<void> {
  return new Promise<void>((resolve) => (arrive = resolve));
}
const { pool, catalog, writer, buffers, close } = await wireComponents({
  prefix: 'strata-flush-all-', poolSize: 1,
  beforeWrite: async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    gates.push({ open });
    arrive?.();
    await gate;
  },
});
const queries = new QueryService(pool, catalog, { held: (db, m) => buffers.heldRecords(db, m), heldMeasurements: () => buffers.heldMeasurements(), filesOf: (s) => writer.keysOf(s), cut: () => writer.cut() },
  new HeldTables(buffers), new PreparedStatements(16));
after(close);

async function ingest(from: number, count: number): Promise<void> {
  const lines = Array.from({ length: count }, (_, i) => `fa,host=h${i % 3} v=${from + i}i ${T0 + from + i}`).join('\n');
  const parsed = parseLineProtocol(lines, 's', 0);
  await buffers.loadSchemas('fa', parsed.batches);
  assert.equal((await buffers.ingest('fa', parsed.batches)).accepted, count);
}

/** Whether `p` has settled by the time the tasks queued now have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

test('a flush answers once the records accepted before it are written, while later records still wait to be written', async () => {
  await ingest(0, 10);
  let reached = nextArrival();
  const first = buffers.flushAll();
  await reached;
  // While the first snapshot is written, more records arrive and another flush queues them.
  await ingest(10, 5);
  const second = buffers.flushAll();
  assert.equal(await settled(first), false, 'the first flush waits for its snapshot');
  reached = nextArrival();
  gates[0].open();
  await first;
  await reached;
  assert.equal(await settled(second), false, 'the second flush still waits for the later snapshot');
  gates[1].open();
  await second;
  const result = await queries.open({ sql: 'SELECT count(*)::DOUBLE, sum(v)::DOUBLE FROM fa', database: 'fa', priority: 'normal', signal: new AbortController().signal, decimals: 'exact' });
  try {
    const chunk = await result.next();
    assert.deepEqual(chunk!.columns.map((c) => (c.kind === 'f64' ? c.values[0] : c.kind)), [15, 105]);
  } finally {
    result.close();
  }
  assert.equal(buffers.stats().records_written, 15);
});
