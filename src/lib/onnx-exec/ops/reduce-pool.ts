/**
 * Reductions (ReduceMean/Sum/Max/Min, axes as attribute or, from opset 13/18, as input) and pooling
 * (GlobalAveragePool, GlobalMaxPool, MaxPool, AveragePool with explicit pads, auto_pad, ceil_mode and
 * count_include_pad). Pools run channels-last, as TF.js does.
 */
import type {Tensor, Tensor4D} from '@tensorflow/tfjs';
import {attrInt, attrInts, attrString, axis as normAxis, defineOp, OpError, required, type OpKernel} from '../kernel.js';
import {device, hostInts, logicalShape, TO_NHWC} from '../values.js';

interface ReduceAttrs {
  axes?: number[];
  keepdims: boolean;
  noopWithEmptyAxes: boolean;
  axesFromInput: boolean;
}

type Reducer = 'mean' | 'sum' | 'max' | 'min';

function reduce(opType: string, kind: Reducer, axesInputSince: number): OpKernel<ReduceAttrs> {
  return defineOp({
    opType,
    parse: (node, opset) => ({axes: attrInts(node, 'axes'), keepdims: attrInt(node, 'keepdims', 1) === 1, noopWithEmptyAxes: attrInt(node, 'noop_with_empty_axes', 0) === 1, axesFromInput: opset >= axesInputSince}),
    run(ctx, inputs, attrs) {
      const [x] = required(inputs, 1, opType);
      const rank = logicalShape(x!).length;
      const listed = attrs.axesFromInput ? (inputs[1] ? hostInts(ctx.host(inputs[1])) : undefined) : attrs.axes;
      if ((!listed || !listed.length) && attrs.noopWithEmptyAxes) return [x!.kind === 'device' ? device(x!.tensor.clone(), x!.nhwc) : x!];
      const axes = (listed && listed.length ? listed : [...Array(rank).keys()]).map((a) => normAxis(a, rank));
      const tf = ctx.tf;
      const apply = (t: Tensor, ax: number[]): Tensor => (kind === 'mean' ? tf.mean(t, ax, attrs.keepdims) : kind === 'sum' ? tf.sum(t, ax, attrs.keepdims) : kind === 'max' ? tf.max(t, ax, attrs.keepdims) : tf.min(t, ax, attrs.keepdims));
      if (x!.kind === 'device' && x!.nhwc) {
        const physical = axes.map((a) => TO_NHWC.indexOf(a));
        if (attrs.keepdims) return [device(apply(x!.tensor, physical), true)];
        // Kept axes in physical order must already be in logical order for the result to mean the same thing.
        const kept = TO_NHWC.filter((a) => !axes.includes(a));
        if (kept.every((a, i) => i === 0 || a > kept[i - 1]!)) return [device(apply(x!.tensor, physical))];
      }
      return [device(apply(ctx.plain(x!), axes))];
    },
  });
}

interface PoolAttrs {
  kernel: [number, number];
  strides: [number, number];
  pads: [number, number, number, number];
  autoPad: string;
  ceil: boolean;
  countIncludePad: boolean;
}

function parsePool(opType: string): OpKernel<PoolAttrs>['parse'] {
  return (node) => {
    const kernel = attrInts(node, 'kernel_shape');
    if (!kernel || kernel.length !== 2) throw new OpError(`${opType}: only 2-D pooling is supported (kernel_shape ${JSON.stringify(kernel)})`);
    const dil = attrInts(node, 'dilations');
    if (dil && dil.some((d) => d !== 1)) throw new OpError(`${opType}: dilations ${JSON.stringify(dil)} are not supported`);
    if (attrInt(node, 'storage_order', 0) !== 0) throw new OpError(`${opType}: storage_order=1 is not supported`);
    const strides = attrInts(node, 'strides') ?? [1, 1];
    const pads = attrInts(node, 'pads') ?? [0, 0, 0, 0];
    return {kernel: [kernel[0]!, kernel[1]!], strides: [strides[0]!, strides[1]!], pads: [pads[0]!, pads[1]!, pads[2]!, pads[3]!], autoPad: attrString(node, 'auto_pad', 'NOTSET'), ceil: attrInt(node, 'ceil_mode', 0) === 1, countIncludePad: attrInt(node, 'count_include_pad', 0) === 1};
  };
}

