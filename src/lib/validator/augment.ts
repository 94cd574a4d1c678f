/**
 * The StreetVision validators' challenge augmentations (subnet v0.2.4, as documented in STREETVISION.md), applied to
 * a decoded image. Every random choice comes from the caller's SeededRandom and is returned as parameters, so a
 * challenge can be recorded and replayed.
 *
 *   level 0: centre square crop (side min(w, h)), resize to 224x224
 *   level 1: rotation uniform in [-20, 20] deg (bilinear, black corners, same canvas) on the full image, then a
 *            square random-resized-crop of 20-100% of the area, resized to 224x224 (flips: off unless enabled -
 *            the subnet's flips never fire because of a bug)
 *   level 2: level 1, then saturation (chroma x0.4), contrast (x0.85), "JPEG" (downscale x2 and back), each p=1/2
 *   level 3: level 1, then saturation {skip, 0.4, 0.3}, contrast {skip, 0.85, 0.725}, downscale {skip, 2, 3},
 *            Gaussian noise in YCbCr (variance {skip, 0.001, 0.002}), Gaussian blur (kernel {skip, 7, 9},
 *            sigma = kernel / 6), each choice uniform
 */
import sharp from 'sharp';
import type {SeededRandom} from '../util/random.js';

export const CHALLENGE_SIZE = 224;

export interface AugmentationParams {
  level: 0 | 1 | 2 | 3;
  rotationDeg?: number;
  crop: {left: number; top: number; side: number};
  hflip?: boolean;
  vflip?: boolean;
  saturation?: number;
  contrast?: number;
  downscale?: number;
  noiseVariance?: number;
  blurKernel?: number;
}

export interface AugmentOptions {
  /** Apply the subnet's (intended) random flips; off by default because they never fire in the subnet. */
  flips?: boolean;
}

export interface RawRgb {
  data: Buffer;
  width: number;
  height: number;
}

/** torchvision RandomResizedCrop(scale=(0.2, 1), ratio=(1, 1)): 10 tries, then the centre square. */
function randomSquareCrop(width: number, height: number, rng: SeededRandom): {left: number; top: number; side: number} {
  const area = width * height;
  for (let attempt = 0; attempt < 10; attempt++) {
    const side = Math.round(Math.sqrt(area * rng.uniform(0.2, 1)));
    if (side > 0 && side <= width && side <= height) {
      return {left: rng.intBetween(0, width - side), top: rng.intBetween(0, height - side), side};
    }
  }
  const side = Math.min(width, height);
  return {left: Math.floor((width - side) / 2), top: Math.floor((height - side) / 2), side};
}

/** Rotates about the centre on the same canvas (torchvision RandomRotation, expand=False): black corners. */
async function rotateSameCanvas(image: RawRgb, degrees: number): Promise<RawRgb> {
  const rotated = await sharp(image.data, {raw: {width: image.width, height: image.height, channels: 3}})
    .rotate(degrees, {background: {r: 0, g: 0, b: 0}})
    .raw()
    .toBuffer({resolveWithObject: true});
  const left = Math.floor((rotated.info.width - image.width) / 2);
  const top = Math.floor((rotated.info.height - image.height) / 2);
  const data = await sharp(rotated.data, {raw: {width: rotated.info.width, height: rotated.info.height, channels: rotated.info.channels as 3}})
    .extract({left, top, width: image.width, height: image.height})
    .removeAlpha()
    .raw()
    .toBuffer();
  return {data, width: image.width, height: image.height};
}

async function cropResize(image: RawRgb, crop: {left: number; top: number; side: number}, flips: {h?: boolean; v?: boolean}): Promise<Buffer> {
  let p = sharp(image.data, {raw: {width: image.width, height: image.height, channels: 3}})
    .extract({left: crop.left, top: crop.top, width: crop.side, height: crop.side})
    .resize(CHALLENGE_SIZE, CHALLENGE_SIZE, {kernel: 'linear', fit: 'fill'});
  if (flips.h) p = p.flop();
  if (flips.v) p = p.flip();
  return p.removeAlpha().raw().toBuffer();
}

/** Scales chroma (Cb, Cr around 128) by `factor`, in BT.601 full-range YCbCr. */
export function scaleSaturation(rgb: Buffer, factor: number): void {
  for (let i = 0; i < rgb.length; i += 3) {
    const r = rgb[i]!;
    const g = rgb[i + 1]!;
    const b = rgb[i + 2]!;
    const y = 0.299 * r + 0.587 * g + 0.114 * b;
    const cb = (-0.168736 * r - 0.331264 * g + 0.5 * b) * factor;
    const cr = (0.5 * r - 0.418688 * g - 0.081312 * b) * factor;
    rgb[i] = clamp255(y + 1.402 * cr);
    rgb[i + 1] = clamp255(y - 0.344136 * cb - 0.714136 * cr);
    rgb[i + 2] = clamp255(y + 1.772 * cb);
  }
}

/** Multiplies every value by `factor` (the subnet's contrast change). */
export function multiplyContrast(rgb: Buffer, factor: number): void {
  for (let i = 0; i < rgb.length; i++) rgb[i] = clamp255(rgb[i]! * factor);
}

