/**
 * All pairs of 64-bit hashes within a Hamming radius, in sub-quadratic time: multi-index hashing (Norouzi, Punjani
 * and Fleet, "Fast search in Hamming space with multi-index hashing", CVPR 2012).
 *
 * The hash is split into 4 blocks of 16 bits, each indexed in a direct-addressed bucket table (CSR layout: no Map,
 * no per-bucket arrays). Pigeonhole: with radius r = 4s + a (0 <= a < 4), two hashes within r differ by at most s
 * bits in one of the first a + 1 blocks, or by at most s - 1 bits in one of the others (otherwise the distance
 * would be >= (a+1)(s+1) + (3-a)s = r + 1). So a query probes, per block, the keys within that block radius of its
 * own block; only the ids in those buckets are candidates, and each candidate is confirmed on the full 64 bits.
 * With r <= 3 this is "r + 1 exact blocks"; at the default r = 8 a query probes 137 + 3 x 17 = 188 buckets.
 * Candidates per query are about n x probes / 65,536 on uniform hashes (plus the true neighbours on clustered ones);
 * when the probes would cost more than comparing with everything (tiny n or a huge radius) the brute-force scan is
 * used instead: both return exactly the same pairs (tests compare them on random and adversarial sets).
 *
 * Hashes are stored as two uint32 words per item ([hi, lo]), so the inner loops never touch bigint.
 */

const BLOCKS = 4;
const BLOCK_BITS = 16;
const KEYS = 1 << BLOCK_BITS;

export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Packs 64-bit hashes (bigint) into [hi, lo] uint32 words. */
export function packHashes(hashes: readonly bigint[]): Uint32Array {
  const out = new Uint32Array(hashes.length * 2);
  hashes.forEach((h, i) => {
    out[2 * i] = Number((h >> 32n) & 0xffffffffn);
    out[2 * i + 1] = Number(h & 0xffffffffn);
  });
  return out;
}

export function distanceAt(words: Uint32Array, i: number, j: number): number {
  return popcount32(words[2 * i]! ^ words[2 * j]!) + popcount32(words[2 * i + 1]! ^ words[2 * j + 1]!);
}

function blockOf(words: Uint32Array, i: number, b: number): number {
  const w = words[2 * i + (b >> 1)]!;
  return b & 1 ? w & 0xffff : w >>> 16;
}

/** The 16-bit masks with at most `radius` bits set (the key offsets a block probe visits), fewest bits first. */
function masksWithin(radius: number): Uint32Array {
  const masks: number[] = [];
  for (let bits = 0; bits <= Math.min(radius, BLOCK_BITS); bits++) for (let m = 0; m < KEYS; m++) if (popcount32(m) === bits) masks.push(m);
  return Uint32Array.from(masks);
}

export interface PairSearchStats {
  strategy: 'index' | 'brute';
  /** Distinct (query, candidate) pairs whose full distance was computed, divided by the number of hashes. */
  candidatesPerQuery: number;
  /** Bucket probes per query (0 for brute force). */
  probesPerQuery: number;
  pairs: number;
}

export interface PairSearchOptions {
  /** 'auto' (default) picks the cheaper of the index and the brute-force scan; the others force one (tests). */
  strategy?: 'auto' | 'index' | 'brute';
  /** Called every few thousand queries with (queries done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** Block radii for radius r: [s, s-1, s-1, s-1] shifted so the first a+1 blocks get s (see the header). */
export function blockRadii(radius: number): number[] {
  const s = Math.floor(radius / BLOCKS);
  const a = radius % BLOCKS;
  return Array.from({length: BLOCKS}, (_, b) => (b <= a ? s : s - 1));
}

/**
 * Calls `visit(i, j, distance)` once for every pair i < j whose hashes are within `radius` (ascending i; for a given
 * i the order of j is unspecified). Returns what the search cost.
 */
export function pairsWithin(words: Uint32Array, radius: number, visit: (i: number, j: number, distance: number) => void, options: PairSearchOptions = {}): PairSearchStats {
  const n = words.length / 2;
  const radii = blockRadii(radius);
  const masks = masksWithin(Math.max(...radii));
  const counts = radii.map((r) => (r < 0 ? 0 : masks.filter((m) => popcount32(m) <= r).length));
  const probes = counts.reduce((a, b) => a + b, 0);
  const strategy = options.strategy === 'index' || options.strategy === 'brute' ? options.strategy : probes * 2 < n ? 'index' : 'brute';
  const progressEvery = 4096;
  let examined = 0;
  let pairs = 0;
  if (strategy === 'brute') {
    for (let i = 0; i < n; i++) {
      const hi = words[2 * i]!;
      const lo = words[2 * i + 1]!;
      for (let j = i + 1; j < n; j++) {
        const d = popcount32(hi ^ words[2 * j]!) + popcount32(lo ^ words[2 * j + 1]!);
        if (d <= radius) {
          pairs++;
          visit(i, j, d);
        }
      }
      examined += n - i - 1;
      if (options.onProgress && (i + 1) % progressEvery === 0) options.onProgress(i + 1, n);
    }
    options.onProgress?.(n, n);
    return {strategy, candidatesPerQuery: n ? examined / n : 0, probesPerQuery: 0, pairs};
  }
  // One CSR bucket table per block: ids of block value k are ids[start[k] .. start[k+1]), ascending.
  const tables = Array.from({length: BLOCKS}, (_, b) => {
    const start = new Uint32Array(KEYS + 1);
    for (let i = 0; i < n; i++) start[blockOf(words, i, b) + 1]!++;
    for (let k = 0; k < KEYS; k++) start[k + 1]! += start[k]!;
    const fill = start.slice(0, KEYS);
    const ids = new Uint32Array(n);
    for (let i = 0; i < n; i++) ids[fill[blockOf(words, i, b)]!++] = i;
    return {start, ids};
  });
  // seen[j] === i + 1 once j was examined for query i: each candidate is confirmed once however many blocks hit it.
  const seen = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const hi = words[2 * i]!;
    const lo = words[2 * i + 1]!;
    const stamp = i + 1;
    for (let b = 0; b < BLOCKS; b++) {
      const key = blockOf(words, i, b);
      const {start, ids} = tables[b]!;
      for (let m = 0, end = counts[b]!; m < end; m++) {
        const k = key ^ masks[m]!;
        // Ids ascend within a bucket: walk down from the top while they are above i (pairs are reported once, i < j).
        for (let p = start[k + 1]! - 1, first = start[k]!; p >= first; p--) {
          const j = ids[p]!;
          if (j <= i) break;
          if (seen[j] === stamp) continue;
          seen[j] = stamp;
          examined++;
          const d = popcount32(hi ^ words[2 * j]!) + popcount32(lo ^ words[2 * j + 1]!);
          if (d <= radius) {
            pairs++;
            visit(i, j, d);
          }
        }
      }
    }
    if (options.onProgress && (i + 1) % progressEvery === 0) options.onProgress(i + 1, n);
  }
  options.onProgress?.(n, n);
  return {strategy, candidatesPerQuery: n ? examined / n : 0, probesPerQuery: probes, pairs};
}
