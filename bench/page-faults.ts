/**
 * What touching fresh memory costs on this machine: the first write to each 4 KiB page of
 * newly allocated buffers (a page fault each) against a second write to the same pages.
 * On the VMs Strata is measured on the first is 30–50 times a usual page fault, which is
 * why large short-lived allocations (V8 large-object strings, fresh result buffers) show
 * up in profiles (bench/README.md, "Line protocol: decoding in 64 KiB pieces").
 * Prints figures, asserts nothing.
 *
 *   npx tsc -p . && node dist/bench/page-faults.js [MiB per run] [runs]
 */
const PAGE = 4096;
const mib = Number(process.argv[2] ?? 256);
const runs = Number(process.argv[3] ?? 3);

/** Writes one byte per page of `buffers`; returns the ns per page it took. */
function touch(buffers: Buffer[]): number {
  const t0 = process.hrtime.bigint();
  let pages = 0;
  for (const b of buffers) for (let i = 0; i < b.length; i += PAGE, pages++) b[i] = 1;
  return Number(process.hrtime.bigint() - t0) / pages;
}

for (let r = 0; r < runs; r++) {
  // 64 MiB each (the size asked, rounded to that): allocated with mmap by the C library, so every page is new to the process.
  const buffers = Array.from({ length: Math.max(1, Math.round(mib / 64)) }, () => Buffer.allocUnsafeSlow(64 << 20));
  const first = touch(buffers);
  const again = touch(buffers);
  console.log(`${buffers.length * 64} MiB: first write ${first.toFixed(0)} ns/page, second write ${again.toFixed(0)} ns/page`);
}
