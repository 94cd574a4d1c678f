/**
 * The pixel loops behind validate-data's per-image properties and full-resolution brightness verdicts, in two
 * implementations with identical results: WebAssembly SIMD (pixel-kernels-wasm.ts; used wherever the runtime
 * validates the module, i.e. every supported Node) and plain JavaScript (the fallback, and the reference the tests
 * compare the WebAssembly kernels with). Integer arithmetic is exact in both; the one floating-point sum (the sampled
 * brightness) runs in the same order with the same operations, so it is bit-identical (IEEE 754).
 */
import {LAYOUT, pixelKernelModuleBytes} from './pixel-kernels-wasm.js';
import {wasmApiFor} from '../util/wasm-asm.js';

/** The thumbnail's pixel statistics (computeProperties builds the properties from them). */
export interface ThumbnailStatistics {
  /** BT.601 grey of every pixel, (77 R + 150 G + 29 B + 128) >> 8. A view valid until the kernels' next call. */
  grey: Uint8Array;
  /** On every `step`-th pixel of every `step`-th row: histogram of floor(1023 * brightness) (1,024 bins; a view). */
  brightHist: Uint32Array;
  /** ... and of the grey values (256 bins; a view). */
  greyHist: Uint32Array;
  /** ... the sum of CleanVision's brightness, in pixel order. */
  brightnessSum: number;
  /** ... pixels whose channels are within 2 levels of each other. */
  equal: number;
  sampled: number;
  /** Sum and sum of squares of the 4-neighbour Laplacian of the grey image, one-pixel border excluded. */
  lapSum: number;
  lapSq: number;
  /**
   * When the width is a multiple of 32: per row, the sums of its grey values in each of 32 equal column cells
   * (row y's at y * 32 .. y * 32 + 31; a view).
   */
  cellRows?: Int32Array;
}

export interface KeyCounts {
  /** Pixels counted with a brightness key >= keyAbove (counting may stop once both needs are met). */
  bright: number;
  /** ... with a key <= keyBelow. */
  darker: number;
}

export interface PixelKernels {
  readonly kind: 'wasm' | 'js';
  thumbnail(data: Uint8Array, width: number, height: number, step: number): ThumbnailStatistics;
  /**
   * Counts pixels of an RGB buffer by CleanVision's integer brightness key 241 R^2 + 691 G^2 + 68 B^2, stopping
   * (at a chunk boundary) once `brightNeeded` pixels at or above `keyAbove` and `darkNeeded` at or below `keyBelow`
   * are found: whether each need is met is exact, the counts beyond it are not (a side needing 0 pixels may not be
   * counted at all).
   */
  countKeys(data: Uint8Array, keyAbove: number, keyBelow: number, brightNeeded: number, darkNeeded: number): KeyCounts;
  /** The histogram of key >> KEY_SHIFT over every pixel (KEY_BINS bins; a view valid until the kernels' next call). */
  keyHistogram(data: Uint8Array): Uint32Array;
  /**
   * For each of the given bins (key >> KEY_SHIFT; at most MAX_KEY_BINS), the histogram of the low KEY_SHIFT bits of
   * its pixels' keys, and the index of the first pixel (in buffer order) having each key, -1 for none. Fresh arrays.
   */
  keyBins(data: Uint8Array, bins: number[]): Array<{low: Uint32Array; first: Int32Array}>;
}

/** Keys are binned by their top bits for the exact percentiles: 1,024 keys per bin, KEY_BINS bins. */
export const KEY_SHIFT = 10;
export const KEY_BINS = (65_025_000 >> KEY_SHIFT) + 1;
export const MAX_KEY_BINS = 4;

// CleanVision's brightness terms per channel value, computed as the formula does ((0.241 * r) * r, ...), so their
// sum is bit-identical to evaluating 0.241 * r * r + 0.691 * g * g + 0.068 * b * b.
export const BRIGHT_R = Float64Array.from({length: 256}, (_, v) => 0.241 * v * v);
export const BRIGHT_G = Float64Array.from({length: 256}, (_, v) => 0.691 * v * v);
export const BRIGHT_B = Float64Array.from({length: 256}, (_, v) => 0.068 * v * v);

export const SQ241 = Int32Array.from({length: 256}, (_, v) => 241 * v * v);
export const SQ691 = Int32Array.from({length: 256}, (_, v) => 691 * v * v);
export const SQ68 = Int32Array.from({length: 256}, (_, v) => 68 * v * v);

