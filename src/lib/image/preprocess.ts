/**
 * The ONE path from an image to a model's input tensor: `preprocessForModel(input, preprocessing)`. Inference,
 * bench, the validator simulation and training all go through it, so a model sees the same pixels everywhere.
 *
 * Geometry follows transformers' slow image processors (sizes truncated with int(), centre crop at
 * ((H - h) // 2, (W - w) // 2), zero padding when the crop is larger than the image), then the float conversion is
 * done exactly as numpy does it in float32: rescale (uint8 -> float64 * factor -> float32), optional offset, then
 * (x - mean) / std with float32 mean and std. Two resamplers:
 * - `pillow` (default): decode at full resolution, ONE Pillow-exact resize (pillow-resample.ts). Bit-identical to
 *   transformers + Pillow.
 * - `vips`: the fast path: JPEG shrink-on-load to about the model size, then libvips' resize. Close, not identical.
 */
import sharp from 'sharp';
import {decodeImage, type DecodedImage, type DecodeOptions} from './decode.js';
import {pillowResize, type PillowFilter, type RgbImage} from './pillow-resample.js';

export type Resampler = 'pillow' | 'vips';
export type ResizeMode = 'stretch' | 'shorter-side-crop' | 'shorter-side' | 'letterbox' | 'none';

export interface Preprocessing {
  /** Output width x height: the crop size, or the resize size without a crop. Unused by `shorter-side`. */
  width: number;
  height: number;
  /**
   * stretch: resize to width x height. shorter-side-crop: resize (shorter side to shortestEdge, or exactly to
   * resizeWidth x resizeHeight), then centre-crop width x height. shorter-side: resize the shorter side only (the
   * output size follows the image). letterbox: fit inside, pad grey. none: no resize; centre-crop when width and
   * height are > 0.
   */
  resize: ResizeMode;
  resample: PillowFilter;
  resampler: Resampler;
  /** Multiplier applied to 0..255 values before normalisation (1/255 for most models). */
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
  channels: 'rgb' | 'bgr';
  layout: 'nchw' | 'nhwc';
  dtype: 'float32' | 'uint8';
  /** Shorter-side target (Hugging Face `shortest_edge`); defaults to max(width, height). */
  shortestEdge?: number;
  /** With shortestEdge: cap of the longer side (Hugging Face `longest_edge`). */
  longestEdge?: number;
  /** Exact resize before the centre crop (Hugging Face `size: {height, width}` with `do_center_crop`). */
  resizeWidth?: number;
  resizeHeight?: number;
  /** Subtracted after rescaling (EfficientNet `rescale_offset`: 1). */
  offset?: number;
  /** A second division after normalising (EfficientNet `include_top`: image_std). */
  extraStd?: [number, number, number];
}

export const DEFAULT_PREPROCESSING: Preprocessing = {
  width: 224,
  height: 224,
  resize: 'stretch',
  resample: 'bilinear',
  resampler: 'pillow',
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
  return JSON.stringify([p.width, p.height, p.resize, p.resample, p.resampler, p.scale, p.mean, p.std, p.channels, p.layout, p.dtype, p.shortestEdge ?? null, p.longestEdge ?? null, p.resizeWidth ?? null, p.resizeHeight ?? null, p.offset ?? null, p.extraStd ?? null]);
}

/** Python's round(): half to even. */
const roundHalfEven = (v: number): number => {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
};

/**
 * The resize target of a shorter-side resize, as transformers computes it: get_resize_output_image_size
 * (long side int(edge * long / short)) or, with a longest edge, get_size_with_aspect_ratio.
 */
export function shorterSideSize(width: number, height: number, edge: number, longest?: number): {w: number; h: number} {
  if (longest === undefined) {
    const short = Math.min(width, height);
    const long = Math.max(width, height);
    const other = Math.trunc((edge * long) / short);
    return width <= height ? {w: edge, h: other} : {w: other, h: edge};
  }
  let size = edge;
  let raw: number | undefined;
  const mn = Math.min(width, height);
  const mx = Math.max(width, height);
  if ((mx / mn) * size > longest) {
    raw = (longest * mn) / mx;
    size = Math.trunc(roundHalfEven(raw));
  }
  if ((height <= width && height === size) || (width <= height && width === size)) return {w: width, h: height};
  if (width < height) return {w: size, h: Math.trunc(raw !== undefined ? (raw * height) / width : (size * height) / width)};
  return {w: Math.trunc(raw !== undefined ? (raw * width) / height : (size * width) / height), h: size};
}

