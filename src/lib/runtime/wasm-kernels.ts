/**
 * Kernels natix registers for the TensorFlow.js wasm backend, so that training on it is not dominated by scalar
 * fallbacks (each one found with tf.profile / --cpu-prof; bench/onnx-exec.ts measures them against what
 * tfjs-backend-wasm does, and test/unit/wasm-kernels.test.ts checks them against the cpu backend):
 *
 * - BatchMatMul: every product on XNNPACK (tfjs sends transposed or batched operands to a scalar loop, and TF.js's
 *   MatMul gradients are exactly those).
 * - Conv2DBackpropFilter (tfjs has none): stride phases of the input made contiguous once, then one XNNPACK GEMM per
 *   filter tap.
 * - Conv2DBackpropInput (tfjs' is a scalar loop): sub-pixel (phase) decomposition into stride-1 XNNPACK
 *   convolutions, no zeros spread into dy.
 * - Slice and Transpose: tfjs' Slice copies the whole input out of the heap on every call, and its Transpose of rank
 *   5+ allocates per element; natix copies through heap views and reduces a transpose's rank first.
 * - DepthwiseConv2dNativeBackpropFilter / ...BackpropInput (tfjs has neither): direct loops over heap views.
 *
 * Kernels here call other kernels directly (not through the engine) and release every intermediate themselves.
 */
import type {Tf} from './tf-type.js';

type TensorInfo = {dataId: object; shape: number[]; dtype: string};
type KernelFunc = (args: {inputs: Record<string, TensorInfo | TensorInfo[]>; backend: unknown; attrs: Record<string, unknown>}) => TensorInfo;

interface Backend {
  disposeData(dataId: object, force?: boolean): boolean;
  /** A new tensor in the wasm heap (contents undefined). */
  makeOutput(shape: number[], dtype: string): TensorInfo;
  /**
   * A view of a tensor's data in the wasm heap (Float32Array, Int32Array or Uint8Array by dtype); take it after the
   * last allocation (growing the heap detaches it).
   */
  typedArrayFromHeap(t: TensorInfo): Float32Array;
}

/** Explicit padding [top, bottom, left, right] of a convolution, as TensorFlow computes it. */
export function convPadding(pad: unknown, inH: number, inW: number, kh: number, kw: number, stride: [number, number], dilation: [number, number], outH: number, outW: number): [number, number, number, number] {
  if (pad === 'valid') return [0, 0, 0, 0];
  if (Array.isArray(pad)) {
    const p = pad as number[][];
    return [p[1]![0]!, p[1]![1]!, p[2]![0]!, p[2]![1]!];
  }
  if (typeof pad === 'number') return [pad, pad, pad, pad];
  const effKh = (kh - 1) * dilation[0] + 1;
  const effKw = (kw - 1) * dilation[1] + 1;
  const padH = Math.max(0, (outH - 1) * stride[0] + effKh - inH);
  const padW = Math.max(0, (outW - 1) * stride[1] + effKw - inW);
  return [Math.floor(padH / 2), padH - Math.floor(padH / 2), Math.floor(padW / 2), padW - Math.floor(padW / 2)];
}

let registered = false;

type Attrs = {strides: number | [number, number]; pad: unknown; dilations?: number | [number, number]};

function pair(v: number | [number, number] | undefined, d: number): [number, number] {
  return v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;
}

/** Where a depthwise convolution's output (oh, ow) reads its input for tap (i, j), and the loop bounds. */
function depthwiseGeometry(x: readonly number[], dy: readonly number[], kh: number, kw: number, attrs: Attrs) {
  const [n, inH, inW, c] = x as [number, number, number, number];
  const [, outH, outW, cm] = dy as [number, number, number, number];
  const [sh, sw] = pair(attrs.strides, 1);
  const [dh, dw] = pair(attrs.dilations, 1);
  const [top, , left] = convPadding(attrs.pad, inH, inW, kh, kw, [sh, sw], [dh, dw], outH, outW);
  return {n, inH, inW, c, outH, outW, m: cm / c, sh, sw, dh, dw, top, left};
}

/**
 * The depthwise convolution gradients (MobileNet / EfficientNet), as direct loops over heap views: tfjs-backend-wasm
 * has neither, and building them tap by tap from its Multiply/Sum kernels (what natix did before) spent ~2/3 of a
 * MobileNetV2 training step in the filter gradient alone. The filter gradient accumulates in float64.
 */
