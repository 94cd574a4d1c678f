/**
 * Shape and data-movement ops: Reshape, Transpose, Concat, Slice, Gather, Split, Squeeze, Unsqueeze, Expand,
 * Flatten, Identity, Dropout (inference), Constant, Cast, and the shape sub-graph ops (Shape, Size,
 * ConstantOfShape, Range). Each works on tensors and, where shape sub-graphs need it, on host values, so
 * `Shape -> Gather -> Concat -> Reshape` chains fold to constants for the batch shape in use.
 */
import type {Tensor} from '@tensorflow/tfjs';
import {attrFloat, attrFloats, attrInt, attrInts, attrTensor, axis as normAxis, defineOp, OpError, required, tensorToHostValue, type ExecContext, type OpKernel} from '../kernel.js';
import {hostConcat, hostTake, hostTranspose} from '../host.js';
import {device, host, hostInts, isFloatType, logicalShape, sizeOf, TO_NHWC, type ElemType, type HostValue, type Value} from '../values.js';

const identity = (opType: string): OpKernel<null> =>
  defineOp({
    opType,
    parse: () => null,
    run: (_ctx, inputs) => {
      const x = required(inputs, 1, opType)[0]!;
      // A new tensor object: the executor releases each value after its own last use.
      return [x.kind === 'device' ? device(x.tensor.clone(), x.nhwc) : x];
    },
    host: (inputs) => [inputs[0]!],
  });

/** ONNX Reshape semantics: 0 copies the input dimension (unless allowzero), -1 is inferred. */
function reshapeTarget(input: number[], spec: number[], allowZero: boolean): number[] {
  const out = spec.map((d, i) => (d === 0 && !allowZero ? input[i]! : d));
  const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const total = sizeOf(input);
  const inferred = out.indexOf(-1);
  if (inferred >= 0) out[inferred] = known === 0 ? 0 : total / known;
  if (sizeOf(out) !== total || out.some((d) => !Number.isInteger(d) || d < 0)) throw new OpError(`cannot reshape [${input.join(', ')}] to [${spec.join(', ')}]`);
  return out;
}

const reshape = defineOp<{allowZero: boolean}>({
  opType: 'Reshape',
  parse: (node) => ({allowZero: attrInt(node, 'allowzero', 0) === 1}),
  run(ctx, inputs, attrs) {
    const [x, s] = required(inputs, 2, 'Reshape');
    const target = reshapeTarget(logicalShape(x!), hostInts(ctx.host(s!)), attrs.allowZero);
    return [device(ctx.plain(x!).reshape(target))];
  },
  host(inputs, attrs) {
    const [x, s] = inputs as HostValue[];
    return [{...x!, dims: reshapeTarget(x!.dims, hostInts(s!), attrs.allowZero)}];
  },
});

const flatten = defineOp<{axis: number}>({
  opType: 'Flatten',
  parse: (node) => ({axis: attrInt(node, 'axis', 1)}),
  run(ctx, inputs, attrs) {
    const [x] = required(inputs, 1, 'Flatten');
    const dims = logicalShape(x!);
    const ax = attrs.axis < 0 ? attrs.axis + dims.length : attrs.axis;
    return [device(ctx.plain(x!).reshape([sizeOf(dims.slice(0, ax)), sizeOf(dims.slice(ax))]))];
  },
  host(inputs, attrs) {
    const x = inputs[0]!;
    const ax = attrs.axis < 0 ? attrs.axis + x.dims.length : attrs.axis;
    return [{...x, dims: [sizeOf(x.dims.slice(0, ax)), sizeOf(x.dims.slice(ax))]}];
  },
});

const transpose = defineOp<{perm?: number[]}>({
  opType: 'Transpose',
  parse: (node) => ({perm: attrInts(node, 'perm')}),
  run(ctx, inputs, attrs) {
    const [x] = required(inputs, 1, 'Transpose');
    const rank = logicalShape(x!).length;
    const perm = attrs.perm ?? [...Array(rank).keys()].reverse();
    if (x!.kind === 'device' && x!.nhwc) {
      // Compose with the NHWC holding: one transpose (or none: NCHW -> NHWC of an NHWC-held value is free).
      const physical = perm.map((p) => TO_NHWC.indexOf(p));
      return [device(physical.every((p, i) => p === i) ? x!.tensor.clone() : x!.tensor.transpose(physical))];
    }
    return [device(ctx.plain(x!).transpose(perm))];
  },
  host(inputs, attrs) {
    const x = inputs[0]!;
    return [hostTranspose(x, attrs.perm ?? [...Array(x.dims.length).keys()].reverse())];
  },
});

