import {fileURLToPath} from 'node:url';
import fg from 'fast-glob';
import {describe, expect, it} from 'vitest';
import {decodeImage, type DecodedImage} from '../../src/lib/image/decode.js';
import {createWasmPixelKernels, defaultPixelKernels, JsPixelKernels, screenBytes, SQ241, SQ68, SQ691, type PixelKernels, type ThumbnailStatistics} from '../../src/lib/quality/pixel-kernels.js';
import {computeProperties, PropertiesScratch} from '../../src/lib/quality/properties.js';
import {SeededRandom} from '../../src/lib/util/random.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const js = new JsPixelKernels();
const wasm = createWasmPixelKernels();

/** Compact copies of a result (the kernels return views that the next call overwrites). */
function snapshot(s: ThumbnailStatistics): object {
  const bytes = (a: ArrayBufferView): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
  return {...s, grey: bytes(s.grey), brightHist: bytes(s.brightHist), greyHist: bytes(s.greyHist), cellRows: s.cellRows && bytes(s.cellRows)};
}

/** An RGB buffer at an odd byte offset (so neither implementation can rely on alignment). */
function rgb(n: number, pixel: (i: number) => [number, number, number]): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(n * 3 + 1), 1, n * 3);
  for (let i = 0; i < n; i++) out.set(pixel(i), i * 3);
  return out;
}