function registerDepthwiseKernels(tf: Tf): void {
  tf.registerKernel({
    kernelName: 'DepthwiseConv2dNativeBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ((args: {inputs: {x: TensorInfo; dy: TensorInfo}; backend: Backend; attrs: Attrs & {filterShape: [number, number, number, number]}}) => {
      const {x, dy} = args.inputs;
      const [kh, kw, , mult] = args.attrs.filterShape;
      const g = depthwiseGeometry(x.shape, dy.shape, kh, kw, args.attrs);
      const out = args.backend.makeOutput([kh, kw, g.c, mult], 'float32');
      const xs = args.backend.typedArrayFromHeap(x);
      const dys = args.backend.typedArrayFromHeap(dy);
      const dw = args.backend.typedArrayFromHeap(out);
      const cm = g.c * mult;
      const acc = new Float64Array(cm);
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          acc.fill(0);
          for (let b = 0; b < g.n; b++) {
            for (let oh = 0; oh < g.outH; oh++) {
              const y = oh * g.sh + i * g.dh - g.top;
              if (y < 0 || y >= g.inH) continue;
              for (let ow = 0; ow < g.outW; ow++) {
                const xx = ow * g.sw + j * g.dw - g.left;
                if (xx < 0 || xx >= g.inW) continue;
                const xo = ((b * g.inH + y) * g.inW + xx) * g.c;
                const yo = ((b * g.outH + oh) * g.outW + ow) * cm;
                if (mult === 1) {
                  for (let ch = 0; ch < cm; ch++) acc[ch] = acc[ch]! + xs[xo + ch]! * dys[yo + ch]!;
                } else {
                  for (let ch = 0; ch < cm; ch++) acc[ch] = acc[ch]! + xs[xo + ((ch / mult) | 0)]! * dys[yo + ch]!;
                }
              }
            }
          }
          dw.set(acc, (i * kw + j) * cm);
        }
      }
      return out;
    }) as never,
  });
  tf.registerKernel({
    kernelName: 'DepthwiseConv2dNativeBackpropInput',
    backendName: 'wasm',
    kernelFunc: ((args: {inputs: {dy: TensorInfo; filter: TensorInfo}; backend: Backend; attrs: Attrs & {inputShape: [number, number, number, number]}}) => {
      const {dy, filter} = args.inputs;
      const [kh, kw, , mult] = filter.shape as [number, number, number, number];
      const g = depthwiseGeometry(args.attrs.inputShape, dy.shape, kh, kw, args.attrs);
      const out = args.backend.makeOutput([...args.attrs.inputShape], 'float32');
      const dys = args.backend.typedArrayFromHeap(dy);
      const w = args.backend.typedArrayFromHeap(filter);
      const dx = args.backend.typedArrayFromHeap(out);
      dx.fill(0);
      const cm = g.c * mult;
      for (let b = 0; b < g.n; b++) {
        for (let oh = 0; oh < g.outH; oh++) {
          for (let ow = 0; ow < g.outW; ow++) {
            const yo = ((b * g.outH + oh) * g.outW + ow) * cm;
            for (let i = 0; i < kh; i++) {
              const y = oh * g.sh + i * g.dh - g.top;
              if (y < 0 || y >= g.inH) continue;
              for (let j = 0; j < kw; j++) {
                const xx = ow * g.sw + j * g.dw - g.left;
                if (xx < 0 || xx >= g.inW) continue;
                const xo = ((b * g.inH + y) * g.inW + xx) * g.c;
                const wo = (i * kw + j) * cm;
                if (mult === 1) {
                  for (let ch = 0; ch < cm; ch++) dx[xo + ch] = dx[xo + ch]! + dys[yo + ch]! * w[wo + ch]!;
                } else {
                  for (let ch = 0; ch < cm; ch++) {
                    const at = xo + ((ch / mult) | 0);
                    dx[at] = dx[at]! + dys[yo + ch]! * w[wo + ch]!;
                  }
                }
              }
            }
          }
        }
      }
      return out;
    }) as never,
  });
}

