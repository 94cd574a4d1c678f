/**
 * Gemm (alpha, beta, transA, transB, optional C) and MatMul with numpy semantics: 1-D operands, batched operands
 * with broadcast batch dimensions, and the common [..., K] x [K, N] case as a single 2-D product.
 */
import type {Tensor} from '@tensorflow/tfjs';
import {attrFloat, attrInt, defineOp, OpError, required, type OpKernel} from '../kernel.js';
import {device} from '../values.js';

interface GemmAttrs {
  alpha: number;
  beta: number;
  transA: boolean;
  transB: boolean;
}

const gemm = defineOp<GemmAttrs>({
  opType: 'Gemm',
  parse: (node) => ({alpha: attrFloat(node, 'alpha', 1), beta: attrFloat(node, 'beta', 1), transA: attrInt(node, 'transA', 0) === 1, transB: attrInt(node, 'transB', 0) === 1}),
  run(ctx, inputs, attrs) {
    const [a, b] = required(inputs, 2, 'Gemm');
    const tf = ctx.tf;
    const ta = ctx.plain(a!);
    const tb = ctx.plain(b!);
    if (ta.shape.length !== 2 || tb.shape.length !== 2) throw new OpError('Gemm operands must be 2-D');
    let y: Tensor = tf.matMul(ta, tb, attrs.transA, attrs.transB);
    if (attrs.alpha !== 1) y = tf.mul(y, attrs.alpha);
    if (inputs[2] && attrs.beta !== 0) {
      const c = ctx.plain(inputs[2]);
      y = tf.add(y, attrs.beta === 1 ? c : tf.mul(c, attrs.beta));
    }
    return [device(y)];
  },
});

const matMul = defineOp<null>({
  opType: 'MatMul',
  parse: () => null,
  run(ctx, inputs) {
    const [a, b] = required(inputs, 2, 'MatMul');
    const tf = ctx.tf;
    let ta = ctx.plain(a!);
    let tb = ctx.plain(b!);
    const aVector = ta.shape.length === 1;
    const bVector = tb.shape.length === 1;
    if (aVector) ta = ta.reshape([1, -1]);
    if (bVector) tb = tb.reshape([-1, 1]);
    let y: Tensor;
    if (tb.shape.length === 2) {
      const lead = ta.shape.slice(0, -1);
      const k = ta.shape[ta.shape.length - 1]!;
      y = tf.matMul(ta.reshape([-1, k]), tb).reshape([...lead, tb.shape[1]!]);
    } else {
      const rank = Math.max(ta.shape.length, tb.shape.length);
      const up = (t: Tensor): Tensor => (t.shape.length < rank ? t.reshape([...new Array<number>(rank - t.shape.length).fill(1), ...t.shape]) : t);
      ta = up(ta);
      tb = up(tb);
      const batch = ta.shape.slice(0, -2).map((d, i) => Math.max(d, tb.shape[i]!));
      const full = (t: Tensor): Tensor => (t.shape.slice(0, -2).every((d, i) => d === batch[i]) ? t : tf.broadcastTo(t, [...batch, ...t.shape.slice(-2)]));
      const fa = full(ta);
      const fb = full(tb);
      const [m, k] = fa.shape.slice(-2) as [number, number];
      const n = fb.shape[fb.shape.length - 1]!;
      y = tf.matMul(fa.reshape([-1, m, k]) as import('@tensorflow/tfjs').Tensor3D, fb.reshape([-1, k, n]) as import('@tensorflow/tfjs').Tensor3D).reshape([...batch, m, n]);
    }
    if (aVector) y = y.squeeze([y.shape.length - 2]);
    if (bVector) y = y.squeeze([y.shape.length - 1]);
    return [device(y)];
  },
});

export const gemmMatMulOps: OpKernel<never>[] = [gemm, matMul] as OpKernel<never>[];
