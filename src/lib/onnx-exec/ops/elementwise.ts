/**
 * Elementwise ops with numpy broadcasting: Add, Sub, Mul, Div, Pow, Max, Min, comparisons, Where, and the unary
 * math ops (Sqrt, Erf, Exp, Log, Neg, Abs, Reciprocal, Floor, Ceil, Not). A channels-last (NHWC-held) operand keeps
 * its layout: the other operand is brought to the same order (a [C,1,1] bias becomes [1,1,1,C]), so chains of
 * Conv -> Add -> Mul never transpose.
 */
import type {Tensor} from '@tensorflow/tfjs';
import {defineOp, OpError, required, type ExecContext, type OpKernel} from '../kernel.js';
import {hostElementwise} from '../host.js';
import {device, isFloatType, logicalShape, TO_NHWC, type ElemType, type HostValue, type Value} from '../values.js';

/** A tensor of `v` arranged to broadcast against an NHWC-held rank-4 value. */
function asNhwcOperand(ctx: ExecContext, v: Value): Tensor {
  if (v.kind === 'device' && v.nhwc) return v.tensor;
  const shape = logicalShape(v);
  const t = ctx.plain(v);
  if (shape.every((d) => d === 1)) return t.reshape([]);
  const four = [...new Array<number>(4 - shape.length).fill(1), ...shape];
  const r = t.reshape(four);
  return four[2] === 1 && four[3] === 1 && four[1] !== 1 ? r.reshape([four[0]!, 1, 1, four[1]!]) : r.transpose(TO_NHWC);
}

/** Runs a broadcasting op on tensors, keeping channels-last layout where an operand has it. */
export function broadcastOnDevice(ctx: ExecContext, values: Value[], f: (...ts: Tensor[]) => Tensor): Value {
  const anyNhwc = values.some((v) => v.kind === 'device' && v.nhwc);
  if (anyNhwc && values.every((v) => logicalShape(v).length <= 4)) return device(f(...values.map((v) => asNhwcOperand(ctx, v))), true);
  return device(f(...values.map((v) => ctx.plain(v))));
}

type HostFn = (...xs: number[]) => number;

function binary(opType: string, onDevice: (ctx: ExecContext, a: Tensor, b: Tensor, bValue: Value) => Tensor, onHost: (type: ElemType) => HostFn, outType?: ElemType): OpKernel<null> {
  return defineOp({
    opType,
    parse: () => null,
    run(ctx, inputs) {
      const [a, b] = required(inputs, 2, opType);
      return [broadcastOnDevice(ctx, [a!, b!], (x, y) => onDevice(ctx, x!, y!, b!))];
    },
    host(inputs) {
      const [a, b] = inputs as HostValue[];
      return [hostElementwise([a!, b!], outType ?? a!.type, onHost(a!.type))];
    },
  });
}

const truncDiv = (x: number, y: number): number => Math.trunc(x / y);

function unary(opType: string, onDevice: (ctx: ExecContext, x: Tensor) => Tensor, onHost: HostFn): OpKernel<null> {
  return defineOp({
    opType,
    parse: () => null,
    run(ctx, inputs) {
      const [x] = required(inputs, 1, opType);
      if (x!.kind === 'device') return [device(onDevice(ctx, x!.tensor), x!.nhwc)];
      return [device(onDevice(ctx, ctx.plain(x!)))];
    },
    host(inputs) {
      return [hostElementwise([inputs[0]!], inputs[0]!.type, onHost)];
    },
  });
}

/** The exponent of Pow when it is a known scalar (x^2 and x^0.5 then use exact, cheaper kernels). */
function scalarOf(v: Value): number | undefined {
  return v.kind === 'host' && v.data.length === 1 ? v.data[0] : undefined;
}

function variadic(opType: string, pair: (a: Tensor, b: Tensor) => Tensor, onHost: HostFn): OpKernel<null> {
  return defineOp({
    opType,
    parse: () => null,
    run(ctx, inputs) {
      const values = inputs.filter((v): v is Value => v !== undefined);
      if (!values.length) throw new OpError(`${opType} needs at least one input`);
      if (values.length === 1) return [values[0]!.kind === 'device' ? device(values[0]!.tensor.clone(), values[0]!.nhwc) : values[0]!];
      return [broadcastOnDevice(ctx, values, (...ts) => ts.slice(1).reduce((acc, t) => pair(acc, t), ts[0]!))];
    },
    host(inputs) {
      const values = inputs.filter((v): v is HostValue => v !== undefined);
      return [values.slice(1).reduce((acc, v) => hostElementwise([acc, v], acc.type, onHost), values[0]!)];
    },
  });
}

const erf = (x: number): number => {
  // Abramowitz-Stegun 7.1.26 is too coarse for folding; use a series / continued-fraction pair accurate to 1e-15.
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 80; n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
      if (Math.abs(term) < 1e-17) break;
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * sum);
  }
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  return Math.sign(x) * (1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f));
};