/** The wasm kernels natix builds on, called directly (inside a kernel, not through the engine). */
interface Base {
  reshape: KernelFunc;
  transpose: KernelFunc;
  padV2: KernelFunc;
  slice: KernelFunc;
  stridedSlice: KernelFunc;
  concat: KernelFunc;
  fill: KernelFunc;
  reverse: KernelFunc;
  conv2d: KernelFunc;
  /** tfjs' own BatchMatMul: XNNPACK for [1, M, K] x [1, K, N] without transposes, a scalar loop for anything else. */
  batchMatMul: KernelFunc;
}

/** Kernel calls inside one kernel invocation: every intermediate is released by `done()`, except what it returns. */
class Scope {
  private readonly temps: TensorInfo[] = [];
  constructor(
    readonly k: Base,
    private readonly backend: Backend,
  ) {}
  private call(f: KernelFunc, inputs: Record<string, TensorInfo | TensorInfo[]>, attrs: Record<string, unknown> = {}): TensorInfo {
    const t = f({inputs, attrs, backend: this.backend});
    this.temps.push(t);
    return t;
  }
  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.call(this.k.reshape, {x}, {shape});
  }
  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.call(this.k.transpose, {x}, {perm});
  }
  pad(x: TensorInfo, paddings: Array<[number, number]>): TensorInfo {
    return paddings.every(([a, b]) => a === 0 && b === 0) ? x : this.call(this.k.padV2, {x}, {paddings, constantValue: 0});
  }
  slice(x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    if (size.every((s, i) => begin[i] === 0 && s === x.shape[i])) return x;
    const out = sliceInto(this.backend, x, begin, size);
    this.temps.push(out);
    return out;
  }
  stridedSlice(x: TensorInfo, begin: number[], end: number[], strides: number[]): TensorInfo {
    return this.call(this.k.stridedSlice, {x}, {begin, end, strides, beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0});
  }
  concat(xs: TensorInfo[], axis: number): TensorInfo {
    return xs.length === 1 ? xs[0]! : this.call(this.k.concat, xs as unknown as Record<string, TensorInfo>, {axis});
  }
  zeros(shape: number[]): TensorInfo {
    return this.call(this.k.fill, {}, {shape, value: 0, dtype: 'float32'});
  }
  /** A new tensor to fill from JavaScript (see `view`). */
  output(shape: number[]): TensorInfo {
    const t = this.backend.makeOutput(shape, 'float32');
    this.temps.push(t);
    return t;
  }
  view(t: TensorInfo): Float32Array {
    return this.backend.typedArrayFromHeap(t);
  }
  reverse(x: TensorInfo, dims: number[]): TensorInfo {
    return this.call(this.k.reverse, {x}, {dims});
  }
  conv2d(x: TensorInfo, filter: TensorInfo): TensorInfo {
    return this.call(this.k.conv2d, {x, filter}, {strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined});
  }
  /** a [M, K] x b [K, N] (any leading shape of size 1) on XNNPACK's GEMM. */
  matMul(a: TensorInfo, b: TensorInfo, m: number, k: number, n: number): TensorInfo {
    return this.call(this.k.batchMatMul, {a: this.reshape(a, [1, m, k]), b: this.reshape(b, [1, k, n])}, {transposeA: false, transposeB: false});
  }
  /** Releases the intermediates (reference counted: a reshape shares its input's data); `result` is kept. */
  done(result: TensorInfo): TensorInfo {
    for (const t of this.temps) if (t !== result) this.backend.disposeData(t.dataId);
    return result;
  }
}

const product = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

function strides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) out[i] = out[i + 1]! * shape[i + 1]!;
  return out;
}

/**
 * x[begin : begin + size] copied run by run through views of the wasm heap. (tfjs-backend-wasm's Slice first copies
 * the whole input out of the heap, so slicing a batch item by item costs batch x input.) Every dtype but string.
 */
