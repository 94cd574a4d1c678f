/**
 * The Hugging Face image processor reproduced by natix, checked against an independent implementation of what the
 * processor does in Python: PIL's antialiased bilinear/bicubic resize (separable, support scaled by the reduction,
 * rounded to 8 bits after each pass), centre crop at (size - crop) // 2, rescale 1/255, normalise.
 */
import sharp from 'sharp';
import {describe, expect, it} from 'vitest';
import {preprocessingFromHf} from '../../src/lib/cascade/model.js';
import {decodeImage} from '../../src/lib/image/decode.js';
import {decodeOptionsFor, preprocessImage, resizedSize} from '../../src/lib/image/preprocess.js';

type Filter = {support: number; f: (x: number) => number};
const BILINEAR: Filter = {support: 1, f: (x) => (Math.abs(x) < 1 ? 1 - Math.abs(x) : 0)};
const BICUBIC: Filter = {
  support: 2,
  f: (x) => {
    const a = -0.5;
    const t = Math.abs(x);
    if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
    if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
    return 0;
  },
};

/** One PIL-style resampling pass along one axis of an interleaved RGB float image. */
function pass(src: Float64Array, w: number, h: number, outLen: number, horizontal: boolean, filter: Filter): Float64Array {
  const inLen = horizontal ? w : h;
  const scale = inLen / outLen;
  const fscale = Math.max(1, scale);
  const support = filter.support * fscale;
  const ow = horizontal ? outLen : w;
  const oh = horizontal ? h : outLen;
  const out = new Float64Array(ow * oh * 3);
  for (let o = 0; o < outLen; o++) {
    const centre = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(centre - support + 0.5));
    const hi = Math.min(inLen, Math.trunc(centre + support + 0.5));
    const weights: number[] = [];
    for (let i = lo; i < hi; i++) weights.push(filter.f((i - centre + 0.5) / fscale));
    const total = weights.reduce((a, b) => a + b, 0);
    const across = horizontal ? h : w;
    for (let k = 0; k < across; k++) {
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (let i = lo; i < hi; i++) {
          const idx = horizontal ? (k * w + i) * 3 + c : (i * w + k) * 3 + c;
          v += src[idx]! * weights[i - lo]!;
        }
        const dst = horizontal ? (k * ow + o) * 3 + c : (o * ow + k) * 3 + c;
        out[dst] = Math.min(255, Math.max(0, Math.round(v / total)));
      }
    }
  }
  return out;
}

function pilResize(rgb: Uint8Array, w: number, h: number, ow: number, oh: number, filter: Filter): Float64Array {
  const horizontal = pass(Float64Array.from(rgb), w, h, ow, true, filter);
  return pass(horizontal, ow, h, oh, false, filter);
}

/** A smooth test picture (gradients and a soft disc): what photos look like at the scale of a few pixels. */
async function picture(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const d = Math.hypot(x - width * 0.4, y - height * 0.5) / (height * 0.3);
      raw.set([Math.round((255 * x) / width), Math.round((255 * y) / height), Math.round(255 / (1 + d * d))], (y * width + x) * 3);
    }
  }
  return sharp(raw, {raw: {width, height, channels: 3}}).png().toBuffer();
}

function compare(tensor: Float32Array, reference: Float64Array, width: number, height: number, mean: number[], std: number[]): {maxLevels: number; meanLevels: number} {
  let max = 0;
  let sum = 0;
  const plane = width * height;
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const expected = (reference[i * 3 + c]! / 255 - mean[c]!) / std[c]!;
      const levels = (Math.abs(tensor[c * plane + i]! - expected) * std[c]! * 255);
      max = Math.max(max, levels);
      sum += levels;
    }
  }
  return {maxLevels: max, meanLevels: sum / (plane * 3)};
}

describe('Hugging Face preprocessing against an independent PIL-style reference', () => {
  it('ViT: stretch to size with bilinear (resample 2), rescale, normalise', async () => {
    const config = {do_resize: true, size: {height: 32, width: 32}, resample: 2, do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5]};
    const p = preprocessingFromHf(config);
    const image = await decodeImage(await picture(160, 96));
    const tensor = (await preprocessImage(image, p)).data as Float32Array;
    const reference = pilResize(image.data, 160, 96, 32, 32, BILINEAR);
    const d = compare(tensor, reference, 32, 32, config.image_mean, config.image_std);
    if (process.env.NATIX_SHOW_DIFF) console.log(JSON.stringify(d));
    // natix's Pillow-exact resize vs this float re-implementation of PIL (no fixed point): at most 1-2 levels apart.
    expect(d.meanLevels).toBeLessThan(0.5);
    expect(d.maxLevels).toBeLessThanOrEqual(2.01);
  });

  it('shortest_edge + centre crop with bicubic (resample 3): sizes truncated, crop at (size - crop) // 2', async () => {
    const config = {do_resize: true, size: {shortest_edge: 40}, do_center_crop: true, crop_size: {height: 32, width: 32}, resample: 3, image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225]};
    const p = preprocessingFromHf(config);
    // transformers: int(40 * 150 / 97) = 61 (not the rounded 62); crop left (61 - 32) // 2 = 14.
    expect(resizedSize(150, 97, p)).toEqual({w: 61, h: 40});
    const image = await decodeImage(await picture(150, 97));
    const tensor = (await preprocessImage(image, p)).data as Float32Array;
    const resized = pilResize(image.data, 150, 97, 61, 40, BICUBIC);
    const reference = new Float64Array(32 * 32 * 3);
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) reference[(y * 32 + x) * 3 + c] = resized[((y + 4) * 61 + x + 14) * 3 + c]!;
    const d = compare(tensor, reference, 32, 32, config.image_mean, config.image_std);
    if (process.env.NATIX_SHOW_DIFF) console.log(JSON.stringify(d));
    expect(d.meanLevels).toBeLessThan(0.5);
    expect(d.maxLevels).toBeLessThanOrEqual(2.01);
  });

  it('the vips fast path (shrink-on-load to the model size, then libvips) stays close; the pillow path refuses a shrunk decode', async () => {
    const config = {do_resize: true, size: {height: 32, width: 32}, resample: 2, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5]};
    const p = {...preprocessingFromHf(config), resampler: 'vips' as const};
    const jpeg = await sharp(await picture(480, 270)).jpeg({quality: 95}).toBuffer();
    const full = await decodeImage(jpeg);
    const reduced = await decodeImage(jpeg, decodeOptionsFor([p]));
    expect(reduced.height).toBe(32);
    expect(reduced.reduced).toBe(true);
    expect(full.reduced).toBe(false);
    const tensor = (await preprocessImage(reduced, p)).data as Float32Array;
    const d = compare(tensor, pilResize(full.data, 480, 270, 32, 32, BILINEAR), 32, 32, config.image_mean, config.image_std);
    if (process.env.NATIX_SHOW_DIFF) console.log(JSON.stringify(d));
    expect(d.meanLevels).toBeLessThan(1);
    expect(d.maxLevels).toBeLessThan(6);
    await expect(preprocessImage(reduced, {...p, resampler: 'pillow'})).rejects.toThrow(/full-resolution decode/);
  });

  it('size {height, width} + do_center_crop: stretch to size, then crop', () => {
    const p = preprocessingFromHf({size: {height: 256, width: 256}, do_center_crop: true, crop_size: {height: 224, width: 224}});
    expect(p).toMatchObject({resize: 'shorter-side-crop', resizeWidth: 256, resizeHeight: 256, width: 224, height: 224});
    expect(resizedSize(1920, 1080, p)).toEqual({w: 256, h: 256});
  });
});
