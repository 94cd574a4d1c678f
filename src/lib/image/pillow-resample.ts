/**
 * Pillow's `Image.resize` for 8-bit RGB, reproduced bit for bit (written from the description of Pillow's
 * libImaging/Resample.c and Geometry.c; no code copied), so a model trained through transformers' slow image
 * processors sees in natix exactly the pixels it saw in Python.
 *
 * What Pillow does, and therefore what this does:
 * - Antialiased filters (box, bilinear, hamming, bicubic a=-0.5, lanczos a=3) are separable: the filter support is
 *   scaled by the reduction factor (never below 1), the taps of each output pixel are normalised to sum 1, then
 *   converted to fixed point with 22 fractional bits (rounded half away from zero). The horizontal pass runs first
 *   (only over the source rows the vertical pass will read), its result is clipped to 8 bits, then the vertical pass.
 *   A pass whose size does not change is skipped; same size in both directions is a copy.
 * - NEAREST is a different code path (an affine scale): the source position of output pixel i is found by
 *   accumulating the step `in / out` from `step / 2` (floating point, as Pillow does) and truncating.
 * - No `reducing_gap` pre-reduction (transformers passes reducing_gap=None).
 * Pillow >= 11.x swaps the pass order for images more than 100 times taller than wide; that case is not reproduced.
 */

import {createWasmPasses, type WasmPasses} from './resample-wasm.js';
import type {Taps} from './resample-taps.js';

export type PillowFilter = 'nearest' | 'box' | 'bilinear' | 'hamming' | 'bicubic' | 'lanczos';

/** PIL's resample codes (what `resample` means in a Hugging Face preprocessor_config.json). */
export const PIL_RESAMPLE_CODES: Readonly<Record<number, PillowFilter>> = {0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming'};

/** An interleaved 8-bit RGB image, row-major, `width * height * 3` bytes. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const ONE = 1 << PRECISION_BITS;
/** Pillow's hamming constants are C floats (0.54f, 0.46f) promoted to double. */
const HAMMING_A = Math.fround(0.54);
const HAMMING_B = Math.fround(0.46);

const sinc = (x: number): number => {
  if (x === 0) return 1;
  const t = x * Math.PI;
  return Math.sin(t) / t;
};

const FILTERS: Record<Exclude<PillowFilter, 'nearest'>, {support: number; f: (x: number) => number}> = {
  box: {support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0)},
  bilinear: {
    support: 1,
    f: (x) => {
      const t = x < 0 ? -x : x;
      return t < 1 ? 1 - t : 0;
    },
  },
  hamming: {
    support: 1,
    f: (x) => {
      const t = x < 0 ? -x : x;
      if (t === 0) return 1;
      if (t >= 1) return 0;
      const u = t * Math.PI;
      return (Math.sin(u) / u) * (HAMMING_A + HAMMING_B * Math.cos(u));
    },
  },
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      const t = x < 0 ? -x : x;
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  lanczos: {support: 3, f: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0)},
};

/** Fixed-point taps for one axis: output pixel i reads `count[i]` source pixels from `first[i]` with `weights[i * ksize + k]`. */
export type {Taps} from './resample-taps.js';

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the whole axis (box from 0 to inSize). */
export function pillowTaps(inSize: number, outSize: number, filter: Exclude<PillowFilter, 'nearest'>): Taps {
  const {support: baseSupport, f} = FILTERS[filter];
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = baseSupport * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const inv = 1 / filterscale;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    let lo = Math.trunc(center - support + 0.5);
    if (lo < 0) lo = 0;
    let hi = Math.trunc(center + support + 0.5);
    if (hi > inSize) hi = inSize;
    const n = hi - lo;
    let total = 0;
    for (let x = 0; x < n; x++) {
      const w = f((x + lo - center + 0.5) * inv);
      k[x] = w;
      total += w;
    }
    for (let x = 0; x < n; x++) {
      const w = total !== 0 ? k[x]! / total : k[x]!;
      weights[i * ksize + x] = Math.trunc(w < 0 ? -0.5 + w * ONE : 0.5 + w * ONE);
    }
    first[i] = lo;
    count[i] = n;
  }
  return {ksize, first, count, weights};
}

const clip8 = (v: number): number => {
  const s = v >> PRECISION_BITS;
  return s < 0 ? 0 : s > 255 ? 255 : s;
};

/** Horizontal pass over source rows [rowStart, rowEnd): RGB rows of `width` -> rows of `taps.first.length`. */
function horizontal(src: Uint8Array, width: number, rowStart: number, rowEnd: number, taps: Taps): Uint8Array {
  const outW = taps.first.length;
  const {ksize, first, count, weights} = taps;
  const out = new Uint8Array(outW * (rowEnd - rowStart) * 3);
  let o = 0;
  for (let y = rowStart; y < rowEnd; y++) {
    const rowBase = y * width * 3;
    for (let i = 0; i < outW; i++) {
      const n = count[i]!;
      const kb = i * ksize;
      let p = rowBase + first[i]! * 3;
      let r = HALF;
      let g = HALF;
      let b = HALF;
      for (let x = 0; x < n; x++) {
        const w = weights[kb + x]!;
        r = (r + src[p]! * w) | 0;
        g = (g + src[p + 1]! * w) | 0;
        b = (b + src[p + 2]! * w) | 0;
        p += 3;
      }
      out[o] = clip8(r);
      out[o + 1] = clip8(g);
      out[o + 2] = clip8(b);
      o += 3;
    }
  }
  return out;
}