function squeezeAxes(ctx: ExecContext | undefined, inputs: ReadonlyArray<Value | undefined>, fromAttr: number[] | undefined, useInput: boolean): number[] | undefined {
  if (!useInput) return fromAttr;
  const v = inputs[1];
  if (!v) return undefined;
  return hostInts(v.kind === 'host' ? v : ctx!.host(v));
}

interface AxesAttrs {
  axes?: number[];
  axesFromInput: boolean;
}

const parseAxes = (node: Parameters<OpKernel['parse']>[0], opset: number): AxesAttrs => ({axes: attrInts(node, 'axes'), axesFromInput: opset >= 13});

function squeezedDims(dims: number[], axes: number[] | undefined): number[] {
  if (!axes) return dims.filter((d) => d !== 1);
  const norm = axes.map((a) => normAxis(a, dims.length));
  return dims.filter((_, i) => !norm.includes(i));
}

function unsqueezedDims(dims: number[], axes: number[]): number[] {
  const rank = dims.length + axes.length;
  const norm = axes.map((a) => normAxis(a, rank));
  const out: number[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(norm.includes(i) ? 1 : dims[k++]!);
  return out;
}

const squeeze = defineOp<AxesAttrs>({
  opType: 'Squeeze',
  parse: parseAxes,
  run(ctx, inputs, attrs) {
    const [x] = required(inputs, 1, 'Squeeze');
    return [device(ctx.plain(x!).reshape(squeezedDims(logicalShape(x!), squeezeAxes(ctx, inputs, attrs.axes, attrs.axesFromInput))))];
  },
  host(inputs, attrs) {
    const x = inputs[0]!;
    return [{...x, dims: squeezedDims(x.dims, squeezeAxes(undefined, inputs, attrs.axes, attrs.axesFromInput))}];
  },
});

const unsqueeze = defineOp<AxesAttrs>({
  opType: 'Unsqueeze',
  parse: parseAxes,
  run(ctx, inputs, attrs) {
    const [x] = required(inputs, 1, 'Unsqueeze');
    const axes = squeezeAxes(ctx, inputs, attrs.axes, attrs.axesFromInput);
    if (!axes) throw new OpError('Unsqueeze needs axes');
    return [device(ctx.plain(x!).reshape(unsqueezedDims(logicalShape(x!), axes)))];
  },
  host(inputs, attrs) {
    const x = inputs[0]!;
    const axes = squeezeAxes(undefined, inputs, attrs.axes, attrs.axesFromInput);
    if (!axes) throw new OpError('Unsqueeze needs axes');
    return [{...x, dims: unsqueezedDims(x.dims, axes)}];
  },
});

const concat = defineOp<{axis: number}>({
  opType: 'Concat',
  parse: (node) => ({axis: attrInt(node, 'axis', 0)}),
  run(ctx, inputs, attrs) {
    const values = inputs.filter((v): v is Value => v !== undefined && sizeOf(logicalShape(v)) > 0);
    if (!values.length) return [inputs[0]!];
    const rank = logicalShape(values[0]!).length;
    const ax = normAxis(attrs.axis, rank);
    if (rank === 4 && values.every((v) => v.kind === 'device' && v.nhwc)) {
      return [device(ctx.tf.concat(values.map((v) => (v as {tensor: Tensor}).tensor), TO_NHWC.indexOf(ax)), true)];
    }
    return [device(ctx.tf.concat(values.map((v) => ctx.plain(v)), ax))];
  },
  host(inputs, attrs) {
    const values = inputs.filter((v): v is HostValue => v !== undefined && sizeOf(v.dims) > 0);
    if (!values.length) return [inputs[0]!];
    return [hostConcat(values, normAxis(attrs.axis, values[0]!.dims.length))];
  },
});

interface SliceAttrs {
  legacy?: {starts: number[]; ends: number[]; axes?: number[]};
}

/** Per-axis [start, end, step] of an ONNX Slice, clamped as the spec says. */
function sliceRanges(dims: number[], starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined): Array<[number, number, number]> {
  const ranges: Array<[number, number, number]> = dims.map((d) => [0, d, 1]);
  starts.forEach((s, i) => {
    const ax = normAxis(axes ? axes[i]! : i, dims.length);
    const d = dims[ax]!;
    const step = steps ? steps[i]! : 1;
    if (step === 0) throw new OpError('Slice step 0');
    let start = s < 0 ? s + d : s;
    let end = ends[i]! < 0 ? ends[i]! + d : ends[i]!;
    if (step > 0) {
      start = Math.min(Math.max(start, 0), d);
      end = Math.min(Math.max(end, 0), d);
    } else {
      start = Math.min(Math.max(start, -1), d - 1);
      end = Math.min(Math.max(end, -1), d - 1);
    }
    ranges[ax] = [start, end, step];
  });
  return ranges;
}

function sliceArgs(inputs: ReadonlyArray<HostValue | undefined>, attrs: SliceAttrs): [number[], number[], number[] | undefined, number[] | undefined] {
  if (attrs.legacy) return [attrs.legacy.starts, attrs.legacy.ends, attrs.legacy.axes, undefined];
  const ints = (v: HostValue | undefined): number[] | undefined => (v ? Array.from(v.data, (x) => (x >= 9.2e18 ? Number.MAX_SAFE_INTEGER : x <= -9.2e18 ? -Number.MAX_SAFE_INTEGER : Math.trunc(x))) : undefined);
  return [ints(inputs[1])!, ints(inputs[2])!, ints(inputs[3]), ints(inputs[4])];
}

const coordsOf = ([start, end, step]: [number, number, number]): number[] => {
  const out: number[] = [];
  for (let i = start; step > 0 ? i < end : i > end; i += step) out.push(i);
  return out;
};

const slice = defineOp<SliceAttrs>({
  opType: 'Slice',
  parse(node, opset) {
    if (opset >= 10) return {};
    return {legacy: {starts: attrInts(node, 'starts') ?? [], ends: attrInts(node, 'ends') ?? [], axes: attrInts(node, 'axes')}};
  },
  run(ctx, inputs, attrs) {
    const [x] = required(inputs, 1, 'Slice');
    const hostInputs = inputs.map((v, i) => (i > 0 && v ? ctx.host(v) : undefined));
    const [starts, ends, axes, steps] = sliceArgs(hostInputs, attrs);
    const dims = logicalShape(x!);
    const ranges = sliceRanges(dims, starts, ends, axes, steps);
    const nhwc = x!.kind === 'device' && x!.nhwc;
    const t = nhwc ? (x as {tensor: Tensor}).tensor : ctx.plain(x!);
    const order = nhwc ? TO_NHWC.map((a) => ranges[a]!) : ranges;
    if (order.every(([, , step]) => step === 1)) {
      return [device(ctx.tf.slice(t, order.map(([s]) => s), order.map(([s, e]) => Math.max(0, e - s))), nhwc)];
    }
    const sizes = order.map((r) => coordsOf(r).length);
    if (sizes.some((n) => n === 0)) return [device(ctx.tf.zeros(sizes, t.dtype), nhwc)];
    // A negative step that runs through index 0 has end -1, which TF.js reads as "the last element": mask it.
    const endMask = order.reduce((m, [, e, step], i) => (e === -1 && step < 0 ? m | (1 << i) : m), 0);
    return [device(ctx.tf.stridedSlice(t, order.map(([s]) => s), order.map(([, e]) => e), order.map(([, , step]) => step), 0, endMask), nhwc)];
  },
  host(inputs, attrs) {
    const x = inputs[0]!;
    const [starts, ends, axes, steps] = sliceArgs(inputs, attrs);
    return [hostTake(x, sliceRanges(x.dims, starts, ends, axes, steps).map(coordsOf))];
  },
});

const gather = defineOp<{axis: number}>({
  opType: 'Gather',
  parse: (node) => ({axis: attrInt(node, 'axis', 0)}),
  run(ctx, inputs, attrs) {
    const [x, idx] = required(inputs, 2, 'Gather');
    const dims = logicalShape(x!);
    const ax = normAxis(attrs.axis, dims.length);
    const tf = ctx.tf;
    const t = ctx.plain(x!);
    if (idx!.kind === 'host') {
      const indices = hostInts(idx!).map((i) => (i < 0 ? i + dims[ax]! : i));
      const contiguous = indices.length > 0 && indices.every((v, i) => v === indices[0]! + i);
      if (contiguous) {
        // A slice: its gradient is a pad, which every backend has (tf.gather's needs UnsortedSegmentSum).
        const begin = dims.map((_, i) => (i === ax ? indices[0]! : 0));
        const size = dims.map((d, i) => (i === ax ? indices.length : d));
        const sliced = tf.slice(t, begin, size);
        return [device(sliced.reshape([...dims.slice(0, ax), ...idx!.dims, ...dims.slice(ax + 1)]))];
      }
      const flat = tf.gather(t, tf.tensor1d(indices, 'int32'), ax);
      return [device(flat.reshape([...dims.slice(0, ax), ...idx!.dims, ...dims.slice(ax + 1)]))];
    }
    const it = idx!.tensor;
    const fixed = tf.where(tf.less(it, 0), tf.add(it, dims[ax]!), it);
    return [device(tf.gather(t, fixed.reshape([-1]), ax).reshape([...dims.slice(0, ax), ...it.shape, ...dims.slice(ax + 1)]))];
  },
  host(inputs, attrs) {
    const [x, idx] = inputs as HostValue[];
    const ax = normAxis(attrs.axis, x!.dims.length);
    const indices = hostInts(idx!).map((i) => (i < 0 ? i + x!.dims[ax]! : i));
    const taken = hostTake(x!, x!.dims.map((d, i) => (i === ax ? indices : [...Array(d).keys()])));
    return [{...taken, dims: [...x!.dims.slice(0, ax), ...idx!.dims, ...x!.dims.slice(ax + 1)]}];
  },
});

interface SplitAttrs {
  axis: number;
  split?: number[];
  splitFromInput: boolean;
  numOutputs?: number;
  outputs: number;
}

function splitSizes(dim: number, attrs: SplitAttrs, input: HostValue | undefined): number[] {
  const listed = attrs.splitFromInput ? (input ? hostInts(input) : undefined) : attrs.split;
  if (listed) return listed;
  const n = attrs.numOutputs ?? attrs.outputs;
  const each = Math.ceil(dim / n);
  return Array.from({length: n}, (_, i) => Math.min(each, dim - i * each));
}

const split = defineOp<SplitAttrs>({
  opType: 'Split',
  parse: (node, opset) => ({axis: attrInt(node, 'axis', 0), split: attrInts(node, 'split'), splitFromInput: opset >= 13, numOutputs: attrInt(node, 'num_outputs'), outputs: node.outputs.length}),
  run(ctx, inputs, attrs) {
    const [x] = required(inputs, 1, 'Split');
    const dims = logicalShape(x!);
    const ax = normAxis(attrs.axis, dims.length);
    const sizes = splitSizes(dims[ax]!, attrs, inputs[1] ? ctx.host(inputs[1]) : undefined);
    if (x!.kind === 'device' && x!.nhwc) return ctx.tf.split(x!.tensor, sizes, TO_NHWC.indexOf(ax)).map((t) => device(t, true));
    return ctx.tf.split(ctx.plain(x!), sizes, ax).map((t) => device(t));
  },
  host(inputs, attrs) {
    const x = inputs[0]!;
    const ax = normAxis(attrs.axis, x.dims.length);
    const sizes = splitSizes(x.dims[ax]!, attrs, inputs[1]);
    let offset = 0;
    return sizes.map((n) => {
      const coords = x.dims.map((d, i) => (i === ax ? Array.from({length: n}, (_, k) => offset + k) : [...Array(d).keys()]));
      offset += n;
      return hostTake(x, coords);
    });
  },
});

function expandedDims(dims: number[], target: number[]): number[] {
  const rank = Math.max(dims.length, target.length);
  return Array.from({length: rank}, (_, i) => {
    const a = dims[dims.length - rank + i] ?? 1;
    const b = target[target.length - rank + i] ?? 1;
    if (a !== b && a !== 1 && b !== 1) throw new OpError(`cannot expand [${dims.join(', ')}] to [${target.join(', ')}]`);
    return a === 1 ? b : a;
  });
}

const expand = defineOp<null>({
  opType: 'Expand',
  parse: () => null,
  run(ctx, inputs) {
    const [x, s] = required(inputs, 2, 'Expand');
    const dims = logicalShape(x!);
    const out = expandedDims(dims, hostInts(ctx.host(s!)));
    const t = ctx.plain(x!);
    if (out.length === dims.length && out.every((d, i) => d === dims[i])) return [device(t.clone())];
    return [device(ctx.tf.broadcastTo(t.reshape([...new Array<number>(out.length - dims.length).fill(1), ...dims]), out))];
  },
  host(inputs) {
    const [x, s] = inputs as HostValue[];
    const out = expandedDims(x!.dims, hostInts(s!));
    const padded = {...x!, dims: [...new Array<number>(out.length - x!.dims.length).fill(1), ...x!.dims]};
    return [hostTake(padded, out.map((d, i) => (padded.dims[i] === 1 ? new Array<number>(d).fill(0) : [...Array(d).keys()])))];
  },
});

const ONNX_TYPES: Record<number, ElemType> = {1: 'float', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'double'};

function castHost(v: HostValue, to: ElemType): HostValue {
  if (isFloatType(to)) return host('float', v.dims, v.data);
  if (to === 'bool') return host('bool', v.dims, Array.from(v.data, (x) => Number(x !== 0)));
  return host(to, v.dims, Array.from(v.data, (x) => Math.trunc(x)));
}

const cast = defineOp<{to: ElemType}>({
  opType: 'Cast',
  parse(node) {
    const to = ONNX_TYPES[attrInt(node, 'to', 1)];
    if (!to) throw new OpError(`Cast to ONNX type ${attrInt(node, 'to', 1)} is not supported`);
    return {to};
  },
  run(ctx, inputs, attrs) {
    const [x] = required(inputs, 1, 'Cast');
    const dtype = isFloatType(attrs.to) ? 'float32' : attrs.to === 'bool' ? 'bool' : 'int32';
    if (x!.kind === 'host') return [castHost(x!, attrs.to)];
    return [device(x!.tensor.dtype === dtype ? x!.tensor.clone() : ctx.tf.cast(x!.tensor, dtype), x!.nhwc)];
  },
  host: (inputs, attrs) => [castHost(inputs[0]!, attrs.to)],
});

const shapeOp = defineOp<{start: number; end?: number}>({
  opType: 'Shape',
  parse: (node) => ({start: attrInt(node, 'start', 0), end: attrInt(node, 'end')}),
  run: (_ctx, inputs, attrs) => {
    const dims = logicalShape(required(inputs, 1, 'Shape')[0]!);
    const picked = dims.slice(attrs.start, attrs.end);
    return [host('int64', [picked.length], picked)];
  },
  host: (inputs, attrs) => {
    const picked = inputs[0]!.dims.slice(attrs.start, attrs.end);
    return [host('int64', [picked.length], picked)];
  },
});

const sizeOp = defineOp<null>({
  opType: 'Size',
  parse: () => null,
  run: (_ctx, inputs) => [host('int64', [], [sizeOf(logicalShape(required(inputs, 1, 'Size')[0]!))])],
  host: (inputs) => [host('int64', [], [sizeOf(inputs[0]!.dims)])],
});

function constantValue(node: Parameters<OpKernel['parse']>[0]): HostValue {
  const t = attrTensor(node, 'value');
  if (t) return tensorToHostValue(t);
  const names = Object.keys(node.attributes ?? {});
  if (names.includes('value_float')) return host('float', [], [attrFloat(node, 'value_float', 0)]);
  if (names.includes('value_floats')) {
    const f = attrFloats(node, 'value_floats')!;
    return host('float', [f.length], f);
  }
  if (names.includes('value_int')) return host('int64', [], [attrInt(node, 'value_int', 0)]);
  if (names.includes('value_ints')) {
    const i = attrInts(node, 'value_ints')!;
    return host('int64', [i.length], i);
  }
  throw new OpError(`Constant with attributes ${JSON.stringify(names)} is not supported`);
}

const constant = defineOp<HostValue>({
  opType: 'Constant',
  parse: (node) => constantValue(node),
  run: (_ctx, _inputs, value) => [value],
  host: (_inputs, value) => [value],
});

const constantOfShape: OpKernel<HostValue> = defineOp<HostValue>({
  opType: 'ConstantOfShape',
  parse: (node) => {
    const t = attrTensor(node, 'value');
    return t ? tensorToHostValue(t) : host('float', [1], [0]);
  },
  run: (ctx, inputs, value) => [constantOfShape.host!([ctx.host(required(inputs, 1, 'ConstantOfShape')[0]!)], value)[0]!],
  host: (inputs, value) => {
    const dims = hostInts(inputs[0]!);
    return [host(value.type, dims, new Float64Array(sizeOf(dims)).fill(value.data[0] ?? 0))];
  },
});

const range: OpKernel<null> = defineOp<null>({
  opType: 'Range',
  parse: () => null,
  run: (ctx, inputs) => range.host!(required(inputs, 3, 'Range').map((v) => ctx.host(v)), null),
  host: (inputs) => {
    const [start, limit, delta] = inputs.map((v) => v!.data[0]!);
    const n = Math.max(Math.ceil((limit! - start!) / delta!), 0);
    return [host(inputs[0]!.type, [n], Array.from({length: n}, (_, i) => start! + i * delta!))];
  },
});

export const shapeOps: OpKernel<never>[] = [
  identity('Identity'),
  identity('Dropout'),
  reshape,
  flatten,
  transpose,
  squeeze,
  unsqueeze,
  concat,
  slice,
  gather,
  split,
  expand,
  cast,
  shapeOp,
  sizeOp,
  constant,
  constantOfShape,
  range,
] as OpKernel<never>[];