/** [top, bottom, left, right] for ONNX pads / auto_pad / ceil_mode on an H x W input. */
export function poolPadding(attrs: {kernel: [number, number]; strides: [number, number]; pads: [number, number, number, number]; autoPad: string; ceil?: boolean; dilations?: [number, number]}, h: number, w: number): [number, number, number, number] {
  const dil = attrs.dilations ?? [1, 1];
  const eff = [(attrs.kernel[0] - 1) * dil[0] + 1, (attrs.kernel[1] - 1) * dil[1] + 1];
  if (attrs.autoPad === 'VALID') return [0, 0, 0, 0];
  if (attrs.autoPad === 'SAME_UPPER' || attrs.autoPad === 'SAME_LOWER') {
    const out = [Math.ceil(h / attrs.strides[0]), Math.ceil(w / attrs.strides[1])];
    const total = [Math.max(0, (out[0]! - 1) * attrs.strides[0] + eff[0]! - h), Math.max(0, (out[1]! - 1) * attrs.strides[1] + eff[1]! - w)];
    const small = total.map((t) => Math.floor(t / 2));
    return attrs.autoPad === 'SAME_UPPER' ? [small[0]!, total[0]! - small[0]!, small[1]!, total[1]! - small[1]!] : [total[0]! - small[0]!, small[0]!, total[1]! - small[1]!, small[1]!];
  }
  const [t, l, b, r] = attrs.pads;
  let bottom = b;
  let right = r;
  if (attrs.ceil) {
    const extra = (size: number, before: number, after: number, k: number, s: number): number => {
      const floorOut = Math.floor((size + before + after - k) / s) + 1;
      let ceilOut = Math.ceil((size + before + after - k) / s) + 1;
      if ((ceilOut - 1) * s >= size + before) ceilOut--; // the last window must start inside the input
      return ceilOut > floorOut ? (ceilOut - 1) * s + k - (size + before + after) : 0;
    };
    bottom += extra(h, t, b, eff[0]!, attrs.strides[0]);
    right += extra(w, l, r, eff[1]!, attrs.strides[1]);
  }
  return [t, bottom, l, right];
}

function pool(opType: 'MaxPool' | 'AveragePool'): OpKernel<PoolAttrs> {
  return defineOp({
    opType,
    parse: parsePool(opType),
    run(ctx, inputs, attrs) {
      const [x] = required(inputs, 1, opType);
      const tf = ctx.tf;
      const t = ctx.nhwc(x!) as Tensor4D;
      const [, h, w] = t.shape;
      const [top, bottom, left, right] = poolPadding(attrs, h, w);
      if (top + bottom + left + right === 0) return [device(opType === 'MaxPool' ? tf.maxPool(t, attrs.kernel, attrs.strides, 'valid') : tf.avgPool(t, attrs.kernel, attrs.strides, 'valid'), true)];
      const paddings: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [top, bottom], [left, right], [0, 0]];
      if (opType === 'MaxPool') return [device(tf.maxPool(t, attrs.kernel, attrs.strides, paddings), true)];
      // TF.js's average-pool gradient divides by the full window even where its forward pass left padding out, so
      // pad explicitly, pool without padding, and rescale each output by window size / counted elements.
      const pooled = tf.avgPool(tf.pad(t, paddings), attrs.kernel, attrs.strides, 'valid');
      const [, outH, outW] = pooled.shape;
      const explicit = attrs.autoPad === 'NOTSET' ? attrs.pads : [top, left, bottom, right];
      const rows = attrs.countIncludePad ? [0, top + h + explicit[2]!] : [top, top + h];
      const cols = attrs.countIncludePad ? [0, left + w + explicit[3]!] : [left, left + w];
      const factor = new Float32Array(outH * outW);
      for (let i = 0; i < outH; i++) {
        const r = Math.min(rows[1]!, i * attrs.strides[0] + attrs.kernel[0]) - Math.max(rows[0]!, i * attrs.strides[0]);
        for (let j = 0; j < outW; j++) {
          const c = Math.min(cols[1]!, j * attrs.strides[1] + attrs.kernel[1]) - Math.max(cols[0]!, j * attrs.strides[1]);
          factor[i * outW + j] = (attrs.kernel[0] * attrs.kernel[1]) / Math.max(1, r * c);
        }
      }
      const out = tf.mul(pooled, tf.tensor4d(factor, [1, outH, outW, 1]));
      return [device(out, true)];
    },
  });
}

function globalPool(opType: 'GlobalAveragePool' | 'GlobalMaxPool'): OpKernel<null> {
  return defineOp({
    opType,
    parse: () => null,
    run(ctx, inputs) {
      const [x] = required(inputs, 1, opType);
      const tf = ctx.tf;
      const rank = logicalShape(x!).length;
      if (x!.kind === 'device' && x!.nhwc) return [device(opType === 'GlobalAveragePool' ? tf.mean(x!.tensor, [1, 2], true) : tf.max(x!.tensor, [1, 2], true), true)];
      const axes = Array.from({length: rank - 2}, (_, i) => i + 2);
      const t = ctx.plain(x!);
      return [device(opType === 'GlobalAveragePool' ? tf.mean(t, axes, true) : tf.max(t, axes, true))];
    },
  });
}

export const reducePoolOps: OpKernel<never>[] = [
  reduce('ReduceMean', 'mean', 18),
  reduce('ReduceSum', 'sum', 13),
  reduce('ReduceMax', 'max', 18),
  reduce('ReduceMin', 'min', 18),
  pool('MaxPool'),
  pool('AveragePool'),
  globalPool('GlobalAveragePool'),
  globalPool('GlobalMaxPool'),
] as OpKernel<never>[];