export interface Geometry {
  /** Resize the source to this size first (absent: no resize). */
  resize?: {w: number; h: number};
  /** Then centre-crop to this size; `left`/`top` are the crop origin in the resized image (negative: padding). */
  crop?: {w: number; h: number; left: number; top: number};
  /** letterbox: the resized image is placed at (left, top) on a width x height grey canvas. */
  letterbox?: {w: number; h: number; left: number; top: number};
}

/** What happens to a width x height source under `p` (sizes and offsets exactly as transformers computes them). */
export function geometryFor(width: number, height: number, p: Preprocessing): Geometry {
  const crop = (w: number, h: number, cw: number, ch: number): Geometry['crop'] => ({w: cw, h: ch, left: Math.floor((w - cw) / 2), top: Math.floor((h - ch) / 2)});
  switch (p.resize) {
    case 'stretch':
      return {resize: {w: p.width, h: p.height}};
    case 'letterbox': {
      const r = Math.min(p.width / width, p.height / height);
      const w = Math.max(1, Math.round(width * r));
      const h = Math.max(1, Math.round(height * r));
      return {resize: {w, h}, letterbox: {w: p.width, h: p.height, left: Math.ceil((p.width - w) / 2), top: Math.ceil((p.height - h) / 2)}};
    }
    case 'shorter-side':
      return {resize: shorterSideSize(width, height, p.shortestEdge ?? Math.max(p.width, p.height), p.longestEdge)};
    case 'none':
      return p.width > 0 && p.height > 0 ? {crop: crop(width, height, p.width, p.height)} : {};
    case 'shorter-side-crop': {
      const resize = p.resizeWidth && p.resizeHeight ? {w: p.resizeWidth, h: p.resizeHeight} : shorterSideSize(width, height, p.shortestEdge ?? Math.max(p.width, p.height), p.longestEdge);
      return {resize, crop: crop(resize.w, resize.h, p.width, p.height)};
    }
  }
}

/** Kept for callers of the old API: the size before the centre crop. */
export function resizedSize(width: number, height: number, p: Preprocessing): {w: number; h: number} {
  return geometryFor(width, height, p).resize ?? {w: width, h: height};
}

/**
 * transformers' center_crop on uint8 RGB: the crop window at ((H - h) // 2, (W - w) // 2); along an axis where the
 * crop is larger than the image, the image is placed at ceil((crop - size) / 2) on zeros.
 */
export function centerCrop(image: RgbImage, cw: number, ch: number, fill = 0): RgbImage {
  if (cw === image.width && ch === image.height) return image;
  const axis = (size: number, c: number): {src: number; dst: number; len: number} => (c <= size ? {src: Math.floor((size - c) / 2), dst: 0, len: c} : {src: 0, dst: Math.ceil((c - size) / 2), len: size});
  const x = axis(image.width, cw);
  const y = axis(image.height, ch);
  const out = new Uint8Array(cw * ch * 3);
  if (fill !== 0) out.fill(fill);
  for (let row = 0; row < y.len; row++) {
    const from = ((y.src + row) * image.width + x.src) * 3;
    out.set(image.data.subarray(from, from + x.len * 3), ((y.dst + row) * cw + x.dst) * 3);
  }
  return {data: out, width: cw, height: ch};
}

const VIPS_KERNEL: Record<PillowFilter, 'nearest' | 'linear' | 'cubic' | 'lanczos2' | 'lanczos3'> = {nearest: 'nearest', box: 'linear', bilinear: 'linear', hamming: 'lanczos2', bicubic: 'cubic', lanczos: 'lanczos3'};

async function vipsResize(image: RgbImage, w: number, h: number, filter: PillowFilter): Promise<RgbImage> {
  if (w === image.width && h === image.height) return image;
  const data = await sharp(image.data, {raw: {width: image.width, height: image.height, channels: 3}}).resize({width: w, height: h, fit: 'fill', kernel: VIPS_KERNEL[filter]}).raw().toBuffer();
  return {data, width: w, height: h};
}

