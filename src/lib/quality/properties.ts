/**
 * Per-image properties for the quality checks, all from ONE decode at reduced size (the raw buffer, never sharp's
 * stats(), which describes the full-size input). Formulas follow CleanVision where users compare numbers
 * (brightness percentiles, grey-histogram entropy, aspect ratio), and depart from it for blur (see blurVariance).
 */
import {createHash} from 'node:crypto';
import type {DecodedImage} from '../image/decode.js';
import {hashFromGrey32, normaliseSignature} from './hash.js';
import {defaultPixelKernels, KEY_SHIFT, type PixelKernels} from './pixel-kernels.js';

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
  /**
   * Exact-duplicate candidate key: the first 64 bits (16 hex digits) of the SHA-1 of the original shape and the
   * reduced RGB pixels. An accidental collision among n images has probability about n^2 / 2^65 (3e-8 at a million
   * images); candidates are confirmed on full-resolution pixels wherever the source can be read again.
   */
  pixelKey: string;
}

/**
 * Per-caller state for computeProperties, reused from one image to the next (allocating ~40 KB of typed arrays per
 * image showed up as GC time): the pixel kernels (WebAssembly by default; `new PropertiesScratch(new
 * JsPixelKernels())` for the JavaScript ones, with identical results) and the cell layout of the last width.
 * computeProperties is synchronous, so one instance per validate run is enough.
 */
export class PropertiesScratch {
  readonly rowSums = new Float64Array(33);
  colCell = new Int32Array(0);
  colWeight = new Float64Array(0);
  private cellsFor = -1;

  constructor(readonly kernels: PixelKernels = defaultPixelKernels()) {}

  /** Each column's 32x32 cell and share (cellSpan), computed once per width. */
  cellsOfColumns(width: number): void {
    if (this.cellsFor === width) return;
    this.colCell = new Int32Array(width);
    this.colWeight = new Float64Array(width);
    for (let x = 0; x < width; x++) [this.colCell[x], this.colWeight[x]] = cellSpan(x, width);
    this.cellsFor = width;
  }
}

/**
 * Every property from the decoded thumbnail: the pixel kernels (pixel-kernels.ts) give the grey values, the
 * distribution statistics on the sampled pixels and the Laplacian sums; the 32x32 cell sums (pHash and signature) are
 * then added row by row from the grey values. The exact-duplicate key is native SHA-1 (cheaper than a hash in
 * JavaScript, measured).
 */
