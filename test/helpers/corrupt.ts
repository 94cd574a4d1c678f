/** Bad inputs made on purpose: PNG bombs (a header declaring huge dimensions), truncations, random bytes. */
import {execFileSync} from 'node:child_process';
import {deflateSync} from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A valid-looking PNG that declares width x height (greyscale) with a tiny compressed body: a decompression bomb. */
export function pngBomb(width = 30_000, height = 30_000): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const rows = deflateSync(Buffer.alloc(width + 1), {level: 9}); // one zero row; the rest is "missing"
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', rows), chunk('IEND', Buffer.alloc(0))]);
}

/** A deterministic byte generator for fuzzing. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Makes a FIFO (named pipe) at `file`: opening it for reading blocks until a writer comes, i.e. forever. */
export function mkfifo(file: string): void {
  execFileSync('mkfifo', [file]);
}

/** True when this process can observe permission errors (root reads chmod 000 files anyway). */
export const CAN_OBSERVE_EACCES = process.getuid?.() !== 0;

/**
 * CSV texts that break a CSV parser in each of the ways users' files do, with the 1-based line of the bad record.
 * Every one starts with a valid header and a valid first row.
 */
export function garbledCsvs(goodRow: string): Array<{name: string; text: string; line: number}> {
  const head = `path,label\n${goodRow}\n`;
  return [
    {name: 'unclosed-quote', text: `${head}"a.jpg,1\n`, line: 3},
    {name: 'bare-quote', text: `${head}a"b.jpg,1\n`, line: 3},
    {name: 'junk-after-quote', text: `${head}"a.jpg"x,1\n`, line: 3},
    {name: 'binary-bytes', text: `${head}\u0000\u00ff"\u0001\u0002,\u0003"\u0004\n`, line: 3},
  ];
}

/** Overwrites the first bytes of row group `group`'s first column chunk with garbage (a garbled page header). */
export function garbleRowGroup(shard: Uint8Array, offset: number, length = 24, seed = 1): Uint8Array {
  const out = new Uint8Array(shard);
  const rand = lcg(seed);
  for (let i = 0; i < length && offset + i < out.length; i++) out[offset + i] = Math.floor(rand() * 256);
  return out;
}
