/**
 * The op registry: ONNX op type -> its implementation (attribute parsing + computation), assembled from one file
 * per op family under ops/. Adding an op is adding it to its family's list (and a test).
 */
import type {OpKernel} from './kernel.js';
import {activationOps} from './ops/activations.js';
import {convOps} from './ops/conv.js';
import {elementwiseOps} from './ops/elementwise.js';
import {gemmMatMulOps} from './ops/gemm-matmul.js';
import {normalizationOps} from './ops/normalization.js';
import {reducePoolOps} from './ops/reduce-pool.js';
import {shapeOps} from './ops/shape.js';

const REGISTRY: ReadonlyMap<string, OpKernel<unknown>> = new Map(
  [...convOps, ...gemmMatMulOps, ...elementwiseOps, ...activationOps, ...normalizationOps, ...reducePoolOps, ...shapeOps].map((k) => [k.opType, k as OpKernel<unknown>]),
);

/** The implementation of an op of the default ONNX domain, or undefined. */
export function findOp(opType: string, domain?: string): OpKernel<unknown> | undefined {
  if (domain && domain !== 'ai.onnx') return undefined;
  return REGISTRY.get(opType);
}

/** Every supported op type, sorted (for messages and docs). */
export function supportedOps(): string[] {
  return [...REGISTRY.keys()].sort();
}
