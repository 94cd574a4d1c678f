/**
 * validate-data's pixel kernels (pixel-kernels.ts) as one small WebAssembly SIMD module, assembled from opcodes at
 * load time (util/wasm-asm.ts; no toolchain, no binary blob). Same arithmetic as the JavaScript kernels, so the
 * results are identical, only faster:
 * - luma: BT.601 grey in 8.8 fixed point, 16 pixels per step (RGB de-interleaved by two byte shuffles per 8 pixels,
 *   u16 lanes: 77 R + 150 G + 29 B + 128 <= 65,408 never wraps).
 * - laplacian: the 4-neighbour Laplacian of the grey rows, 8 pixels per step in i16 lanes (|v| <= 1,020); sums in
 *   i32 lanes per row (pairwise add / dot product), folded into 64-bit totals each row (exact integers).
 * - sampled: the brightness / entropy / grayscale statistics on every `step`-th pixel of every `step`-th row, in
 *   scalar f64 with the same tables and operation order as JavaScript (IEEE: bit-identical), in pixel order.
 * - cellRows: per row, the sums of the grey values in each of 32 equal column cells (widths that are multiples of 32).
 * - countKeys: how many pixels have a CleanVision brightness key 241 R^2 + 691 G^2 + 68 B^2 at or above / at or below
 *   two bounds, 4 pixels per step (one 16-byte load, three swizzles into i32 lanes), after a screen of 16 pixels at a
 *   time by their largest and smallest byte that skips pixels no bound can count.
 * - keyHistogram / keyCollect: the two passes of the exact brightness percentiles (a histogram of key >> 10, then the
 *   low bits of the keys in the wanted bins), keys 4 at a time, histogram updates scalar.
 */
import {
  assembleModule, END, f64, F64, F64_ADD, F64_DIV, F64_MUL, F64_SQRT, f64Load, f64Store, get, I32, i32, I32_ADD,
  I32_AND, I32_GE_S, I32_GT_S, I32_LT_S, I32_LE_U, I32_MUL, I32_SHL, I32_SHR_U, I32_SUB, I32_TRUNC_F64_S, I32X4_ADD, I32X4_DOT_I16X8_S,
  I32X4_EXTADD_PAIRWISE_I16X8_S, i32x4ExtractLane, I32X4_GE_S, I32X4_LE_S, I32X4_MUL, I32X4_SPLAT, I32X4_SUB, I16X8_ADD,
  I16X8_EXTEND_HIGH_I8X16_U, I16X8_EXTEND_LOW_I8X16_U, I16X8_MUL, I16X8_SHL, I16X8_SHR_U, I16X8_SPLAT, I16X8_SUB, I64, I64_ADD,
  I64_EXTEND_I32_S, i64Store, i64Zero, I8X16_GT_U, I8X16_LT_U, I8X16_MAX_U, I8X16_MIN_U, I8X16_NARROW_I16X8_U, I8X16_SPLAT, I8X16_SWIZZLE, i8x16Shuffle, i32Load, i32Load8U, i32Store,
  i32Store8, IF, inc, SELECT, set, tee, V128, v128Const, v128Load, v128Load64Zero, v128Store, V128_ANY_TRUE, V128_OR, whileNot, type WasmFunction,
} from '../util/wasm-asm.js';

/** Fixed layout of the module's memory: brightness tables, histograms, results, then the data. */
export const LAYOUT = {
  /** CleanVision's per-channel brightness terms, f64 x 256 each (R, G, B). */
  tables: 0,
  brightHist: 6144,
  greyHist: 10240,
  out: 11264,
  data: 11328,
} as const;

const ZERO = v128Const(Array.from({length: 16}, () => 0));

