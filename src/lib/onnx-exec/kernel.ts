/**
 * What an op implementation is (the contract between the registry, the op files under ops/ and the executor), and
 * typed readers for ONNX node attributes. An op parses its attributes once, when the executor is built (so a bad
 * or unsupported attribute is reported before any data is read), and then runs on values.
 */
import type {Tensor} from '@tensorflow/tfjs';
import {ExitCode, NatixError} from '../errors.js';
import type {AttributeValue, OnnxNode, OnnxTensor} from '../onnx/model.js';
import type {Tf} from '../runtime/tf-type.js';
import {host, type HostValue, type Value} from './values.js';

/** What a running op can ask the executor for. */
export interface ExecContext {
  readonly tf: Tf;
  /** The value as a tensor in ONNX (NCHW) order. */
  plain(v: Value): Tensor;
  /** A 4-D value as a tensor in NHWC order. */
  nhwc(v: Value): Tensor;
  /** The value in JavaScript memory (tensors are read back: for shape inputs only). */
  host(v: Value): HostValue;
  /**
   * `compute()` once per executor when every value in `from` is a frozen constant (a conv filter in TF.js order,
   * BatchNorm's folded scale): the result is kept across runs. Otherwise computed every run (it depends on a
   * trainable variable or on the data).
   */
  memo(from: ReadonlyArray<Value | undefined>, tag: string, compute: () => Tensor): Tensor;
}

export interface OpKernel<A = unknown> {
  /** ONNX op type (ai.onnx domain). */
  readonly opType: string;
  /** Reads and checks the node's attributes; throws OpError for what the op does not support. */
  parse(node: OnnxNode, opset: number): A;
  /** Computes on tensors (and host values where an input must be known, e.g. a shape). */
  run(ctx: ExecContext, inputs: ReadonlyArray<Value | undefined>, attrs: A): Value[];
  /**
   * Computes entirely in JavaScript when every input is a host value (shape sub-graphs, constant folding). Ops
   * without it fold by running on tensors.
   */
  host?(inputs: ReadonlyArray<HostValue | undefined>, attrs: A): HostValue[];
}

/** An op's own complaint (bad attribute, unsupported mode); the executor adds the node and model names. */
export class OpError extends Error {}

export function defineOp<A>(kernel: OpKernel<A>): OpKernel<A> {
  return kernel;
}

/** The inputs an op requires, checked (optional inputs are read with `inputs[i]`). */
export function required(inputs: ReadonlyArray<Value | undefined>, count: number, opType: string): Value[] {
  const out: Value[] = [];
  for (let i = 0; i < count; i++) {
    const v = inputs[i];
    if (!v) throw new OpError(`${opType} needs input ${i}`);
    out.push(v);
  }
  return out;
}

function attr(node: OnnxNode, name: string): AttributeValue | undefined {
  return node.attributes?.[name];
}

export function attrInt(node: OnnxNode, name: string, fallback: number): number;
export function attrInt(node: OnnxNode, name: string): number | undefined;
export function attrInt(node: OnnxNode, name: string, fallback?: number): number | undefined {
  const v = attr(node, name);
  if (v === undefined) return fallback;
  if (typeof v === 'number') return Math.trunc(v);
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'object' && v !== null && 'float' in v) return Math.trunc(v.float);
  throw new OpError(`attribute ${name} must be an int`);
}

export function attrFloat(node: OnnxNode, name: string, fallback: number): number {
  const v = attr(node, name);
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  if (typeof v === 'object' && v !== null && 'float' in v) return v.float;
  throw new OpError(`attribute ${name} must be a float`);
}

export function attrInts(node: OnnxNode, name: string): number[] | undefined {
  const v = attr(node, name);
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return (v as unknown[]).map((x) => Number(x));
  if (typeof v === 'number' || typeof v === 'bigint') return [Number(v)];
  if (typeof v === 'object' && v !== null && 'ints' in v) return v.ints.map(Number);
  throw new OpError(`attribute ${name} must be a list of ints`);
}

export function attrFloats(node: OnnxNode, name: string): number[] | undefined {
  const v = attr(node, name);
  if (v === undefined) return undefined;
  if (v instanceof Float32Array) return Array.from(v);
  if (Array.isArray(v)) return (v as unknown[]).map((x) => Number(x));
  if (typeof v === 'object' && v !== null && 'floats' in v) return v.floats;
  throw new OpError(`attribute ${name} must be a list of floats`);
}

export function attrString(node: OnnxNode, name: string, fallback: string): string {
  const v = attr(node, name);
  if (v === undefined) return fallback;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  throw new OpError(`attribute ${name} must be a string`);
}

export function attrTensor(node: OnnxNode, name: string): OnnxTensor | undefined {
  const v = attr(node, name);
  if (v === undefined) return undefined;
  if (typeof v === 'object' && v !== null && 'dims' in v && 'data' in v) return v as OnnxTensor;
  throw new OpError(`attribute ${name} must be a tensor`);
}

/** An ONNX tensor (initializer, Constant value) as a host value. */
export function tensorToHostValue(t: OnnxTensor): HostValue {
  const type = t.type;
  if (type !== 'float' && type !== 'double' && type !== 'int64' && type !== 'int32' && type !== 'int8' && type !== 'uint8' && type !== 'bool' && type !== 'float16') {
    throw new OpError(`tensor ${t.name} has an element type (${String(type)}) the executor does not compute with`);
  }
  if (type === 'float16') throw new OpError(`tensor ${t.name} is float16; export the model in float32`);
  const data = t.data instanceof BigInt64Array ? Array.from(t.data, (x) => Number(x)) : (t.data as ArrayLike<number>);
  return host(type === 'double' ? 'float' : type, t.dims, data);
}

/** Normalises a possibly negative axis against a rank. */
export function axis(a: number, rank: number): number {
  const r = a < 0 ? a + rank : a;
  if (r < 0 || r >= Math.max(rank, 1)) throw new OpError(`axis ${a} is out of range for rank ${rank}`);
  return r;
}

export function unsupported(message: string): never {
  throw new OpError(message);
}

/** The NatixError for an op the executor cannot run, naming what the user needs to find it in their model. */
export function opFailure(message: string, node: {opType: string; name?: string}, model: string, cause?: unknown): NatixError {
  return new NatixError(`${model}: node ${node.name ?? '(unnamed)'} (${node.opType}): ${message}`, {
    code: 'ONNX_EXEC_OP',
    exitCode: ExitCode.Usage,
    cause,
    data: {model, node: node.name, opType: node.opType},
    actions: ['Re-export the model with a different opset or simplified graph (e.g. onnxsim), or train the head only (model.train: head).'],
  });
}