describe('pixel kernels: WebAssembly SIMD and JavaScript give identical results', () => {
  it('runs the WebAssembly kernels on this runtime (Node >= 16 validates the SIMD module)', () => {
    expect(wasm?.kind).toBe('wasm');
    expect(defaultPixelKernels().kind).toBe('wasm');
  });

  it('thumbnail statistics on odd, tiny, grey, flat and extreme images (every size class of the 16- and 8-pixel loops and their tails)', () => {
    const rng = new SeededRandom('pixel-kernels');
    const sizes: Array<[number, number]> = [[1, 1], [1, 9], [9, 1], [2, 2], [3, 3], [7, 5], [15, 17], [16, 16], [17, 3], [31, 33], [32, 7], [33, 32], [64, 64], [65, 63], [96, 54], [255, 143], [256, 144], [257, 145], [144, 256]];
    for (let k = 0; k < 30; k++) sizes.push([1 + rng.int(300), 1 + rng.int(300)]);
    const kinds: Array<(i: number, w: number) => [number, number, number]> = [
      () => [rng.int(256), rng.int(256), rng.int(256)],
      () => {
        const v = rng.int(256);
        return [v, v, v]; // grey
      },
      () => {
        const v = rng.int(254);
        return [v, v + rng.int(3), Math.max(0, v - rng.int(4))]; // near-grey: the 2-level tolerance
      },
      () => [255, 255, 255],
      () => [0, 0, 0],
      (i, w) => ((i + Math.floor(i / w)) % 2 ? [255, 255, 255] : [0, 0, 0]), // checkerboard: the largest Laplacian
    ];
    let compared = 0;
    for (const [w, h] of sizes) {
      for (const kind of kinds) {
        const data = rgb(w * h, (i) => kind(i, w));
        for (const step of [1, 2]) {
          const expected = snapshot(js.thumbnail(data, w, h, step));
          expect(snapshot(wasm!.thumbnail(data, w, h, step)), `${w}x${h} step ${step}`).toEqual(expected);
          compared++;
        }
      }
    }
    expect(compared).toBe(sizes.length * kinds.length * 2);
  });

  it('the JavaScript reference itself: grey, Laplacian and cell sums by their definitions on a small image', () => {
    const w = 64;
    const h = 5;
    const data = rgb(w * h, (i) => [(i * 7) % 256, (i * 13) % 256, (i * 29) % 256]);
    const s = js.thumbnail(data, w, h, 1);
    const grey = (x: number, y: number): number => {
      const i = (y * w + x) * 3;
      return (77 * data[i]! + 150 * data[i + 1]! + 29 * data[i + 2]! + 128) >> 8;
    };
    let lapSum = 0;
    let lapSq = 0;
    for (let y = 1; y < h - 1; y++) {
      for (let x = 1; x < w - 1; x++) {
        const v = 4 * grey(x, y) - grey(x - 1, y) - grey(x + 1, y) - grey(x, y - 1) - grey(x, y + 1);
        lapSum += v;
        lapSq += v * v;
      }
    }
    expect([s.lapSum, s.lapSq]).toEqual([lapSum, lapSq]);
    expect(s.cellRows![3 * 32 + 5]).toBe(grey(10, 3) + grey(11, 3));
    expect(s.sampled).toBe(w * h);
    expect(s.grey[2 * w + 9]).toBe(grey(9, 2));
  });

  it('countKeys: exact counts at the key bounds, across chunk boundaries and the 4-pixel tail', () => {
    const rng = new SeededRandom('count-keys');
    const key = (p: [number, number, number]): number => SQ241[p[0]]! + SQ691[p[1]]! + SQ68[p[2]]!;
    for (const n of [1, 3, 4, 5, 131_071, 131_072, 131_073, 262_147]) {
      const data = rgb(n, () => [rng.int(256), rng.int(256), rng.int(256)]);
      // Bounds equal to keys present in the image (ties count on both sides).
      const at = key([data[0]!, data[1]!, data[2]!]);
      for (const [above, below] of [[at, at], [at + 1, at - 1], [0, -1], [65_025_000, 65_025_000], [70_000_000, -5]]) {
        let bright = 0;
        let darker = 0;
        for (let i = 0; i < n; i++) {
          const k = key([data[i * 3]!, data[i * 3 + 1]!, data[i * 3 + 2]!]);
          bright += k >= above! ? 1 : 0;
          darker += k <= below! ? 1 : 0;
        }
        for (const kernels of [js, wasm!] as PixelKernels[]) {
          expect(kernels.countKeys(data, above!, below!, Infinity, Infinity), `${kernels.kind} n=${n}`).toEqual({bright, darker});
          // With needs, counting may stop early, but whether each need is met never changes.
          for (const need of [1, bright, bright + 1]) {
            const counts = kernels.countKeys(data, above!, below!, need, 0);
            expect(counts.bright >= need).toBe(bright >= need);
          }
        }
      }
    }
  });

  it('screenBytes: the largest byte under keyAbove and the smallest over keyBelow, for the 1,000-weight key', () => {
    for (const [above, below] of [[6_658_562, 60_000_000], [1, -1], [0, -1], [1000, 999], [1001, 1000], [65_025_000, 65_024_999], [65_025_001, 65_025_000], [70_000_000, -1]] as const) {
      const [high, low] = screenBytes(above, below);
      if (high < 0) {
        expect(above <= 0 || below >= 65_025_000, `${above} ${below}`).toBe(true);
        continue;
      }
      expect(1000 * high * high).toBeLessThan(above);
      if (high < 255) expect(1000 * (high + 1) ** 2).toBeGreaterThanOrEqual(above);
      expect(1000 * low * low).toBeGreaterThan(below);
      if (low > 0) expect(1000 * (low - 1) ** 2).toBeLessThanOrEqual(below);
    }
    expect(screenBytes(6_658_562, -1)).toEqual([81, 0]); // validate-data's default dark threshold: bytes <= 81 are never bright
  });

  it('countKeys on night scenes: pixels the 16-pixel screen skips are never counted, those next to the screen bytes always are', () => {
    // Dark pixels (every byte <= the screen's high byte) with a few bright ones, and light pixels (every byte >= the
    // low byte) with a few darker ones, planted at every position of a 16-pixel block, at chunk boundaries and in the
    // 0-3 pixel tail. The planted pixels sit on the screen's edges: one channel or all three just past the screen byte
    // (counted only when the key crosses the bound), or exactly at it (never counted).
    const rng = new SeededRandom('count-keys-screen');
    // Each side alone (as settleBrightnessByCount asks when one verdict is uncertain): the other side's bound counts
    // nothing, so the screen can skip. keyAbove is validate-data's default dark threshold (0.32).
    const bounds = {bright: [6_658_562, -1], darker: [70_000_000, 60_000_000]} as const;
    const [high] = screenBytes(bounds.bright[0], bounds.bright[1]);
    const [, low] = screenBytes(bounds.darker[0], bounds.darker[1]);
    const key = (p: ArrayLike<number>, i: number): number => SQ241[p[i]!]! + SQ691[p[i + 1]!]! + SQ68[p[i + 2]!]!;
    const brightEdges: Array<[number, number, number]> = [[high + 1, 0, 0], [0, high + 1, 0], [0, 0, high + 1], [high + 1, high + 1, high + 1], [255, 255, 255], [high, high, high]];
    const darkerEdges: Array<[number, number, number]> = [[low - 1, 255, 255], [255, low - 1, 255], [255, 255, low - 1], [low - 1, low - 1, low - 1], [0, 0, 0], [low, low, low]];
    for (const n of [15, 16, 17, 47, 48, 131_071, 131_072, 131_077, 262_150]) {
      for (const side of ['bright', 'darker'] as const) {
        const plant = new Set<number>([0, 15, 16, 31, n - 1, n - 2, n - 4, Math.floor(n / 2), 131_071, 131_072, 131_088].filter((p) => p < n));
        for (let k = 0; k < 40; k++) plant.add(rng.int(n));
        const data = rgb(n, (i) => {
          if (side === 'bright') return plant.has(i) ? brightEdges[i % brightEdges.length]! : [rng.int(high + 1), rng.int(high + 1), rng.int(high + 1)];
          return plant.has(i) ? darkerEdges[i % darkerEdges.length]! : [low + rng.int(256 - low), low + rng.int(256 - low), low + rng.int(256 - low)];
        });
        const [keyAbove, keyBelow] = bounds[side];
        let bright = 0;
        let darker = 0;
        for (let i = 0; i < n * 3; i += 3) {
          bright += key(data, i) >= keyAbove ? 1 : 0;
          darker += key(data, i) <= keyBelow ? 1 : 0;
        }
        expect(side === 'bright' ? bright : darker, `${side} n=${n}: the planted pixels count`).toBeGreaterThan(0);
        for (const kernels of [js, wasm!] as PixelKernels[]) {
          expect(kernels.countKeys(data, keyAbove, keyBelow, Infinity, Infinity), `${kernels.kind} ${side} n=${n}`).toEqual({bright, darker});
        }
      }
    }
  });

  it('keyHistogram and keyBins (the exact percentiles\' passes): identical counts and first pixels across chunk boundaries', () => {
    const rng = new SeededRandom('key-bins');
    for (const n of [1, 5, 131_073, 262_147]) {
      // Few distinct colours, so bins hold many pixels and "first pixel with this key" is a real choice.
      const palette = Array.from({length: 40}, (): [number, number, number] => [rng.int(256), rng.int(256), rng.int(256)]);
      const data = rgb(n, () => palette[rng.int(palette.length)]!);
      const hist = Array.from(js.keyHistogram(data));
      expect(Array.from(wasm!.keyHistogram(data))).toEqual(hist);
      expect(hist.reduce((a, b) => a + b, 0)).toBe(n);
      const bins = hist.flatMap((count, bin) => (count > 0 ? [bin] : [])).slice(0, 4);
      const viaJs = js.keyBins(data, bins).map(({low, first}) => ({low: Array.from(low), first: Array.from(first)}));
      expect(wasm!.keyBins(data, bins).map(({low, first}) => ({low: Array.from(low), first: Array.from(first)}))).toEqual(viaJs);
      expect(viaJs.every(({first}) => first.some((p) => p >= 0))).toBe(true);
    }
  });

  it('computeProperties is identical with either kernels on real thumbnails and odd shapes', async () => {
    const files = (await fg('datasets/sample/**/*.jpg', {cwd: root, absolute: true})).sort().slice(0, 12);
    const images: DecodedImage[] = await Promise.all(files.map((f) => decodeImage(f, {maxSide: 256})));
    const rng = new SeededRandom('props');
    for (const [w, h] of [[1, 1], [31, 31], [32, 32], [100, 67], [256, 171], [257, 144]] as Array<[number, number]>) {
      const data = Buffer.from(rgb(w * h, () => [rng.int(256), rng.int(256), rng.int(256)]));
      images.push({data, width: w, height: h, channels: 3, source: {format: 'png', width: w, height: h, channels: 3, hasAlpha: false}, reduced: false});
    }
    const viaJs = new PropertiesScratch(js);
    const viaWasm = new PropertiesScratch(wasm!);
    for (const image of images) expect(computeProperties(image, viaWasm)).toEqual(computeProperties(image, viaJs));
  });
});
