import {describe, expect, it} from 'vitest';
import {blockRadii, distanceAt, pairsWithin, popcount32} from '../../src/lib/quality/hash-index.js';
import {SeededRandom} from '../../src/lib/util/random.js';

/** Every pair within `radius` by the multi-index search, as sorted "i,j,d" strings, and the brute-force answer. */
function both(words: Uint32Array, radius: number): {index: string[]; brute: string[]; candidatesPerQuery: number} {
  const collect = (strategy: 'index' | 'brute') => {
    const out: string[] = [];
    const stats = pairsWithin(words, radius, (i, j, d) => out.push(`${i},${j},${d}`), {strategy});
    return {out: out.sort(), stats};
  };
  const index = collect('index');
  const brute = collect('brute');
  return {index: index.out, brute: brute.out, candidatesPerQuery: index.stats.candidatesPerQuery};
}

/** `base` with exactly `bits` bits flipped, spread over the four 16-bit blocks as `perBlock` says. */
function flip(rng: SeededRandom, base: [number, number], perBlock: number[]): [number, number] {
  let [hi, lo] = base;
  perBlock.forEach((count, block) => {
    const positions = rng.shuffle(Array.from({length: 16}, (_, k) => k)).slice(0, count);
    for (const p of positions) {
      const bit = 1 << ((block & 1 ? 0 : 16) + p);
      if (block < 2) hi = (hi ^ bit) >>> 0;
      else lo = (lo ^ bit) >>> 0;
    }
  });
  return [hi, lo];
}

/** `total` bits split over 4 blocks: evenly (the tight pigeonhole case), all in one block, or at random. */
function spread(rng: SeededRandom, total: number, how: 'even' | 'one' | 'random'): number[] {
  const out = [0, 0, 0, 0];
  if (how === 'one') out[rng.int(4)] = Math.min(16, total);
  else for (let k = 0; k < total; k++) out[how === 'even' ? k % 4 : rng.int(4)]!++;
  // Start the even split on a random block so every block is the "short" one sometimes.
  const shift = rng.int(4);
  return out.map((_, b) => Math.min(16, out[(b + shift) % 4]!));
}

describe('multi-index Hamming search (pairs within a radius)', () => {
  it('popcount and block radii follow the pigeonhole bound', () => {
    for (const x of [0, 1, 0xffffffff, 0x80000001, 0x12345678]) expect(popcount32(x >>> 0)).toBe(x.toString(2).split('').filter((c) => c === '1').length);
    for (let r = 0; r <= 32; r++) {
      const radii = blockRadii(r);
      // Smallest total distance that escapes every probe must exceed r.
      expect(radii.reduce((a, s) => a + s + 1, 0)).toBe(r + 1);
    }
  });

  it('returns exactly the brute-force pairs on random hashes, radius 0..12', () => {
    const rng = new SeededRandom(17);
    const words = Uint32Array.from({length: 2 * 3000}, () => rng.nextUint32());
    for (let r = 0; r <= 12; r++) {
      const {index, brute} = both(words, r);
      expect(index).toEqual(brute);
    }
  });

  it('returns exactly the brute-force pairs on adversarial sets: clusters at exactly the radius, bits spread evenly or in one block, duplicates', () => {
    for (let r = 0; r <= 12; r++) {
      const rng = new SeededRandom(1000 + r);
      const items: Array<[number, number]> = [];
      for (let c = 0; c < 40; c++) {
        const centre: [number, number] = [rng.nextUint32(), rng.nextUint32()];
        items.push(centre, centre); // identical hashes
        for (const d of [r, r + 1, Math.max(0, r - 1), rng.int(r + 3)]) {
          for (const how of ['even', 'one', 'random'] as const) items.push(flip(rng, centre, spread(rng, d, how)));
        }
      }
      // A dense cluster (one block identical for all, the rest near): many shared buckets.
      const dense: [number, number] = [rng.nextUint32(), rng.nextUint32()];
      for (let k = 0; k < 150; k++) items.push(flip(rng, dense, spread(rng, rng.int(2 * r + 2), 'random')));
      rng.shuffle(items);
      const words = Uint32Array.from(items.flat());
      const {index, brute} = both(words, r);
      expect(brute.length).toBeGreaterThan(0);
      expect(index).toEqual(brute);
      // Pairs at exactly the radius are present (the boundary is inclusive) and none beyond it.
      const distances = index.map((p) => Number(p.split(',')[2]));
      expect(Math.max(...distances)).toBeLessThanOrEqual(r);
      if (r > 0) expect(distances).toContain(r);
    }
  });

  it('examines a small share of the pairs on uniform hashes (sub-quadratic), and auto picks brute force only when cheaper', () => {
    const rng = new SeededRandom(5);
    const n = 20_000;
    const words = Uint32Array.from({length: 2 * n}, () => rng.nextUint32());
    const stats = pairsWithin(words, 8, () => {});
    expect(stats.strategy).toBe('index');
    // ~n * 188 / 65536 / 2 for uniform hashes: far below the n / 2 of a scan.
    expect(stats.candidatesPerQuery).toBeLessThan(n / 100);
    expect(pairsWithin(words.subarray(0, 200), 8, () => {}).strategy).toBe('brute');
    expect(distanceAt(words, 0, 0)).toBe(0);
  });
});