/** Whether 32-bit words hold bytes little-endian first (the word loops read pixels that way). */
export const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** Three 32-bit words over the start of an RGB buffer (four pixels each), or undefined when it is not 4-aligned. */
function pixelWords(data: Uint8Array): Uint32Array | undefined {
  return LITTLE_ENDIAN && data.byteOffset % 4 === 0 ? new Uint32Array(data.buffer, data.byteOffset, Math.floor(data.length / 12) * 3) : undefined;
}

/** The brightness key of the pixel at byte `i`. */
const keyAt = (data: Uint8Array, i: number): number => SQ241[data[i]!]! + SQ691[data[i + 1]!]! + SQ68[data[i + 2]!]!;

/**
 * `visit(key, pixel)` for every pixel in buffer order: four pixels from three 32-bit words per step where the buffer
 * allows (half the time of byte loads), then the rest byte by byte.
 */
function forEachKey(data: Uint8Array, visit: (key: number, pixel: number) => void): void {
  const words = pixelWords(data);
  let start = 0;
  if (words) {
    for (let j = 0, p = 0; j < words.length; j += 3, p += 4) {
      const a = words[j]!;
      const b = words[j + 1]!;
      const c = words[j + 2]!;
      visit(SQ241[a & 255]! + SQ691[(a >>> 8) & 255]! + SQ68[(a >>> 16) & 255]!, p);
      visit(SQ241[a >>> 24]! + SQ691[b & 255]! + SQ68[(b >>> 8) & 255]!, p + 1);
      visit(SQ241[(b >>> 16) & 255]! + SQ691[b >>> 24]! + SQ68[c & 255]!, p + 2);
      visit(SQ241[(c >>> 8) & 255]! + SQ691[(c >>> 16) & 255]! + SQ68[c >>> 24]!, p + 3);
    }
    start = words.length * 4;
  }
  for (let p = start / 3, i = start; i < data.length; p++, i += 3) visit(keyAt(data, i), p);
}

/** Pixels per chunk between checks of the counting needs. */
const COUNT_CHUNK = 131_072;

/** The JavaScript kernels (one grey buffer and histograms per instance, reused from call to call). */
export class JsPixelKernels implements PixelKernels {
  readonly kind = 'js';
  private grey = new Uint8Array(0);
  private readonly brightHist = new Uint32Array(1024);
  private readonly greyHist = new Uint32Array(256);
  private cells = new Int32Array(0);
  private keyHist: Uint32Array | undefined;

  thumbnail(data: Uint8Array, width: number, height: number, step: number): ThumbnailStatistics {
    const n = width * height;
    if (this.grey.length < n) this.grey = new Uint8Array(Math.max(n, this.grey.length * 2));
    const {grey, brightHist, greyHist} = this;
    for (let p = 0, i = 0; p < n; p++, i += 3) grey[p] = (77 * data[i]! + 150 * data[i + 1]! + 29 * data[i + 2]! + 128) >> 8;
    brightHist.fill(0);
    greyHist.fill(0);
    let brightnessSum = 0;
    let equal = 0;
    let sampled = 0;
    for (let y = 0; y < height; y += step) {
      for (let x = 0, q = y * width; x < width; x += step, q += step) {
        const j = q * 3;
        const r = data[j]!;
        const g = data[j + 1]!;
        const b = data[j + 2]!;
        const bright = Math.sqrt(BRIGHT_R[r]! + BRIGHT_G[g]! + BRIGHT_B[b]!) / 255;
        brightHist[Math.min(1023, (bright * 1023) | 0)]!++; // |0 is floor: 0 <= bright * 1023 < 2^31
        brightnessSum += bright;
        greyHist[grey[q]!]!++;
        if (Math.abs(r - g) <= 2 && Math.abs(g - b) <= 2) equal++;
        sampled++;
      }
    }
    // Integers: exact in any order (|sum| < 2^53).
    let lapSum = 0;
    let lapSq = 0;
    for (let y = 1; y < height - 1; y++) {
      for (let q = y * width + 1, end = y * width + width - 1; q < end; q++) {
        const v = 4 * grey[q]! - grey[q - 1]! - grey[q + 1]! - grey[q - width]! - grey[q + width]!;
        lapSum += v;
        lapSq += v * v;
      }
    }
    let cellRows: Int32Array | undefined;
    if (width % 32 === 0) {
      if (this.cells.length < height * 32) this.cells = new Int32Array(height * 32);
      cellRows = this.cells.subarray(0, height * 32);
      const k = width / 32;
      for (let c = 0, p = 0; c < height * 32; c++) {
        let sum = 0;
        for (const end = p + k; p < end; p++) sum += grey[p]!;
        cellRows[c] = sum;
      }
    }
    return {grey: grey.subarray(0, n), brightHist, greyHist, brightnessSum, equal, sampled, lapSum, lapSq, cellRows};
  }

