/**
 * Zstandard request bodies (RFC 8878), decoded with `fzstd`: Node 20's zlib has no zstd,
 * and Redpanda Connect's Arc output sends it by default.
 *
 * fzstd allocates the window a frame header declares (up to 2 GiB) before it decodes
 * anything, and moves its whole window after every block. So the frames and blocks are
 * walked first (their headers say where each block ends, without decoding): a window above
 * `MAX_WINDOW_BYTES` is refused, as is a body whose blocks would cost more moving than a
 * body of `maxBytes` written by an encoder (blocks of 128 KiB) could; the body is then
 * decoded a few blocks at a time, giving the event loop a turn every 10 ms, with its
 * decompressed size checked block by block. fzstd checks neither a frame's content checksum nor its stated
 * content size: both are checked here (a corrupted body would otherwise be stored as other
 * values, where gzip's CRC refuses it).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Decompress } from 'fzstd';
import xxhash from 'xxhash-wasm';
import { BadRequestError, PayloadTooLargeError } from '../errors.js';

/** Largest window accepted: zstd's own for levels 1 to 19 (the `--ultra` levels and `--long` take more). */
const MAX_WINDOW_BYTES = 8 * 1024 * 1024;
/** Blocks pushed to the decoder at once: each decodes up to 128 KiB and moves up to `MAX_WINDOW_BYTES`. */
const BLOCKS_PER_PUSH = 4;
/** Decoding time after which the event loop gets a turn, ms (as `parse/msgpack/stream.ts` slices). */
const SLICE_MS = 10;
/** Largest block content (RFC 8878 §3.1.1.2.4: `Block_Maximum_Size`), what encoders write. */
const MAX_BLOCK_BYTES = 128 * 1024;
const FRAME_MAGIC = 0xfd2fb528;
/** Started by the first zstd body: a WebAssembly failure then fails that request, not the start. */
let hashes: ReturnType<typeof xxhash> | undefined;

/** A frame of the body: its bytes, where each of its blocks ends, and what its header and end state. */
interface Frame {
  readonly start: number;
  readonly ends: number[];
  /** The content size the header states, if it does. */
  readonly contentSize: number | undefined;
  /** The low 32 bits of the XXH64 of the content, if the frame carries them. */
  readonly checksum: number | undefined;
}

/** The frames of `raw` (skippable ones left out) and how many blocks they hold; @throws as `decodeZstd`. */
function walk(raw: Buffer, maxBytes: number): { frames: Frame[]; blocks: number } {
  const bad = (why: string): BadRequestError => new BadRequestError(`invalid zstd body: ${why}`);
  const tooLarge = (): PayloadTooLargeError => new PayloadTooLargeError(maxBytes, 'decompressed body');
  const frames: Frame[] = [];
  let blocks = 0;
  // The sizes raw and RLE blocks state: what the body decodes to at least.
  let stated = 0;
  let p = 0;
  while (p < raw.length) {
    if (p + 8 > raw.length) throw bad('truncated frame header');
    const magic = raw.readUInt32LE(p);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      // A skippable frame: its size, then that many bytes.
      p += 8 + raw.readUInt32LE(p + 4);
      if (p > raw.length) throw bad('truncated skippable frame');
      continue;
    }
    if (magic !== FRAME_MAGIC) throw bad('not a zstd frame');
    const descriptor = raw[p + 4];
    const singleSegment = (descriptor & 0x20) !== 0;
    const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6];
    const dictBytes = [0, 1, 2, 4][descriptor & 3];
    let q = p + 5;
    let frameWindow = 0;
    let contentSize: number | undefined;
    const ends: number[] = [];
    if (!singleSegment) {
      const w = raw[q++];
      const log = 10 + (w >> 3);
      frameWindow = 2 ** log + (2 ** log / 8) * (w & 7);
    }
    if (q + dictBytes > raw.length) throw bad('truncated frame header');
    // A frame that needs a dictionary would decode as other bytes without it.
    if (dictBytes > 0 && raw.readUIntLE(q, dictBytes) !== 0) throw bad('frames compressed with a dictionary are not supported');
    q += dictBytes;
    if (q + fcsBytes > raw.length) throw bad('truncated frame header');
    if (fcsBytes > 0) {
      const size = fcsBytes === 1 ? raw[q] : fcsBytes === 2 ? raw.readUInt16LE(q) + 256 : fcsBytes === 4 ? raw.readUInt32LE(q) : Number(raw.readBigUInt64LE(q));
      if (size > maxBytes) throw tooLarge();
      if (singleSegment) frameWindow = size;
      contentSize = size;
    }
    q += fcsBytes;
    if (frameWindow > MAX_WINDOW_BYTES) {
      throw bad(`a frame needs a window of ${frameWindow} bytes, above the ${MAX_WINDOW_BYTES} accepted (compress at a level of 19 or below, without --long)`);
    }
    for (let last = false; !last;) {
      if (q + 3 > raw.length) throw bad('truncated block');
      const header = raw[q] | (raw[q + 1] << 8) | (raw[q + 2] << 16);
      last = (header & 1) === 1;
      const type = (header >> 1) & 3;
      if (type === 3) throw bad('reserved block type');
      // RFC 8878 §3.1.1.2.3: no block holds more than the window or 128 KiB, and a compressed
      // one holds at least its literals and sequences headers (fzstd reads past a shorter one).
      const content = header >>> 3;
      if (content > Math.min(frameWindow, MAX_BLOCK_BYTES)) throw bad(`a block of ${content} bytes, above the ${Math.min(frameWindow, MAX_BLOCK_BYTES)} its frame allows`);
      if (type === 2 && content < 2) throw bad('a compressed block too short to hold its headers');
      if (type < 2 && (stated += header >>> 3) > maxBytes) throw tooLarge();
      q += 3 + (type === 1 ? 1 : header >>> 3);
      if (q > raw.length) throw bad('truncated block');
      ends.push(q);
    }
    let checksum: number | undefined;
    if ((descriptor & 4) !== 0) {
      if (q + 4 > raw.length) throw bad('truncated checksum');
      checksum = raw.readUInt32LE(q);
      q += 4;
    }
    ends[ends.length - 1] = q;
    frames.push({ start: p, ends, contentSize, checksum });
    blocks += ends.length;
    p = q;
  }
  return { frames, blocks };
}