/** The decode a set of models needs: full resolution if any uses the pillow resampler, else shrink-on-load. */
export function decodeOptionsFor(preprocessings: readonly Preprocessing[]): DecodeOptions {
  if (preprocessings.length === 0 || preprocessings.some((p) => p.resampler !== 'vips')) return {};
  return {minSide: Math.max(...preprocessings.map((p) => Math.max(p.width, p.height, p.shortestEdge ?? 0, p.resizeWidth ?? 0, p.resizeHeight ?? 0)))};
}

/** The model's spatial input as interleaved RGB: resize once (per the resampler), crop or letterbox. */
export async function prepareRgb(image: DecodedImage | RgbImage, p: Preprocessing): Promise<RgbImage> {
  if (p.resampler === 'pillow' && 'reduced' in image && image.reduced) {
    throw new Error('the pillow resampler needs a full-resolution decode (this image was shrunk on load)');
  }
  const g = geometryFor(image.width, image.height, p);
  let rgb: RgbImage = {data: image.data, width: image.width, height: image.height};
  if (g.resize) rgb = p.resampler === 'vips' ? await vipsResize(rgb, g.resize.w, g.resize.h, p.resample) : pillowResize(rgb, g.resize.w, g.resize.h, p.resample);
  if (g.crop) rgb = centerCrop(rgb, g.crop.w, g.crop.h);
  if (g.letterbox) rgb = centerCrop(rgb, g.letterbox.w, g.letterbox.h, 114);
  return rgb;
}

/**
 * Per channel, the float32 value of every uint8 level, computed in the order and precision of transformers' numpy
 * code: float32(float64(v) * scale), minus offset, (x - mean) / std in float32, then the optional second division.
 * Padding pixels (0) go through the same table, as they do in transformers (the crop pads before rescaling).
 */
export function levelTable(p: Preprocessing): Float32Array {
  const f = Math.fround;
  const table = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const mean = f(p.mean[c]!);
    const std = f(p.std[c]!);
    const extra = p.extraStd ? f(p.extraStd[c]!) : undefined;
    for (let v = 0; v < 256; v++) {
      let x = f(v * p.scale);
      if (p.offset) x = f(x - p.offset);
      x = f(f(x - mean) / std);
      if (extra !== undefined) x = f(x / extra);
      table[c * 256 + v] = x;
    }
  }
  return table;
}

/** The input shape of `n` images of the model's size, in its layout. */
export function batchDims(p: Pick<Preprocessing, 'layout' | 'width' | 'height'>, n: number): number[] {
  return p.layout === 'nchw' ? [n, 3, p.height, p.width] : [n, p.height, p.width, 3];
}

/** Converts interleaved RGB (the image's own size) to the model's tensor layout and dtype. */
export function toTensor(rgb: Uint8Array | RgbImage, p: Preprocessing): InputTensor {
  const {data, width: w, height: h} = rgb instanceof Uint8Array ? {data: rgb, width: p.width, height: p.height} : rgb;
  const plane = w * h;
  const order = p.channels === 'rgb' ? [0, 1, 2] : [2, 1, 0];
  const dims: [number, number, number, number] = p.layout === 'nchw' ? [1, 3, h, w] : [1, h, w, 3];
  if (p.dtype === 'uint8') {
    const out = new Uint8Array(plane * 3);
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) out[p.layout === 'nchw' ? c * plane + i : i * 3 + c] = data[i * 3 + order[c]!]!;
    }
    return {data: out, dims, dtype: 'uint8'};
  }
  const table = levelTable(p);
  const out = new Float32Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const src = order[c]!;
    const base = c * 256; // mean/std are per model-input channel
    if (p.layout === 'nchw') {
      const o = c * plane;
      for (let i = 0; i < plane; i++) out[o + i] = table[base + data[i * 3 + src]!]!;
    } else {
      for (let i = 0; i < plane; i++) out[i * 3 + c] = table[base + data[i * 3 + src]!]!;
    }
  }
  return {data: out, dims, dtype: 'float32'};
}

function isDecoded(input: string | Uint8Array | DecodedImage): input is DecodedImage {
  return typeof input === 'object' && !(input instanceof Uint8Array);
}