  countKeys(data: Uint8Array, keyAbove: number, keyBelow: number, brightNeeded: number, darkNeeded: number): KeyCounts {
    let bright = 0;
    let darker = 0;
    const chunk = 3 * COUNT_CHUNK;
    let start = 0;
    // Only bright pixels wanted and a 4-byte-aligned buffer: four pixels from three 32-bit words per step, half the
    // time of byte loads (measured).
    if (darkNeeded === 0 && LITTLE_ENDIAN && data.byteOffset % 4 === 0) {
      const words = new Uint32Array(data.buffer, data.byteOffset, Math.floor(data.length / 12) * 3);
      for (let from = 0; from < words.length && bright < brightNeeded; from += chunk) {
        const to = Math.min(words.length, from + chunk);
        for (let j = from; j < to; j += 3) {
          const a = words[j]!;
          const b = words[j + 1]!;
          const c = words[j + 2]!;
          bright += (SQ241[a & 255]! + SQ691[(a >>> 8) & 255]! + SQ68[(a >>> 16) & 255]! >= keyAbove ? 1 : 0) + (SQ241[a >>> 24]! + SQ691[b & 255]! + SQ68[(b >>> 8) & 255]! >= keyAbove ? 1 : 0) + (SQ241[(b >>> 16) & 255]! + SQ691[b >>> 24]! + SQ68[c & 255]! >= keyAbove ? 1 : 0) + (SQ241[(c >>> 8) & 255]! + SQ691[(c >>> 16) & 255]! + SQ68[c >>> 24]! >= keyAbove ? 1 : 0);
        }
      }
      start = words.length * 4; // the last 0-3 pixels (or none, when settled early: the loop below then stops at once)
    }
    for (; start < data.length && (bright < brightNeeded || darker < darkNeeded); start += chunk) {
      const end = Math.min(data.length, start + chunk);
      for (let i = start; i < end; i += 3) {
        const key = keyAt(data, i);
        bright += key >= keyAbove ? 1 : 0;
        darker += key <= keyBelow ? 1 : 0;
      }
    }
    return {bright, darker};
  }

  keyHistogram(data: Uint8Array): Uint32Array {
    const hist = (this.keyHist ??= new Uint32Array(KEY_BINS)).fill(0);
    forEachKey(data, (key) => hist[key >> KEY_SHIFT]!++);
    return hist;
  }

  keyBins(data: Uint8Array, bins: number[]): Array<{low: Uint32Array; first: Int32Array}> {
    const wanted = new Int32Array(KEY_BINS).fill(-1);
    bins.forEach((b, k) => (wanted[b] = k));
    const out = bins.map(() => ({low: new Uint32Array(1 << KEY_SHIFT), first: new Int32Array(1 << KEY_SHIFT).fill(-1)}));
    forEachKey(data, (key, p) => {
      const k = wanted[key >> KEY_SHIFT]!;
      if (k < 0) return;
      const l = key & ((1 << KEY_SHIFT) - 1);
      out[k]!.low[l]!++;
      if (out[k]!.first[l]! < 0) out[k]!.first[l] = p;
    });
    return out;
  }
}

interface KernelExports {
  luma(rgb: number, grey: number, n: number): void;
  laplacian(grey: number, width: number, height: number, out: number): void;
  sampled(rgb: number, grey: number, width: number, height: number, step: number, out: number): void;
  cellRows(grey: number, width: number, height: number, out: number): void;
  countKeys(rgb: number, groups: number, keyAbove: number, keyBelow: number, out: number, high: number, low: number): number;
  keyHistogram(rgb: number, groups: number, hist: number): void;
  keyCollect(rgb: number, groups: number, wanted: number, low: number, first: number, base: number): void;
}

/**
 * The bytes that screen pixels for countKeys: a pixel whose channels are all <= high has a key <= 1000 high^2, under
 * keyAbove, and one whose channels are all >= low has a key >= 1000 low^2, over keyBelow (the key's weights sum to
 * 1,000): neither bound counts it. [-1, 0] when no byte qualifies (keyAbove <= 0, or keyBelow >= 1000 * 255^2): no
 * screening.
 */