function sliceInto(backend: Backend, x: TensorInfo, begin: readonly number[], size: readonly number[]): TensorInfo {
  const out = backend.makeOutput([...size], x.dtype);
  const total = product(size);
  if (total === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const st = strides(x.shape);
  // Axes after `last` are taken whole, so each run is size[last] * st[last] contiguous elements.
  let last = size.length - 1;
  while (last > 0 && size[last] === x.shape[last] && begin[last] === 0) last--;
  const run = size[last]! * st[last]!;
  const index = new Array<number>(last).fill(0);
  let from = begin.reduce((acc, b, i) => acc + b * st[i]!, 0);
  for (let to = 0; to < total; to += run) {
    dst.set(src.subarray(from, from + run), to);
    // Advance the odometer over the outer axes 0..last-1.
    for (let a = last - 1; a >= 0; a--) {
      from += st[a]!;
      if (++index[a]! < size[a]!) break;
      from -= size[a]! * st[a]!;
      index[a] = 0;
    }
  }
  return out;
}

/** The Slice kernel on heap views (see sliceInto). */
function sliceKernel(original: KernelFunc, parse: (x: TensorInfo, begin: unknown, size: unknown) => [number[], number[]]) {
  return (args: {inputs: {x: TensorInfo}; backend: Backend; attrs: {begin: unknown; size: unknown}}): TensorInfo => {
    const {x} = args.inputs;
    if (x.dtype === 'string') return original(args as never);
    const [begin, size] = parse(x, args.attrs.begin, args.attrs.size);
    return sliceInto(args.backend, x, begin, size);
  };
}

/**
 * Transpose with its rank reduced first: size-1 axes dropped and axes that stay neighbours merged, so most
 * transposes reach tfjs' rank-2/3/4 loops; what is still of rank 5 or more (ViT's [B, T, 3, heads, dim] ->
 * [3, B, heads, T, dim]) is copied in JavaScript run by run, where tfjs' generic loop allocates index vectors for
 * every element (~25x slower).
 */
function transposeKernel(original: KernelFunc, reshape: KernelFunc) {
  return (args: {inputs: {x: TensorInfo}; backend: Backend; attrs: {perm: number[]}}): TensorInfo => {
    const {x} = args.inputs;
    const {perm} = args.attrs;
    const backend = args.backend;
    if (x.dtype === 'string') return original(args as never);
    const outShape = perm.map((p) => x.shape[p]!);
    // Reduce: keep axes of size > 1, then merge runs p, p+1 in perm order.
    const kept = perm.filter((p) => x.shape[p]! > 1);
    const groups: number[][] = [];
    for (const p of kept) {
      const g = groups[groups.length - 1];
      if (g && g[g.length - 1] === p - 1 - countSkipped(x.shape, g[g.length - 1]!, p)) g.push(p);
      else groups.push([p]);
    }
    const order = [...groups].sort((a, b) => a[0]! - b[0]!);
    const shape = order.map((g) => product(g.map((p) => x.shape[p]!)));
    const reducedPerm = groups.map((g) => order.indexOf(g));
    const b = {backend};
    if (reducedPerm.every((p, i) => p === i)) return reshape({inputs: {x}, attrs: {shape: outShape}, ...b});
    if (shape.length <= 4) {
      const flat = reshape({inputs: {x}, attrs: {shape}, ...b});
      const moved = original({inputs: {x: flat}, attrs: {perm: reducedPerm}, ...b});
      const out = reshape({inputs: {x: moved}, attrs: {shape: outShape}, ...b});
      backend.disposeData(flat.dataId);
      backend.disposeData(moved.dataId);
      return out;
    }
    // Rank >= 5 after reduction: the last output axis is a run of `inner` elements in the input only when it is the
    // input's last axis too; otherwise runs of 1.
    const out = backend.makeOutput(outShape, x.dtype);
    const src = backend.typedArrayFromHeap(x);
    const dst = backend.typedArrayFromHeap(out);
    const st = strides(shape);
    const rank = shape.length;
    const lastStays = reducedPerm[rank - 1] === rank - 1;
    const inner = lastStays ? shape[rank - 1]! : 1;
    const outer = lastStays ? rank - 1 : rank;
    const dims = reducedPerm.slice(0, outer).map((p) => shape[p]!);
    const steps = reducedPerm.slice(0, outer).map((p) => st[p]!);
    const index = new Array<number>(outer).fill(0);
    const total = product(shape);
    let from = 0;
    for (let to = 0; to < total; to += inner) {
      if (inner === 1) dst[to] = src[from]!;
      else dst.set(src.subarray(from, from + inner), to);
      for (let a = outer - 1; a >= 0; a--) {
        from += steps[a]!;
        if (++index[a]! < dims[a]!) break;
        from -= dims[a]! * steps[a]!;
        index[a] = 0;
      }
    }
    return out;
  };
}

/** How many size-1 axes lie strictly between axes a and b (a < b). */
function countSkipped(shape: readonly number[], a: number, b: number): number {
  let n = 0;
  for (let i = a + 1; i < b; i++) if (shape[i] === 1) n++;
  return n;
}

/**
 * BatchMatMul with every product on XNNPACK: tfjs-backend-wasm runs only the plain 2-D case there and everything else
 * (a transposed operand, a batch) in a scalar loop 5-20x slower - and TF.js's MatMul gradients are exactly those
 * cases (dA = dy.B^T, dB = A^T.dy). Transposed operands are transposed once (a copy, O(size)), a batch that the
 * other operand broadcasts over is folded into the rows, and a true batch is one product per item. Broadcast shapes
 * other than "equal" or "one side 1" go to tfjs' kernel.
 */
function batchMatMulKernel(base: Base) {
  return (args: {inputs: {a: TensorInfo; b: TensorInfo}; backend: Backend; attrs: {transposeA: boolean; transposeB: boolean}}): TensorInfo => {
    const {a, b} = args.inputs;
    const {transposeA, transposeB} = args.attrs;
    const ra = a.shape.length;
    const rb = b.shape.length;
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const batchA = product(outerA);
    const batchB = product(outerB);
    const m = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
    const k = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
    const n = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
    const rank = Math.max(outerA.length, outerB.length);
    const padA = [...new Array<number>(rank - outerA.length).fill(1), ...outerA];
    const padB = [...new Array<number>(rank - outerB.length).fill(1), ...outerB];
    const sameBatch = padA.every((d, i) => d === padB[i]);
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || m * k * n === 0 || !(batchA === 1 || batchB === 1 || sameBatch) || k !== (transposeB ? b.shape[rb - 1] : b.shape[rb - 2])) {
      return base.batchMatMul(args as never);
    }
    const outShape = [...padA.map((d, i) => Math.max(d, padB[i]!)), m, n];
    const s = new Scope(base, args.backend);
    let a3 = s.reshape(a, transposeA ? [batchA, k, m] : [batchA, m, k]);
    if (transposeA) a3 = s.transpose(a3, [0, 2, 1]);
    let b3 = s.reshape(b, transposeB ? [batchB, n, k] : [batchB, k, n]);
    if (transposeB) b3 = s.transpose(b3, [0, 2, 1]);
    let out: TensorInfo;
    if (batchB === 1) {
      out = s.matMul(a3, b3, batchA * m, k, n);
    } else {
      const items: TensorInfo[] = [];
      for (let i = 0; i < batchB; i++) {
        const ai = batchA === 1 ? a3 : s.slice(a3, [i, 0, 0], [1, m, k]);
        items.push(s.matMul(ai, s.slice(b3, [i, 0, 0], [1, k, n]), m, k, n));
      }
      out = s.concat(items, 0);
    }
    return s.done(s.reshape(out, outShape));
  };
}

