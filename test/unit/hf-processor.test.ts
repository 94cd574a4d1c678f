/**
 * Every Hugging Face processor family against a numpy + Pillow reproduction of transformers' slow image processors
 * (fixtures made once by scripts/fixtures/pillow_reference.py): the float32 pixel_values must be identical, bit for
 * bit. Plus the resolver's reading of configs as they appear on the Hub (legacy int sizes, crop_pct, unknown keys).
 */
import {createHash} from 'node:crypto';
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {gunzipSync} from 'node:zlib';
import {describe, expect, it} from 'vitest';
import {decodeImage, type DecodedImage} from '../../src/lib/image/decode.js';
import {resolveHfProcessor} from '../../src/lib/image/hf-processor.js';
import {explainPreprocessing, geometryFor, preprocessForModel} from '../../src/lib/image/preprocess.js';

const DIR = path.resolve('test/fixtures/pillow');
interface Case {name: string; source: string; config: Record<string, unknown>; dims: number[]; sha256: string; length: number; offset?: number}
const manifest = JSON.parse(readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as {processors: Case[]};
const blob = gunzipSync(readFileSync(path.join(DIR, 'expected.bin.gz')));
const decoded = new Map<string, Promise<DecodedImage>>();
const source = (name: string): Promise<DecodedImage> => {
  if (!decoded.has(name)) decoded.set(name, decodeImage(path.join(DIR, name)));
  return decoded.get(name)!;
};
const bytesOf = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('natix pixel_values == transformers slow processor pixel_values (float32, bit for bit)', () => {
  for (const c of manifest.processors) {
    it(`${c.name} on ${c.source}`, async () => {
      const {preprocessing, warnings} = resolveHfProcessor(c.config);
      expect(warnings).toEqual([]);
      const tensor = await preprocessForModel(await source(c.source), preprocessing);
      expect(tensor.dims).toEqual([1, ...c.dims]);
      const data = tensor.data as Float32Array;
      if (c.offset !== undefined) {
        const expected = new Float32Array(blob.buffer.slice(blob.byteOffset + c.offset, blob.byteOffset + c.offset + c.length));
        let max = 0;
        for (let i = 0; i < expected.length; i++) max = Math.max(max, Math.abs(data[i]! - expected[i]!));
        expect(max).toBe(0);
      }
      expect(createHash('sha256').update(bytesOf(data)).digest('hex')).toBe(c.sha256);
    });
  }

  it('also from encoded bytes (the decode happens inside, at full resolution)', async () => {
    const c = manifest.processors.find((x) => x.name === 'vit-224')!;
    const tensor = await preprocessForModel(readFileSync(path.join(DIR, c.source)), resolveHfProcessor(c.config).preprocessing);
    expect(createHash('sha256').update(bytesOf(tensor.data as Float32Array)).digest('hex')).toBe(c.sha256);
  });
});

describe('resolving preprocessor configs as they appear on the Hub', () => {
  it('ConvNeXt: shortest_edge 224 with crop_pct 0.875 resizes the short side to int(224 / 0.875) = 256, then crops 224', () => {
    const {preprocessing: p} = resolveHfProcessor({image_processor_type: 'ConvNextImageProcessor', size: {shortest_edge: 224}, crop_pct: 0.875, resample: 3});
    expect(p).toMatchObject({resize: 'shorter-side-crop', shortestEdge: 256, width: 224, height: 224, resample: 'bicubic', resampler: 'pillow'});
    expect(geometryFor(1920, 1080, p)).toEqual({resize: {w: 455, h: 256}, crop: {w: 224, h: 224, left: 115, top: 16}});
    const big = resolveHfProcessor({image_processor_type: 'ConvNextImageProcessor', size: {shortest_edge: 384}}).preprocessing;
    expect(big).toMatchObject({resize: 'stretch', width: 384, height: 384});
  });

  it('a plain-int size is the shortest edge for CLIP/ConvNeXt/BiT and a square for ViT/DeiT', () => {
    expect(resolveHfProcessor({image_processor_type: 'CLIPImageProcessor', size: 224, crop_size: 224}).preprocessing).toMatchObject({resize: 'shorter-side-crop', shortestEdge: 224, width: 224, height: 224});
    expect(resolveHfProcessor({feature_extractor_type: 'ConvNextFeatureExtractor', size: 224}).preprocessing).toMatchObject({resize: 'shorter-side-crop', shortestEdge: 256});
    expect(resolveHfProcessor({image_processor_type: 'ViTImageProcessor', size: 224}).preprocessing).toMatchObject({resize: 'stretch', width: 224, height: 224});
  });

  it('sizes are truncated as transformers does: 4000x3000 to shortest edge 224 is 298 wide, not 299', () => {
    const {preprocessing: p} = resolveHfProcessor({image_processor_type: 'CLIPImageProcessor', size: {shortest_edge: 224}});
    expect(geometryFor(4000, 3000, p).resize).toEqual({w: 298, h: 224});
  });

  it('every PIL resample code maps to its own filter (box and hamming included)', () => {
    const names = [0, 1, 2, 3, 4, 5].map((resample) => resolveHfProcessor({image_processor_type: 'ViTImageProcessor', resample}).preprocessing.resample);
    expect(names).toEqual(['nearest', 'lanczos', 'bilinear', 'bicubic', 'box', 'hamming']);
  });

  it('unknown processor types, unknown pixel-changing keys and keys a family ignores are named in warnings', () => {
    const unknownType = resolveHfProcessor({image_processor_type: 'MobileViTImageProcessor', do_flip_channel_order: true, size: {shortest_edge: 256}});
    expect(unknownType.warnings.join('\n')).toMatch(/MobileViTImageProcessor/);
    expect(unknownType.warnings.join('\n')).toMatch(/do_flip_channel_order/);
    const vit = resolveHfProcessor({image_processor_type: 'ViTImageProcessor', do_center_crop: true, crop_size: 200, crop_pct: 0.9, do_pad: true});
    expect(vit.warnings.join('\n')).toMatch(/do_center_crop is ignored/);
    expect(vit.warnings.join('\n')).toMatch(/crop_pct/);
    expect(vit.warnings.join('\n')).toMatch(/do_pad/);
    expect(resolveHfProcessor({image_processor_type: 'ViTImageProcessor', resample: 7}).warnings.join('\n')).toMatch(/resample 7/);
    expect(resolveHfProcessor({image_processor_type: 'ViTImageProcessorFast'}).warnings.join('\n')).toMatch(/torchvision/);
    // Harmless keys stay quiet.
    expect(resolveHfProcessor({image_processor_type: 'BeitImageProcessor', do_reduce_labels: false}).warnings).toEqual([]);
  });

  it('natix exports: the recorded resampler, libvips when none is recorded (models trained before it was)', () => {
    const base = {image_processor_type: 'natix', size: {height: 48, width: 48}, resample: 2, do_normalize: false};
    expect(resolveHfProcessor(base).preprocessing.resampler).toBe('vips');
    expect(resolveHfProcessor({...base, natix_resampler: 'pillow'}).preprocessing.resampler).toBe('pillow');
    expect(resolveHfProcessor({image_processor_type: 'ViTImageProcessor'}).preprocessing.resampler).toBe('pillow');
  });

  it('explains the resolved steps for a given source size', () => {
    const {preprocessing: p} = resolveHfProcessor({image_processor_type: 'ConvNextImageProcessor', size: {shortest_edge: 224}, crop_pct: 0.875, resample: 3, image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225]});
    const steps = explainPreprocessing(p, {width: 1920, height: 1080}).join('\n');
    expect(steps).toMatch(/resize 1920x1080 -> 455x256 with Pillow BICUBIC \(3\)/);
    expect(steps).toMatch(/centre crop 224x224 at left 115, top 16/);
    expect(steps).toMatch(/\(x - \[0.485, 0.456, 0.406\]\) \/ \[0.229, 0.224, 0.225\]/);
  });
});
