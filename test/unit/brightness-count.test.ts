import {describe, expect, it} from 'vitest';
import {JsPixelKernels} from '../../src/lib/quality/pixel-kernels.js';
import {exactBrightnessPercentiles, settleBrightnessByCount} from '../../src/lib/quality/properties.js';
import {SeededRandom} from '../../src/lib/util/random.js';

const DARK = 0.32;
const js = new JsPixelKernels();
const LIGHT = 0.05;
const brightness = (r: number, g: number, b: number): number => Math.sqrt(0.241 * r * r + 0.691 * g * g + 0.068 * b * b) / 255;

/** Grey levels just below / above a brightness (grey v has brightness v / 255 up to rounding). */
const greyBelow = (b: number): number => Math.floor(b * 255 - 1e-9);
const greyAbove = (b: number): number => Math.ceil(b * 255 + 1e-9);

function image(pixels: Array<[number, number, number]>): Uint8Array {
  return Uint8Array.from(pixels.flat());
}

describe('settleBrightnessByCount: the counting shortcut never changes a dark / light verdict', () => {
  it('settles only what the exact percentiles confirm, on boundary counts (n - floor(0.99 (n-1)) bright pixels, one fewer, one more) and random images', () => {
    const rng = new SeededRandom('brightness-count');
    let settledDark = 0;
    let settledLight = 0;
    let refused = 0;
    const check = (data: Uint8Array): void => {
      const [p5, p99] = exactBrightnessPercentiles(data, [5, 99]) as [number, number];
      // The word loop (aligned buffer) and the byte loop (unaligned) find the same percentiles.
      const shifted = new Uint8Array(new ArrayBuffer(data.length + 1), 1, data.length);
      shifted.set(data);
      expect(exactBrightnessPercentiles(shifted, [5, 99])).toEqual([p5, p99]);
      // ... and the JavaScript kernels the same as the WebAssembly ones.
      expect(exactBrightnessPercentiles(data, [5, 99], undefined, js)).toEqual([p5, p99]);
      expect(exactBrightnessPercentiles(shifted, [5, 99], undefined, js)).toEqual([p5, p99]);
      for (const uncertain of [{dark: true, light: false}, {dark: false, light: true}, {dark: true, light: true}]) {
        const settled = settleBrightnessByCount(data, DARK, LIGHT, uncertain);
        // The same answer from an unaligned copy (byte loads instead of 32-bit words).
        const unaligned = new Uint8Array(new ArrayBuffer(data.length + 1), 1, data.length);
        unaligned.set(data);
        expect(settleBrightnessByCount(unaligned, DARK, LIGHT, uncertain)).toEqual(settled);
        // The same answer from the JavaScript kernels (word and byte loops) as from the default WebAssembly ones.
        expect(settleBrightnessByCount(data, DARK, LIGHT, uncertain, js)).toEqual(settled);
        expect(settleBrightnessByCount(unaligned, DARK, LIGHT, uncertain, js)).toEqual(settled);
        if (!settled) {
          refused++;
          continue;
        }
        if (uncertain.dark) {
          expect(p99).toBeGreaterThanOrEqual(settled.p99Above);
          expect(settled.p99Above).toBeGreaterThan(DARK);
          settledDark++;
        }
        if (uncertain.light) {
          expect(p5).toBeLessThanOrEqual(settled.p5Below);
          expect(1 - settled.p5Below).toBeGreaterThan(LIGHT);
          settledLight++;
        }
      }
    };
    const dim = greyBelow(DARK);
    const lit = greyAbove(DARK);
    for (const n of [1, 2, 3, 99, 100, 101, 201, 1001, 4097, 20_001, 131_075]) {
      const rank = Math.floor(0.99 * (n - 1));
      for (const bright of [n - rank - 1, n - rank, n - rank + 1]) {
        if (bright < 0 || bright > n) continue;
        const pixels = Array.from({length: n}, (_, i): [number, number, number] => (i < bright ? [lit, lit, lit] : [dim, dim, dim]));
        check(image(pixels));
        check(image(pixels.reverse()));
      }
      const lowRank = Math.floor(0.05 * (n - 1)) + 1;
      const washed = greyAbove(1 - LIGHT);
      const below = greyBelow(1 - LIGHT);
      for (const darker of [lowRank - 1, lowRank, lowRank + 1]) {
        if (darker < 0 || darker > n) continue;
        check(image(Array.from({length: n}, (_, i): [number, number, number] => (i < darker ? [below, below, below] : [washed, washed, washed]))));
      }
    }
    for (let k = 0; k < 300; k++) {
      const n = 1 + rng.int(3000);
      const spread = rng.int(40);
      const centre = rng.int(256);
      check(image(Array.from({length: n}, (): [number, number, number] => {
        const v = (): number => Math.max(0, Math.min(255, centre + rng.int(2 * spread + 1) - spread));
        return [v(), v(), v()];
      })));
    }
    // Not vacuous: the shortcut settles many cases and refuses many.
    expect(settledDark).toBeGreaterThan(50);
    expect(settledLight).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(50);
  });

  it('one bright pixel too few is refused: p99 is then the dark order statistic (n = 101: p99 is exactly the 100th value)', () => {
    const dim = greyBelow(DARK);
    const lit = greyAbove(DARK);
    expect(brightness(lit, lit, lit)).toBeGreaterThan(DARK);
    const pixels = (bright: number): Uint8Array => image(Array.from({length: 101}, (_, i): [number, number, number] => (i < bright ? [lit, lit, lit] : [dim, dim, dim])));
    expect(exactBrightnessPercentiles(pixels(1), [99])[0]).toBeLessThan(DARK);
    expect(settleBrightnessByCount(pixels(1), DARK, LIGHT, {dark: true, light: false})).toBeUndefined();
    expect(exactBrightnessPercentiles(pixels(2), [99])[0]).toBeGreaterThan(DARK);
    expect(settleBrightnessByCount(pixels(2), DARK, LIGHT, {dark: true, light: false})).toBeDefined();
  });
});