/** Vertical pass: RGB rows of `width` (row 0 of `src` is source row `rowOffset`) -> `taps.first.length` rows. */
function vertical(src: Uint8Array, width: number, rowOffset: number, taps: Taps): Uint8Array {
  const outH = taps.first.length;
  const {ksize, first, count, weights} = taps;
  const stride = width * 3;
  const out = new Uint8Array(stride * outH);
  const acc = new Int32Array(stride);
  for (let j = 0; j < outH; j++) {
    acc.fill(HALF);
    const n = count[j]!;
    const kb = j * ksize;
    const start = (first[j]! - rowOffset) * stride;
    for (let y = 0; y < n; y++) {
      const w = weights[kb + y]!;
      const base = start + y * stride;
      for (let i = 0; i < stride; i++) acc[i] = (acc[i]! + src[base + i]! * w) | 0;
    }
    const ob = j * stride;
    for (let i = 0; i < stride; i++) out[ob + i] = clip8(acc[i]!);
  }
  return out;
}

/**
 * Pillow's NEAREST resize (the affine-scale path): source positions accumulated from `step / 2` in floating point
 * and truncated; a position that falls outside the source (only through rounding) leaves a black pixel, as in Pillow.
 */
function nearest(src: RgbImage, outW: number, outH: number): RgbImage {
  const xs = new Int32Array(outW);
  const dx = src.width / outW;
  let xo = dx * 0.5;
  for (let x = 0; x < outW; x++) {
    const xi = Math.trunc(xo);
    xs[x] = xi < src.width ? xi : -1;
    xo += dx;
  }
  const out = new Uint8Array(outW * outH * 3);
  const dy = src.height / outH;
  let yo = dy * 0.5;
  for (let y = 0; y < outH; y++) {
    const sy = Math.trunc(yo);
    yo += dy;
    if (sy >= src.height) continue;
    const rowIn = sy * src.width * 3;
    let o = y * outW * 3;
    for (let x = 0; x < outW; x++, o += 3) {
      const sx = xs[x]!;
      if (sx < 0) continue;
      const p = rowIn + sx * 3;
      out[o] = src.data[p]!;
      out[o + 1] = src.data[p + 1]!;
      out[o + 2] = src.data[p + 2]!;
    }
  }
  return {data: out, width: outW, height: outH};
}

/**
 * The WebAssembly SIMD passes (resample-wasm.ts), compiled on first use. A process-wide memo of a pure function of
 * nothing (the module and its scratch memory); calls are synchronous, so sharing it is safe.
 */
let wasm: WasmPasses | null | undefined;
function wasmPasses(): WasmPasses | undefined {
  if (wasm === undefined) {
    try {
      wasm = createWasmPasses() ?? null;
    } catch {
      wasm = null;
    }
  }
  return wasm ?? undefined;
}

/** Which implementation runs the passes: `auto` (WebAssembly SIMD when available), or one of them (tests, bench). */
export type ResampleEngine = 'auto' | 'wasm' | 'js';

/** `Image.resize((width, height), filter, reducing_gap=None)` on an RGB image, exactly as Pillow computes it. */
export function pillowResize(src: RgbImage, width: number, height: number, filter: PillowFilter, engine: ResampleEngine = 'auto'): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new RangeError(`resize to ${width}x${height}: height and width must be integers > 0`);
  if (src.data.length !== src.width * src.height * 3) throw new RangeError(`RGB buffer of ${src.data.length} bytes is not ${src.width}x${src.height}x3`);
  if (width === src.width && height === src.height) return {data: src.data.slice(), width, height};
  if (filter === 'nearest') return nearest(src, width, height);
  const needH = width !== src.width;
  const needV = height !== src.height;
  const vTaps = pillowTaps(src.height, height, filter);
  // Pillow runs the horizontal pass only over the rows the vertical pass reads.
  const rowStart = vTaps.first[0]!;
  const rowEnd = vTaps.first[height - 1]! + vTaps.count[height - 1]!;
  const passes = engine === 'js' ? undefined : wasmPasses();
  if (engine === 'wasm' && !passes) throw new Error('WebAssembly SIMD is not available in this runtime');
  let data = src.data;
  let rowOffset = 0;
  if (needH) {
    const [from, to] = needV ? [rowStart, rowEnd] : [0, src.height];
    const taps = pillowTaps(src.width, width, filter);
    data = passes ? passes.horizontal(src.data, src.width, from, to, taps) : horizontal(src.data, src.width, from, to, taps);
    rowOffset = from;
  }
  if (needV) data = passes ? passes.vertical(data, width, rowOffset, vTaps) : vertical(data, width, rowOffset, vTaps);
  return {data, width, height};
}
