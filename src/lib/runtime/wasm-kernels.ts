/**
 * Training kernels the TensorFlow.js wasm backend lacks, built from kernels it has.
 *
 * Conv2DBackpropFilter (the gradient of a 2-D convolution with respect to its filter), for NHWC input x
 * [N, H, W, Ci] and output gradient dy [N, Ho, Wo, Co]: for every kernel offset (i, j), the strided window of the
 * padded input that met that filter tap, flattened to [N*Ho*Wo, Ci], times dy flattened to [N*Ho*Wo, Co], gives
 * dW[i, j] = window^T . dy ([Ci, Co]): kh*kw matrix products. One im2col product instead (patches
 * [N*Ho*Wo, kh*kw*Ci]) measured 0.8x as fast here (bench/onnx-exec.ts: the patch copy costs more than it saves), so
 * natix keeps the per-tap form. Checked against the cpu backend in test/unit/wasm-kernels.test.ts.
 *
 * Conv2DBackpropInput (gradient with respect to the input) replaces tfjs-backend-wasm's own, a plain loop that runs
 * 10-40x slower than a convolution of the same size: dy is spread by the strides (zeros in between), padded, and
 * convolved (XNNPACK) with the filter rotated by 180 degrees and its channel axes swapped.
 *
 * DepthwiseConv2dNativeBackpropFilter / ...BackpropInput (for the MobileNet-style zoo network), the same way:
 * per filter tap, the input window times dy summed over batch and positions (filter); dy spread back with its
 * strides (zeros inserted), shifted to each tap's offset and weighted by that tap (input).
 */
import type {Tf} from './tf-type.js';

type TensorInfo = {dataId: object; shape: number[]; dtype: string};
type KernelFunc = (args: {inputs: Record<string, TensorInfo | TensorInfo[]>; backend: unknown; attrs: Record<string, unknown>}) => TensorInfo;