/**
 * Decodes a zstd body: every frame, skippable frames skipped, each checked against the
 * content size and checksum it states.
 * @param maxBytes cap on the decompressed size, bytes.
 * @throws PayloadTooLargeError (413) above the cap, a frame's declared content size included;
 *   BadRequestError (400) for a malformed, truncated or corrupted body (a content size or
 *   checksum that does not match), a window above `MAX_WINDOW_BYTES`, or more blocks than
 *   `maxBytes` of 128 KiB blocks would make.
 */
export async function decodeZstd(raw: Buffer, maxBytes: number): Promise<Buffer> {
  const { frames, blocks: blockCount } = walk(raw, maxBytes);
  if (blockCount > 64 + Math.ceil(maxBytes / MAX_BLOCK_BYTES)) {
    throw new BadRequestError(`invalid zstd body: ${blockCount} blocks, more than an encoder writes for at most ${maxBytes} bytes`);
  }
  const { create64 } = await (hashes ??= xxhash());
  const out: Uint8Array[] = [];
  let size = 0;
  let sliceStart = performance.now();
  for (const [n, frame] of frames.entries()) {
    const hash = create64(0n);
    let frameSize = 0;
    const stream = new Decompress((block) => {
      frameSize += block.length;
      if ((size += block.length) > maxBytes) throw new PayloadTooLargeError(maxBytes, 'decompressed body');
      if (frame.checksum !== undefined) hash.update(block);
      out.push(block);
    });
    let from = frame.start;
    for (let i = 0; i < frame.ends.length; i += BLOCKS_PER_PUSH) {
      if (performance.now() - sliceStart >= SLICE_MS) {
        await nextTurn();
        sliceStart = performance.now();
      }
      const to = frame.ends[Math.min(i + BLOCKS_PER_PUSH, frame.ends.length) - 1];
      stream.push(raw.subarray(from, to), to === frame.ends[frame.ends.length - 1]);
      from = to;
    }
    if (frame.contentSize !== undefined && frameSize !== frame.contentSize) {
      throw new BadRequestError(`invalid zstd body: frame ${n + 1} states ${frame.contentSize} bytes of content and holds ${frameSize}`);
    }
    if (frame.checksum !== undefined && Number(hash.digest() & 0xffffffffn) !== frame.checksum) {
      throw new BadRequestError(`invalid zstd body: frame ${n + 1} does not match its checksum`);
    }
  }
  return Buffer.concat(out, size);
}