/**
 * THE model-input function: encoded bytes or a path (decoded here, at the resolution the resampler needs) or an
 * already decoded image -> the model's input tensor.
 */
export async function preprocessForModel(input: string | Uint8Array | DecodedImage, p: Preprocessing): Promise<InputTensor> {
  const image = isDecoded(input) ? input : await decodeImage(input, decodeOptionsFor([p]));
  return toTensor(await prepareRgb(image, p), p);
}

/** Kept for existing callers: the same as preprocessForModel on a decoded image. */
export function preprocessImage(image: DecodedImage, p: Preprocessing): Promise<InputTensor> {
  return preprocessForModel(image, p);
}

const FILTER_NAMES: Record<PillowFilter, string> = {nearest: 'NEAREST (0)', lanczos: 'LANCZOS (1)', bilinear: 'BILINEAR (2)', bicubic: 'BICUBIC (3)', box: 'BOX (4)', hamming: 'HAMMING (5)'};

/** The resolved steps for a source of width x height, in words, so users can compare with their Python pipeline. */
export function explainPreprocessing(p: Preprocessing, source?: {width: number; height: number}): string[] {
  const steps: string[] = [];
  steps.push(p.resampler === 'pillow' ? 'decode at full resolution (libjpeg-turbo, EXIF orientation applied as transformers load_image does), RGB' : `decode with JPEG shrink-on-load to about ${decodeOptionsFor([p]).minSide} px on the shorter side (libvips), RGB`);
  const how = p.resampler === 'pillow' ? `Pillow ${FILTER_NAMES[p.resample]}, reducing_gap=None (bit-exact)` : `libvips ${VIPS_KERNEL[p.resample]} (fast path, approximates Pillow ${FILTER_NAMES[p.resample]})`;
  if (source) {
    const g = geometryFor(source.width, source.height, p);
    if (g.resize) steps.push(`resize ${source.width}x${source.height} -> ${g.resize.w}x${g.resize.h} with ${how}`);
    else steps.push(`no resize (${source.width}x${source.height})`);
    const at = g.resize ?? {w: source.width, h: source.height};
    if (g.crop) steps.push(`centre crop ${g.crop.w}x${g.crop.h} at left ${g.crop.left}, top ${g.crop.top}${g.crop.left < 0 || g.crop.top < 0 ? ' (zero padding where the crop is larger than the image)' : ''} of ${at.w}x${at.h}`);
    if (g.letterbox) steps.push(`letterbox onto ${g.letterbox.w}x${g.letterbox.h} at left ${g.letterbox.left}, top ${g.letterbox.top}, padding 114`);
  } else {
    const target = p.resize === 'stretch' ? `${p.width}x${p.height}` : p.resizeWidth && p.resizeHeight ? `${p.resizeWidth}x${p.resizeHeight}` : `shorter side ${p.shortestEdge ?? Math.max(p.width, p.height)}${p.longestEdge ? `, longer side at most ${p.longestEdge}` : ''} (long side int(edge * long / short))`;
    if (p.resize !== 'none') steps.push(`resize to ${target} with ${how}`);
    if (p.resize === 'shorter-side-crop' || (p.resize === 'none' && p.width > 0)) steps.push(`centre crop ${p.width}x${p.height} at ((H - ${p.height}) // 2, (W - ${p.width}) // 2), zero padding if larger`);
    if (p.resize === 'letterbox') steps.push(`letterbox onto ${p.width}x${p.height}, padding 114`);
  }
  if (p.dtype === 'uint8') {
    steps.push(`uint8 ${p.channels.toUpperCase()} ${p.layout.toUpperCase()}, no rescale or normalisation`);
    return steps;
  }
  steps.push(`rescale: float32(x * ${p.scale})${p.offset ? ` - ${p.offset}` : ''}`);
  steps.push(`normalise: (x - [${p.mean.join(', ')}]) / [${p.std.join(', ')}] in float32`);
  if (p.extraStd) steps.push(`then / [${p.extraStd.join(', ')}] again (EfficientNet include_top)`);
  steps.push(`float32 ${p.channels.toUpperCase()} ${p.layout.toUpperCase()}`);
  return steps;
}
