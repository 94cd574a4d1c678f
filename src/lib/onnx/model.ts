/**
 * Building ONNX models in memory: a graph of nodes, initializers (weights) and typed inputs/outputs, serialised to
 * the ONNX protobuf (onnx.proto field numbers). Used by `natix export` and by tests that need real models.
 * `decode.ts` reads a model file into the same types (fields natix does not model travel as `unknownFields`), so
 * graph surgery is decode, edit, encode.
 */
import {ProtoWriter} from './protobuf.js';

/** ONNX TensorProto.DataType values natix uses. */
export const OnnxDataType = {float: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, string: 8, bool: 9, float16: 10, double: 11, uint32: 12, uint64: 13, bfloat16: 16} as const;
export type OnnxDataTypeName = keyof typeof OnnxDataType;

/** A dimension: a fixed size, a symbolic name (e.g. 'batch'), or null when a decoded model leaves it unknown. */
export type Dim = number | string | null;

/**
 * An attribute: numbers (an integer is INT, else FLOAT; `{float}` forces FLOAT), bigint (an INT beyond 2^53),
 * strings, lists, a tensor, or `{attributeProto}`: the whole AttributeProto bytes as read (graphs, sparse tensors,
 * type protos, references), written back verbatim.
 */
export type AttributeValue =
  | number
  | bigint
  | string
  | number[]
  | string[]
  | Float32Array
  | {float: number}
  | {ints: Array<number | bigint>}
  | {floats: number[]}
  | {attributeProto: Uint8Array}
  | OnnxTensor;

/** Tensor element storage, little-endian as in raw_data (float16 / bfloat16 as their uint16 bits). */
export type OnnxTensorData = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array | Uint32Array | BigInt64Array | BigUint64Array;

export interface OnnxTensor {
  name: string;
  dims: number[];
  type: OnnxDataTypeName;
  data: OnnxTensorData;
  /** Fields of the TensorProto natix does not model (string_data, doc_string, ...), written back as read. */
  unknownFields?: Uint8Array;
}

export interface OnnxNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  /** Default `<opType>_<index>`; '' writes no name. */
  name?: string;
  domain?: string;
  attributes?: Record<string, AttributeValue>;
  docString?: string;
  unknownFields?: Uint8Array;
}

export interface ValueInfo {
  name: string;
  type: OnnxDataTypeName;
  /** Absent when the model does not state the shape (not even the rank). */
  shape?: Dim[];
  docString?: string;
  /** A TypeProto that is not a tensor type (sequence, map, optional): its bytes, written instead of type/shape. */
  rawType?: Uint8Array;
}

export interface OpsetImport {
  domain: string;
  version: number;
}

export interface OnnxModelSpec {
  graphName?: string;
  nodes: OnnxNode[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers?: OnnxTensor[];
  /** Intermediate values' types and shapes (graph.value_info). */
  valueInfo?: ValueInfo[];
  /** Default opset version of the ai.onnx domain (default 13); ignored when opsetImports is given. */
  opset?: number;
  /** Every opset import (domain '' is ai.onnx); decoded models carry theirs here. */
  opsetImports?: OpsetImport[];
  /** IR version (default 8). */
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graphDocString?: string;
  metadata?: Record<string, string>;
  /** ModelProto fields natix does not model (local functions, training info, ...), written back as read. */
  unknownFields?: Uint8Array;
  /** GraphProto fields natix does not model (sparse initializers, quantization annotations), written back as read. */
  graphUnknownFields?: Uint8Array;
}

const AttrType = {FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8} as const;

function writeTensor(w: ProtoWriter, t: OnnxTensor): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, OnnxDataType[t.type]);
  w.string(8, t.name);
  // raw_data is little-endian, which is what typed arrays are on every platform Node runs on here.
  // String tensors have no raw_data: their string_data travels in unknownFields.
  if (t.type !== 'string') w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  if (t.unknownFields) w.raw(t.unknownFields);
}

function writeAttribute(w: ProtoWriter, name: string, value: AttributeValue): void {
  w.string(1, name);
  if (typeof value === 'bigint') {
    w.int(20, AttrType.INT).int(3, value);
  } else if (typeof value === 'number') {
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
  } else if ('attributeProto' in value) {
    throw new Error('attributeProto values are written whole by the node writer');
  } else {
    w.int(20, AttrType.TENSOR).message(5, (t) => writeTensor(t, value));
  }
}

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name);
  if (v.rawType) {
    w.bytes(2, v.rawType);
  } else {
    w.message(2, (type) =>
      type.message(1, (tensor) => {
        tensor.int(1, OnnxDataType[v.type]);
        if (v.shape) {
          tensor.message(2, (shape) => {
            for (const d of v.shape!) shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : typeof d === 'string' ? dim.string(2, d) : undefined));
          });
        }
      }),
    );
  }
  if (v.docString) w.string(3, v.docString);
}

function writeNode(node: ProtoWriter, n: OnnxNode, index: number): void {
  for (const i of n.inputs) node.string(1, i);
  for (const o of n.outputs) node.string(2, o);
  if (n.name !== '') node.string(3, n.name ?? `${n.opType}_${index}`);
  node.string(4, n.opType);
  for (const [name, value] of Object.entries(n.attributes ?? {})) {
    if (typeof value === 'object' && 'attributeProto' in value) node.bytes(5, value.attributeProto);
    else node.message(5, (a) => writeAttribute(a, name, value));
  }
  if (n.docString) node.string(6, n.docString);
  if (n.domain) node.string(7, n.domain);
  if (n.unknownFields) node.raw(n.unknownFields);
}

/** Serialises a model to ONNX protobuf bytes (IR version 8 unless the spec says otherwise). */
export function encodeOnnxModel(spec: OnnxModelSpec): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, spec.irVersion ?? 8);
  w.string(2, spec.producerName ?? 'natix');
  if (spec.producerVersion) w.string(3, spec.producerVersion);
  if (spec.domain) w.string(4, spec.domain);
  if (spec.modelVersion !== undefined) w.int(5, spec.modelVersion);
  if (spec.docString) w.string(6, spec.docString);
  w.message(7, (g) => {
    spec.nodes.forEach((n, index) => g.message(1, (node) => writeNode(node, n, index)));
    g.string(2, spec.graphName ?? 'natix');
    for (const t of spec.initializers ?? []) g.message(5, (tw) => writeTensor(tw, t));
    if (spec.graphDocString) g.string(10, spec.graphDocString);
    for (const i of spec.inputs) g.message(11, (vw) => writeValueInfo(vw, i));
    for (const o of spec.outputs) g.message(12, (vw) => writeValueInfo(vw, o));
    for (const v of spec.valueInfo ?? []) g.message(13, (vw) => writeValueInfo(vw, v));
    if (spec.graphUnknownFields) g.raw(spec.graphUnknownFields);
  });
  for (const op of spec.opsetImports ?? [{domain: '', version: spec.opset ?? 13}]) w.message(8, (o) => o.string(1, op.domain).int(2, op.version));
  for (const [key, value] of Object.entries(spec.metadata ?? {})) w.message(14, (m) => m.string(1, key).string(2, value));
  if (spec.unknownFields) w.raw(spec.unknownFields);
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
