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
  /** Normalised 32x32 grey thumbnail (int8, 1 KB) confirming near-duplicate candidates. */
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
  // 32x32 grey cell means (pHash and the near-duplicate signature) with exact area weights: a pixel straddling two
  // cells counts in both by the share of it each covers, so two decodes of one picture at different sizes (whose
  // cell boundaries fall at different pixel positions) give the same cells.
  const g32 = new Float64Array(32 * 32);
  const colCell = new Int32Array(width);
  const colWeight = new Float64Array(width);
  for (let x = 0; x < width; x++) [colCell[x], colWeight[x]] = cellSpan(x, width);
  const rowSums = new Float64Array(33);
  // BT.601 luma in 8.8 fixed point (77, 150, 29 / 256): the same as round(0.299 R + 0.587 G + 0.114 B) within 1.
  for (let y = 0, p = 0, i = 0; y < height; y++) {
    rowSums.fill(0);
    for (let x = 0; x < width; x++, p++, i += 3) {
      const l = (77 * data[i]! + 150 * data[i + 1]! + 29 * data[i + 2]! + 128) >> 8;
      grey[p] = l;
      const c = colCell[x]!;
      const w = colWeight[x]!;
      rowSums[c]! += l * w;
      rowSums[c + 1]! += l - l * w;
    }
    const [r, wr] = cellSpan(y, height);
    for (let c = 0; c < 32; c++) {
      g32[r * 32 + c]! += rowSums[c]! * wr;
      if (r < 31) g32[(r + 1) * 32 + c]! += rowSums[c]! * (1 - wr);
    }
  }
  const cellArea = n / 1024;
  if (width >= 32 && height >= 32) for (let k = 0; k < 1024; k++) g32[k]! /= cellArea;
  // Thumbnails under 32 px a side: each cell takes the pixel under its centre.
  else for (let k = 0; k < 1024; k++) g32[k] = grey[Math.floor((((k >> 5) + 0.5) * height) / 32) * width + Math.floor((((k & 31) + 0.5) * width) / 32)]!;
  // The distribution statistics from every other pixel of every other row on images large enough (a quarter of
  // the work; percentiles and entropy barely move).
  const step = width >= 64 && height >= 64 ? 2 : 1;
  let equal = 0;
  let sum = 0;
  let sampled = 0;
  for (let y = 0; y < height; y += step) {
    for (let x = 0; x < width; x += step) {
      const p = y * width + x;
      const i = p * 3;
      const r = data[i]!;
      const g = data[i + 1]!;
      const b = data[i + 2]!;
      const bright = Math.sqrt(0.241 * r * r + 0.691 * g * g + 0.068 * b * b) / 255;
      brightHist[Math.min(1023, Math.floor(bright * 1023))]!++;
      sum += bright;
      greyHist[grey[p]!]!++;
      if (Math.abs(r - g) <= 2 && Math.abs(g - b) <= 2) equal++;
      sampled++;
    }
  }
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
    signature: normaliseSignature(g32),
    pixelHash: createHash('sha1').update(`${w}x${h}x${source.channels}:`).update(data).digest('hex'),
  };
}

/**
 * The 32x32 cell pixel `pos` of a side of `size` pixels starts in, and the share of the pixel that lies in that cell
 * (the rest lies in the next cell; a share of 1 when the pixel is inside one cell).
 */
