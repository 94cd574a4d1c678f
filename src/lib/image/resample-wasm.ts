/**
 * The two convolution passes of the Pillow-exact resampler as a small WebAssembly SIMD module, assembled from opcodes
 * with util/wasm-asm.ts (no toolchain, no binary blob): same integer arithmetic as the JavaScript passes in
 * pillow-resample.ts (22-bit fixed-point taps, start at 1 << 21, arithmetic shift, clip to 0..255), so results are
 * identical; it only runs faster. Horizontal pass: one i32x4 accumulator per output pixel with R, G, B in three
 * lanes. Vertical pass: eight bytes of a row at a time in two i32x4 accumulators. Clipping is the saturating narrow
 * i32 -> u16 -> u8. Used when the runtime validates the module (Node >= 16 has wasm SIMD); else the JavaScript passes
 * run.
 */
import {
  assembleModule,
  get,
  I16X8_EXTEND_LOW_I8X16_U,
  I16X8_NARROW_I32X4_U,
  I32,
  I32_ADD as ADD,
  I32_EQZ as EQZ,
  I32_GE_U as GE_U,
  I32_MUL as MUL,
  I32_SUB as SUB,
  I32X4_ADD,
  I32X4_EXTEND_HIGH_I16X8_U,
  I32X4_EXTEND_LOW_I16X8_U,
  I32X4_MUL,
  I32X4_SHR_S,
  I32X4_SPLAT,
  I8X16_NARROW_I16X8_U,
  i32,
  i32Load,
  inc,
  set,
  V128,
  v128Load32Zero,
  v128Load64Zero,
  v128Store32Lane,
  v128Store64Lane,
  wasmApiFor,
  whileNot,
} from '../util/wasm-asm.js';
import type {Taps} from './resample-taps.js';

const load = i32Load();
const load32Zero = v128Load32Zero();
const load64Zero = v128Load64Zero();
const store32Lane0 = v128Store32Lane(0);
const store64Lane0 = v128Store64Lane(0);
const splat = I32X4_SPLAT;
const extendLowU8 = I16X8_EXTEND_LOW_I8X16_U;
const extendLowU16 = I32X4_EXTEND_LOW_I16X8_U;
const extendHighU16 = I32X4_EXTEND_HIGH_I16X8_U;
const shrS = I32X4_SHR_S;
const add4 = I32X4_ADD;
const mul4 = I32X4_MUL;
const narrowU16 = I16X8_NARROW_I32X4_U;
const narrowU8 = I8X16_NARROW_I16X8_U;

const HALF = 1 << 21;

/** h(src, stride, rows, outW, ksize4, first, count, weights, dst); locals y i p n k row | acc. */
function horizontalBody(): number[] {
  const [src, stride, rows, outW, ksize4, first, count, weights, dst] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [y, i, p, n, k, row, acc] = [9, 10, 11, 12, 13, 14, 15];
  const inner = whileNot(
    [...get(n), EQZ],
    [...get(acc), ...get(p), ...load32Zero, ...extendLowU8, ...extendLowU16, ...get(k), ...load, ...splat, ...mul4, ...add4, ...set(acc), ...inc(p, 3), ...inc(k, 4), ...get(n), ...i32(1), SUB, ...set(n)],
  );
  const perPixel = [
    ...get(row), ...get(first), ...get(i), ...i32(4), MUL, ADD, ...load, ADD, ...set(p),
    ...get(count), ...get(i), ...i32(4), MUL, ADD, ...load, ...set(n),
    ...get(weights), ...get(i), ...get(ksize4), MUL, ADD, ...set(k),
    ...i32(HALF), ...splat, ...set(acc),
    ...inner,
    ...get(dst), ...get(acc), ...i32(22), ...shrS, ...get(acc), ...i32(22), ...shrS, ...narrowU16, ...get(acc), ...i32(22), ...shrS, ...get(acc), ...i32(22), ...shrS, ...narrowU16, ...narrowU8, ...store32Lane0,
    ...inc(dst, 3), ...inc(i, 1),
  ];
  const perRow = [...get(src), ...get(y), ...get(stride), MUL, ADD, ...set(row), ...i32(0), ...set(i), ...whileNot([...get(i), ...get(outW), GE_U], perPixel), ...inc(y, 1)];
  return [...i32(0), ...set(y), ...whileNot([...get(y), ...get(rows), GE_U], perRow)];
}