/** luma(rgb, grey, n) */
function luma(): WasmFunction {
  const [rgb, grey, n, i, p] = [0, 1, 2, 3, 4];
  const splat16 = (v: number): number[] => [...i32(v), ...I16X8_SPLAT];
  // Eight pixels' grey values (u16 lanes) from the 24 bytes at p + at (two loads of four pixels each).
  const eight = (at: number): number[] => {
    const loads = [...get(p), ...v128Load(at), ...get(p), ...v128Load(at + 12)];
    return [
      ...loads, ...i8x16Shuffle([0, 3, 6, 9, 16, 19, 22, 25, 1, 4, 7, 10, 17, 20, 23, 26]), ...set(5),
      ...get(5), ...I16X8_EXTEND_LOW_I8X16_U, ...splat16(77), ...I16X8_MUL,
      ...get(5), ...I16X8_EXTEND_HIGH_I8X16_U, ...splat16(150), ...I16X8_MUL, ...I16X8_ADD,
      ...loads, ...i8x16Shuffle([2, 5, 8, 11, 18, 21, 24, 27, 2, 5, 8, 11, 18, 21, 24, 27]), ...I16X8_EXTEND_LOW_I8X16_U, ...splat16(29), ...I16X8_MUL, ...I16X8_ADD,
      ...splat16(128), ...I16X8_ADD, ...i32(8), ...I16X8_SHR_U,
    ];
  };
  const scalar = (at: number, coefficient: number): number[] => [...get(p), ...i32Load8U(at), ...i32(coefficient), I32_MUL];
  return {
    name: 'luma',
    params: [I32, I32, I32],
    results: [],
    locals: [[2, I32], [1, V128]],
    body: [
      ...i32(0), ...set(i),
      ...whileNot([...get(i), ...i32(16), I32_ADD, ...get(n), I32_GT_S], [
        ...get(i), ...i32(3), I32_MUL, ...get(rgb), I32_ADD, ...set(p),
        ...get(grey), ...get(i), I32_ADD, ...eight(0), ...eight(24), ...I8X16_NARROW_I16X8_U, ...v128Store(),
        ...inc(i, 16),
      ]),
      ...whileNot([...get(i), ...get(n), I32_GE_S], [
        ...get(i), ...i32(3), I32_MUL, ...get(rgb), I32_ADD, ...set(p),
        ...get(grey), ...get(i), I32_ADD,
        ...scalar(0, 77), ...scalar(1, 150), I32_ADD, ...scalar(2, 29), I32_ADD, ...i32(128), I32_ADD, ...i32(8), I32_SHR_U,
        ...i32Store8(),
        ...inc(i, 1),
      ]),
    ],
  };
}

/** laplacian(grey, width, height, out): out[0] = sum of v, out[1] = sum of v^2 (i64), rows 1..h-2, columns 1..w-2. */
function laplacian(): WasmFunction {
  const [grey, width, height, out] = [0, 1, 2, 3];
  const [y, q, end, v] = [4, 5, 6, 7];
  const [sum, sq] = [8, 9];
  const [accS, accQ, vv] = [10, 11, 12];
  const row8 = (address: number[]): number[] => [...address, ...v128Load64Zero(), ...I16X8_EXTEND_LOW_I8X16_U];
  const px = (address: number[]): number[] => [...address, ...i32Load8U()];
  const at = (delta: number | number[]): number[] => [...get(q), ...(typeof delta === 'number' ? i32(delta) : delta), I32_ADD];
  const minusWidth = [...get(q), ...get(width), I32_SUB];
  const foldLanes = (acc: number, total: number): number[] => [
    ...get(total),
    ...[0, 1, 2, 3].flatMap((lane) => [...get(acc), ...i32x4ExtractLane(lane), I64_EXTEND_I32_S, I64_ADD]),
    ...set(total),
  ];
  return {
    name: 'laplacian',
    params: [I32, I32, I32, I32],
    results: [],
    locals: [[4, I32], [2, I64], [3, V128]],
    body: [
      ...i64Zero, ...set(sum), ...i64Zero, ...set(sq),
      ...i32(1), ...set(y),
      ...whileNot([...get(y), ...i32(1), I32_ADD, ...get(height), I32_GE_S], [
        ...get(y), ...get(width), I32_MUL, ...get(grey), I32_ADD, ...tee(q), ...get(width), I32_ADD, ...i32(1), I32_SUB, ...set(end),
        ...inc(q, 1),
        ...ZERO, ...set(accS), ...ZERO, ...set(accQ),
        ...whileNot([...get(q), ...i32(8), I32_ADD, ...get(end), I32_GT_S], [
          ...row8(get(q)), ...i32(2), ...I16X8_SHL,
          ...row8(at(-1)), ...I16X8_SUB, ...row8(at(1)), ...I16X8_SUB, ...row8(minusWidth), ...I16X8_SUB, ...row8(at(get(width))), ...I16X8_SUB,
          ...set(vv),
          ...get(accS), ...get(vv), ...I32X4_EXTADD_PAIRWISE_I16X8_S, ...I32X4_ADD, ...set(accS),
          ...get(accQ), ...get(vv), ...get(vv), ...I32X4_DOT_I16X8_S, ...I32X4_ADD, ...set(accQ),
          ...inc(q, 8),
        ]),
        ...foldLanes(accS, sum), ...foldLanes(accQ, sq),
        ...whileNot([...get(q), ...get(end), I32_GE_S], [
          ...px(get(q)), ...i32(2), I32_SHL, ...px(at(-1)), I32_SUB, ...px(at(1)), I32_SUB, ...px(minusWidth), I32_SUB, ...px(at(get(width))), I32_SUB,
          ...set(v),
          ...get(sum), ...get(v), I64_EXTEND_I32_S, I64_ADD, ...set(sum),
          ...get(sq), ...get(v), ...get(v), I32_MUL, I64_EXTEND_I32_S, I64_ADD, ...set(sq),
          ...inc(q, 1),
        ]),
        ...inc(y, 1),
      ]),
      ...get(out), ...get(sum), ...i64Store(0),
      ...get(out), ...get(sq), ...i64Store(8),
    ],
  };
}

