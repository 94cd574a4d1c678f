/**
 * The values an ONNX graph computes, as the executor holds them.
 *
 * - A HostValue lives in JavaScript memory: initializers of the frozen part, Constant nodes, and everything the
 *   shape sub-graphs compute (Shape -> Gather -> Concat -> Reshape...). Integer data is kept as float64 numbers (exact
 *   up to 2^53, which covers every shape and index), so shape arithmetic never touches the accelerator.
 * - A DeviceValue is a TF.js tensor. ONNX int64 becomes int32 (TF.js has no int64). A 4-D value may be held in NHWC
 *   order while it means NCHW (`nhwc: true`): TF.js convolutions and pools want channels last, so the executor keeps
 *   the convolutional trunk channels-last and converts only where an op needs the ONNX (NCHW) order. The ONNX
 *   (logical) shape is what `logicalShape` returns either way.
 */
import type {Tensor} from '@tensorflow/tfjs';
import {ExitCode, NatixError} from '../errors.js';
import type {Tf} from '../runtime/tf-type.js';

/** ONNX element types the executor computes with. */
export type ElemType = 'float' | 'double' | 'float16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

export interface HostValue {
  readonly kind: 'host';
  readonly type: ElemType;
  readonly dims: number[];
  /** Float32Array for 'float'; Float64Array (exact integers, 0/1 for bool) for everything else. */
  readonly data: Float32Array | Float64Array;
}

export interface DeviceValue {
  readonly kind: 'device';
  readonly tensor: Tensor;
  /** True when `tensor` holds a 4-D NCHW value in NHWC order. */
  readonly nhwc: boolean;
}

export type Value = HostValue | DeviceValue;

/** Logical -> physical axis order of an NHWC-held NCHW value, and its inverse. */
export const TO_NHWC = [0, 2, 3, 1];
export const FROM_NHWC = [0, 3, 1, 2];

export function isFloatType(t: ElemType): boolean {
  return t === 'float' || t === 'double' || t === 'float16';
}

export function host(type: ElemType, dims: number[], values: ArrayLike<number>): HostValue {
  const data = type === 'float' ? Float32Array.from(values) : Float64Array.from(values);
  return {kind: 'host', type, dims: [...dims], data};
}

export function device(tensor: Tensor, nhwc = false): DeviceValue {
  return {kind: 'device', tensor, nhwc};
}

export function sizeOf(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** The ONNX shape of a value. */
export function logicalShape(v: Value): number[] {
  if (v.kind === 'host') return v.dims;
  const s = v.tensor.shape;
  return v.nhwc ? [s[0]!, s[3]!, s[1]!, s[2]!] : [...s];
}

/** The ONNX element type of a value (device int32 reads as int64: that is what ONNX graphs compute with). */
export function elemType(v: Value): ElemType {
  if (v.kind === 'host') return v.type;
  return v.tensor.dtype === 'float32' ? 'float' : v.tensor.dtype === 'bool' ? 'bool' : 'int64';
}

function tfDtype(type: ElemType): 'float32' | 'int32' | 'bool' {
  return isFloatType(type) ? 'float32' : type === 'bool' ? 'bool' : 'int32';
}

/** A host value as a TF.js tensor (float -> float32, integers -> int32, bool -> bool). */
export function hostToTensor(tf: Tf, v: HostValue): Tensor {
  const dtype = tfDtype(v.type);
  if (dtype === 'float32') return tf.tensor(v.data instanceof Float32Array ? v.data : Float32Array.from(v.data), v.dims, 'float32');
  if (dtype === 'bool') return tf.tensor(Uint8Array.from(v.data), v.dims, 'bool');
  for (const x of v.data) {
    if (x > 2147483647 || x < -2147483648) {
      throw new NatixError(`An integer tensor of shape [${v.dims.join(', ')}] holds ${x}, which TF.js's int32 cannot represent`, {code: 'ONNX_EXEC_INT_RANGE', exitCode: ExitCode.Usage});
    }
  }
  return tf.tensor(Int32Array.from(v.data), v.dims, 'int32');
}

/** A tensor read back to the host (used for shape inputs that a graph computes on tensors; small by nature). */
export function tensorToHost(v: DeviceValue): HostValue {
  const plain = v.nhwc ? v.tensor.transpose(FROM_NHWC) : v.tensor;
  const raw = plain.dataSync();
  const shape = [...plain.shape];
  if (plain !== v.tensor) plain.dispose();
  const type: ElemType = v.tensor.dtype === 'float32' ? 'float' : v.tensor.dtype === 'bool' ? 'bool' : 'int64';
  return host(type, shape, raw as ArrayLike<number>);
}

/** Reads an integer list (axes, shape, pads) from a 0-/1-D host value. */
export function hostInts(v: HostValue): number[] {
  return Array.from(v.data, (x) => Math.trunc(x));
}
