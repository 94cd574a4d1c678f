import sharp from 'sharp';
import {describe, expect, it} from 'vitest';
import {applyChallengeAugmentation, encodeChallengeJpeg, gaussianBlur, multiplyContrast, scaleSaturation} from '../../src/lib/validator/augment.js';
import {MinerScore, roundHalfEven} from '../../src/lib/validator/scoring.js';
import {SeededRandom} from '../../src/lib/util/random.js';

function image(width: number, height: number, fill: (x: number, y: number) => [number, number, number]): {data: Buffer; width: number; height: number} {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(fill(x, y), (y * width + x) * 3);
  return {data, width, height};
}

describe('subnet scoring', () => {
  it('rounds half to even like Python', () => {
    expect([0.5, 0.49, 0.51, 1.5, 2.5, 0, 1].map(roundHalfEven)).toEqual([0, 0, 1, 2, 2, 0, 1]);
  });

  it('rewards 0.5 MCC(last 100) + 0.5 accuracy(last 10), cubed; EMA with 0.05', () => {
    const miner = new MinerScore();
    const first = miner.record(1, 0.9); // labels one class: MCC 0, accuracy 1 -> 0.5^3
    expect(first.reward).toBeCloseTo(0.125, 12);
    expect(first.score).toBeCloseTo(0.05 * 0.125, 12);
    const second = miner.record(0, 0.1); // both classes, all correct -> reward 1
    expect(second.reward).toBeCloseTo(1, 12);
    expect(second.score).toBeCloseTo(0.05 + 0.95 * 0.05 * 0.125, 12);
  });

  it('0.5 is "none"; an out-of-range answer zeroes the reward while it is in the window; -1 is dropped', () => {
    const miner = new MinerScore();
    miner.record(0, 0.2);
    expect(miner.record(1, 0.5).reward).toBeCloseTo((0.5 * 0 + 0.5 * 0.5) ** 3, 12); // p = 0.5 rounds to 0: wrong; MCC 0 (one predicted class)
    expect(miner.record(1, 1.2).reward).toBe(0);
    expect(miner.record(1, 0.9).reward).toBe(0); // 1.2 still in the 100-window
    const before = miner.score;
    const none = miner.record(1, -1);
    expect(none.reward).toBe(0);
    expect(none.score).toBeCloseTo(0.95 * before, 12);
  });
});

describe('challenge augmentations', () => {
  it('level 0: centre square crop resized to 224x224', async () => {
    // 300x200: left 50 px red, centre 200 px green, right 50 px blue.
    const img = image(300, 200, (x) => (x < 50 ? [255, 0, 0] : x >= 250 ? [0, 0, 255] : [0, 255, 0]));
    const {rgb, params} = await applyChallengeAugmentation(img, 0, new SeededRandom(1));
    expect(params).toEqual({level: 0, crop: {left: 50, top: 0, side: 200}});
    expect(rgb.length).toBe(224 * 224 * 3);
    for (const x of [0, 112, 223]) expect([rgb[(112 * 224 + x) * 3], rgb[(112 * 224 + x) * 3 + 1]]).toEqual([0, 255]);
  });

  it('level 1: rotation in [-20, 20], square crop of 20-100% of the area, black corners appear', async () => {
    const img = image(320, 180, () => [200, 200, 200]);
    let sawBlack = false;
    for (let seed = 0; seed < 12; seed++) {
      const {rgb, params} = await applyChallengeAugmentation(img, 1, new SeededRandom(seed));
      expect(Math.abs(params.rotationDeg!)).toBeLessThanOrEqual(20);
      const share = params.crop.side ** 2 / (320 * 180);
      expect(share).toBeLessThanOrEqual(1);
      if (params.crop.side !== 180) expect(share).toBeGreaterThanOrEqual(0.2 - 0.01);
      expect(params.hflip).toBeUndefined();
      for (let i = 0; i < rgb.length; i += 3) if (rgb[i]! < 20 && rgb[i + 1]! < 20) sawBlack = true;
    }
    expect(sawBlack).toBe(true);
  });

  it('levels 2 and 3 draw their options from the documented sets, reproducibly', async () => {
    const img = image(256, 256, (x, y) => [x, y, 128]);
    const seen = {saturation: new Set<number>(), contrast: new Set<number>(), downscale: new Set<number>(), noise: new Set<number>(), blur: new Set<number>()};
    for (let seed = 0; seed < 40; seed++) {
      const {params} = await applyChallengeAugmentation(img, 3, new SeededRandom(seed));
      if (params.saturation) seen.saturation.add(params.saturation);
      if (params.contrast) seen.contrast.add(params.contrast);
      if (params.downscale) seen.downscale.add(params.downscale);
      if (params.noiseVariance) seen.noise.add(params.noiseVariance);
      if (params.blurKernel) seen.blur.add(params.blurKernel);
    }
    expect([...seen.saturation].sort()).toEqual([0.3, 0.4]);
    expect([...seen.contrast].sort()).toEqual([0.725, 0.85]);
    expect([...seen.downscale].sort()).toEqual([2, 3]);
    expect([...seen.noise].sort()).toEqual([0.001, 0.002]);
    expect([...seen.blur].sort()).toEqual([7, 9]);
    const a = await applyChallengeAugmentation(img, 2, new SeededRandom(5));
    const b = await applyChallengeAugmentation(img, 2, new SeededRandom(5));
    expect(a.params).toEqual(b.params);
    expect(a.rgb.equals(b.rgb)).toBe(true);
    for (const k of ['saturation', 'contrast', 'downscale'] as const) if (a.params[k] !== undefined) expect({saturation: 0.4, contrast: 0.85, downscale: 2}[k]).toBe(a.params[k]);
  });

  it('colour, contrast and blur operations do what they say', () => {
    const px = Buffer.from([200, 100, 50]);
    scaleSaturation(px, 0);
    expect(px[0]).toBe(px[1]);
    expect(px[1]).toBe(px[2]);
    const c = Buffer.from([200, 100, 0]);
    multiplyContrast(c, 0.85);
    expect([...c]).toEqual([170, 85, 0]);
    // An impulse blurs into a symmetric bump that keeps its mass.
    const w = 15;
    const impulse = Buffer.alloc(w * w * 3);
    impulse[(7 * w + 7) * 3] = 255;
    const blurred = gaussianBlur(impulse, w, w, 7);
    let sum = 0;
    for (let i = 0; i < blurred.length; i += 3) sum += blurred[i]!;
    expect(Math.abs(sum - 255)).toBeLessThan(20);
    expect(blurred[(7 * w + 6) * 3]).toBe(blurred[(7 * w + 8) * 3]);
    expect(blurred[(7 * w + 7) * 3]!).toBeGreaterThan(blurred[(7 * w + 9) * 3]!);
  });

  it('encodes the challenge as a 224x224 JPEG', async () => {
    const jpeg = await encodeChallengeJpeg(Buffer.alloc(224 * 224 * 3, 90));
    const meta = await sharp(jpeg).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['jpeg', 224, 224, 3]);
  });
});
