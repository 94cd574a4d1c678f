/**
 * Per-image properties for the quality checks, all from ONE decode at reduced size (the raw buffer, never sharp's
 * stats(), which describes the full-size input). Formulas follow CleanVision where users compare numbers
 * (brightness percentiles, grey-histogram entropy, aspect ratio), and depart from it for blur (see blurVariance).
 */
import {createHash} from 'node:crypto';
import type {DecodedImage} from '../image/decode.js';
import {hashFromGrey32, normaliseSignature} from './hash.js';

export interface ImageProperties {
  width: number;
  height: number;
  format: string;
  channels: number;
  /** 99th percentile of CleanVision's brightness sqrt(0.241 R^2 + 0.691 G^2 + 0.068 B^2) / 255 (dark score). */
  brightnessP99: number;
  /** 5th percentile of the same brightness (light score = 1 - this). */
  brightnessP5: number;
  meanBrightness: number;
  /** Shannon entropy of the grey histogram, bits (0..8). */
  entropy: number;
  /** Variance of the 4-neighbour Laplacian on the grey thumbnail (<= 256 px), one-pixel border excluded. */
  blurVariance: number;
  /** Single-channel file, or an RGB image whose channels are equal (within 2 levels) on >= 99.5% of pixels. */
  grayscale: boolean;
  aspectRatio: number;
  /** sqrt(width * height) of the original. */
  sizeScore: number;
  phash: bigint;
  /** Normalised 16x16 colour thumbnail confirming near-duplicate candidates. */
  signature: Int8Array;
  /** SHA-1 of the reduced pixels + original shape: candidates for exact duplicates. */
  pixelHash: string;
}

export function computeProperties(image: DecodedImage): ImageProperties {
  const {data, width, height, source} = image;
  const n = width * height;
  const brightHist = new Uint32Array(1024);
  const greyHist = new Uint32Array(256);
  const grey = new Uint8Array(n);
  // One pass over the pixels feeds every property: 32x32 grey cells (pHash), 16x16 RGB cells (signature).
  const g32 = new Float64Array(32 * 32);
  const g32n = new Float64Array(32 * 32);
  const c16 = new Float64Array(16 * 16 * 3);
  const c16n = new Float64Array(16 * 16);
  const col32 = Int32Array.from({length: width}, (_, x) => Math.min(31, Math.floor((x * 32) / width)));
  const col16 = Int32Array.from({length: width}, (_, x) => Math.min(15, Math.floor((x * 16) / width)));
  // Grey at full analysis resolution (the blur check needs every pixel)...
  // BT.601 luma in 8.8 fixed point (77, 150, 29 / 256): the same as round(0.299 R + 0.587 G + 0.114 B) within 1.
  for (let i = 0, p = 0; p < n; i += 3, p++) grey[p] = (77 * data[i]! + 150 * data[i + 1]! + 29 * data[i + 2]! + 128) >> 8;
  // ...the distribution statistics from every other pixel of every other row on images large enough (a quarter
  // of the work; percentiles, entropy and the 32x32 / 16x16 cell means barely move).
  const step = width >= 64 && height >= 64 ? 2 : 1;
  let equal = 0;
  let sum = 0;
  let sampled = 0;
  for (let y = 0; y < height; y += step) {
    const row32 = Math.min(31, Math.floor((y * 32) / height)) * 32;
    const row16 = Math.min(15, Math.floor((y * 16) / height)) * 16;
    for (let x = 0; x < width; x += step) {
      const p = y * width + x;
      const i = p * 3;
      const r = data[i]!;
      const g = data[i + 1]!;
      const b = data[i + 2]!;
      const bright = Math.sqrt(0.241 * r * r + 0.691 * g * g + 0.068 * b * b) / 255;
      brightHist[Math.min(1023, Math.floor(bright * 1023))]!++;
      sum += bright;
      const l = grey[p]!;
      greyHist[l]!++;
      if (Math.abs(r - g) <= 2 && Math.abs(g - b) <= 2) equal++;
      const k32 = row32 + col32[x]!;
      g32[k32]! += 0.299 * r + 0.587 * g + 0.114 * b;
      g32n[k32]!++;
      const k16 = row16 + col16[x]!;
      c16[k16 * 3]! += r;
      c16[k16 * 3 + 1]! += g;
      c16[k16 * 3 + 2]! += b;
      c16n[k16]!++;
      sampled++;
    }
  }
  for (let k = 0; k < g32.length; k++) g32[k] = g32n[k] ? g32[k]! / g32n[k]! : 0;
  const percentile = (q: number): number => {
    const target = q * sampled;
    let acc = 0;
    for (let k = 0; k < 1024; k++) {
      acc += brightHist[k]!;
      if (acc >= target) return k / 1023;
    }
    return 1;
  };
  let entropy = 0;
  for (const c of greyHist) if (c > 0) entropy -= (c / sampled) * Math.log2(c / sampled);
  const w = source.width;
  const h = source.height;
  return {
    width: w,
    height: h,
    format: source.format,
    channels: source.channels,
    brightnessP99: percentile(0.99),
    brightnessP5: percentile(0.05),
    meanBrightness: sum / sampled,
    entropy,
    blurVariance: laplacianVariance(grey, width, height),
    grayscale: source.channels <= 2 || equal >= 0.995 * sampled,
    aspectRatio: Math.min(w / h, h / w),
    sizeScore: Math.sqrt(w * h),
    phash: hashFromGrey32(g32),
    signature: normaliseSignature(c16, c16n),
    pixelHash: createHash('sha1').update(`${w}x${h}x${source.channels}:`).update(data).digest('hex'),
  };
}

/**
 * Blur: variance of the Laplacian on the grey thumbnail, border excluded (CleanVision's edge-filter score is
 * dominated by the unfiltered one-pixel border; natix does not copy that). Calibrated on natix's synthetic scenes:
 * sharp images >= ~60, a Gaussian blur of sigma = 1% of the width <= ~8 (default threshold 25).
 */
export function laplacianVariance(grey: Uint8Array, width: number, height: number): number {
  let sum = 0;
  let sq = 0;
  let count = 0;
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) {
      const i = y * width + x;
      const v = 4 * grey[i]! - grey[i - 1]! - grey[i + 1]! - grey[i - width]! - grey[i + width]!;
      sum += v;
      sq += v * v;
      count++;
    }
  }
  if (count === 0) return 0;
  const mean = sum / count;
  return sq / count - mean * mean;
}
