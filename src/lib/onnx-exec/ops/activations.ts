/**
 * Activations: Relu, LeakyRelu, Clip (Relu6), Sigmoid, HardSigmoid, HardSwish, Tanh, Gelu (exact and tanh), Elu,
 * Softplus, Softmax and LogSoftmax. Pointwise ones keep a channels-last layout; Softmax works on any axis (opset <
 * 13 semantics: over the flattened trailing axes).
 */
import type {Tensor} from '@tensorflow/tfjs';
import {attrFloat, attrInt, attrString, axis as normAxis, defineOp, OpError, required, type ExecContext, type OpKernel} from '../kernel.js';
import {device, type Value} from '../values.js';

function pointwise<A>(opType: string, parse: OpKernel<A>['parse'], f: (ctx: ExecContext, x: Tensor, attrs: A, inputs: ReadonlyArray<Value | undefined>) => Tensor): OpKernel<A> {
  return defineOp({
    opType,
    parse,
    run(ctx, inputs, attrs) {
      const [x] = required(inputs, 1, opType);
      const t = x!.kind === 'device' ? x!.tensor : ctx.plain(x!);
      return [device(f(ctx, t, attrs, inputs), x!.kind === 'device' && x!.nhwc)];
    },
  });
}

const none = (): null => null;

function scalarInput(ctx: ExecContext, v: Value | undefined): number | undefined {
  if (!v) return undefined;
  const h = ctx.host(v);
  if (h.data.length !== 1) throw new OpError('Clip bounds must be scalars');
  return h.data[0];
}

function gelu(ctx: ExecContext, x: Tensor, approximate: string): Tensor {
  const tf = ctx.tf;
  return tf.tidy(() => {
    if (approximate === 'tanh') {
      const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
      return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
    }
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
  });
}

interface SoftmaxAttrs {
  axis: number;
  legacy: boolean;
  log: boolean;
}

function softmax(opType: 'Softmax' | 'LogSoftmax'): OpKernel<SoftmaxAttrs> {
  return defineOp({
    opType,
    parse: (node, opset) => ({axis: attrInt(node, 'axis', opset < 13 ? 1 : -1), legacy: opset < 13, log: opType === 'LogSoftmax'}),
    run(ctx, inputs, attrs) {
      const [x] = required(inputs, 1, opType);
      const tf = ctx.tf;
      const t = ctx.plain(x!);
      const rank = t.shape.length;
      const ax = normAxis(attrs.axis, rank);
      const apply = (u: Tensor): Tensor => (attrs.log ? tf.logSoftmax(u) : tf.softmax(u));
      if (ax === rank - 1) return [device(apply(t))];
      if (attrs.legacy) {
        const outer = t.shape.slice(0, ax).reduce((a, b) => a * b, 1);
        return [device(apply(t.reshape([outer, -1])).reshape(t.shape))];
      }
      const perm = [...Array(rank).keys()];
      perm[ax] = rank - 1;
      perm[rank - 1] = ax;
      return [device(apply(t.transpose(perm)).transpose(perm))];
    },
  });
}

export const activationOps: OpKernel<never>[] = [
  pointwise('Relu', none, (ctx, x) => ctx.tf.relu(x)),
  pointwise('LeakyRelu', (node) => attrFloat(node, 'alpha', 0.01), (ctx, x, alpha) => ctx.tf.leakyRelu(x, alpha)),
  pointwise('Sigmoid', none, (ctx, x) => ctx.tf.sigmoid(x)),
  pointwise('Tanh', none, (ctx, x) => ctx.tf.tanh(x)),
  pointwise('Elu', (node) => attrFloat(node, 'alpha', 1), (ctx, x, alpha) => (alpha === 1 ? ctx.tf.elu(x) : ctx.tf.where(ctx.tf.greater(x, 0), x, ctx.tf.mul(alpha, ctx.tf.sub(ctx.tf.exp(x), 1))))),
  pointwise('Softplus', none, (ctx, x) => ctx.tf.softplus(x)),
  pointwise(
    'HardSigmoid',
    (node) => ({alpha: attrFloat(node, 'alpha', 0.2), beta: attrFloat(node, 'beta', 0.5)}),
    (ctx, x, a) => ctx.tf.clipByValue(ctx.tf.add(ctx.tf.mul(x, a.alpha), a.beta), 0, 1),
  ),
  pointwise('HardSwish', none, (ctx, x) => ctx.tf.mul(x, ctx.tf.clipByValue(ctx.tf.add(ctx.tf.mul(x, 1 / 6), 0.5), 0, 1))),
  pointwise('Gelu', (node) => attrString(node, 'approximate', 'none'), (ctx, x, approximate) => gelu(ctx, x, approximate)),
  pointwise(
    'Clip',
    (node, opset) => (opset < 11 ? {min: attrFloat(node, 'min', -Infinity), max: attrFloat(node, 'max', Infinity)} : null),
    (ctx, x, legacy, inputs) => {
      const lo = legacy ? legacy.min : (scalarInput(ctx, inputs[1]) ?? -Infinity);
      const hi = legacy ? legacy.max : (scalarInput(ctx, inputs[2]) ?? Infinity);
      if (lo === 0 && hi === Infinity) return ctx.tf.relu(x);
      if (lo === 0 && hi === 6) return ctx.tf.relu6(x);
      return ctx.tf.clipByValue(x, Math.max(lo, -3.4e38), Math.min(hi, 3.4e38));
    },
  ),
  softmax('Softmax'),
  softmax('LogSoftmax'),
] as OpKernel<never>[];

