/**
 * LayerNormalization (opset 17; older exports decompose it into ReduceMean/Sub/Pow/Sqrt/Div, which the
 * elementwise ops run) and BatchNormalization in inference mode: the running statistics are frozen, so it is the
 * per-channel affine map y = x * s + (B - mean * s), s = scale / sqrt(var + eps). Its scale and bias still train when
 * they are trainable initializers; no Tile appears in its gradient (plain broadcasting Mul/Add).
 */
import type {Tensor} from '@tensorflow/tfjs';
import {attrFloat, attrInt, axis as normAxis, defineOp, OpError, required, type OpKernel} from '../kernel.js';
import {device, logicalShape} from '../values.js';

interface LayerNormAttrs {
  axis: number;
  epsilon: number;
}

const layerNorm = defineOp<LayerNormAttrs>({
  opType: 'LayerNormalization',
  parse: (node) => ({axis: attrInt(node, 'axis', -1), epsilon: attrFloat(node, 'epsilon', 1e-5)}),
  run(ctx, inputs, attrs) {
    const [x, scale] = required(inputs, 2, 'LayerNormalization');
    const tf = ctx.tf;
    const t = ctx.plain(x!);
    const rank = t.shape.length;
    const first = normAxis(attrs.axis, rank);
    const axes = Array.from({length: rank - first}, (_, i) => first + i);
    const mean = tf.mean(t, axes, true);
    const centred = tf.sub(t, mean);
    const variance = tf.mean(tf.square(centred), axes, true);
    const invStd = tf.rsqrt(tf.add(variance, attrs.epsilon));
    let y: Tensor = tf.mul(tf.mul(centred, invStd), ctx.plain(scale!));
    if (inputs[2]) y = tf.add(y, ctx.plain(inputs[2]));
    return [device(y), device(mean), device(invStd)];
  },
});

const batchNorm = defineOp<{epsilon: number}>({
  opType: 'BatchNormalization',
  parse(node) {
    if (attrInt(node, 'training_mode', 0) !== 0) throw new OpError('training_mode=1 is not supported (natix keeps batch statistics frozen)');
    return {epsilon: attrFloat(node, 'epsilon', 1e-5)};
  },
  run(ctx, inputs, attrs) {
    const [x, scale, bias, mean, variance] = required(inputs, 5, 'BatchNormalization');
    const tf = ctx.tf;
    const s = ctx.memo([scale, variance], 'scale', () => tf.mul(ctx.plain(scale!), tf.rsqrt(tf.add(ctx.plain(variance!), attrs.epsilon))));
    const shift = ctx.memo([scale, bias, mean, variance], 'shift', () => tf.sub(ctx.plain(bias!), tf.mul(ctx.plain(mean!), s)));
    const rank = logicalShape(x!).length;
    if (x!.kind === 'device' && x!.nhwc) return [device(tf.add(tf.mul(x!.tensor, s), shift), true)];
    const perChannel = [-1, ...new Array<number>(Math.max(0, rank - 2)).fill(1)];
    return [device(tf.add(tf.mul(ctx.plain(x!), s.reshape(perChannel)), shift.reshape(perChannel)))];
  },
});

export const normalizationOps: OpKernel<never>[] = [layerNorm, batchNorm] as OpKernel<never>[];
