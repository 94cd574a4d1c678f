/**
 * Building ONNX models in memory: a graph of nodes, initializers (weights) and typed inputs/outputs, serialised to
 * the ONNX protobuf (onnx.proto field numbers). Used by `natix export` and by tests that need real models.
 */
import {ProtoWriter} from './protobuf.js';

/** ONNX TensorProto.DataType values natix uses. */
export const OnnxDataType = {float: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10, double: 11} as const;
export type OnnxDataTypeName = keyof typeof OnnxDataType;

/** A dimension: a fixed size, or a symbolic name (e.g. 'batch'). */
export type Dim = number | string;

export type AttributeValue = number | string | number[] | string[] | Float32Array | {float: number} | {ints: number[]} | {floats: number[]} | OnnxTensor;

export interface OnnxTensor {
  name: string;
  dims: number[];
  type: OnnxDataTypeName;
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Float64Array;
}

export interface OnnxNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attributes?: Record<string, AttributeValue>;
}

export interface ValueInfo {
  name: string;
  type: OnnxDataTypeName;
  shape: Dim[];
}

export interface OnnxModelSpec {
  graphName?: string;
  nodes: OnnxNode[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers?: OnnxTensor[];
  /** Default opset version of the ai.onnx domain (default 13). */
  opset?: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

const AttrType = {FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8} as const;

function writeTensor(w: ProtoWriter, t: OnnxTensor): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, OnnxDataType[t.type]);
  w.string(8, t.name);
  // raw_data is little-endian, which is what typed arrays are on every platform Node runs on here.
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

function writeAttribute(w: ProtoWriter, name: string, value: AttributeValue): void {
  w.string(1, name);
  if (typeof value === 'number') {
    if (Number.isInteger(value)) w.int(20, AttrType.INT).int(3, value);
    else w.int(20, AttrType.FLOAT).float(2, value);
  } else if (typeof value === 'string') {
    w.int(20, AttrType.STRING).string(4, value);
  } else if (value instanceof Float32Array) {
    w.int(20, AttrType.FLOATS);
    for (const f of value) w.float(7, f);
  } else if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'string')) {
      w.int(20, AttrType.STRINGS);
      for (const s of value as string[]) w.string(9, s);
    } else {
      w.int(20, AttrType.INTS);
      for (const i of value as number[]) w.int(8, i);
    }
  } else if ('float' in value) {
    w.int(20, AttrType.FLOAT).float(2, value.float);
  } else if ('ints' in value) {
    w.int(20, AttrType.INTS);
    for (const i of value.ints) w.int(8, i);
  } else if ('floats' in value) {
    w.int(20, AttrType.FLOATS);
    for (const f of value.floats) w.float(7, f);
  } else {
    w.int(20, AttrType.TENSOR).message(5, (t) => writeTensor(t, value));
  }
}

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, OnnxDataType[v.type]);
      tensor.message(2, (shape) => {
        for (const d of v.shape) shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      });
    }),
  );
}

/** Serialises a model to ONNX protobuf bytes (IR version 8). */
export function encodeOnnxModel(spec: OnnxModelSpec): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, 8); // ir_version
  w.string(2, spec.producerName ?? 'natix');
  if (spec.producerVersion) w.string(3, spec.producerVersion);
  if (spec.docString) w.string(6, spec.docString);
  w.message(7, (g) => {
    spec.nodes.forEach((n, index) =>
      g.message(1, (node) => {
        for (const i of n.inputs) node.string(1, i);
        for (const o of n.outputs) node.string(2, o);
        node.string(3, n.name ?? `${n.opType}_${index}`);
        node.string(4, n.opType);
        if (n.domain) node.string(7, n.domain);
        for (const [name, value] of Object.entries(n.attributes ?? {})) node.message(5, (a) => writeAttribute(a, name, value));
      }),
    );
    g.string(2, spec.graphName ?? 'natix');
    for (const t of spec.initializers ?? []) g.message(5, (tw) => writeTensor(tw, t));
    for (const i of spec.inputs) g.message(11, (vw) => writeValueInfo(vw, i));
    for (const o of spec.outputs) g.message(12, (vw) => writeValueInfo(vw, o));
  });
  w.message(8, (op) => op.string(1, '').int(2, spec.opset ?? 13));
  for (const [key, value] of Object.entries(spec.metadata ?? {})) w.message(14, (m) => m.string(1, key).string(2, value));
  return w.finish();
}

/** A float32 initializer. */
export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): OnnxTensor {
  return {name, dims, type: 'float', data: Float32Array.from(values)};
}

/** An int64 initializer (shapes, axes). */
export function int64Tensor(name: string, dims: number[], values: ArrayLike<number>): OnnxTensor {
  return {name, dims, type: 'int64', data: BigInt64Array.from(Array.from(values, (v) => BigInt(v)))};
}