function cellSpan(pos: number, size: number): [number, number] {
  const start = (pos * 32) / size;
  const end = ((pos + 1) * 32) / size;
  const cell = Math.floor(start);
  if (end <= cell + 1 || cell >= 31) return [Math.min(cell, 31), 1];
  return [cell, (cell + 1 - start) / (end - start)];
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

/**
 * How far the thumbnail's brightness percentiles can be from CleanVision's full-resolution ones in the direction
 * averaging does NOT explain (the thumbnail reading the 99th percentile higher, or the 5th lower): resampling
 * overshoot and sampling. Measured on 1,000 synthetic 1920x1080 JPEGs: at most 0.019 (p99) and 0.0045 (p5).
 * In the other direction the gap is unbounded (small highlights average away: up to 0.15 measured), so every image
 * whose verdict could differ is decided at full resolution (needsExactBrightness).
 */
export const THUMBNAIL_BRIGHTNESS_MARGIN = 0.025;

/**
 * Whether the dark or light verdict of an image must be settled on its full-resolution pixels: the thumbnail's 99th
 * percentile below dark + margin (full resolution can only be higher, by any amount, or lower by the margin), or
 * its light score below light + margin.
 */
export function needsExactBrightness(p: Pick<ImageProperties, 'brightnessP99' | 'brightnessP5'>, dark: number, light: number): boolean {
  return p.brightnessP99 < dark + THUMBNAIL_BRIGHTNESS_MARGIN || 1 - p.brightnessP5 < light + THUMBNAIL_BRIGHTNESS_MARGIN;
}

const SQ241 = Int32Array.from({length: 256}, (_, v) => 241 * v * v);
const SQ691 = Int32Array.from({length: 256}, (_, v) => 691 * v * v);
const SQ68 = Int32Array.from({length: 256}, (_, v) => 68 * v * v);

/**
 * CleanVision's brightness percentiles, exactly: numpy's `np.percentile(b, q)` (linear interpolation between order
 * statistics) of b = sqrt(0.241 R^2 + 0.691 G^2 + 0.068 B^2) / 255 over EVERY pixel of an RGB buffer. Order
 * statistics are found by the integer key 241 R^2 + 691 G^2 + 68 B^2 (monotonic in b): one pass counts the keys in a
 * histogram of their top bits, a second collects only the keys of the bins holding the wanted ranks, and b is
 * recomputed from the pixel with numpy's float operations. Equal to CleanVision's values on sharp's decode (tested;
 * 1,000 synthetic 1920x1080 JPEGs: identical to numpy on Pillow's decode).
 *
 * `exactWanted(q, low, high)` is told the interval [low, high] of b the first pass pins a percentile to (about 3e-5
 * wide); when it answers false for every quantile (e.g. the interval lies wholly on one side of a threshold, so the
 * verdict is already certain) the second pass is skipped and the interval's midpoint is returned.
 */
export function exactBrightnessPercentiles(data: Uint8Array, quantiles: number[], exactWanted: (q: number, low: number, high: number) => boolean = () => true): number[] {
  const n = data.length / 3;
  const SHIFT = 10;
  const hist = new Uint32Array((65_025_000 >> SHIFT) + 1);
  for (let i = 0; i < data.length; i += 3) hist[SQ241[data[i]!]! + SQ691[data[i + 1]!]! + SQ68[data[i + 2]!]! >> SHIFT]!++;
  // The ranks needed: both neighbours of each percentile's fractional index.
  const ranks = [...new Set(quantiles.flatMap((q) => {
    const index = (q / 100) * (n - 1);
    return [Math.floor(index), Math.min(n - 1, Math.floor(index) + 1)];
  }))].sort((a, b) => a - b);
  const binOf = new Map<number, {bin: number; before: number}>();
  let acc = 0;
  let bin = 0;
  for (const rank of ranks) {
    while (acc + hist[bin]! <= rank) acc += hist[bin++]!;
    binOf.set(rank, {bin, before: acc});
  }
  const brightnessOfKey = (key: number): number => Math.sqrt(key / 1000) / 255;
  const pinned = quantiles.map((q) => {
    const index = (q / 100) * (n - 1);
    const low = binOf.get(Math.floor(index))!.bin << SHIFT;
    const high = ((binOf.get(Math.min(n - 1, Math.floor(index) + 1))!.bin + 1) << SHIFT) - 1;
    return [brightnessOfKey(low), brightnessOfKey(high)] as const;
  });
  if (!quantiles.some((q, k) => exactWanted(q, pinned[k]![0], pinned[k]![1]))) return pinned.map(([low, high]) => (low + high) / 2);
  // Within each wanted bin, a histogram of the low bits gives the exact key of the rank, and one pixel having it.
  const wanted = new Int32Array(hist.length).fill(-1);
  const bins = [...new Set([...binOf.values()].map((v) => v.bin))];
  bins.forEach((b, k) => (wanted[b] = k));
  const low = bins.map(() => new Uint32Array(1 << SHIFT));
  const pixelOfKey = bins.map(() => new Int32Array(1 << SHIFT).fill(-1));
  for (let p = 0, i = 0; p < n; p++, i += 3) {
    const key = SQ241[data[i]!]! + SQ691[data[i + 1]!]! + SQ68[data[i + 2]!]!;
    const k = wanted[key >> SHIFT]!;
    if (k < 0) continue;
    const l = key & ((1 << SHIFT) - 1);
    low[k]![l]!++;
    if (pixelOfKey[k]![l]! < 0) pixelOfKey[k]![l] = p;
  }
  const valueAt = (rank: number): number => {
    const {bin: b, before} = binOf.get(rank)!;
    const k = wanted[b]!;
    let seen = before;
    let l = 0;
    while (seen + low[k]![l]! <= rank) seen += low[k]![l++]!;
    const i = pixelOfKey[k]![l]! * 3;
    const r = data[i]!;
    const g = data[i + 1]!;
    const bl = data[i + 2]!;
    return Math.sqrt(0.241 * (r * r) + 0.691 * (g * g) + 0.068 * (bl * bl)) / 255;
  };
  return quantiles.map((q) => {
    const index = (q / 100) * (n - 1);
    const lo = Math.floor(index);
    const t = index - lo;
    const a = valueAt(lo);
    const b = valueAt(Math.min(n - 1, lo + 1));
    // numpy's lerp: a + (b - a) * t, computed from the far end when t >= 0.5.
    return t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t;
  });
}
