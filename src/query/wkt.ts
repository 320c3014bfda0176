/**
 * DuckDB's text of a GEOMETRY value (`CAST(g AS VARCHAR)`, what `COPY … TO` a CSV writes):
 * WKT, read from the WKB that DuckDB stores and node-api hands over
 * (`DuckDBGeometryValue.bytes`), whose own `toString` escapes those bytes as a BLOB's.
 *
 * WKB (OGC Simple Features §8.2): a byte order (1 little-endian, 0 big-endian), a uint32
 * type, then the body. Types are ISO's (1 point … 7 collection, plus 1000 for Z, 2000 for
 * M, 3000 for ZM), or PostGIS's EWKB flags (0x80000000 Z, 0x40000000 M, 0x20000000 an
 * SRID after the type), both read. Written as DuckDB writes them (checked against its
 * cast in `wkt.test.ts`): `POINT (1 2)`, `POINT Z (1 2 3)`, `MULTIPOINT (1 2, 3 4)`, `…
 * EMPTY` (a point with every coordinate NaN is empty), coordinates as DuckDB prints a
 * double but without a `.0` for whole numbers.
 */

/** A WKB value that cannot be read (truncated, an unknown type): `wkt` returns undefined. */
class MalformedWkb extends Error {}

const NAMES = ['', 'POINT', 'LINESTRING', 'POLYGON', 'MULTIPOINT', 'MULTILINESTRING', 'MULTIPOLYGON', 'GEOMETRYCOLLECTION'];

/**
 * The WKT of the WKB `bytes`, written as DuckDB writes it; undefined when the bytes are not
 * WKB that can be read (the caller then prints them as it prints a BLOB).
 * @param double DuckDB's text of a double (`nested-text.ts`), `1.0` for whole numbers.
 */
export function wkt(bytes: Uint8Array, double: (v: number) => string): string | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const need = (n: number): void => {
    if (pos + n > bytes.length) throw new MalformedWkb();
  };
  const coordinate = (v: number): string => {
    const text = double(v);
    return text.endsWith('.0') ? text.slice(0, -2) : text;
  };

  /** One geometry from `pos`: its tag (`POINT Z`) and its body (`(1 2 3)` or `EMPTY`). */
  function geometry(): { tag: string; body: string } {
    need(5);
    const little = bytes[pos] === 1;
    if (bytes[pos] > 1) throw new MalformedWkb();
    const u32 = (): number => {
      need(4);
      const v = view.getUint32(pos, little);
      pos += 4;
      return v;
    };
    pos += 1;
    const raw = u32();
    let hasZ = (raw & 0x80000000) !== 0;
    let hasM = (raw & 0x40000000) !== 0;
    if ((raw & 0x20000000) !== 0) u32();
    const iso = raw & 0x0fffffff;
    const kind = iso % 1000;
    const dims = Math.floor(iso / 1000);
    if (dims > 3 || kind < 1 || kind > 7) throw new MalformedWkb();
    hasZ ||= dims === 1 || dims === 3;
    hasM ||= dims === 2 || dims === 3;
    const width = 2 + (hasZ ? 1 : 0) + (hasM ? 1 : 0);
    const tag = `${NAMES[kind]}${hasZ && hasM ? ' ZM' : hasZ ? ' Z' : hasM ? ' M' : ''}`;
    const point = (): number[] => {
      need(8 * width);
      const values = Array.from({ length: width }, (_, i) => view.getFloat64(pos + 8 * i, little));
      pos += 8 * width;
      return values;
    };
    const sequence = (): string | undefined => {
      const n = u32();
      if (n === 0) return undefined;
      return `(${Array.from({ length: n }, () => point().map(coordinate).join(' ')).join(', ')})`;
    };
    const members = <T>(read: () => T): T[] => Array.from({ length: u32() }, read);
    const listed = (parts: string[]): string => (parts.length === 0 ? 'EMPTY' : `(${parts.join(', ')})`);
    switch (kind) {
      case 1: {
        const p = point();
        return { tag, body: p.every(Number.isNaN) ? 'EMPTY' : `(${p.map(coordinate).join(' ')})` };
      }
      case 2: return { tag, body: sequence() ?? 'EMPTY' };
      case 3: return { tag, body: listed(members(() => sequence() ?? 'EMPTY')) };
      case 7: return { tag, body: listed(members(() => {
        const g = geometry();
        return `${g.tag} ${g.body}`;
      })) };
      default: {
        // MULTIPOINT, MULTILINESTRING, MULTIPOLYGON: each member a whole geometry, written without its tag.
        const parts = members(() => geometry().body);
        return { tag, body: listed(kind === 4 ? parts.map((b) => (b === 'EMPTY' ? b : b.slice(1, -1))) : parts) };
      }
    }
  }

  try {
    const { tag, body } = geometry();
    return pos === bytes.length ? `${tag} ${body}` : undefined;
  } catch (err) {
    if (err instanceof MalformedWkb || err instanceof RangeError) return undefined;
    throw err;
  }
}
