/**
 * Image fingerprints: a 64-bit DCT perceptual hash (pHash) for near duplicates, Hamming distance on it, and a
 * BK-tree so "all pairs within radius r" stays far below O(n^2) on large datasets.
 */

/**
 * The near-duplicate confirmation signature: a 16x16 colour thumbnail normalised to zero mean and unit variance (so
 * brightness and contrast changes cancel). The pHash alone matches different scenes that share a layout (sky above
 * a road to the horizon); pHash candidates are kept only when these thumbnails correlate strongly.
 * (The cell sums are accumulated in the single pixel pass of properties.ts.)
 */
/** Quantisation of the signature: int8 steps of 1/SIGNATURE_SCALE standard deviations (768 bytes per image). */
export const SIGNATURE_SCALE = 24;

/** Turns 16x16 cell RGB sums and pixel counts into the normalised signature, quantised to int8 to keep memory low. */
export function normaliseSignature(sums: Float64Array, counts: Float64Array): Int8Array {
  const out = new Float32Array(sums.length);
  let mean = 0;
  for (let k = 0; k < out.length; k++) {
    out[k] = counts[Math.floor(k / 3)] ? sums[k]! / counts[Math.floor(k / 3)]! : 0;
    mean += out[k]!;
  }
  mean /= out.length;
  let variance = 0;
  for (const v of out) variance += (v - mean) ** 2;
  const std = Math.sqrt(variance / out.length) || 1;
  const q = new Int8Array(out.length);
  for (let k = 0; k < out.length; k++) q[k] = Math.max(-127, Math.min(127, Math.round(((out[k]! - mean) / std) * SIGNATURE_SCALE)));
  return q;
}

/** Pearson correlation of two normalised signatures (1 = same picture up to brightness/contrast). */
export function signatureCorrelation(a: Int8Array, b: Int8Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
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
  const sorted = Array.from(coeffs.subarray(1)).sort((a, b) => a - b);
  const median = (sorted[31]! + sorted[32]!) / 2;
  let hash = 0n;
  for (let i = 0; i < 64; i++) if (coeffs[i]! > median) hash |= 1n << BigInt(i);
  return hash;
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

interface BkNode {
  hash: bigint;
  ids: number[];
  children: Map<number, BkNode>;
}

/** A BK-tree over 64-bit hashes (metric: Hamming distance). */
export class BkTree {
  private root: BkNode | undefined;

  add(hash: bigint, id: number): void {
    if (!this.root) {
      this.root = {hash, ids: [id], children: new Map()};
      return;
    }
    let node = this.root;
    for (;;) {
      const d = hammingDistance(hash, node.hash);
      if (d === 0) {
        node.ids.push(id);
        return;
      }
      const child = node.children.get(d);
      if (!child) {
        node.children.set(d, {hash, ids: [id], children: new Map()});
        return;
      }
      node = child;
    }
  }

  /** Ids whose hash is within `radius` of `hash`, with their distances. */
  search(hash: bigint, radius: number): Array<{id: number; distance: number}> {
    const out: Array<{id: number; distance: number}> = [];
    const stack = this.root ? [this.root] : [];
    while (stack.length) {
      const node = stack.pop()!;
      const d = hammingDistance(hash, node.hash);
      if (d <= radius) for (const id of node.ids) out.push({id, distance: d});
      for (const [k, child] of node.children) if (k >= d - radius && k <= d + radius) stack.push(child);
    }
    return out;
  }
}
