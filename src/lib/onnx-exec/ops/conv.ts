/**
 * Conv (2-D): any pads (explicit or auto_pad), strides, dilations, and groups - 1 (tf.conv2d), depthwise with a
 * channel multiplier (tf.depthwiseConv2d), or anything in between (one convolution per group). Runs channels-last:
 * the input is taken in NHWC order and the output stays NHWC-held, so a chain of convolutions never transposes.
 * ONNX filters [M, C/group, kh, kw] become TF.js's [kh, kw, C, M] (or [kh, kw, C, multiplier]).
 */
import type {Tensor, Tensor4D} from '@tensorflow/tfjs';
import {attrInt, attrInts, attrString, defineOp, OpError, required, type OpKernel} from '../kernel.js';
import {device} from '../values.js';
import {poolPadding} from './reduce-pool.js';

interface ConvAttrs {
  kernel?: number[];
  strides: [number, number];
  dilations: [number, number];
  pads: [number, number, number, number];
  autoPad: string;
  group: number;
}

const conv = defineOp<ConvAttrs>({
  opType: 'Conv',
  parse(node) {
    const strides = attrInts(node, 'strides') ?? [1, 1];
    const dilations = attrInts(node, 'dilations') ?? [1, 1];
    const pads = attrInts(node, 'pads') ?? [0, 0, 0, 0];
    const kernel = attrInts(node, 'kernel_shape');
    if (strides.length !== 2 || dilations.length !== 2 || pads.length !== 4 || (kernel && kernel.length !== 2)) throw new OpError('only 2-D convolutions are supported');
    if (strides[0]! > 1 && dilations.some((d) => d > 1)) throw new OpError('TF.js cannot combine strides > 1 with dilations > 1');
    return {kernel, strides: [strides[0]!, strides[1]!], dilations: [dilations[0]!, dilations[1]!], pads: [pads[0]!, pads[1]!, pads[2]!, pads[3]!], autoPad: attrString(node, 'auto_pad', 'NOTSET'), group: attrInt(node, 'group', 1)};
  },
  run(ctx, inputs, attrs) {
    const [x, w] = required(inputs, 2, 'Conv');
    const tf = ctx.tf;
    const input = ctx.nhwc(x!) as Tensor4D;
    const filter = ctx.plain(w!);
    const wv = w!;
    if (filter.shape.length !== 4) throw new OpError(`only 2-D convolutions are supported (filter of rank ${filter.shape.length})`);
    const [m, cPerGroup, kh, kw] = filter.shape as [number, number, number, number];
    const [, h, wd, c] = input.shape;
    const [top, bottom, left, right] = poolPadding({kernel: [kh, kw], strides: attrs.strides, pads: attrs.pads, autoPad: attrs.autoPad, dilations: attrs.dilations}, h, wd);
    const pad = top + bottom + left + right === 0 ? 'valid' : ([[0, 0], [top, bottom], [left, right], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]]);
    const g = attrs.group;
    if (cPerGroup * g !== c) throw new OpError(`filter expects ${cPerGroup * g} input channels, input has ${c}`);
    let out: Tensor;
    if (g === 1) {
      out = tf.conv2d(input, ctx.memo([wv], 'hwio', () => tf.transpose(filter, [2, 3, 1, 0])) as Tensor4D, attrs.strides, pad, 'NHWC', attrs.dilations);
    } else if (cPerGroup === 1 && m % g === 0) {
      const mult = m / g;
      const dw = ctx.memo([wv], 'hwcm', () => tf.transpose(tf.reshape(filter, [g, mult, kh, kw]), [2, 3, 0, 1])) as Tensor4D;
      out = tf.depthwiseConv2d(input, dw, attrs.strides, pad, 'NHWC', attrs.dilations);
    } else {
      const xs = tf.split(input, g, 3);
      const ws = tf.split(filter, g, 0);
      out = tf.concat(xs.map((xi, i) => tf.conv2d(xi as Tensor4D, tf.transpose(ws[i]!, [2, 3, 1, 0]) as Tensor4D, attrs.strides, pad, 'NHWC', attrs.dilations)), 3);
    }
    if (inputs[2]) out = tf.add(out, ctx.plain(inputs[2]));
    return [device(out, true)];
  },
});

export const convOps: OpKernel<never>[] = [conv] as OpKernel<never>[];
