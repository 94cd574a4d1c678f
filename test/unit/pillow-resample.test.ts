/**
 * natix's Pillow resampler against Pillow itself: fixtures made once by scripts/fixtures/pillow_reference.py
 * (Pillow 9.4, Debian 12) - every filter, down- and upscale, odd sizes, one-axis-only resizes. Max |difference| = 0.
 * The sources are decoded by sharp here, and that decode is itself checked against Pillow's (libjpeg-turbo both).
 */
import {createHash} from 'node:crypto';
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {gunzipSync} from 'node:zlib';
import {describe, expect, it} from 'vitest';
import {decodeImage, type DecodedImage} from '../../src/lib/image/decode.js';
import {pillowResize, type PillowFilter} from '../../src/lib/image/pillow-resample.js';

const DIR = path.resolve('test/fixtures/pillow');
interface Stored {sha256: string; length: number; offset?: number}
interface Manifest {
  decoded: Record<string, Stored & {width: number; height: number}>;
  resamples: Array<Stored & {source: string; filter: PillowFilter; code: number; width: number; height: number}>;
}
const manifest = JSON.parse(readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as Manifest;
const blob = gunzipSync(readFileSync(path.join(DIR, 'expected.bin.gz')));
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

const decoded = new Map<string, Promise<DecodedImage>>();
const source = (name: string): Promise<DecodedImage> => {
  if (!decoded.has(name)) decoded.set(name, decodeImage(path.join(DIR, name)));
  return decoded.get(name)!;
};

describe('sharp decodes the fixtures exactly as Pillow does (EXIF orientation applied, as transformers load_image does)', () => {
  for (const [name, expected] of Object.entries(manifest.decoded)) {
    it(name, async () => {
      const image = await source(name);
      expect([image.width, image.height]).toEqual([expected.width, expected.height]);
      expect(sha256(image.data)).toBe(expected.sha256);
    });
  }
});

describe.each(['wasm', 'js'] as const)('pillowResize (%s passes) equals Pillow Image.resize(reducing_gap=None) byte for byte', (engine) => {
  for (const r of manifest.resamples) {
    it(`${r.source} -> ${r.width}x${r.height} ${r.filter} (${r.code})`, async () => {
      const image = await source(r.source);
      const out = pillowResize(image, r.width, r.height, r.filter, engine);
      expect(out.data.length).toBe(r.length);
      if (r.offset !== undefined) {
        const expected = blob.subarray(r.offset, r.offset + r.length);
        let max = 0;
        for (let i = 0; i < expected.length; i++) max = Math.max(max, Math.abs(out.data[i]! - expected[i]!));
        expect(max).toBe(0);
      }
      expect(sha256(out.data)).toBe(r.sha256);
    });
  }

  it('refuses impossible sizes and mismatched buffers', () => {
    const img = {data: new Uint8Array(12), width: 2, height: 2};
    expect(() => pillowResize(img, 0, 2, 'bilinear')).toThrow(/> 0/);
    expect(() => pillowResize({...img, width: 3}, 2, 2, 'bilinear')).toThrow(/not 3x2x3/);
  });
});
