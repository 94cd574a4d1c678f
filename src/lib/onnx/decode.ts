/**
 * Reading ONNX models: ModelProto bytes -> the `OnnxModelSpec` types `model.ts` encodes, so graph surgery is
 * decode, edit, encode. Everything PyTorch / optimum exports is modelled (initializers as raw_data, float_data,
 * int32_data, int64_data, double_data or uint64_data; attributes; opset imports; value_info; metadata); fields natix
 * does not model (local functions, sparse initializers, string_data, ...) are kept as raw bytes and written back.
 * Weights in external files are refused with a clear error: natix reads one self-contained .onnx file.
 */
import {ExitCode, NatixError} from '../errors.js';
import {sha256} from '../util/fs.js';
import {OnnxDataType, type AttributeValue, type Dim, type OnnxDataTypeName, type OnnxModelSpec, type OnnxNode, type OnnxTensor, type OnnxTensorData, type ValueInfo} from './model.js';
import {readUserFile} from '../util/user-files.js';

const TYPE_NAMES = new Map<number, OnnxDataTypeName>(Object.entries(OnnxDataType).map(([name, code]) => [code, name as OnnxDataTypeName]));
const utf8 = new TextDecoder('utf-8');

/** A cursor over protobuf bytes: just the wire types ONNX uses (varint, fixed64, length-delimited, fixed32). */
class ProtoReader {
  pos: number;
  private readonly view: DataView;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint as a number (exact up to 2^53; lengths, tags, enums, dims). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
      if (mul > 2 ** 63) throw new Error('varint too long');
    }
  }

  /** A varint as a signed 64-bit integer (two's complement), exact. */
  varint64(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asIntN(64, result);
      shift += 7n;
      if (shift > 63n) throw new Error('varint too long');
    }
  }

  /** int64 as a number when it is exact, else a bigint. */
  int64(): number | bigint {
    const v = this.varint64();
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  float(): number {
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  double(): number {
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  bytes(): Uint8Array {
    const n = this.varint();
    if (this.pos + n > this.end) throw new Error('truncated length-delimited field');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  string(): string {
    return utf8.decode(this.bytes());
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint64();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) {
      const n = this.varint(); // (not `pos += varint()`: that would add to the position before the length)
      this.pos += n;
    }
    else if (wireType === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
    if (this.pos > this.end) throw new Error('truncated field');
  }

  /** Repeated numeric field, packed (wire type 2) or one value per tag. */
  repeated<T>(wireType: number, read: (r: ProtoReader) => T, out: T[]): void {
    if (wireType === 2) {
      const bytes = this.bytes();
      const inner = new ProtoReader(bytes);
      while (!inner.done()) out.push(read(inner));
    } else {
      out.push(read(this));
    }
  }
}

/** Iterates the fields of a message; `handle` returns false for a field it does not model (kept as raw bytes). */
function readMessage(bytes: Uint8Array, handle: (field: number, wireType: number, r: ProtoReader) => boolean): Uint8Array | undefined {
  const r = new ProtoReader(bytes);
  const unknown: Uint8Array[] = [];
  while (!r.done()) {
    const start = r.pos;
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (!handle(field, wireType, r)) {
      r.skip(wireType);
      unknown.push(bytes.subarray(start, r.pos));
    }
  }
  if (unknown.length === 0) return undefined;
  const out = new Uint8Array(unknown.reduce((n, u) => n + u.length, 0));
  let offset = 0;
  for (const u of unknown) {
    out.set(u, offset);
    offset += u.length;
  }
  return out;
}

const externalDataError = (name: string): NatixError =>
  new NatixError(`Tensor "${name}" keeps its weights in an external data file; natix reads only self-contained .onnx models`, {
    code: 'ONNX_EXTERNAL_DATA',
    exitCode: ExitCode.Usage,
    actions: [
      'Re-save the model with its weights inside (models under 2 GB): python -c "import onnx; m = onnx.load(\'model.onnx\'); onnx.save(m, \'model-single.onnx\', save_as_external_data=False)"',
    ],
  });

/** Copies little-endian raw bytes into an aligned typed array of the tensor's element type. */
function fromRaw(type: OnnxDataTypeName, raw: Uint8Array): OnnxTensorData {
  const copy = (): ArrayBuffer => raw.slice().buffer;
  switch (type) {
    case 'float':
      return new Float32Array(copy());
    case 'double':
      return new Float64Array(copy());
    case 'int32':
      return new Int32Array(copy());
    case 'int16':
      return new Int16Array(copy());
    case 'int8':
      return new Int8Array(copy());
    case 'uint16':
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(copy());
    case 'uint32':
      return new Uint32Array(copy());
    case 'int64':
      return new BigInt64Array(copy());
    case 'uint64':
      return new BigUint64Array(copy());
    default:
      return raw.slice();
  }
}

/** Typed storage from the typed-list fields (float_data, int32_data, int64_data, double_data, uint64_data). */
function fromLists(type: OnnxDataTypeName, lists: {floats: number[]; int32s: number[]; int64s: bigint[]; doubles: number[]; uint64s: bigint[]}): OnnxTensorData {
  switch (type) {
    case 'float':
      return Float32Array.from(lists.floats);
    case 'double':
      return Float64Array.from(lists.doubles);
    case 'int64':
      return BigInt64Array.from(lists.int64s);
    case 'uint64':
      return BigUint64Array.from(lists.uint64s);
    case 'uint32':
      return Uint32Array.from(lists.uint64s, (v) => Number(v));
    case 'int32':
      return Int32Array.from(lists.int32s);
    case 'int16':
      return Int16Array.from(lists.int32s);
    case 'int8':
      return Int8Array.from(lists.int32s);
    case 'uint16':
    case 'float16':
    case 'bfloat16':
      return Uint16Array.from(lists.int32s);
    case 'uint8':
    case 'bool':
      return Uint8Array.from(lists.int32s);
    default:
      return new Uint8Array(0);
  }
}

function decodeTensor(bytes: Uint8Array): OnnxTensor {
  const dims: number[] = [];
  let dataType = 0;
  let name = '';
  let raw: Uint8Array | undefined;
  let external = false;
  const lists = {floats: [] as number[], int32s: [] as number[], int64s: [] as bigint[], doubles: [] as number[], uint64s: [] as bigint[]};
  const unknownFields = readMessage(bytes, (field, wt, r) => {
    switch (field) {
      case 1:
        r.repeated(wt, (x) => x.varint(), dims);
        return true;
      case 2:
        dataType = r.varint();
        return true;
      case 4:
        r.repeated(wt, (x) => x.float(), lists.floats);
        return true;
      case 5:
        r.repeated(wt, (x) => Number(x.varint64()), lists.int32s);
        return true;
      case 7:
        r.repeated(wt, (x) => x.varint64(), lists.int64s);
        return true;
      case 8:
        name = r.string();
        return true;
      case 9:
        raw = r.bytes();
        return true;
      case 10:
        r.repeated(wt, (x) => x.double(), lists.doubles);
        return true;
      case 11:
        r.repeated(wt, (x) => BigInt.asUintN(64, x.varint64()), lists.uint64s);
        return true;
      case 13:
        external = true;
        return false;
      case 14:
        if (r.varint() === 1) external = true;
        return true;
      default:
        return false;
    }
  });
  if (external) throw externalDataError(name);
  const type = TYPE_NAMES.get(dataType);
  if (!type) throw new Error(`tensor "${name}" has unsupported data type ${dataType}`);
  const data = raw !== undefined ? fromRaw(type, raw) : fromLists(type, lists);
  return {name, dims, type, data, ...(unknownFields ? {unknownFields} : {})};
}

const AttrType = {FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8} as const;

function decodeAttribute(bytes: Uint8Array): {name: string; value: AttributeValue} {
  let name = '';
  let type = 0;
  let f = 0;
  let i: number | bigint = 0;
  let s = '';
  let t: OnnxTensor | undefined;
  const floats: number[] = [];
  const ints: Array<number | bigint> = [];
  const strings: string[] = [];
  let opaque = false;
  readMessage(bytes, (field, wt, r) => {
    switch (field) {
      case 1:
        name = r.string();
        return true;
      case 2:
        f = r.float();
        return true;
      case 3:
        i = r.int64();
        return true;
      case 4:
        s = r.string();
        return true;
      case 5:
        t = decodeTensor(r.bytes());
        return true;
      case 7:
        r.repeated(wt, (x) => x.float(), floats);
        return true;
      case 8:
        r.repeated(wt, (x) => x.int64(), ints);
        return true;
      case 9:
        strings.push(r.string());
        return true;
      case 20:
        type = r.varint();
        return true;
      case 13: // doc_string: harmless, but keep the attribute whole
      default:
        opaque = true;
        return false;
    }
  });
  const whole = {attributeProto: bytes.slice()};
  if (opaque) return {name, value: whole};
  switch (type) {
    case AttrType.FLOAT:
      return {name, value: {float: f}};
    case AttrType.INT:
      return {name, value: i};
    case AttrType.STRING:
      return {name, value: s};
    case AttrType.TENSOR:
      return {name, value: t ?? whole};
    case AttrType.FLOATS:
      return {name, value: {floats}};
    case AttrType.INTS:
      return {name, value: {ints}};
    case AttrType.STRINGS:
      return {name, value: strings};
    default:
      return {name, value: whole};
  }
}

function decodeNode(bytes: Uint8Array): OnnxNode {
  // An unnamed node stays unnamed ('' tells the encoder not to invent a name).
  const node: OnnxNode = {opType: '', inputs: [], outputs: [], name: ''};
  const attributes: Record<string, AttributeValue> = {};
  const unknownFields = readMessage(bytes, (field, _wt, r) => {
    switch (field) {
      case 1:
        node.inputs.push(r.string());
        return true;
      case 2:
        node.outputs.push(r.string());
        return true;
      case 3:
        node.name = r.string();
        return true;
      case 4:
        node.opType = r.string();
        return true;
      case 5: {
        const a = decodeAttribute(r.bytes());
        attributes[a.name] = a.value;
        return true;
      }
      case 6:
        node.docString = r.string();
        return true;
      case 7:
        node.domain = r.string();
        return true;
      default:
        return false;
    }
  });
  if (Object.keys(attributes).length > 0) node.attributes = attributes;
  if (unknownFields) node.unknownFields = unknownFields;
  return node;
}

function decodeShape(bytes: Uint8Array): Dim[] {
  const dims: Dim[] = [];
  readMessage(bytes, (field, _wt, r) => {
    if (field !== 1) return false;
    let dim: Dim = null;
    readMessage(r.bytes(), (f, _w, d) => {
      if (f === 1) dim = d.varint();
      else if (f === 2) dim = d.string();
      else return false;
      return true;
    });
    dims.push(dim);
    return true;
  });
  return dims;
}

function decodeValueInfo(bytes: Uint8Array): ValueInfo {
  const v: ValueInfo = {name: '', type: 'float'};
  readMessage(bytes, (field, _wt, r) => {
    if (field === 1) v.name = r.string();
    else if (field === 3) v.docString = r.string();
    else if (field === 2) {
      const typeBytes = r.bytes();
      let tensor: Uint8Array | undefined;
      const other = readMessage(typeBytes, (f, _w, t) => {
        if (f !== 1) return false;
        tensor = t.bytes();
        return true;
      });
      if (!tensor || other) {
        v.rawType = typeBytes.slice();
        return true;
      }
      readMessage(tensor, (f, _w, t) => {
        if (f === 1) {
          const code = t.varint();
          const type = TYPE_NAMES.get(code);
          if (!type) throw new Error(`value "${v.name}" has unsupported element type ${code}`);
          v.type = type;
        } else if (f === 2) v.shape = decodeShape(t.bytes());
        else return false;
        return true;
      });
    } else return false;
    return true;
  });
  return v;
}

function decodeGraph(bytes: Uint8Array, spec: OnnxModelSpec): void {
  const initializers: OnnxTensor[] = [];
  const valueInfo: ValueInfo[] = [];
  const unknown = readMessage(bytes, (field, _wt, r) => {
    switch (field) {
      case 1:
        spec.nodes.push(decodeNode(r.bytes()));
        return true;
      case 2:
        spec.graphName = r.string();
        return true;
      case 5:
        initializers.push(decodeTensor(r.bytes()));
        return true;
      case 10:
        spec.graphDocString = r.string();
        return true;
      case 11:
        spec.inputs.push(decodeValueInfo(r.bytes()));
        return true;
      case 12:
        spec.outputs.push(decodeValueInfo(r.bytes()));
        return true;
      case 13:
        valueInfo.push(decodeValueInfo(r.bytes()));
        return true;
      default:
        return false;
    }
  });
  spec.initializers = initializers;
  if (valueInfo.length > 0) spec.valueInfo = valueInfo;
  if (unknown) spec.graphUnknownFields = unknown;
}

/** Decodes ONNX ModelProto bytes. Throws NatixError ONNX_EXTERNAL_DATA / ONNX_INVALID (exit 2) on what it cannot read. */
export function decodeOnnxModel(input: Uint8Array, source = 'model'): OnnxModelSpec {
  // A plain Uint8Array view (a Node Buffer's slice() is a view, not the copy the tensor readers rely on).
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const spec: OnnxModelSpec = {nodes: [], inputs: [], outputs: [], opsetImports: [], metadata: {}};
  let sawGraph = false;
  try {
    const unknown = readMessage(bytes, (field, _wt, r) => {
      switch (field) {
        case 1:
          spec.irVersion = r.varint();
          return true;
        case 2:
          spec.producerName = r.string();
          return true;
        case 3:
          spec.producerVersion = r.string();
          return true;
        case 4:
          spec.domain = r.string();
          return true;
        case 5:
          spec.modelVersion = r.varint();
          return true;
        case 6:
          spec.docString = r.string();
          return true;
        case 7:
          sawGraph = true;
          decodeGraph(r.bytes(), spec);
          return true;
        case 8: {
          const op = {domain: '', version: 0};
          readMessage(r.bytes(), (f, _w, o) => {
            if (f === 1) op.domain = o.string();
            else if (f === 2) op.version = o.varint();
            else return false;
            return true;
          });
          spec.opsetImports!.push(op);
          return true;
        }
        case 14: {
          let key = '';
          let value = '';
          readMessage(r.bytes(), (f, _w, m) => {
            if (f === 1) key = m.string();
            else if (f === 2) value = m.string();
            else return false;
            return true;
          });
          spec.metadata![key] = value;
          return true;
        }
        default:
          return false;
      }
    });
    if (unknown) spec.unknownFields = unknown;
  } catch (error) {
    if (error instanceof NatixError) throw error;
    throw new NatixError(`${source} is not a readable ONNX model: ${(error as Error).message}`, {
      code: 'ONNX_INVALID',
      exitCode: ExitCode.Usage,
      actions: ['Check that the file is a complete ONNX model (re-export or re-download it).'],
    });
  }
  if (!sawGraph || spec.nodes.length === 0 || spec.outputs.length === 0) {
    throw new NatixError(`${source} is not an ONNX model (no graph with nodes and outputs)`, {code: 'ONNX_INVALID', exitCode: ExitCode.Usage, actions: ['Pass a .onnx file (or a folder with model.onnx).']});
  }
  return spec;
}

export interface ReadOnnxModel {
  spec: OnnxModelSpec;
  bytes: Uint8Array;
  /** SHA-256 of the file's bytes (hex). */
  sha256: string;
}

/** Reads and decodes an .onnx file. */
export async function readOnnxModel(file: string): Promise<ReadOnnxModel> {
  const bytes = new Uint8Array(await readUserFile(file));
  return {spec: decodeOnnxModel(bytes, file), bytes, sha256: sha256(bytes)};
}

/** A float32 view of a numeric tensor's values (float16 and bfloat16 converted). */
export function tensorToFloat32(t: OnnxTensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  if (t.type === 'float16') return Float32Array.from(t.data as Uint16Array, halfToFloat);
  if (t.type === 'bfloat16') return new Float32Array(Uint32Array.from(t.data as Uint16Array, (b) => b << 16).buffer);
  if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) return Float32Array.from(t.data, (v) => Number(v));
  return Float32Array.from(t.data as ArrayLike<number>);
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? Number.NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}