/** Gaussian noise of the given variance (values in [0, 1]) added to Y, Cb and Cr. */
export function addYCbCrNoise(rgb: Buffer, variance: number, rng: SeededRandom): void {
  const sigma = Math.sqrt(variance) * 255;
  for (let i = 0; i < rgb.length; i += 3) {
    const r = rgb[i]!;
    const g = rgb[i + 1]!;
    const b = rgb[i + 2]!;
    const y = 0.299 * r + 0.587 * g + 0.114 * b + rng.normal(0, sigma);
    const cb = -0.168736 * r - 0.331264 * g + 0.5 * b + rng.normal(0, sigma);
    const cr = 0.5 * r - 0.418688 * g - 0.081312 * b + rng.normal(0, sigma);
    rgb[i] = clamp255(y + 1.402 * cr);
    rgb[i + 1] = clamp255(y - 0.344136 * cb - 0.714136 * cr);
    rgb[i + 2] = clamp255(y + 1.772 * cb);
  }
}

function clamp255(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

async function downscaleUpscale(rgb: Buffer, factor: number): Promise<Buffer> {
  const small = Math.max(1, Math.round(CHALLENGE_SIZE / factor));
  const down = await sharp(rgb, {raw: {width: CHALLENGE_SIZE, height: CHALLENGE_SIZE, channels: 3}}).resize(small, small, {kernel: 'linear', fit: 'fill'}).raw().toBuffer();
  return sharp(down, {raw: {width: small, height: small, channels: 3}}).resize(CHALLENGE_SIZE, CHALLENGE_SIZE, {kernel: 'linear', fit: 'fill'}).raw().toBuffer();
}

/** Separable Gaussian blur with an explicit odd kernel size and sigma = kernel / 6 (border: reflect). */
export function gaussianBlur(rgb: Buffer, width: number, height: number, kernel: number): Buffer {
  const sigma = kernel / 6;
  const half = (kernel - 1) / 2;
  const weights = Array.from({length: kernel}, (_, k) => Math.exp(-((k - half) ** 2) / (2 * sigma * sigma)));
  const total = weights.reduce((a, b) => a + b, 0);
  const w = weights.map((v) => v / total);
  const reflect = (i: number, n: number): number => (i < 0 ? -i - 1 : i >= n ? 2 * n - i - 1 : i);
  const tmp = new Float32Array(rgb.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let k = 0; k < kernel; k++) s += w[k]! * rgb[(y * width + reflect(x + k - half, width)) * 3 + c]!;
        tmp[(y * width + x) * 3 + c] = s;
      }
    }
  }
  const out = Buffer.alloc(rgb.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let k = 0; k < kernel; k++) s += w[k]! * tmp[(reflect(y + k - half, height) * width + x) * 3 + c]!;
        out[(y * width + x) * 3 + c] = clamp255(s);
      }
    }
  }
  return out;
}

/** Applies the augmentation of `level` to a decoded RGB image; returns 224x224 RGB and the parameters drawn. */
export async function applyChallengeAugmentation(image: RawRgb, level: 0 | 1 | 2 | 3, rng: SeededRandom, options: AugmentOptions = {}): Promise<{rgb: Buffer; params: AugmentationParams}> {
  if (level === 0) {
    const side = Math.min(image.width, image.height);
    const crop = {left: Math.floor((image.width - side) / 2), top: Math.floor((image.height - side) / 2), side};
    return {rgb: await cropResize(image, crop, {}), params: {level, crop}};
  }
  const rotationDeg = Math.round(rng.uniform(-20, 20) * 1000) / 1000;
  const rotated = await rotateSameCanvas(image, rotationDeg);
  const crop = randomSquareCrop(rotated.width, rotated.height, rng);
  const hflip = options.flips ? rng.bool(0.5) : undefined;
  const vflip = options.flips ? rng.bool(0.5) : undefined;
  let rgb = await cropResize(rotated, crop, {h: hflip, v: vflip});
  const params: AugmentationParams = {level, rotationDeg, crop, ...(options.flips ? {hflip, vflip} : {})};
  if (level === 2) {
    if (rng.bool(0.5)) params.saturation = 0.4;
    if (rng.bool(0.5)) params.contrast = 0.85;
    if (rng.bool(0.5)) params.downscale = 2;
  } else if (level === 3) {
    const saturation = rng.pick([undefined, 0.4, 0.3]);
    const contrast = rng.pick([undefined, 0.85, 0.725]);
    const downscale = rng.pick([undefined, 2, 3]);
    const noiseVariance = rng.pick([undefined, 0.001, 0.002]);
    const blurKernel = rng.pick([undefined, 7, 9]);
    Object.assign(params, {
      ...(saturation ? {saturation} : {}),
      ...(contrast ? {contrast} : {}),
      ...(downscale ? {downscale} : {}),
      ...(noiseVariance ? {noiseVariance} : {}),
      ...(blurKernel ? {blurKernel} : {}),
    });
  }
  if (params.saturation) scaleSaturation(rgb, params.saturation);
  if (params.contrast) multiplyContrast(rgb, params.contrast);
  if (params.downscale) rgb = await downscaleUpscale(rgb, params.downscale);
  if (params.noiseVariance) addYCbCrNoise(rgb, params.noiseVariance, rng);
  if (params.blurKernel) rgb = gaussianBlur(rgb, CHALLENGE_SIZE, CHALLENGE_SIZE, params.blurKernel);
  return {rgb, params};
}

/** The challenge as sent to a miner: 224x224 RGB JPEG at quality 75. */
export function encodeChallengeJpeg(rgb: Buffer): Promise<Buffer> {
  return sharp(rgb, {raw: {width: CHALLENGE_SIZE, height: CHALLENGE_SIZE, channels: 3}}).jpeg({quality: 75}).toBuffer();
}
