/**
 * Training kernels the TensorFlow.js wasm backend lacks, built from kernels it has.
 *
 * Conv2DBackpropFilter (the gradient of a 2-D convolution with respect to its filter), for NHWC input x
 * [N, H, W, Ci] and output gradient dy [N, Ho, Wo, Co]: for every kernel offset (i, j), the strided window of the
 * padded input that met that filter tap, flattened to [N*Ho*Wo, Ci], times dy flattened to [N*Ho*Wo, Co], gives
 * dW[i, j] = window^T . dy ([Ci, Co]). kh*kw matrix products of existing kernels (PadV2, StridedSlice, Reshape,
 * BatchMatMul, Concat); checked against the cpu backend in test/unit/wasm-kernels.test.ts.
 */
import type {Tf} from '../runtime/tfjs.js';

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
}