/**
 * sampled(rgb, grey, width, height, step, out): histograms at LAYOUT.brightHist / greyHist (zeroed by the caller);
 * out: f64 sum of brightness, i32 equal-channel pixels, i32 pixels sampled.
 */
function sampled(): WasmFunction {
  const [rgb, grey, width, height, step, out] = [0, 1, 2, 3, 4, 5];
  const [y, x, q, j, r, g, b, k, equal, count] = [6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
  const [sum, bright] = [16, 17];
  const increment = (address: number[], base: number): number[] => [...address, ...i32(2), I32_SHL, ...set(k), ...get(k), ...get(k), ...i32Load(base), ...i32(1), I32_ADD, ...i32Store(base)];
  const term = (channel: number, table: number): number[] => [...get(channel), ...i32(3), I32_SHL, ...f64Load(LAYOUT.tables + table * 2048)];
  const near = (a: number, c: number): number[] => [...get(a), ...get(c), I32_SUB, ...i32(2), I32_ADD, ...i32(4), I32_LE_U];
  return {
    name: 'sampled',
    params: [I32, I32, I32, I32, I32, I32],
    results: [],
    locals: [[10, I32], [2, F64]],
    body: [
      ...i32(0), ...set(y), ...i32(0), ...set(equal), ...i32(0), ...set(count), ...f64(0), ...set(sum),
      ...whileNot([...get(y), ...get(height), I32_GE_S], [
        ...i32(0), ...set(x), ...get(y), ...get(width), I32_MUL, ...set(q),
        ...whileNot([...get(x), ...get(width), I32_GE_S], [
          ...get(q), ...i32(3), I32_MUL, ...get(rgb), I32_ADD, ...set(j),
          ...get(j), ...i32Load8U(0), ...set(r), ...get(j), ...i32Load8U(1), ...set(g), ...get(j), ...i32Load8U(2), ...set(b),
          // (R + G) + B, sqrt, / 255: the JavaScript expression's order.
          ...term(r, 0), ...term(g, 1), F64_ADD, ...term(b, 2), F64_ADD, F64_SQRT, ...f64(255), F64_DIV, ...set(bright),
          // min(1023, trunc(bright * 1023))
          ...i32(1023), ...get(bright), ...f64(1023), F64_MUL, I32_TRUNC_F64_S, ...tee(k), ...get(k), ...i32(1023), I32_GT_S, SELECT,
          ...increment([], LAYOUT.brightHist),
          ...get(sum), ...get(bright), F64_ADD, ...set(sum),
          ...increment([...get(grey), ...get(q), I32_ADD, ...i32Load8U()], LAYOUT.greyHist),
          ...get(equal), ...near(r, g), ...near(g, b), I32_AND, I32_ADD, ...set(equal),
          ...inc(count, 1),
          ...inc(x, get(step)), ...inc(q, get(step)),
        ]),
        ...inc(y, get(step)),
      ]),
      ...get(out), ...get(sum), ...f64Store(0),
      ...get(out), ...get(equal), ...i32Store(8),
      ...get(out), ...get(count), ...i32Store(12),
    ],
  };
}

/** cellRows(grey, width, height, out): out[y * 32 + c] = sum of row y's grey values in column cell c (width = 32 k). */
function cellRows(): WasmFunction {
  const [grey, width, height, out] = [0, 1, 2, 3];
  const [k, end, rowEnd, sum] = [4, 5, 6, 7];
  return {
    name: 'cellRows',
    params: [I32, I32, I32, I32],
    results: [],
    locals: [[4, I32]],
    body: [
      ...get(width), ...i32(5), I32_SHR_U, ...set(k),
      ...get(width), ...get(height), I32_MUL, ...get(grey), I32_ADD, ...set(rowEnd),
      ...whileNot([...get(grey), ...get(rowEnd), I32_GE_S], [
        ...get(grey), ...get(k), I32_ADD, ...set(end), ...i32(0), ...set(sum),
        ...whileNot([...get(grey), ...get(end), I32_GE_S], [...get(sum), ...get(grey), ...i32Load8U(), I32_ADD, ...set(sum), ...inc(grey, 1)]),
        ...get(out), ...get(sum), ...i32Store(), ...inc(out, 4),
      ]),
    ],
  };
}

/**
 * countKeys(rgb, groups, keyAbove, keyBelow, out, high, low) -> pixels with key >= keyAbove; out: pixels with key <=
 * keyBelow. With high >= 0, 16 pixels (48 bytes) at a time are first screened: when every byte is <= high and >= low,
 * no pixel of them can be counted (the caller derives the bytes from the bounds: key <= 1000 high^2 < keyAbove, and
 * key >= 1000 low^2 > keyBelow), so they are skipped. Most pixels of the images sent here (night scenes) are, which
 * leaves one max / min per 16 pixels instead of their keys.
 */
function countKeys(): WasmFunction {
  const [rgb, groups, keyAbove, keyBelow, out, high, low] = [0, 1, 2, 3, 4, 5, 6];
  const [g] = [7];
  const [key, accB, accD, above, below, t, x0, x1, x2, highs, lows] = [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18];
  const sumLanes = (acc: number): number[] => [...get(acc), ...i32x4ExtractLane(0), ...get(acc), ...i32x4ExtractLane(1), I32_ADD, ...get(acc), ...i32x4ExtractLane(2), I32_ADD, ...get(acc), ...i32x4ExtractLane(3), I32_ADD];
  // Four pixels at rgb + offset, counted on both sides.
  const count4 = (offset: number): number[] => [
    ...keys4(rgb, t, key, offset), ...set(key),
    ...get(accB), ...get(key), ...get(above), ...I32X4_GE_S, ...I32X4_SUB, ...set(accB),
    ...get(accD), ...get(key), ...get(below), ...I32X4_LE_S, ...I32X4_SUB, ...set(accD),
  ];
  const extreme = (op: number[]): number[] => [...get(x0), ...get(x1), ...op, ...get(x2), ...op];
  return {
    name: 'countKeys',
    params: [I32, I32, I32, I32, I32, I32, I32],
    results: [I32],
    locals: [[1, I32], [11, V128]],
    body: [
      ...ZERO, ...set(accB), ...ZERO, ...set(accD),
      ...get(keyAbove), ...I32X4_SPLAT, ...set(above), ...get(keyBelow), ...I32X4_SPLAT, ...set(below),
      ...i32(0), ...set(g),
      ...get(high), ...i32(0), I32_GE_S,
      ...IF,
      ...get(high), ...I8X16_SPLAT, ...set(highs), ...get(low), ...I8X16_SPLAT, ...set(lows),
      ...whileNot([...get(g), ...i32(4), I32_ADD, ...get(groups), I32_GT_S], [
        ...get(rgb), ...v128Load(0), ...set(x0), ...get(rgb), ...v128Load(16), ...set(x1), ...get(rgb), ...v128Load(32), ...set(x2),
        ...extreme(I8X16_MAX_U), ...get(highs), ...I8X16_GT_U, ...extreme(I8X16_MIN_U), ...get(lows), ...I8X16_LT_U, ...V128_OR, ...V128_ANY_TRUE,
        ...IF, ...count4(0), ...count4(12), ...count4(24), ...count4(36), END,
        ...inc(rgb, 48), ...inc(g, 4),
      ]),
      END,
      ...whileNot([...get(g), ...get(groups), I32_GE_S], [...count4(0), ...inc(rgb, 12), ...inc(g, 1)]),
      ...get(out), ...sumLanes(accD), ...i32Store(),
      ...sumLanes(accB),
    ],
  };
}

/**
 * The brightness keys 241 R^2 + 691 G^2 + 68 B^2 of the 4 pixels at `rgb` + `offset` (12 bytes) as an i32x4, using the v128
 * locals `t` (the loaded bytes) and `scratch` (one channel) as scratch; the caller may store the result in `scratch`.
 */
function keys4(rgb: number, t: number, scratch: number, offset = 0): number[] {
  const z = 0x80; // swizzle lanes >= 16 read as zero
  const lanes = (c: number): number[] => [0, 1, 2, 3].flatMap((p) => [3 * p + c, z, z, z]);
  const square = (c: number, coefficient: number): number[] => [...get(t), ...v128Const(lanes(c)), ...I8X16_SWIZZLE, ...tee(scratch), ...get(scratch), ...I32X4_MUL, ...i32(coefficient), ...I32X4_SPLAT, ...I32X4_MUL];
  return [...get(rgb), ...v128Load(offset), ...set(t), ...square(0, 241), ...square(1, 691), ...I32X4_ADD, ...square(2, 68), ...I32X4_ADD];
}

/** keyHistogram(rgb, groups, hist): hist[key >> 10]++ for the 4 * groups pixels at rgb (u32 bins). */
function keyHistogram(): WasmFunction {
  const [rgb, groups, hist] = [0, 1, 2];
  const [g, at] = [3, 4];
  const [t, key] = [5, 6];
  const bump = (lane: number): number[] => [...get(key), ...i32x4ExtractLane(lane), ...i32(10), I32_SHR_U, ...i32(2), I32_SHL, ...get(hist), I32_ADD, ...set(at), ...get(at), ...get(at), ...i32Load(), ...i32(1), I32_ADD, ...i32Store()];
  return {
    name: 'keyHistogram',
    params: [I32, I32, I32],
    results: [],
    locals: [[2, I32], [2, V128]],
    body: [
      ...i32(0), ...set(g),
      ...whileNot([...get(g), ...get(groups), I32_GE_S], [...keys4(rgb, t, key), ...set(key), ...bump(0), ...bump(1), ...bump(2), ...bump(3), ...inc(rgb, 12), ...inc(g, 1)]),
    ],
  };
}

/**
 * keyCollect(rgb, groups, wanted, low, first, base): for each pixel whose bin (key >> 10) has a slot s = wanted[bin]
 * >= 0: low[s * 1024 + (key & 1023)]++, and first[...] = its index (base + position) if still -1.
 */
function keyCollect(): WasmFunction {
  const [rgb, groups, wanted, low, first, base] = [0, 1, 2, 3, 4, 5];
  const [g, k, slot, at] = [6, 7, 8, 9];
  const [t, key] = [10, 11];
  const one = (lane: number): number[] => [
    ...get(key), ...i32x4ExtractLane(lane), ...set(k),
    ...get(k), ...i32(10), I32_SHR_U, ...i32(2), I32_SHL, ...get(wanted), I32_ADD, ...i32Load(), ...set(slot),
    ...get(slot), ...i32(0), I32_GE_S,
    ...IF,
    ...get(slot), ...i32(10), I32_SHL, ...get(k), ...i32(1023), I32_AND, I32_ADD, ...i32(2), I32_SHL, ...set(at),
    ...get(low), ...get(at), I32_ADD, ...get(low), ...get(at), I32_ADD, ...i32Load(), ...i32(1), I32_ADD, ...i32Store(),
    ...get(first), ...get(at), I32_ADD, ...i32Load(), ...i32(0), I32_LT_S,
    ...IF, ...get(first), ...get(at), I32_ADD, ...get(base), ...get(g), ...i32(2), I32_SHL, I32_ADD, ...i32(lane), I32_ADD, ...i32Store(), END,
    END,
  ];
  return {
    name: 'keyCollect',
    params: [I32, I32, I32, I32, I32, I32],
    results: [],
    locals: [[4, I32], [2, V128]],
    body: [
      ...i32(0), ...set(g),
      ...whileNot([...get(g), ...get(groups), I32_GE_S], [...keys4(rgb, t, key), ...set(key), ...one(0), ...one(1), ...one(2), ...one(3), ...inc(rgb, 12), ...inc(g, 1)]),
    ],
  };
}

/** The module's bytes: imports env.mem, exports luma, laplacian, sampled, cellRows, countKeys, keyHistogram, keyCollect. */
export function pixelKernelModuleBytes(): Uint8Array {
  return assembleModule([luma(), laplacian(), sampled(), cellRows(), countKeys(), keyHistogram(), keyCollect()]);
}