interface Backend {
  disposeData(dataId: object, force?: boolean): boolean;
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

interface KernelSet {
  padV2: KernelFunc;
  stridedSlice: KernelFunc;
  reshape: KernelFunc;
  concat: KernelFunc;
  multiply: KernelFunc;
  sum: KernelFunc;
  add: KernelFunc;
  fill: KernelFunc;
  slice: KernelFunc;
}

type Attrs = {strides: number | [number, number]; pad: unknown; dilations?: number | [number, number]};

function pair(v: number | [number, number] | undefined, d: number): [number, number] {
  return v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;
}

function registerDepthwiseKernels(tf: Tf, k: KernelSet): void {
  const run = (backend: Backend, temps: TensorInfo[]) => ({
    keep: <T extends TensorInfo>(t: T): T => (temps.push(t), t),
    done: () => temps.forEach((t) => backend.disposeData(t.dataId)),
  });
  tf.registerKernel({
    kernelName: 'DepthwiseConv2dNativeBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ((args: {inputs: {x: TensorInfo; dy: TensorInfo}; backend: Backend; attrs: Attrs & {filterShape: [number, number, number, number]}}) => {
      const {x, dy} = args.inputs;
      const backend = args.backend;
      const [kh, kw, c, m] = args.attrs.filterShape;
      const stride = pair(args.attrs.strides, 1);
      const [n, inH, inW] = x.shape as [number, number, number, number];
      const [, outH, outW] = dy.shape as [number, number, number, number];
      const [top, bottom, left, right] = convPadding(args.attrs.pad, inH, inW, kh, kw, stride, [1, 1], outH, outW);
      const {keep, done} = run(backend, []);
      const b = {backend};
      const padded = top + bottom + left + right > 0 ? keep(k.padV2({inputs: {x}, attrs: {paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0}, ...b})) : x;
      const dy5 = keep(k.reshape({inputs: {x: dy}, attrs: {shape: [n, outH, outW, c, m]}, ...b}));
      const taps: TensorInfo[] = [];
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const window = keep(k.stridedSlice({inputs: {x: padded}, attrs: {begin: [0, i, j, 0], end: [n, i + (outH - 1) * stride[0] + 1, j + (outW - 1) * stride[1] + 1, c], strides: [1, stride[0], stride[1], 1], beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0}, ...b}));
          const w5 = keep(k.reshape({inputs: {x: window}, attrs: {shape: [n, outH, outW, c, 1]}, ...b}));
          const prod = keep(k.multiply({inputs: {a: w5, b: dy5}, attrs: {}, ...b}));
          const summed = keep(k.sum({inputs: {x: prod}, attrs: {axis: [0, 1, 2], keepDims: false}, ...b}));
          taps.push(keep(k.reshape({inputs: {x: summed}, attrs: {shape: [1, c, m]}, ...b})));
        }
      }
      const stacked = keep(k.concat({inputs: taps as unknown as Record<string, TensorInfo>, attrs: {axis: 0}, ...b}));
      const result = k.reshape({inputs: {x: stacked}, attrs: {shape: [kh, kw, c, m]}, ...b});
      done();
      return result;
    }) as never,
  });
  tf.registerKernel({
    kernelName: 'DepthwiseConv2dNativeBackpropInput',
    backendName: 'wasm',
    kernelFunc: ((args: {inputs: {dy: TensorInfo; filter: TensorInfo}; backend: Backend; attrs: Attrs & {inputShape: [number, number, number, number]}}) => {
      const {dy, filter} = args.inputs;
      const backend = args.backend;
      const [n, inH, inW, c] = args.attrs.inputShape;
      const [kh, kw, , m] = filter.shape as [number, number, number, number];
      const stride = pair(args.attrs.strides, 1);
      const [, outH, outW] = dy.shape as [number, number, number, number];
      const [top, bottom, left, right] = convPadding(args.attrs.pad, inH, inW, kh, kw, stride, [1, 1], outH, outW);
      const {keep, done} = run(backend, []);
      const b = {backend};
      // Sum over the channel multiplier first is not possible (each tap weights differently): keep dy as [.., c, m].
      let spread = dy;
      const rows = (outH - 1) * stride[0] + 1;
      const cols = (outW - 1) * stride[1] + 1;
      if (stride[0] > 1) {
        const a = keep(k.reshape({inputs: {x: spread}, attrs: {shape: [n, outH, 1, outW, c * m]}, ...b}));
        const z = keep(k.fill({inputs: {}, attrs: {shape: [n, outH, stride[0] - 1, outW, c * m], value: 0, dtype: 'float32'}, ...b}));
        const cat = keep(k.concat({inputs: [a, z] as unknown as Record<string, TensorInfo>, attrs: {axis: 2}, ...b}));
        const flat = keep(k.reshape({inputs: {x: cat}, attrs: {shape: [n, outH * stride[0], outW, c * m]}, ...b}));
        spread = keep(k.slice({inputs: {x: flat}, attrs: {begin: [0, 0, 0, 0], size: [n, rows, outW, c * m]}, ...b}));
      }
      if (stride[1] > 1) {
        const a = keep(k.reshape({inputs: {x: spread}, attrs: {shape: [n, rows, outW, 1, c * m]}, ...b}));
        const z = keep(k.fill({inputs: {}, attrs: {shape: [n, rows, outW, stride[1] - 1, c * m], value: 0, dtype: 'float32'}, ...b}));
        const cat = keep(k.concat({inputs: [a, z] as unknown as Record<string, TensorInfo>, attrs: {axis: 3}, ...b}));
        const flat = keep(k.reshape({inputs: {x: cat}, attrs: {shape: [n, rows, outW * stride[1], c * m]}, ...b}));
        spread = keep(k.slice({inputs: {x: flat}, attrs: {begin: [0, 0, 0, 0], size: [n, rows, cols, c * m]}, ...b}));
      }
      const spread5 = keep(k.reshape({inputs: {x: spread}, attrs: {shape: [n, rows, cols, c, m]}, ...b}));
      const padH = inH + top + bottom;
      const padW = inW + left + right;
      let total: TensorInfo | undefined;
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const tap = keep(k.slice({inputs: {x: filter}, attrs: {begin: [i, j, 0, 0], size: [1, 1, c, m]}, ...b}));
          const tap5 = keep(k.reshape({inputs: {x: tap}, attrs: {shape: [1, 1, 1, c, m]}, ...b}));
          const weighted = keep(k.multiply({inputs: {a: spread5, b: tap5}, attrs: {}, ...b}));
          const perChannel = keep(k.sum({inputs: {x: weighted}, attrs: {axis: [4], keepDims: false}, ...b}));
          const shifted = keep(k.padV2({inputs: {x: perChannel}, attrs: {paddings: [[0, 0], [i, padH - i - rows], [j, padW - j - cols], [0, 0]], constantValue: 0}, ...b}));
          total = total ? keep(k.add({inputs: {a: total, b: shifted}, attrs: {}, ...b})) : shifted;
        }
      }
      const result = k.slice({inputs: {x: total!}, attrs: {begin: [0, top, left, 0], size: [n, inH, inW, c]}, ...b});
      done();
      return result;
    }) as never,
  });
}

