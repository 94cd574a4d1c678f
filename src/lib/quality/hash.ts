/**
 * Image fingerprints: a 64-bit DCT perceptual hash (pHash) that finds near-duplicate candidates, and the normalised
 * grey thumbnail that confirms them. (The search over the hashes is in hash-index.ts.)
 */

/**
 * The near-duplicate confirmation signature: the 32x32 grey cell means (the pHash's input) normalised to zero mean
 * and unit variance, so brightness and contrast changes cancel. The pHash alone joins different scenes that share a
 * layout (sky above a road to the horizon, pHash distance 4-14); a copy of one picture (resized, re-encoded,
 * brightened) differs from it by less than NEAR_DUPLICATE_MAX_CELL_DIFFERENCE in EVERY cell, while another scene
 * with the same layout differs strongly where its objects differ (a tree, cones, an arrow board), however well the
 * rest correlates. Measured on the bundled sample (bench/near-duplicates.ts).
 */
/** Quantisation of the signature: int8 steps of 1/SIGNATURE_SCALE standard deviations (1,024 bytes per image). */
export const SIGNATURE_SCALE = 24;

/** Largest per-cell difference, in standard deviations of the normalised thumbnail, of a near duplicate. */
export const NEAR_DUPLICATE_MAX_CELL_DIFFERENCE = 0.6;

/** Turns 32x32 grey cell means into the normalised signature, quantised to int8 to keep memory low. */
export function normaliseSignature(cells: Float64Array): Int8Array {
  let mean = 0;
  for (const v of cells) mean += v;
  mean /= cells.length;
  let variance = 0;
  for (const v of cells) variance += (v - mean) ** 2;
  const std = Math.sqrt(variance / cells.length) || 1;
  const q = new Int8Array(cells.length);
  for (let k = 0; k < cells.length; k++) q[k] = Math.max(-127, Math.min(127, Math.round(((cells[k]! - mean) / std) * SIGNATURE_SCALE)));
  return q;
}

/** The largest per-cell difference of two signatures, in standard deviations (0 = same picture). */
export function signatureMaxDifference(a: Int8Array, b: Int8Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d > max) max = d;
  }
  return max / SIGNATURE_SCALE;
}

const COS = (() => {
  const table = new Float64Array(32 * 8);
  for (let u = 0; u < 8; u++) for (let x = 0; x < 32; x++) table[u * 32 + x] = Math.cos(((2 * x + 1) * u * Math.PI) / 64);
  return table;
})();

/** pHash from 32x32 grey cell means: the 8x8 lowest DCT-II frequencies (separable), bit = coefficient > median (DC excluded). */
export function hashFromGrey32(g: Float64Array): bigint {
  const rows = new Float64Array(32 * 8); // rows[y][u] = sum_x g[y][x] cos_u(x)
  for (let y = 0; y < 32; y++) {
    for (let u = 0; u < 8; u++) {
      let s = 0;
      for (let x = 0; x < 32; x++) s += g[y * 32 + x]! * COS[u * 32 + x]!;
      rows[y * 8 + u] = s;
    }
  }
  const coeffs = new Float64Array(64);
  for (let v = 0; v < 8; v++) {
    for (let u = 0; u < 8; u++) {
      let s = 0;
      for (let y = 0; y < 32; y++) s += rows[y * 8 + u]! * COS[v * 32 + y]!;
      coeffs[v * 8 + u] = s;
    }
  }
  const sorted = coeffs.slice(1).sort(); // numeric order (finite values; a -0 / 0 tie gives the same median)
  const median = (sorted[31]! + sorted[32]!) / 2;
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < 32; i++) if (coeffs[i]! > median) lo |= 1 << i;
  for (let i = 32; i < 64; i++) if (coeffs[i]! > median) hi |= 1 << (i - 32);
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

export function hammingDistance(a: bigint, b: bigint): number {
  let x = a ^ b;
  let n = 0;
  while (x) {
    x &= x - 1n;
    n++;
  }
  return n;
}
