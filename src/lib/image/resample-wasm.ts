/**
 * The two convolution passes of the Pillow-exact resampler as a small WebAssembly SIMD module, assembled here from
 * opcodes (no toolchain, no binary blob): same integer arithmetic as the JavaScript passes in pillow-resample.ts
 * (22-bit fixed-point taps, start at 1 << 21, arithmetic shift, clip to 0..255), so results are identical; it only
 * runs faster. Horizontal pass: one i32x4 accumulator per output pixel with R, G, B in three lanes. Vertical pass:
 * eight bytes of a row at a time in two i32x4 accumulators. Clipping is the saturating narrow i32 -> u16 -> u8.
 * Used when the runtime validates the module (Node >= 16 has wasm SIMD); else the JavaScript passes run.
 */
import type {Taps} from './resample-taps.js';

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
};

// Core opcodes.
const get = (l: number): number[] => [0x20, ...uleb(l)];
const set = (l: number): number[] => [0x21, ...uleb(l)];
const i32 = (v: number): number[] => [0x41, ...sleb(v)];
const load = [0x28, 2, 0];
const ADD = 0x6a;
const SUB = 0x6b;
const MUL = 0x6c;
const GE_U = 0x4f;
const EQZ = 0x45;
const BLOCK = [0x02, 0x40];
const LOOP = [0x03, 0x40];
const END = 0x0b;
const br = (d: number): number[] => [0x0c, ...uleb(d)];
const brIf = (d: number): number[] => [0x0d, ...uleb(d)];
// SIMD opcodes (0xfd prefix).
const simd = (op: number, ...imm: number[]): number[] => [0xfd, ...uleb(op), ...imm];
const load32Zero = simd(92, 2, 0);
const load64Zero = simd(93, 3, 0);
const store32Lane0 = simd(90, 2, 0, 0);
const store64Lane0 = simd(91, 3, 0, 0);
const splat = simd(17);
const extendLowU8 = simd(137);
const extendLowU16 = simd(169);
const extendHighU16 = simd(170);
const shrS = simd(172);
const add4 = simd(174);
const mul4 = simd(181);
const narrowU16 = simd(134);
const narrowU8 = simd(102);

const HALF = 1 << 21;

/** for (;;) { if (cond) break; body; } with `cond` leaving an i32 on the stack. */
const whileNot = (cond: number[], body: number[]): number[] => [...BLOCK, ...LOOP, ...cond, ...brIf(1), ...body, ...br(0), END, END];
const inc = (l: number, by: number | number[]): number[] => [...get(l), ...(typeof by === 'number' ? i32(by) : by), ADD, ...set(l)];

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

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const str = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'utf8')];
function func(locals: Array<[number, number]>, body: number[]): number[] {
  const content = [...vec(locals.map(([count, type]) => [...uleb(count), type])), ...body, END];
  return [...uleb(content.length), ...content];
}

/** The module's bytes: imports env.mem, exports h and v. */
export function resampleModuleBytes(): Uint8Array {
  const I32 = 0x7f;
  const V128 = 0x7b;
  const type = (params: number): number[] => [0x60, ...vec(Array.from({length: params}, () => [I32])), 0];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([type(9), type(8)])),
    ...section(2, vec([[...str('env'), ...str('mem'), 0x02, 0x00, 0x01]])),
    ...section(3, vec([[0], [1]])),
    ...section(7, vec([[...str('h'), 0x00, 0], [...str('v'), 0x00, 1]])),
    ...section(10, vec([func([[6, I32], [1, V128]], horizontalBody()), func([[7, I32], [4, V128]], verticalBody())])),
  ];
  return Uint8Array.from(bytes);
}

export interface WasmPasses {
  horizontal(src: Uint8Array, width: number, rowStart: number, rowEnd: number, taps: Taps): Uint8Array;
  vertical(src: Uint8Array, width: number, rowOffset: number, taps: Taps): Uint8Array;
}

/** The part of the WebAssembly JS API used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Memory: new (descriptor: {initial: number}) => {buffer: ArrayBuffer; grow(pages: number): number};
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => {exports: Record<string, unknown>};
}

const SLACK = 16;
const align = (n: number): number => (n + 15) & ~15;

/**
 * An instance with its own growable memory. Callers keep one per process (see pillow-resample.ts): calls are
 * synchronous, so one memory serves them all.
 */
export function createWasmPasses(): WasmPasses | undefined {
  const bytes = resampleModuleBytes();
  const wa = (globalThis as unknown as {WebAssembly?: WasmApi}).WebAssembly;
  if (!wa || !wa.validate(bytes)) return undefined;
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