type ConvAttrs = {strides: number | [number, number]; pad: unknown; dataFormat?: string; dilations?: number | [number, number]};

/**
 * The filter gradient: for every tap (i, j), dW[i, j] = window^T . dy, where window is the input the tap met
 * ([N*Ho*Wo, Ci]) and dy is [N*Ho*Wo, Co]. Windows are made contiguous instead of gathered per tap: the padded input
 * is split once into its stride phases (phase (a, b) holds rows s*q + a and columns s*p + b; at stride 1 the only
 * phase is the padded input), each [N, Hq, Wq, Ci] with Hq = Ho + (kh-1)*dh/sh rows, transposed once to channels-first
 * [Ci, N*Hq*Wq], and dy is zero-extended to the same grid. Tap (i, j) then reads its phase shifted by a fixed number
 * of columns - a 2-D slice with long contiguous rows - and dW[i, j] = window^T . dy is one XNNPACK GEMM, with dy
 * packed once for all taps (XNNPACK caches the packed operand by tensor). Per-tap strided gathers (tfjs'
 * StridedSlice indexes every element) and tfjs' BatchMatMul with a transposed operand (a scalar loop), what natix
 * did before, cost 5x as much. The zero-extended columns (Wq - Wo) add a few percent of work.
 */
function conv2dBackpropFilterKernel(base: Base) {
  return (args: {inputs: {x: TensorInfo; dy: TensorInfo}; backend: Backend; attrs: ConvAttrs & {filterShape: [number, number, number, number]}}): TensorInfo => {
    const {x, dy} = args.inputs;
    const {strides, pad, dataFormat, dilations, filterShape} = args.attrs;
    if (dataFormat && dataFormat !== 'NHWC') throw new Error('Conv2DBackpropFilter (wasm): only NHWC is supported');
    const [kh, kw, ci, co] = filterShape;
    const [sh, sw] = pair(strides, 1);
    const [dh, dw] = pair(dilations, 1);
    const [n, inH, inW] = x.shape as [number, number, number, number];
    const [, outH, outW] = dy.shape as [number, number, number, number];
    const [top, , left] = convPadding(pad, inH, inW, kh, kw, [sh, sw], [dh, dw], outH, outW);
    const s = new Scope(base, args.backend);
    const hq = outH + Math.floor(((kh - 1) * dh) / sh);
    const wq = outW + Math.floor(((kw - 1) * dw) / sw);
    const cells = n * hq * wq;
    // Which phases the taps use, and where each tap starts in its phase.
    const phaseOf = new Map<number, number>();
    const taps: Array<{phase: number; shift: number}> = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const key = ((i * dh) % sh) * sw + ((j * dw) % sw);
        if (!phaseOf.has(key)) phaseOf.set(key, phaseOf.size);
        taps.push({phase: phaseOf.get(key)!, shift: Math.floor((i * dh) / sh) * wq + Math.floor((j * dw) / sw)});
      }
    }
    let phases: TensorInfo;
    if (sh === 1 && sw === 1) {
      phases = s.pad(x, [[0, 0], [top, hq - inH - top], [left, wq - inW - left], [0, 0]]);
      if (hq - inH - top < 0 || wq - inW - left < 0) phases = s.slice(phases, [0, 0, 0, 0], [n, hq, wq, ci]);
    } else {
      phases = s.output([phaseOf.size, cells, ci]);
      const dst = s.view(phases);
      const src = s.view(x);
      dst.fill(0);
      for (const [key, index] of phaseOf) {
        const a = Math.floor(key / sw);
        const b = key % sw;
        // Columns q with 0 <= sw*q + b - left < inW.
        const q0 = Math.max(0, Math.ceil((left - b) / sw));
        const q1 = Math.min(wq, Math.floor((inW - 1 + left - b) / sw) + 1);
        if (q1 <= q0) continue;
        for (let img = 0; img < n; img++) {
          for (let r = 0; r < hq; r++) {
            const y = sh * r + a - top;
            if (y < 0 || y >= inH) continue;
            const rowFrom = ((img * inH + y) * inW + (sw * q0 + b - left)) * ci;
            const rowTo = (index * cells + (img * hq + r) * wq + q0) * ci;
            if (sw === 1) {
              dst.set(src.subarray(rowFrom, rowFrom + (q1 - q0) * ci), rowTo);
            } else {
              for (let q = 0; q < q1 - q0; q++) dst.set(src.subarray(rowFrom + q * sw * ci, rowFrom + (q * sw + 1) * ci), rowTo + q * ci);
            }
          }
        }
      }
    }
    // [phase * Ci + c, cell]
    const channelsFirst = s.reshape(s.transpose(s.reshape(phases, [phaseOf.size, cells, ci]), [0, 2, 1]), [phaseOf.size * ci, cells]);
    // dy on the phase grid, rows up to the last real output: [K, Co].
    const rows = (n - 1) * hq * wq + (outH - 1) * wq + outW;
    const grid = s.slice(s.reshape(s.pad(dy, [[0, 0], [0, hq - outH], [0, wq - outW], [0, 0]]), [cells, co]), [0, 0], [rows, co]);
    const products = taps.map(({phase, shift}) => s.matMul(s.slice(channelsFirst, [phase * ci, shift], [ci, rows]), grid, ci, rows, co));
    return s.done(s.reshape(s.concat(products, 0), [kh, kw, ci, co]));
  };
}

