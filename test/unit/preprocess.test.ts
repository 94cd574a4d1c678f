import sharp from 'sharp';
import {describe, expect, it} from 'vitest';
import {preprocessingFromHf} from '../../src/lib/cascade/model.js';
import {decodeImage} from '../../src/lib/image/decode.js';
import {preprocessImage, toTensor, DEFAULT_PREPROCESSING} from '../../src/lib/image/preprocess.js';

/** A 40x20 image whose pixel (x, y) = (6x, 12y, 100): every position is distinguishable. */
async function gradient(): Promise<Buffer> {
  const raw = Buffer.alloc(40 * 20 * 3);
  for (let y = 0; y < 20; y++) for (let x = 0; x < 40; x++) raw.set([6 * x, 12 * y, 100], (y * 40 + x) * 3);
  return sharp(raw, {raw: {width: 40, height: 20, channels: 3}}).png().toBuffer();
}

describe('preprocessing', () => {
  it('maps Hugging Face preprocessor configs (ViT: 224 stretch, 0.5/0.5; ConvNeXt-style: shortest_edge + crop)', () => {
    const vit = preprocessingFromHf({do_resize: true, size: {height: 224, width: 224}, resample: 2, do_rescale: true, rescale_factor: 0.00392156862745098, do_normalize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5]});
    expect(vit).toMatchObject({width: 224, height: 224, resize: 'stretch', resample: 'bilinear', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], layout: 'nchw'});
    const crop = preprocessingFromHf({size: {shortest_edge: 256}, do_center_crop: true, crop_size: {height: 224, width: 224}, resample: 3, image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225]});
    expect(crop).toMatchObject({width: 224, height: 224, shortestEdge: 256, resize: 'shorter-side-crop', resample: 'bicubic'});
    expect(preprocessingFromHf({do_rescale: false, do_normalize: false}).scale).toBe(1);
  });

  it('shorter-side + centre crop (nearest) takes the central pixels, normalised per channel, NCHW', async () => {
    const image = await decodeImage(await gradient());
    const p = {...DEFAULT_PREPROCESSING, width: 10, height: 10, resize: 'shorter-side-crop' as const, resample: 'nearest' as const, shortestEdge: 10, mean: [0.5, 0.25, 0] as [number, number, number], std: [0.5, 0.5, 2] as [number, number, number]};
    const tensor = await preprocessImage(image, p);
    expect(tensor.dims).toEqual([1, 3, 10, 10]);
    // Independently: 40x20 -> 20x10 by nearest (every other pixel), centre crop 10x10 starting at x=5.
    const data = tensor.data as Float32Array;
    for (const [cx, cy] of [[0, 0], [9, 9], [4, 7]] as const) {
      const srcX = (5 + cx) * 2;
      const srcY = cy * 2;
      const rgb = [6 * srcX, 12 * srcY, 100];
      for (let c = 0; c < 3; c++) {
        const expected = (rgb[c]! / 255 - p.mean[c]!) / p.std[c]!;
        expect(Math.abs(data[c * 100 + cy * 10 + cx]! - expected)).toBeLessThan(0.2);
      }
    }
  });

  it('lays out NHWC / BGR / uint8 exactly from a raw buffer', () => {
    const rgb = Uint8Array.from([10, 20, 30, 40, 50, 60]); // 2x1 image
    const p = {...DEFAULT_PREPROCESSING, width: 2, height: 1};
    expect(Array.from(toTensor(rgb, {...p, layout: 'nhwc', channels: 'bgr', dtype: 'uint8'}).data)).toEqual([30, 20, 10, 60, 50, 40]);
    expect(Array.from(toTensor(rgb, {...p, layout: 'nchw', dtype: 'uint8'}).data)).toEqual([10, 40, 20, 50, 30, 60]);
    const f = toTensor(rgb, {...p, scale: 1, mean: [10, 0, 0], std: [2, 1, 1]});
    expect(Array.from(f.data)).toEqual([0, 15, 20, 50, 30, 60]);
  });

  it('letterbox keeps the aspect ratio and pads with grey', async () => {
    const image = await decodeImage(await gradient());
    const t = await preprocessImage(image, {...DEFAULT_PREPROCESSING, width: 20, height: 20, resize: 'letterbox', dtype: 'uint8', layout: 'nhwc'});
    const d = t.data as Uint8Array;
    expect([d[0], d[1], d[2]]).toEqual([114, 114, 114]); // top-left is padding
    expect(d[(10 * 20 + 10) * 3 + 2]).toBe(100); // centre row is image (blue channel = 100)
  });
});