/** v(src, stride, outRows, ksize4, first, count, weights, dst); locals j x p n k base out | lo hi px w. */
function verticalBody(): number[] {
  const [src, stride, outRows, ksize4, first, count, weights, dst] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [j, x, p, n, k, base, out, lo, hi, px, w] = [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18];
  const inner = whileNot(
    [...get(n), EQZ],
    [
      ...get(p), ...load64Zero, ...extendLowU8, ...set(px), ...get(k), ...load, ...splat, ...set(w),
      ...get(lo), ...get(px), ...extendLowU16, ...get(w), ...mul4, ...add4, ...set(lo),
      ...get(hi), ...get(px), ...extendHighU16, ...get(w), ...mul4, ...add4, ...set(hi),
      ...inc(p, get(stride)), ...inc(k, 4), ...get(n), ...i32(1), SUB, ...set(n),
    ],
  );
  const perChunk = [
    ...i32(HALF), ...splat, ...set(lo), ...i32(HALF), ...splat, ...set(hi),
    ...get(base), ...get(x), ADD, ...set(p),
    ...get(count), ...get(j), ...i32(4), MUL, ADD, ...load, ...set(n),
    ...get(weights), ...get(j), ...get(ksize4), MUL, ADD, ...set(k),
    ...inner,
    ...get(out), ...get(x), ADD,
    ...get(lo), ...i32(22), ...shrS, ...get(hi), ...i32(22), ...shrS, ...narrowU16, ...get(lo), ...i32(22), ...shrS, ...get(hi), ...i32(22), ...shrS, ...narrowU16, ...narrowU8, ...store64Lane0,
    ...inc(x, 8),
  ];
  const perRow = [
    ...get(src), ...get(first), ...get(j), ...i32(4), MUL, ADD, ...load, ADD, ...set(base),
    ...get(dst), ...get(j), ...get(stride), MUL, ADD, ...set(out),
    ...i32(0), ...set(x), ...whileNot([...get(x), ...get(stride), GE_U], perChunk), ...inc(j, 1),
  ];
  return [...i32(0), ...set(j), ...whileNot([...get(j), ...get(outRows), GE_U], perRow)];
}

/** The module's bytes: imports env.mem, exports h and v. */
export function resampleModuleBytes(): Uint8Array {
  return assembleModule([
    {name: 'h', params: Array<number>(9).fill(I32), results: [], locals: [[6, I32], [1, V128]], body: horizontalBody()},
    {name: 'v', params: Array<number>(8).fill(I32), results: [], locals: [[7, I32], [4, V128]], body: verticalBody()},
  ]);
}

export interface WasmPasses {
  horizontal(src: Uint8Array, width: number, rowStart: number, rowEnd: number, taps: Taps): Uint8Array;
  vertical(src: Uint8Array, width: number, rowOffset: number, taps: Taps): Uint8Array;
}

const SLACK = 16;
const align = (n: number): number => (n + 15) & ~15;

/**
 * An instance with its own growable memory. Callers keep one per process (see pillow-resample.ts): calls are
 * synchronous, so one memory serves them all.
 */
export function createWasmPasses(): WasmPasses | undefined {
  const bytes = resampleModuleBytes();
  const wa = wasmApiFor(bytes);
  if (!wa) return undefined;
  const mem = new wa.Memory({initial: 16});
  const instance = new wa.Instance(new wa.Module(bytes), {env: {mem}});
  const h = instance.exports.h as (...a: number[]) => void;
  const v = instance.exports.v as (...a: number[]) => void;
  const reserve = (size: number): void => {
    const need = size - mem.buffer.byteLength;
    if (need > 0) mem.grow(Math.ceil(need / 65536));
  };
  /** Lays out [a][b]... 16-byte aligned with slack; returns the offsets. */
  const layout = (sizes: number[]): number[] => {
    let at = 0;
    const offsets = sizes.map((s) => {
      const o = at;
      at = align(o + s + SLACK);
      return o;
    });
    reserve(at);
    return offsets;
  };
  return {
    horizontal(src, width, rowStart, rowEnd, taps) {
      const outW = taps.first.length;
      const rows = rowEnd - rowStart;
      const stride = width * 3;
      const [srcAt, dstAt, firstAt, countAt, wAt] = layout([stride * rows, outW * rows * 3, outW * 4, outW * 4, taps.weights.byteLength]);
      const heap = new Uint8Array(mem.buffer);
      heap.set(src.subarray(rowStart * stride, rowEnd * stride), srcAt);
      const first = new Int32Array(mem.buffer, firstAt!, outW);
      for (let i = 0; i < outW; i++) first[i] = taps.first[i]! * 3;
      new Int32Array(mem.buffer, countAt!, outW).set(taps.count);
      new Int32Array(mem.buffer, wAt!, taps.weights.length).set(taps.weights);
      h(srcAt!, stride, rows, outW, taps.ksize * 4, firstAt!, countAt!, wAt!, dstAt!);
      return new Uint8Array(mem.buffer, dstAt!, outW * rows * 3).slice();
    },
    vertical(src, width, rowOffset, taps) {
      const outH = taps.first.length;
      const stride = width * 3;
      const [srcAt, dstAt, firstAt, countAt, wAt] = layout([src.length, stride * outH, outH * 4, outH * 4, taps.weights.byteLength]);
      new Uint8Array(mem.buffer).set(src, srcAt);
      const first = new Int32Array(mem.buffer, firstAt!, outH);
      for (let j = 0; j < outH; j++) first[j] = (taps.first[j]! - rowOffset) * stride;
      new Int32Array(mem.buffer, countAt!, outH).set(taps.count);
      new Int32Array(mem.buffer, wAt!, taps.weights.length).set(taps.weights);
      v(srcAt!, stride, outH, taps.ksize * 4, firstAt!, countAt!, wAt!, dstAt!);
      return new Uint8Array(mem.buffer, dstAt!, stride * outH).slice();
    },
  };
}