/**
 * Rows [top, bottom) and columns [left, right) of an NHWC tensor, zero where the ranges leave the tensor: one crop
 * and one pad at most.
 */
function window(s: Scope, x: TensorInfo, [top, bottom]: [number, number], [left, right]: [number, number]): TensorInfo {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const y0 = Math.min(h, Math.max(0, top));
  const y1 = Math.max(y0, Math.min(h, bottom));
  const x0 = Math.min(w, Math.max(0, left));
  const x1 = Math.max(x0, Math.min(w, right));
  if (y1 === y0 || x1 === x0) return s.zeros([n, bottom - top, right - left, c]);
  return s.pad(s.slice(x, [0, y0, x0, 0], [n, y1 - y0, x1 - x0, c]), [[0, 0], [y0 - top, bottom - y1], [x0 - left, right - x1], [0, 0]]);
}

/**
 * The input gradient (replaces tfjs-backend-wasm's, a scalar loop), by sub-pixel (phase) decomposition: with stride
 * s, the input rows i with (i + pad) mod s = r only ever met the filter taps r, r + s, r + 2s, ... So dx splits into
 * sh*sw phases, each a stride-1 convolution (XNNPACK) of dy with that phase's taps - rotated by 180 degrees, in/out
 * channels swapped - and no zeros are spread into dy: a 3x3 stride-2 layer does 9 taps' work instead of 36. The
 * phase filters are cut from the filter and the phases' outputs interleaved into dx in JavaScript (tfjs' wasm
 * Reverse, StridedSlice and rank-6 Transpose index every element and cost more than the convolutions). Stride 1 is
 * the one-phase case: a single convolution of the padded dy.
 *
 * Along one axis (input length H, kernel k, stride s, leading pad t, dy length O), phase r computes rows
 * q in [q0, q1) (input row q*s + r - t): dx = sum_m dy[q - m] * w[r + m*s] over its Kr = ceil((k - r) / s) taps,
 * a valid correlation of dy[q0 - Kr + 1 .. q1) with those taps reversed.
 */