export function registerWasmTrainingKernels(tf: Tf): void {
  if (registered || tf.getKernel('Conv2DBackpropFilter', 'wasm')) return;
  registered = true;
  const kernel = (name: string): KernelFunc => {
    const k = tf.getKernel(name, 'wasm');
    if (!k) throw new Error(`wasm backend lacks ${name}`);
    return k.kernelFunc as unknown as KernelFunc;
  };
  const padV2 = kernel('PadV2');
  const stridedSlice = kernel('StridedSlice');
  const reshape = kernel('Reshape');
  const batchMatMul = kernel('BatchMatMul');
  const concat = kernel('Concat');
  if (!tf.getKernel('DepthwiseConv2dNativeBackpropFilter', 'wasm')) {
    registerDepthwiseKernels(tf, {padV2, stridedSlice, reshape, concat, multiply: kernel('Multiply'), sum: kernel('Sum'), add: kernel('Add'), fill: kernel('Fill'), slice: kernel('Slice')});
  }

  const conv2d = kernel('Conv2D');
  const reverse = kernel('Reverse');
  const transpose = kernel('Transpose');
  const slice = kernel('Slice');
  const original = tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc as unknown as KernelFunc | undefined;

  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ((args: {inputs: {x: TensorInfo; dy: TensorInfo}; backend: Backend; attrs: Record<string, unknown>}) => {
      const {x, dy} = args.inputs;
      const backend = args.backend;
      const {strides, pad, dataFormat, dilations, filterShape} = args.attrs as {strides: number | [number, number]; pad: unknown; dataFormat: string; dilations?: number | [number, number]; filterShape: [number, number, number, number]};
      if (dataFormat && dataFormat !== 'NHWC') throw new Error('Conv2DBackpropFilter (wasm): only NHWC is supported');
      const [kh, kw, ci, co] = filterShape;
      const stride: [number, number] = typeof strides === 'number' ? [strides, strides] : strides;
      const dilation: [number, number] = dilations === undefined ? [1, 1] : typeof dilations === 'number' ? [dilations, dilations] : dilations;
      const [n, inH, inW] = x.shape as [number, number, number, number];
      const [, outH, outW] = dy.shape as [number, number, number, number];
      const [top, bottom, left, right] = convPadding(pad, inH, inW, kh, kw, stride, dilation, outH, outW);
      const temps: TensorInfo[] = [];
      const keep = <T extends TensorInfo>(t: T): T => (temps.push(t), t);
      const args3 = {backend};
      const padded = top + bottom + left + right > 0 ? keep(padV2({inputs: {x}, attrs: {paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0}, ...args3})) : x;
      const dyFlat = keep(reshape({inputs: {x: dy}, attrs: {shape: [1, n * outH * outW, co]}, ...args3}));
      const taps: TensorInfo[] = [];
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const y0 = i * dilation[0];
          const x0 = j * dilation[1];
          const window = keep(stridedSlice({inputs: {x: padded}, attrs: {begin: [0, y0, x0, 0], end: [n, y0 + (outH - 1) * stride[0] + 1, x0 + (outW - 1) * stride[1] + 1, ci], strides: [1, stride[0], stride[1], 1], beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0}, ...args3}));
          const flat = keep(reshape({inputs: {x: window}, attrs: {shape: [1, n * outH * outW, ci]}, ...args3}));
          taps.push(keep(batchMatMul({inputs: {a: flat, b: dyFlat}, attrs: {transposeA: true, transposeB: false}, ...args3})));
        }
      }
      const stacked = keep(concat({inputs: taps as unknown as Record<string, TensorInfo>, attrs: {axis: 0}, ...args3}));
      const result = reshape({inputs: {x: stacked}, attrs: {shape: [kh, kw, ci, co]}, ...args3});
      for (const t of temps) backend.disposeData(t.dataId);
      return result;
    }) as never,
  });

  if (original) tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName: 'wasm',
    kernelFunc: ((args: {inputs: {dy: TensorInfo; filter: TensorInfo}; backend: Backend; attrs: Record<string, unknown>}) => {
      const {dy, filter} = args.inputs;
      const backend = args.backend;
      const {strides, pad, dataFormat, inputShape} = args.attrs as {strides: number | [number, number]; pad: unknown; dataFormat?: string; inputShape: [number, number, number, number]};
      const [n, inH, inW] = inputShape;
      const [kh, kw, , co] = filter.shape as [number, number, number, number];
      const [, outH, outW] = dy.shape as [number, number, number, number];
      const stride = pair(strides, 1);
      const [top, , left] = convPadding(pad, inH, inW, kh, kw, stride, [1, 1], outH, outW);
      const rows = (outH - 1) * stride[0] + 1;
      const cols = (outW - 1) * stride[1] + 1;
      const before = [kh - 1 - top, kw - 1 - left];
      const after = [inH + top - rows, inW + left - cols];
      if ((dataFormat && dataFormat !== 'NHWC') || [...before, ...after].some((p) => p < 0)) {
        if (!original) throw new Error('Conv2DBackpropInput (wasm): unsupported padding');
        return original(args as never);
      }
      const temps: TensorInfo[] = [];
      const keep = <T extends TensorInfo>(t: T): T => (temps.push(t), t);
      const b = {backend};
      let spread = dy;
      if (stride[0] > 1 || stride[1] > 1) {
        // Zeros between the rows and columns of dy: [n, oh, 1, ow, 1, co] padded to [n, oh, sh, ow, sw, co].
        const six = keep(reshape({inputs: {x: dy}, attrs: {shape: [n, outH, 1, outW, 1, co]}, ...b}));
        const gaps = keep(padV2({inputs: {x: six}, attrs: {paddings: [[0, 0], [0, 0], [0, stride[0] - 1], [0, 0], [0, stride[1] - 1], [0, 0]], constantValue: 0}, ...b}));
        const flat = keep(reshape({inputs: {x: gaps}, attrs: {shape: [n, outH * stride[0], outW * stride[1], co]}, ...b}));
        spread = keep(slice({inputs: {x: flat}, attrs: {begin: [0, 0, 0, 0], size: [n, rows, cols, co]}, ...b}));
      }
      const padded = keep(padV2({inputs: {x: spread}, attrs: {paddings: [[0, 0], [before[0], after[0]], [before[1], after[1]], [0, 0]], constantValue: 0}, ...b}));
      const flipped = keep(reverse({inputs: {x: filter}, attrs: {dims: [0, 1]}, ...b}));
      const swapped = keep(transpose({inputs: {x: flipped}, attrs: {perm: [0, 1, 3, 2]}, ...b}));
      const result = conv2d({inputs: {x: padded, filter: swapped}, attrs: {strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined}, ...b});
      for (const t of temps) backend.disposeData(t.dataId);
      return result;
    }) as never,
  });
}
