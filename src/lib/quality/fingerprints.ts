/**
 * The fingerprints validate-data keeps for every image until the cross-image checks (duplicates, leaks, odd sizes),
 * stored column by column in typed arrays: 1,056 bytes per image (the 1,024-byte grey signature, the 64-bit pHash,
 * the 64-bit exact-duplicate key, width, height, mean brightness) and no JavaScript object per image. A row per
 * image, appended in chunks of 1,024 rows, so growing never copies what is stored. Images refer to their row by
 * number (ImageRecord.fingerprint).
 */

/** One image's fingerprint, as computed and as written to shard files. */
export interface Fingerprint {
  width: number;
  height: number;
  meanBrightness: number;
  phash: bigint;
  /** Normalised 32x32 grey thumbnail, int8 (1,024 bytes). */
  signature: Int8Array;
  /** 64-bit hash of the reduced pixels + original shape, 16 hex digits (ImageProperties.pixelKey). */
  pixelKey: string;
}

export const SIGNATURE_BYTES = 1024;
const CHUNK = 1024;
/** Bytes stored per image (every column, typed arrays). */
export const FINGERPRINT_BYTES = SIGNATURE_BYTES + 8 + 8 + 4 + 4 + 8; // signature, pHash, pixel key, width, height, mean brightness

interface Chunk {
  signatures: Int8Array;
  /** [hi, lo] per row. */
  phash: Uint32Array;
  /** [hi, lo] per row. */
  pixelKey: Uint32Array;
  width: Uint32Array;
  height: Uint32Array;
  meanBrightness: Float64Array;
}

export class FingerprintTable {
  private readonly chunks: Chunk[] = [];
  private rows = 0;

  get length(): number {
    return this.rows;
  }

  /** Bytes held by the columns (allocated chunks). */
  get bytes(): number {
    return this.chunks.length * CHUNK * FINGERPRINT_BYTES;
  }

  /** Appends a fingerprint; returns its row. */
  add(fp: Fingerprint): number {
    if (fp.signature.length !== SIGNATURE_BYTES) throw new Error(`a fingerprint signature has ${SIGNATURE_BYTES} bytes, got ${fp.signature.length}`);
    if (!/^[0-9a-f]{16}$/.test(fp.pixelKey)) throw new Error(`a pixel key is 16 hex digits, got "${fp.pixelKey}"`);
    const row = this.rows++;
    if (row % CHUNK === 0) {
      this.chunks.push({
        signatures: new Int8Array(CHUNK * SIGNATURE_BYTES),
        phash: new Uint32Array(CHUNK * 2),
        pixelKey: new Uint32Array(CHUNK * 2),
        width: new Uint32Array(CHUNK),
        height: new Uint32Array(CHUNK),
        meanBrightness: new Float64Array(CHUNK),
      });
    }
    const c = this.chunks[this.chunks.length - 1]!;
    const k = row % CHUNK;
    c.signatures.set(fp.signature, k * SIGNATURE_BYTES);
    c.phash[2 * k] = Number((fp.phash >> 32n) & 0xffffffffn);
    c.phash[2 * k + 1] = Number(fp.phash & 0xffffffffn);
    c.pixelKey[2 * k] = Number.parseInt(fp.pixelKey.slice(0, 8), 16);
    c.pixelKey[2 * k + 1] = Number.parseInt(fp.pixelKey.slice(8), 16);
    c.width[k] = fp.width;
    c.height[k] = fp.height;
    c.meanBrightness[k] = fp.meanBrightness;
    return row;
  }

  private chunk(row: number): Chunk {
    if (!Number.isInteger(row) || row < 0 || row >= this.rows) throw new RangeError(`no fingerprint row ${row} (${this.rows} rows)`);
    return this.chunks[Math.floor(row / CHUNK)]!;
  }

  width(row: number): number {
    return this.chunk(row).width[row % CHUNK]!;
  }

  height(row: number): number {
    return this.chunk(row).height[row % CHUNK]!;
  }

  meanBrightness(row: number): number {
    return this.chunk(row).meanBrightness[row % CHUNK]!;
  }

  /** The signature of `row`: a view into the table (no copy). */
  signature(row: number): Int8Array {
    const k = row % CHUNK;
    return this.chunk(row).signatures.subarray(k * SIGNATURE_BYTES, (k + 1) * SIGNATURE_BYTES);
  }

  /** The pHashes of `rows` as [hi, lo] 32-bit words, the input of the near-duplicate search. */
  phashWords(rows: number[]): Uint32Array {
    const words = new Uint32Array(rows.length * 2);
    rows.forEach((row, i) => {
      const c = this.chunk(row);
      const k = row % CHUNK;
      words[2 * i] = c.phash[2 * k]!;
      words[2 * i + 1] = c.phash[2 * k + 1]!;
    });
    return words;
  }

  /** Whether two rows have the same exact-duplicate key. */
  samePixelKey(a: number, b: number): boolean {
    const ca = this.chunk(a);
    const cb = this.chunk(b);
    const ka = a % CHUNK;
    const kb = b % CHUNK;
    return ca.pixelKey[2 * ka] === cb.pixelKey[2 * kb] && ca.pixelKey[2 * ka + 1] === cb.pixelKey[2 * kb + 1];
  }

  /** Orders rows by exact-duplicate key (then by row): rows with one key are adjacent. */
  comparePixelKey(a: number, b: number): number {
    const ca = this.chunk(a);
    const cb = this.chunk(b);
    const ka = a % CHUNK;
    const kb = b % CHUNK;
    return ca.pixelKey[2 * ka]! - cb.pixelKey[2 * kb]! || ca.pixelKey[2 * ka + 1]! - cb.pixelKey[2 * kb + 1]! || a - b;
  }

  /** The fingerprint of `row` as an object (shard files, tests). */
  get(row: number): Fingerprint {
    const c = this.chunk(row);
    const k = row % CHUNK;
    const hex = (v: number): string => v.toString(16).padStart(8, '0');
    return {
      width: c.width[k]!,
      height: c.height[k]!,
      meanBrightness: c.meanBrightness[k]!,
      phash: (BigInt(c.phash[2 * k]!) << 32n) | BigInt(c.phash[2 * k + 1]!),
      signature: this.signature(row).slice(),
      pixelKey: hex(c.pixelKey[2 * k]!) + hex(c.pixelKey[2 * k + 1]!),
    };
  }
}