function conv2dBackpropInputKernel(base: Base, original: KernelFunc | undefined) {
  return (args: {inputs: {dy: TensorInfo; filter: TensorInfo}; backend: Backend; attrs: ConvAttrs & {inputShape: [number, number, number, number]}}): TensorInfo => {
    const {dy, filter} = args.inputs;
    const {strides, pad, dataFormat, inputShape} = args.attrs;
    const dilation = pair(args.attrs.dilations, 1);
    if ((dataFormat && dataFormat !== 'NHWC') || dilation[0] !== 1 || dilation[1] !== 1) {
      if (!original) throw new Error('Conv2DBackpropInput (wasm): only NHWC without dilations is supported');
      return original(args as never);
    }
    const [n, inH, inW, ci] = inputShape;
    const [kh, kw, , co] = filter.shape as [number, number, number, number];
    const [, outH, outW] = dy.shape as [number, number, number, number];
    const stride = pair(strides, 1);
    const [top, , left] = convPadding(pad, inH, inW, kh, kw, stride, [1, 1], outH, outW);
    const s = new Scope(base, args.backend);
    const axes = [
      {len: inH, k: kh, s: stride[0], t: top},
      {len: inW, k: kw, s: stride[1], t: left},
    ].map((a) => ({...a, q0: Math.floor(a.t / a.s), q1: Math.ceil((a.len + a.t) / a.s)}));
    const [ah, aw] = axes as [(typeof axes)[0], (typeof axes)[0]];
    const rowsOut = ah.q1 - ah.q0;
    const colsOut = aw.q1 - aw.q0;
    // Phase (rh, rw): taps[mh, mw, o, c] = filter[rh + (krh-1-mh)*sh, rw + (krw-1-mw)*sw, c, o].
    const plan: Array<{rh: number; rw: number; krh: number; krw: number; taps?: TensorInfo}> = [];
    for (let rh = 0; rh < ah.s; rh++) {
      for (let rw = 0; rw < aw.s; rw++) {
        const krh = Math.max(0, Math.ceil((kh - rh) / ah.s));
        const krw = Math.max(0, Math.ceil((kw - rw) / aw.s));
        plan.push({rh, rw, krh, krw, taps: krh && krw ? s.output([krh, krw, co, ci]) : undefined});
      }
    }
    const f = s.view(filter);
    for (const p of plan) {
      if (!p.taps) continue;
      const t = s.view(p.taps);
      for (let mh = 0; mh < p.krh; mh++) {
        for (let mw = 0; mw < p.krw; mw++) {
          const src = ((p.rh + (p.krh - 1 - mh) * ah.s) * kw + p.rw + (p.krw - 1 - mw) * aw.s) * ci * co;
          const dst = (mh * p.krw + mw) * co * ci;
          // [c, o] -> [o, c] in 32x32 blocks (a plain loop writes with stride ci and misses the cache).
          for (let c0 = 0; c0 < ci; c0 += 32) {
            for (let o0 = 0; o0 < co; o0 += 32) {
              const c1 = Math.min(ci, c0 + 32);
              const o1 = Math.min(co, o0 + 32);
              for (let c = c0; c < c1; c++) for (let o = o0; o < o1; o++) t[dst + o * ci + c] = f[src + c * co + o]!;
            }
          }
        }
      }
    }
    const results = plan.map((p) => (p.taps ? s.conv2d(window(s, dy, [ah.q0 - p.krh + 1, ah.q1], [aw.q0 - p.krw + 1, aw.q1]), p.taps) : undefined));
    if (plan.length === 1) return s.done(results[0]!); // stride 1: rows q0.. q1 are exactly the input rows
    // Interleave: phase (rh, rw)'s element (q_h, q_w) is dx[(q_h - q0_h)*sh + rh - offH, (q_w - q0_w)*sw + rw - offW].
    const out = s.output([n, inH, inW, ci]);
    const dx = s.view(out);
    if (results.some((r) => !r)) dx.fill(0);
    const offH = ah.t - ah.q0 * ah.s;
    const offW = aw.t - aw.q0 * aw.s;
    plan.forEach((p, i) => {
      if (!results[i]) return;
      const r = s.view(results[i]!);
      for (let b = 0; b < n; b++) {
        for (let qh = 0; qh < rowsOut; qh++) {
          const y = qh * ah.s + p.rh - offH;
          if (y < 0 || y >= inH) continue;
          for (let qw = 0; qw < colsOut; qw++) {
            const x = qw * aw.s + p.rw - offW;
            if (x < 0 || x >= inW) continue;
            const from = ((b * rowsOut + qh) * colsOut + qw) * ci;
            dx.set(r.subarray(from, from + ci), ((b * inH + y) * inW + x) * ci);
          }
        }
      }
    });
    return s.done(out);
  };
}