export function computeProperties(image: DecodedImage, scratch: PropertiesScratch = new PropertiesScratch()): ImageProperties {
  const {data, width, height, source} = image;
  const n = width * height;
  // The distribution statistics from every other pixel of every other row on images large enough (a quarter of
  // the work; percentiles and entropy barely move).
  const step = width >= 64 && height >= 64 ? 2 : 1;
  const {grey, brightHist, greyHist, brightnessSum, equal, sampled, lapSum, lapSq, cellRows} = scratch.kernels.thumbnail(data, width, height, step);
  const {rowSums} = scratch;
  // 32x32 grey cell means (pHash and the near-duplicate signature) with exact area weights: a pixel straddling two
  // cells counts in both by the share of it each covers, so two decodes of one picture at different sizes (whose
  // cell boundaries fall at different pixel positions) give the same cells.
  const g32 = new Float64Array(32 * 32);
  scratch.cellsOfColumns(width);
  const {colCell, colWeight} = scratch;
  for (let y = 0, p = 0; y < height; y++) {
    rowSums.fill(0);
    if (cellRows) {
      // Width a multiple of 32 (256-px thumbnails): every pixel lies in one cell (weight 1, and the next cell would
      // get l - l * 1 = 0), so the sums are the integer sums of the kernels.
      for (let c = 0; c < 32; c++) rowSums[c] = cellRows[y * 32 + c]!;
    } else {
      for (let x = 0; x < width; x++, p++) {
        const l = grey[p]!;
        const c = colCell[x]!;
        const w = colWeight[x]!;
        rowSums[c]! += l * w;
        rowSums[c + 1]! += l - l * w;
      }
    }
    const [cr, wr] = cellSpan(y, height);
    for (let c = 0; c < 32; c++) {
      g32[cr * 32 + c]! += rowSums[c]! * wr;
      if (cr < 31) g32[(cr + 1) * 32 + c]! += rowSums[c]! * (1 - wr);
    }
  }
  const cellArea = n / 1024;
  if (width >= 32 && height >= 32) for (let k = 0; k < 1024; k++) g32[k]! /= cellArea;
  // Thumbnails under 32 px a side: each cell takes the pixel under its centre.
  else for (let k = 0; k < 1024; k++) g32[k] = grey[Math.floor((((k >> 5) + 0.5) * height) / 32) * width + Math.floor((((k & 31) + 0.5) * width) / 32)]!;
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
  // Blur: the variance of the 4-neighbour Laplacian of the grey thumbnail, border excluded (CleanVision's
  // edge-filter score is dominated by the unfiltered one-pixel border; natix does not copy that). Calibrated on
  // natix's synthetic scenes: sharp images >= ~60, a Gaussian blur of sigma = 1% of the width <= ~8 (default
  // threshold 25).
  const lapCount = Math.max(0, width - 2) * Math.max(0, height - 2);
  const lapMean = lapCount ? lapSum / lapCount : 0;
  const w = source.width;
  const h = source.height;
  return {
    width: w,
    height: h,
    format: source.format,
    channels: source.channels,
    brightnessP99: percentile(0.99),
    brightnessP5: percentile(0.05),
    meanBrightness: brightnessSum / sampled,
    entropy,
    blurVariance: lapCount ? lapSq / lapCount - lapMean * lapMean : 0,
    grayscale: source.channels <= 2 || equal >= 0.995 * sampled,
    aspectRatio: Math.min(w / h, h / w),
    sizeScore: Math.sqrt(w * h),
    phash: hashFromGrey32(g32),
    signature: normaliseSignature(g32),
    pixelKey: createHash('sha1').update(`${w}x${h}x${source.channels}:`).update(data).digest('hex').slice(0, 16),
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
  const uncertain = uncertainVerdicts(p, dark, light);
  return uncertain.dark || uncertain.light;
}

/** Which of the two verdicts the thumbnail's percentiles cannot settle (see needsExactBrightness). */
function uncertainVerdicts(p: Pick<ImageProperties, 'brightnessP99' | 'brightnessP5'>, dark: number, light: number): {dark: boolean; light: boolean} {
  return {dark: p.brightnessP99 < dark + THUMBNAIL_BRIGHTNESS_MARGIN, light: 1 - p.brightnessP5 < light + THUMBNAIL_BRIGHTNESS_MARGIN};
}

/**
 * The dark / light percentiles at full resolution, for an image needsExactBrightness sent here (`thumbnail`: its
 * thumbnail values, `full`: its full-resolution RGB pixels). Most such images are not dark after all (small
 * highlights the thumbnail averaged away): counting pixels proves it in one pass (settleBrightnessByCount), and the
 * percentile then returned is a bound that decides the verdict. The rest get the exact percentiles, exact wherever a
 * finding will quote them (or the threshold falls inside the pinned interval).
 */
export function fullResolutionBrightness(full: Uint8Array, thumbnail: Pick<ImageProperties, 'brightnessP99' | 'brightnessP5'>, dark: number, light: number, kernels: PixelKernels = defaultPixelKernels()): {brightnessP5: number; brightnessP99: number} {
  const uncertain = uncertainVerdicts(thumbnail, dark, light);
  const settled = settleBrightnessByCount(full, dark, light, uncertain, kernels);
  if (settled) {
    return {brightnessP99: uncertain.dark ? settled.p99Above : thumbnail.brightnessP99, brightnessP5: uncertain.light ? settled.p5Below : thumbnail.brightnessP5};
  }
  const exactWanted = (q: number, low: number, high: number): boolean => (q === 99 ? low < dark : 1 - high < light);
  const [brightnessP5, brightnessP99] = exactBrightnessPercentiles(full, [5, 99], exactWanted, kernels) as [number, number];
  return {brightnessP5, brightnessP99};
}

/**
 * The cheap full-resolution answer for most images needsExactBrightness sends here: settles "not dark" (the 99th
 * percentile is above `dark`) and "not light" (the 5th percentile is below 1 - `light`) by COUNTING pixels, without
 * the percentiles. numpy's percentile at q interpolates between the order statistics of ranks floor(q (n-1)) and the
 * next, so p99 > dark when at least n - floor(0.99 (n-1)) pixels are brighter than dark (both order statistics are),
 * and p5 < 1 - light when at least floor(0.05 (n-1)) + 2 pixels are darker than 1 - light. Keys are compared with a
 * margin (1e-9 in brightness) that float rounding in CleanVision's formula cannot cross. One pass at most, stopping
 * as soon as every uncertain side is settled (the pixel kernels' countKeys: WebAssembly SIMD, 4 pixels per step).
 *
 * Returns bounds that decide the verdicts (p99 >= the first, p5 <= the second), or undefined when a side could not
 * be settled this way: the image is dark (or light) or within a hair of it, and the exact percentiles are needed.
 */
export function settleBrightnessByCount(data: Uint8Array, dark: number, light: number, uncertain: {dark: boolean; light: boolean}, kernels: PixelKernels = defaultPixelKernels()): {p99Above: number; p5Below: number} | undefined {
  const n = data.length / 3;
  if (n === 0) return undefined;
  const keyAbove = Math.ceil(1000 * (255 * (dark + 1e-9)) ** 2) + 1; // every key >= this: brightness > dark
  const keyBelow = Math.floor(1000 * (255 * (1 - light - 1e-9)) ** 2) - 1; // every key <= this: brightness < 1 - light
  const brightNeeded = uncertain.dark ? n - Math.floor(0.99 * (n - 1)) : 0;
  const darkNeeded = uncertain.light ? Math.min(n, Math.floor(0.05 * (n - 1)) + 2) : 0;
  const {bright, darker} = kernels.countKeys(data, keyAbove, keyBelow, brightNeeded, darkNeeded);
  if (bright < brightNeeded || darker < darkNeeded) return undefined;
  return {p99Above: Math.sqrt(keyAbove / 1000) / 255, p5Below: Math.sqrt(keyBelow / 1000) / 255};
}

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
export function exactBrightnessPercentiles(data: Uint8Array, quantiles: number[], exactWanted: (q: number, low: number, high: number) => boolean = () => true, kernels: PixelKernels = defaultPixelKernels()): number[] {
  const n = data.length / 3;
  const hist = kernels.keyHistogram(data);
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
    const low = binOf.get(Math.floor(index))!.bin << KEY_SHIFT;
    const high = ((binOf.get(Math.min(n - 1, Math.floor(index) + 1))!.bin + 1) << KEY_SHIFT) - 1;
    return [brightnessOfKey(low), brightnessOfKey(high)] as const;
  });
  if (!quantiles.some((q, k) => exactWanted(q, pinned[k]![0], pinned[k]![1]))) return pinned.map(([low, high]) => (low + high) / 2);
  // Within each wanted bin, a histogram of the low bits gives the exact key of the rank, and one pixel having it.
  const wanted = new Map<number, number>();
  const bins = [...new Set([...binOf.values()].map((v) => v.bin))];
  bins.forEach((b, k) => wanted.set(b, k));
  const collected = kernels.keyBins(data, bins);
  const valueAt = (rank: number): number => {
    const {bin: b, before} = binOf.get(rank)!;
    const {low, first} = collected[wanted.get(b)!]!;
    let seen = before;
    let l = 0;
    while (seen + low[l]! <= rank) seen += low[l++]!;
    const i = first[l]! * 3;
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
