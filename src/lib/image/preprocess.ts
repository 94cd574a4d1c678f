/**
 * Model input tensors from a decoded RGB image: resize (stretch, shorter side + centre crop, letterbox) with sharp
 * on the already-reduced raw buffer, then rescale, normalise, reorder channels and lay out as NCHW or NHWC.
 */
import sharp, {type Sharp} from 'sharp';
import type {DecodedImage} from './decode.js';

export interface Preprocessing {
  width: number;
  height: number;
  resize: 'stretch' | 'shorter-side-crop' | 'letterbox';
  resample: 'nearest' | 'bilinear' | 'bicubic' | 'lanczos';
  /** Multiplier applied to 0..255 values before normalisation (1/255 for most models). */
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
  channels: 'rgb' | 'bgr';
  layout: 'nchw' | 'nhwc';
  dtype: 'float32' | 'uint8';
  /** shorter-side-crop: resize the shorter side to this, then centre-crop width x height (default: crop size). */
  shortestEdge?: number;
  /**
   * shorter-side-crop with an exact resize instead: stretch to resizeWidth x resizeHeight, then centre-crop
   * (a Hugging Face processor with `size: {height, width}` and `do_center_crop`).
   */
  resizeWidth?: number;
  resizeHeight?: number;
}

export const DEFAULT_PREPROCESSING: Preprocessing = {
  width: 224,
  height: 224,
  resize: 'stretch',
  resample: 'bilinear',
  scale: 1 / 255,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  channels: 'rgb',
  layout: 'nchw',
  dtype: 'float32',
};

export interface InputTensor {
  data: Float32Array | Uint8Array;
  dims: [number, number, number, number];
  dtype: 'float32' | 'uint8';
}

/** A stable key: models whose preprocessing is equal share one tensor per image. */
export function preprocessingKey(p: Preprocessing): string {
  return JSON.stringify([p.width, p.height, p.resize, p.resample, p.scale, p.mean, p.std, p.channels, p.layout, p.dtype, p.shortestEdge ?? null, p.resizeWidth ?? null, p.resizeHeight ?? null]);
}

const KERNEL = {nearest: 'nearest', bilinear: 'linear', bicubic: 'cubic', lanczos: 'lanczos3'} as const;

/**
 * The size before the centre crop of `shorter-side-crop`: the shorter side becomes `shortestEdge` and the longer one
 * int(edge * long / short) (truncated, as transformers' get_resize_output_image_size does), never below the crop.
 */
export function resizedSize(width: number, height: number, p: Preprocessing): {w: number; h: number} {
  if (p.resizeWidth && p.resizeHeight) return {w: Math.max(p.width, p.resizeWidth), h: Math.max(p.height, p.resizeHeight)};
  const edge = p.shortestEdge ?? Math.max(p.width, p.height);
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const other = Math.trunc((edge * long) / short);
  const [w, h] = width <= height ? [edge, other] : [other, edge];
  return {w: Math.max(p.width, w), h: Math.max(p.height, h)};
}

/** Resizes the decoded RGB buffer to the model's spatial input, per the resize mode. */
export async function resizeForModel(image: DecodedImage, p: Preprocessing): Promise<Buffer> {
  const input = sharp(image.data, {raw: {width: image.width, height: image.height, channels: 3}});
  const kernel = KERNEL[p.resample];
  let pipeline: Sharp;
  if (p.resize === 'stretch') {
    pipeline = input.resize({width: p.width, height: p.height, fit: 'fill', kernel});
  } else if (p.resize === 'letterbox') {
    pipeline = input.resize({width: p.width, height: p.height, fit: 'contain', kernel, background: {r: 114, g: 114, b: 114}});
  } else {
    const {w, h} = resizedSize(image.width, image.height, p);
    // Hugging Face's center_crop starts at (size - crop) // 2 (floor division).
    const left = Math.max(0, Math.floor((w - p.width) / 2));
    const top = Math.max(0, Math.floor((h - p.height) / 2));
    const resized = await input.resize({width: w, height: h, fit: 'fill', kernel}).raw().toBuffer();
    pipeline = sharp(resized, {raw: {width: w, height: h, channels: 3}}).extract({left, top, width: p.width, height: p.height});
  }
  return pipeline.removeAlpha().raw().toBuffer();
}

/** Converts an interleaved RGB buffer of width x height to the model's tensor layout and dtype. */
export function toTensor(rgb: Uint8Array, p: Preprocessing): InputTensor {
  const {width: w, height: h} = p;
  const plane = w * h;
  const order = p.channels === 'rgb' ? [0, 1, 2] : [2, 1, 0];
  const dims: [number, number, number, number] = p.layout === 'nchw' ? [1, 3, h, w] : [1, h, w, 3];
  if (p.dtype === 'uint8') {
    const out = new Uint8Array(plane * 3);
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) out[p.layout === 'nchw' ? c * plane + i : i * 3 + c] = rgb[i * 3 + order[c]!]!;
    }
    return {data: out, dims, dtype: 'uint8'};
  }
  const out = new Float32Array(plane * 3);
  const mul = [0, 1, 2].map((c) => p.scale / p.std[c]!);
  const add = [0, 1, 2].map((c) => -p.mean[c]! / p.std[c]!);
  if (p.layout === 'nchw') {
    for (let c = 0; c < 3; c++) {
      const src = order[c]!;
      const m = mul[c]!;
      const a = add[c]!;
      const base = c * plane;
      for (let i = 0; i < plane; i++) out[base + i] = rgb[i * 3 + src]! * m + a;
    }
  } else {
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) out[i * 3 + c] = rgb[i * 3 + order[c]!]! * mul[c]! + add[c]!;
    }
  }
  return {data: out, dims, dtype: 'float32'};
}

/** Resize + tensor conversion in one call. */
export async function preprocessImage(image: DecodedImage, p: Preprocessing): Promise<InputTensor> {
  return toTensor(await resizeForModel(image, p), p);
}