export function registerWasmTrainingKernels(tf: Tf): void {
  if (registered || tf.getKernel('Conv2DBackpropFilter', 'wasm')) return;
  registered = true;
  const kernel = (name: string): KernelFunc => {
    const k = tf.getKernel(name, 'wasm');
    if (!k) throw new Error(`wasm backend lacks ${name}`);
    return k.kernelFunc as unknown as KernelFunc;
  };
  const parseSlice = (x: TensorInfo, begin: unknown, size: unknown): [number[], number[]] => tf.slice_util.parseSliceParams(x as never, begin as number[], size as number[]) as [number[], number[]];
  const base: Base = {
    reshape: kernel('Reshape'),
    transpose: transposeKernel(kernel('Transpose'), kernel('Reshape')) as KernelFunc,
    padV2: kernel('PadV2'),
    slice: sliceKernel(kernel('Slice'), parseSlice) as KernelFunc,
    stridedSlice: kernel('StridedSlice'),
    concat: kernel('Concat'),
    fill: kernel('Fill'),
    reverse: kernel('Reverse'),
    conv2d: kernel('Conv2D'),
    batchMatMul: kernel('BatchMatMul'),
  };
  if (!tf.getKernel('DepthwiseConv2dNativeBackpropFilter', 'wasm')) registerDepthwiseKernels(tf);
  const originalInput = tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc as unknown as KernelFunc | undefined;
  const replace = (kernelName: string, kernelFunc: unknown): void => {
    if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({kernelName, backendName: 'wasm', kernelFunc: kernelFunc as never});
  };
  replace('Slice', base.slice);
  replace('Transpose', base.transpose);
  replace('BatchMatMul', batchMatMulKernel(base));
  replace('Conv2DBackpropFilter', conv2dBackpropFilterKernel(base));
  replace('Conv2DBackpropInput', conv2dBackpropInputKernel(base, originalInput));
}
