/**
 * A tiny WebAssembly assembler: opcodes as byte arrays and the module framing, so small SIMD kernels can be written
 * in TypeScript and assembled at load time (no toolchain, no binary blob in the repository). Only what natix's
 * kernels use; every opcode is named as in the WebAssembly spec. Used by quality/pixel-kernels-wasm.ts and
 * image/resample-wasm.ts.
 */

export const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
};

export const sleb = (n: number): number[] => {
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

export const I32 = 0x7f;
export const I64 = 0x7e;
export const F64 = 0x7c;
export const V128 = 0x7b;

// Control and locals.
export const BLOCK = [0x02, 0x40];
export const LOOP = [0x03, 0x40];
export const IF = [0x04, 0x40];
export const END = 0x0b;
export const br = (depth: number): number[] => [0x0c, ...uleb(depth)];
export const brIf = (depth: number): number[] => [0x0d, ...uleb(depth)];
export const get = (local: number): number[] => [0x20, ...uleb(local)];
export const set = (local: number): number[] => [0x21, ...uleb(local)];
export const tee = (local: number): number[] => [0x22, ...uleb(local)];
export const SELECT = 0x1b;

// Memory (memarg: log2 alignment, offset).
export const i32Load = (offset = 0): number[] => [0x28, 2, ...uleb(offset)];
export const i64Load = (offset = 0): number[] => [0x29, 3, ...uleb(offset)];
export const f64Load = (offset = 0): number[] => [0x2b, 3, ...uleb(offset)];
export const i32Load8U = (offset = 0): number[] => [0x2d, 0, ...uleb(offset)];
export const i32Store = (offset = 0): number[] => [0x36, 2, ...uleb(offset)];
export const i64Store = (offset = 0): number[] => [0x37, 3, ...uleb(offset)];
export const f64Store = (offset = 0): number[] => [0x39, 3, ...uleb(offset)];
export const i32Store8 = (offset = 0): number[] => [0x3a, 0, ...uleb(offset)];

// Numbers.
export const i32 = (v: number): number[] => [0x41, ...sleb(v)];
export const i64Zero = [0x42, 0];
export const f64 = (v: number): number[] => [0x44, ...new Uint8Array(Float64Array.of(v).buffer)];
export const I32_EQZ = 0x45;
export const I32_LT_S = 0x48;
export const I32_GT_S = 0x4a;
export const I32_LE_U = 0x4d;
export const I32_GE_S = 0x4e;
export const I32_GE_U = 0x4f;
export const I32_ADD = 0x6a;
export const I32_SUB = 0x6b;
export const I32_MUL = 0x6c;
export const I32_AND = 0x71;
export const I32_SHL = 0x74;
export const I32_SHR_U = 0x76;
export const I64_ADD = 0x7c;
export const I64_MUL = 0x7e;
export const F64_SQRT = 0x9f;
export const F64_ADD = 0xa0;
export const F64_MUL = 0xa2;
export const F64_DIV = 0xa3;
export const I32_TRUNC_F64_S = 0xaa;
export const I64_EXTEND_I32_S = 0xac;

// SIMD (0xfd prefix).
const simd = (op: number, ...imm: number[]): number[] => [0xfd, ...uleb(op), ...imm];
export const v128Load = (offset = 0): number[] => simd(0, 4, ...uleb(offset));
export const v128Store = (offset = 0): number[] => simd(11, 4, ...uleb(offset));
export const v128Const = (bytes: number[]): number[] => simd(12, ...bytes);
export const v128Load32Zero = (offset = 0): number[] => simd(92, 2, ...uleb(offset));
export const v128Load64Zero = (offset = 0): number[] => simd(93, 3, ...uleb(offset));
export const v128Store32Lane = (lane: number, offset = 0): number[] => simd(90, 2, ...uleb(offset), lane);
export const v128Store64Lane = (lane: number, offset = 0): number[] => simd(91, 3, ...uleb(offset), lane);
export const i8x16Shuffle = (lanes: number[]): number[] => simd(13, ...lanes);
export const I8X16_SWIZZLE = simd(14);
export const I8X16_SPLAT = simd(15);
export const I16X8_SPLAT = simd(16);
export const I32X4_SPLAT = simd(17);
export const i32x4ExtractLane = (lane: number): number[] => simd(27, lane);
export const I8X16_LT_U = simd(38);
export const I8X16_GT_U = simd(40);
export const I32X4_LE_S = simd(61);
export const I32X4_GE_S = simd(63);
export const V128_OR = simd(80);
export const V128_ANY_TRUE = simd(83);
export const I8X16_NARROW_I16X8_U = simd(102);
export const I8X16_MIN_U = simd(119);
export const I8X16_MAX_U = simd(121);
export const I32X4_EXTADD_PAIRWISE_I16X8_S = simd(126);
export const I16X8_NARROW_I32X4_U = simd(134);
export const I16X8_EXTEND_LOW_I8X16_U = simd(137);
export const I16X8_EXTEND_HIGH_I8X16_U = simd(138);
export const I16X8_SHL = simd(139);
export const I16X8_SHR_U = simd(141);
export const I16X8_ADD = simd(142);
export const I16X8_SUB = simd(145);
export const I16X8_MUL = simd(149);
export const I32X4_EXTEND_LOW_I16X8_U = simd(169);
export const I32X4_EXTEND_HIGH_I16X8_U = simd(170);
export const I32X4_SHR_S = simd(172);
export const I32X4_ADD = simd(174);
export const I32X4_SUB = simd(177);
export const I32X4_MUL = simd(181);
export const I32X4_DOT_I16X8_S = simd(186);

/** for (;;) { if (cond) break; body } with `cond` leaving an i32 on the stack. */
export const whileNot = (cond: number[], body: number[]): number[] => [...BLOCK, ...LOOP, ...cond, ...brIf(1), ...body, ...br(0), END, END];
/** local += by (i32). */
export const inc = (local: number, by: number | number[]): number[] => [...get(local), ...(typeof by === 'number' ? i32(by) : by), I32_ADD, ...set(local)];

export interface WasmFunction {
  name: string;
  /** Parameter types (params are the first locals). */
  params: number[];
  /** Result types (at most one). */
  results: number[];
  /** Extra locals, in order after the params, as [count, type] runs. */
  locals: Array<[number, number]>;
  body: number[];
}

const section = (id: number, content: number[]): number[] => [id, ...uleb(content.length), ...content];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const str = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'utf8')];

/** A module importing `env.mem` (one memory, at least one page) and exporting the functions by name. */
export function assembleModule(functions: WasmFunction[]): Uint8Array {
  const types = functions.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))]);
  const bodies = functions.map((f) => {
    const content = [...vec(f.locals.map(([count, type]) => [...uleb(count), type])), ...f.body, END];
    return [...uleb(content.length), ...content];
  });
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec([[...str('env'), ...str('mem'), 0x02, 0x00, 0x01]])),
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    ...section(7, vec(functions.map((f, i) => [...str(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(bodies)),
  ]);
}

/** The part of the WebAssembly JS API natix uses (the project's TypeScript libs do not declare it). */
export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Memory: new (descriptor: {initial: number}) => {buffer: ArrayBuffer; grow(pages: number): number};
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => {exports: Record<string, unknown>};
}

/** The runtime's WebAssembly, when it validates `bytes` (SIMD needs Node >= 16); else undefined. */
export function wasmApiFor(bytes: Uint8Array): WasmApi | undefined {
  const wa = (globalThis as unknown as {WebAssembly?: WasmApi}).WebAssembly;
  return wa && wa.validate(bytes) ? wa : undefined;
}
