import path from 'node:path';
import fg from 'fast-glob';
import sharp from 'sharp';
import {describe, expect, it} from 'vitest';
import {decodeImage} from '../../src/lib/image/decode.js';
import {BkTree, hammingDistance, signatureCorrelation} from '../../src/lib/quality/hash.js';
import {computeProperties} from '../../src/lib/quality/properties.js';
import {DEFAULT_THRESHOLDS, NEAR_DUPLICATE_MIN_CORRELATION} from '../../src/lib/quality/validate.js';
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

  it('near duplicates: resized, re-encoded and brightened copies match; other scenes do not', async () => {
    const photos = await sharpSamplePhotos(3);
    const base = await props(photos[0]!);
    const copies = [
      await sharp(photos[0]!).resize(200).jpeg({quality: 85}).toBuffer(),
      await sharp(photos[0]!).jpeg({quality: 35}).toBuffer(),
      await sharp(photos[0]!).modulate({brightness: 1.12}).jpeg().toBuffer(),
    ];
    for (const copy of copies) {
      const p = await props(copy);
      expect(hammingDistance(base.phash, p.phash)).toBeLessThanOrEqual(8);
      expect(signatureCorrelation(base.signature, p.signature)).toBeGreaterThanOrEqual(NEAR_DUPLICATE_MIN_CORRELATION);
    }
    for (const other of photos.slice(1)) {
      const p = await props(other);
      const match = hammingDistance(base.phash, p.phash) <= 8 && signatureCorrelation(base.signature, p.signature) >= NEAR_DUPLICATE_MIN_CORRELATION;
      expect(match).toBe(false);
    }
  });

  it('BK-tree finds exactly the hashes within the radius', () => {
    const hashes = [0n, 1n, 3n, 0xffn, 0xf0f0n, 7n];
    const tree = new BkTree();
    hashes.forEach((h, i) => tree.add(h, i));
    for (const radius of [0, 1, 2, 4]) {
      const expected = hashes.map((h, i) => [i, hammingDistance(0n, h)] as const).filter(([, d]) => d <= radius).map(([i]) => i).sort();
      expect(tree.search(0n, radius).map((r) => r.id).sort()).toEqual(expected);
    }
  });
});