export function screenBytes(keyAbove: number, keyBelow: number): [high: number, low: number] {
  let high = 255;
  while (high >= 0 && 1000 * high * high >= keyAbove) high--;
  let low = 0;
  while (low <= 255 && 1000 * low * low <= keyBelow) low++;
  return high < 0 || low > 255 ? [-1, 0] : [high, low];
}

/** Larger thumbnails go to the JavaScript kernels (wasm memory never shrinks; i32 Laplacian lanes need w <= 8,192). */
const WASM_MAX_PIXELS = 4_194_304;
const WASM_MAX_WIDTH = 8192;
const SLACK = 64;
const align16 = (n: number): number => (n + 15) & ~15;

/** The WebAssembly kernels: one instance and memory; calls are synchronous, so one serves a whole thread. */
class WasmPixelKernels implements PixelKernels {
  readonly kind = 'wasm';
  private readonly fallback = new JsPixelKernels();
  private readonly k: KernelExports;

  constructor(
    private readonly memory: {buffer: ArrayBuffer; grow(pages: number): number},
    exports: Record<string, unknown>,
  ) {
    this.k = exports as unknown as KernelExports;
    const tables = new Float64Array(memory.buffer, LAYOUT.tables, 768);
    tables.set(BRIGHT_R, 0);
    tables.set(BRIGHT_G, 256);
    tables.set(BRIGHT_B, 512);
  }

  private reserve(bytes: number): void {
    const need = bytes - this.memory.buffer.byteLength;
    if (need > 0) this.memory.grow(Math.ceil(need / 65_536));
  }

  thumbnail(data: Uint8Array, width: number, height: number, step: number): ThumbnailStatistics {
    const n = width * height;
    if (n > WASM_MAX_PIXELS || width > WASM_MAX_WIDTH) return this.fallback.thumbnail(data, width, height, step);
    const rgbAt = LAYOUT.data;
    const greyAt = align16(rgbAt + n * 3 + SLACK);
    const cellsAt = align16(greyAt + n + SLACK);
    this.reserve(cellsAt + height * 128 + SLACK);
    const {buffer} = this.memory;
    new Uint8Array(buffer).set(data.subarray(0, n * 3), rgbAt);
    const brightHist = new Uint32Array(buffer, LAYOUT.brightHist, 1024).fill(0);
    const greyHist = new Uint32Array(buffer, LAYOUT.greyHist, 256).fill(0);
    this.k.luma(rgbAt, greyAt, n);
    this.k.laplacian(greyAt, width, height, LAYOUT.out);
    this.k.sampled(rgbAt, greyAt, width, height, step, LAYOUT.out + 16);
    const whole = width % 32 === 0;
    if (whole) this.k.cellRows(greyAt, width, height, cellsAt);
    const lap = new BigInt64Array(buffer, LAYOUT.out, 2);
    const view = new DataView(buffer, LAYOUT.out + 16, 16);
    return {
      grey: new Uint8Array(buffer, greyAt, n),
      brightHist,
      greyHist,
      brightnessSum: view.getFloat64(0, true),
      equal: view.getInt32(8, true),
      sampled: view.getInt32(12, true),
      lapSum: Number(lap[0]!),
      lapSq: Number(lap[1]!),
      cellRows: whole ? new Int32Array(buffer, cellsAt, height * 32) : undefined,
    };
  }

  countKeys(data: Uint8Array, keyAbove: number, keyBelow: number, brightNeeded: number, darkNeeded: number): KeyCounts {
    // Keys lie in 0..65,025,000: bounds clamped to i32 compare the same way.
    if (!Number.isFinite(keyAbove) || !Number.isFinite(keyBelow)) return this.fallback.countKeys(data, keyAbove, keyBelow, brightNeeded, darkNeeded);
    // A side whose need is met from the start is not counted (its count beyond the need is not promised).
    const above = brightNeeded > 0 ? Math.max(-1, Math.min(70_000_000, keyAbove)) : 70_000_000;
    const below = darkNeeded > 0 ? Math.max(-1, Math.min(70_000_000, keyBelow)) : -1;
    const [high, low] = screenBytes(above, below);
    const chunk = 3 * COUNT_CHUNK;
    this.reserve(LAYOUT.data + chunk + SLACK);
    const heap = new Uint8Array(this.memory.buffer);
    const darkerAt = new Int32Array(this.memory.buffer, LAYOUT.out + 32, 1);
    let bright = 0;
    let darker = 0;
    for (let start = 0; start < data.length && (bright < brightNeeded || darker < darkNeeded); start += chunk) {
      const end = Math.min(data.length, start + chunk);
      const groups = Math.floor((end - start) / 12);
      heap.set(data.subarray(start, start + groups * 12), LAYOUT.data);
      bright += this.k.countKeys(LAYOUT.data, groups, above, below, LAYOUT.out + 32, high, low);
      darker += darkerAt[0]!;
      for (let i = start + groups * 12; i < end; i += 3) {
        const key = keyAt(data, i);
        bright += key >= above ? 1 : 0;
        darker += key <= below ? 1 : 0;
      }
    }
    return {bright, darker};
  }

