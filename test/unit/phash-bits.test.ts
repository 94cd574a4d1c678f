import {describe, expect, it} from 'vitest';
import {hashFromGrey32} from '../../src/lib/quality/hash.js';
import {SeededRandom} from '../../src/lib/util/random.js';

/** The pHash by its definition: 8x8 lowest DCT-II frequencies, bit i = coefficient i > median of the 63 AC ones. */
function referenceHash(g: Float64Array): bigint {
  const coeffs: number[] = [];
  for (let v = 0; v < 8; v++) {
    for (let u = 0; u < 8; u++) {
      let s = 0;
      for (let y = 0; y < 32; y++) {
        let row = 0;
        for (let x = 0; x < 32; x++) row += g[y * 32 + x]! * Math.cos(((2 * x + 1) * u * Math.PI) / 64);
        s += row * Math.cos(((2 * y + 1) * v * Math.PI) / 64);
      }
      coeffs.push(s);
    }
  }
  const sorted = coeffs.slice(1).sort((a, b) => a - b);
  const median = (sorted[31]! + sorted[32]!) / 2;
  let hash = 0n;
  for (let i = 0; i < 64; i++) if (coeffs[i]! > median) hash |= 1n << BigInt(i);
  return hash;
}

describe('hashFromGrey32 packs the 64 bits exactly (bits 31 and 63 included)', () => {
  it('equals the bit-by-bit BigInt definition on random, flat and striped cells', () => {
    const rng = new SeededRandom('phash-bits');
    const inputs: Float64Array[] = [new Float64Array(1024), new Float64Array(1024).fill(128)];
    for (let k = 0; k < 100; k++) inputs.push(Float64Array.from({length: 1024}, () => rng.int(256)));
    for (let k = 1; k < 32; k++) inputs.push(Float64Array.from({length: 1024}, (_, i) => ((i & 31) % k < k / 2 ? 255 : 0)));
    for (let k = 1; k < 32; k++) inputs.push(Float64Array.from({length: 1024}, (_, i) => ((i >> 5) % k < k / 2 ? 255 : 0)));
    let high = 0;
    for (const g of inputs) {
      const hash = hashFromGrey32(g);
      expect(hash).toBe(referenceHash(g));
      if (hash >> 63n) high++;
    }
    expect(high).toBeGreaterThan(10); // the top bit is really exercised
  });
});
