import path from 'node:path';
import fg from 'fast-glob';
import sharp from 'sharp';
import {describe, expect, it} from 'vitest';
import {decodeImage} from '../../src/lib/image/decode.js';
import {hammingDistance, NEAR_DUPLICATE_MAX_CELL_DIFFERENCE, signatureMaxDifference} from '../../src/lib/quality/hash.js';
import {computeProperties} from '../../src/lib/quality/properties.js';
import {DEFAULT_THRESHOLDS} from '../../src/lib/quality/validate.js';
import {REPO_ROOT} from '../helpers/cli.js';

const SAMPLE = path.join(REPO_ROOT, 'datasets', 'sample');
const props = async (input: Buffer | string) => computeProperties(await decodeImage(input, {maxSide: 256}));

async function sharpSamplePhotos(n: number): Promise<string[]> {
  const out: string[] = [];
  for (const f of (await fg('test/*/*.jpg', {cwd: SAMPLE})).sort()) {
    if ((await props(path.join(SAMPLE, f))).blurVariance > 60) out.push(path.join(SAMPLE, f));
    if (out.length === n) break;
  }
  return out;
}

describe('image properties (CleanVision formulas, natix blur)', () => {
  it('blur: flags photos blurred with sigma = 1% of the width, not the sharp originals', async () => {
    const photos = await sharpSamplePhotos(6);
    expect(photos).toHaveLength(6);
    for (const file of photos) {
      const sharpProps = await props(file);
      expect(sharpProps.blurVariance).toBeGreaterThanOrEqual(DEFAULT_THRESHOLDS.blurry);
      const {width} = await sharp(file).metadata();
      const blurred = await sharp(file).blur(width! * 0.01).jpeg({quality: 90}).toBuffer();
      expect((await props(blurred)).blurVariance).toBeLessThan(DEFAULT_THRESHOLDS.blurry);
    }
  });

  it('dark and light scores use the brightness percentiles', async () => {
    const [photo] = await sharpSamplePhotos(1);
    const normal = await props(photo!);
    expect(normal.brightnessP99).toBeGreaterThan(DEFAULT_THRESHOLDS.dark);
    expect(1 - normal.brightnessP5).toBeGreaterThan(DEFAULT_THRESHOLDS.light);
    const dark = await props(await sharp(photo!).linear(0.15, 0).jpeg().toBuffer());
    expect(dark.brightnessP99).toBeLessThan(DEFAULT_THRESHOLDS.dark);
    const light = await props(await sharp(photo!).linear(0.05, 245).jpeg().toBuffer());
    expect(1 - light.brightnessP5).toBeLessThan(DEFAULT_THRESHOLDS.light);
  });

  it('low information, grayscale (single channel and RGB with equal channels), aspect ratio', async () => {
    const flat = await props(await sharp({create: {width: 64, height: 64, channels: 3, background: '#5a7'}}).png().toBuffer());
    expect(Math.min(1, 0.1 * flat.entropy)).toBeLessThan(DEFAULT_THRESHOLDS['low-information']);
    const [photo] = await sharpSamplePhotos(1);
    expect((await props(photo!)).grayscale).toBe(false);
    const greyRgb = await sharp(photo!).greyscale().toColourspace('srgb').jpeg().toBuffer();
    expect((await sharp(greyRgb).metadata()).channels).toBe(3);
    expect((await props(greyRgb)).grayscale).toBe(true);
    expect((await props(await sharp(photo!).greyscale().png().toBuffer())).grayscale).toBe(true);
    const wide = await props(await sharp({create: {width: 400, height: 100, channels: 3, background: '#345'}}).png().toBuffer());
    expect(wide.aspectRatio).toBeCloseTo(0.25, 6);
  });

  it('near duplicates: resized, re-encoded, brightened, contrast- and saturation-changed copies match; other scenes sharing the road layout do not', async () => {
    const photos = await sharpSamplePhotos(3);
    const base = await props(photos[0]!);
    const copies = [
      await sharp(photos[0]!).resize(200).jpeg({quality: 85}).toBuffer(),
      await sharp(photos[0]!).resize(1280).jpeg({quality: 80}).toBuffer(),
      await sharp(photos[0]!).jpeg({quality: 35}).toBuffer(),
      await sharp(photos[0]!).modulate({brightness: 1.12}).jpeg().toBuffer(),
      await sharp(photos[0]!).linear(1.2, -20).jpeg().toBuffer(),
      await sharp(photos[0]!).modulate({saturation: 1.3}).jpeg().toBuffer(),
    ];
    for (const copy of copies) {
      const p = await props(copy);
      expect(hammingDistance(base.phash, p.phash)).toBeLessThanOrEqual(8);
      expect(signatureMaxDifference(base.signature, p.signature)).toBeLessThanOrEqual(NEAR_DUPLICATE_MAX_CELL_DIFFERENCE);
    }
    for (const other of photos.slice(1)) {
      const p = await props(other);
      const match = hammingDistance(base.phash, p.phash) <= 8 && signatureMaxDifference(base.signature, p.signature) <= NEAR_DUPLICATE_MAX_CELL_DIFFERENCE;
      expect(match).toBe(false);
    }
  });

  it('near duplicates: no pair of the bundled sample within pHash distance 14 passes the cell check (different scenes, one road layout)', async () => {
    const files = (await fg('*/*/*.jpg', {cwd: SAMPLE})).sort();
    const all = await Promise.all(files.map((f) => props(path.join(SAMPLE, f))));
    let close = 0;
    for (let i = 0; i < all.length; i++) {
      for (let j = i + 1; j < all.length; j++) {
        if (hammingDistance(all[i]!.phash, all[j]!.phash) > 14) continue;
        close++;
        expect(signatureMaxDifference(all[i]!.signature, all[j]!.signature), `${files[i]} vs ${files[j]}`).toBeGreaterThan(NEAR_DUPLICATE_MAX_CELL_DIFFERENCE);
      }
    }
    // The pHash alone joins hundreds of these pairs: the test would pass vacuously without them.
    expect(close).toBeGreaterThan(500);
  });
});