  /** Where the key passes keep their tables: after one chunk of pixels at LAYOUT.data. */
  private keyLayout(): {hist: number; wanted: number; low: number; first: number} {
    const hist = align16(LAYOUT.data + 3 * COUNT_CHUNK + SLACK);
    const wanted = align16(hist + KEY_BINS * 4);
    const low = align16(wanted + KEY_BINS * 4);
    const first = low + MAX_KEY_BINS * 4 * (1 << KEY_SHIFT);
    this.reserve(first + MAX_KEY_BINS * 4 * (1 << KEY_SHIFT));
    return {hist, wanted, low, first};
  }

  /** Runs `pass(groups, base)` over the buffer in chunks copied to LAYOUT.data; `tail(key, p)` takes the last 0-3 pixels. */
  private chunks(data: Uint8Array, pass: (groups: number, base: number) => void, tail: (key: number, p: number) => void): void {
    const chunk = 3 * COUNT_CHUNK;
    for (let start = 0; start < data.length; start += chunk) {
      const end = Math.min(data.length, start + chunk);
      const groups = Math.floor((end - start) / 12);
      new Uint8Array(this.memory.buffer).set(data.subarray(start, start + groups * 12), LAYOUT.data);
      pass(groups, start / 3);
      for (let i = start + groups * 12; i < end; i += 3) tail(keyAt(data, i), i / 3);
    }
  }

  keyHistogram(data: Uint8Array): Uint32Array {
    const {hist} = this.keyLayout();
    const view = new Uint32Array(this.memory.buffer, hist, KEY_BINS).fill(0);
    this.chunks(data, (groups) => this.k.keyHistogram(LAYOUT.data, groups, hist), (key) => view[key >> KEY_SHIFT]!++);
    return view;
  }

  keyBins(data: Uint8Array, bins: number[]): Array<{low: Uint32Array; first: Int32Array}> {
    if (bins.length > MAX_KEY_BINS) return this.fallback.keyBins(data, bins);
    const at = this.keyLayout();
    const {buffer} = this.memory;
    const wanted = new Int32Array(buffer, at.wanted, KEY_BINS).fill(-1);
    bins.forEach((b, k) => (wanted[b] = k));
    const size = 1 << KEY_SHIFT;
    const low = new Uint32Array(buffer, at.low, MAX_KEY_BINS * size).fill(0);
    const first = new Int32Array(buffer, at.first, MAX_KEY_BINS * size).fill(-1);
    this.chunks(data, (groups, base) => this.k.keyCollect(LAYOUT.data, groups, at.wanted, at.low, at.first, base), (key, p) => {
      const k = wanted[key >> KEY_SHIFT]!;
      if (k < 0) return;
      const l = k * size + (key & (size - 1));
      low[l]!++;
      if (first[l]! < 0) first[l] = p;
    });
    return bins.map((_, k) => ({low: low.slice(k * size, (k + 1) * size), first: first.slice(k * size, (k + 1) * size)}));
  }
}

/** New WebAssembly kernels, or undefined where the runtime cannot run the module. */
export function createWasmPixelKernels(): PixelKernels | undefined {
  const bytes = pixelKernelModuleBytes();
  const wa = wasmApiFor(bytes);
  if (!wa) return undefined;
  const memory = new wa.Memory({initial: 8});
  const instance = new wa.Instance(new wa.Module(bytes), {env: {mem: memory}});
  return new WasmPixelKernels(memory, instance.exports);
}

let shared: PixelKernels | undefined;

/** This thread's kernels: WebAssembly where available, else JavaScript (created on first use). */
export function defaultPixelKernels(): PixelKernels {
  shared ??= createWasmPixelKernels() ?? new JsPixelKernels();
  return shared;
}