export const elementwiseOps: OpKernel<never>[] = [
  binary('Add', (ctx, a, b) => ctx.tf.add(a, b), () => (x, y) => x + y),
  binary('Sub', (ctx, a, b) => ctx.tf.sub(a, b), () => (x, y) => x - y),
  binary('Mul', (ctx, a, b) => ctx.tf.mul(a, b), () => (x, y) => x * y),
  binary('Div', (ctx, a, b) => (a.dtype === 'int32' ? ctx.tf.cast(ctx.tf.div(ctx.tf.cast(a, 'float32'), ctx.tf.cast(b, 'float32')), 'int32') : ctx.tf.div(a, b)), (type) => (isFloatType(type) ? (x, y) => x / y : truncDiv)),
  binary(
    'Pow',
    (ctx, a, b, bValue) => {
      const e = scalarOf(bValue);
      if (e === 2) return ctx.tf.square(a);
      if (e === 1) return a.clone();
      if (e === 0.5) return ctx.tf.sqrt(a);
      return ctx.tf.pow(a, b.dtype === a.dtype ? b : ctx.tf.cast(b, a.dtype));
    },
    () => (x, y) => Math.pow(x, y),
  ),
  binary('Equal', (ctx, a, b) => ctx.tf.equal(a, b), () => (x, y) => Number(x === y), 'bool'),
  binary('Less', (ctx, a, b) => ctx.tf.less(a, b), () => (x, y) => Number(x < y), 'bool'),
  binary('Greater', (ctx, a, b) => ctx.tf.greater(a, b), () => (x, y) => Number(x > y), 'bool'),
  binary('LessOrEqual', (ctx, a, b) => ctx.tf.lessEqual(a, b), () => (x, y) => Number(x <= y), 'bool'),
  binary('GreaterOrEqual', (ctx, a, b) => ctx.tf.greaterEqual(a, b), () => (x, y) => Number(x >= y), 'bool'),
  binary('And', (ctx, a, b) => ctx.tf.logicalAnd(a, b), () => (x, y) => Number(Boolean(x) && Boolean(y)), 'bool'),
  binary('Or', (ctx, a, b) => ctx.tf.logicalOr(a, b), () => (x, y) => Number(Boolean(x) || Boolean(y)), 'bool'),
  binary('Mod', (ctx, a, b) => ctx.tf.mod(a, b), () => (x, y) => x - Math.floor(x / y) * y),
  variadic('Max', (a, b) => a.maximum(b), Math.max),
  variadic('Min', (a, b) => a.minimum(b), Math.min),
  variadic('Sum', (a, b) => a.add(b), (x, y) => x + y),
  unary('Sqrt', (ctx, x) => ctx.tf.sqrt(x), Math.sqrt),
  unary('Erf', (ctx, x) => ctx.tf.erf(x), erf),
  unary('Exp', (ctx, x) => ctx.tf.exp(x), Math.exp),
  unary('Log', (ctx, x) => ctx.tf.log(x), Math.log),
  unary('Neg', (ctx, x) => ctx.tf.neg(x), (x) => -x),
  unary('Abs', (ctx, x) => ctx.tf.abs(x), Math.abs),
  unary('Reciprocal', (ctx, x) => ctx.tf.reciprocal(x), (x) => 1 / x),
  unary('Floor', (ctx, x) => ctx.tf.floor(x), Math.floor),
  unary('Ceil', (ctx, x) => ctx.tf.ceil(x), Math.ceil),
  unary('Not', (ctx, x) => ctx.tf.logicalNot(x), (x) => Number(!x)),
  defineOp({
    opType: 'Where',
    parse: () => null,
    run(ctx, inputs) {
      const [c, a, b] = required(inputs, 3, 'Where');
      const tf = ctx.tf;
      return [
        broadcastOnDevice(ctx, [c!, a!, b!], (ct, at, bt) => {
          const shape = [ct!.shape, at!.shape, bt!.shape].reduce((s, x) => (x.length > s.length ? x : s));
          const full = (t: Tensor): Tensor => (t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]) ? t : tf.broadcastTo(t, broadcastShape([ct!.shape, at!.shape, bt!.shape])));
          return tf.where(full(tf.cast(ct!, 'bool')), full(at!), full(bt!));
        }),
      ];
    },
    host(inputs) {
      const [c, a, b] = inputs as HostValue[];
      return [hostElementwise([c!, a!, b!], a!.type, (x, y, z) => (x ? y : z))];
    },
  }),
] as OpKernel<never>[];

function broadcastShape(shapes: number[][]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  return Array.from({length: rank}, (_, i) => Math.max(...shapes.map((s) => s[s.length - rank + i] ?? 1)));
}

