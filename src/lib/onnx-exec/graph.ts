/**
 * The graph module: an index of an ONNX graph (who produces and who consumes each value, a topological order,
 * which values depend on the graph's inputs), the cut at a freeze boundary (which nodes form the trainable tail
 * and which values cross into it), and block detection (the repeated residual / LayerNorm-bounded sub-graphs users
 * pick with `last:N`).
 */
import {ExitCode, NatixError} from '../errors.js';
import type {OnnxModelSpec, OnnxNode, OnnxTensor} from '../onnx/model.js';

export interface GraphIndex {
  readonly model: string;
  readonly spec: OnnxModelSpec;
  /** Nodes, every one named (`<opType>_<index>` where the model has no name, as the encoder writes them). */
  readonly nodes: OnnxNode[];
  /** Node indices in an order where every node comes after the producers of its inputs. */
  readonly order: number[];
  readonly producer: ReadonlyMap<string, number>;
  readonly consumers: ReadonlyMap<string, number[]>;
  readonly initializers: ReadonlyMap<string, OnnxTensor>;
  /** Graph inputs that are not initializers: what a caller feeds. */
  readonly inputs: string[];
  readonly outputs: string[];
  /** Values that depend on a graph input (everything else is constant for the model). */
  readonly dynamic: ReadonlySet<string>;
}

/**
 * torch.onnx.export de-duplicates parameters with equal values (e.g. every LayerNorm weight still at ones) into one
 * initializer read through Identity nodes. Training must give each its own value, so each Identity of an
 * initializer becomes an initializer of its own (same name as the Identity's output; the export keeps that form).
 */
export function untieInitializers(spec: OnnxModelSpec): OnnxModelSpec {
  const initializers = new Map((spec.initializers ?? []).map((t) => [t.name, t]));
  let nodes = spec.nodes;
  for (;;) {
    const tied = nodes.filter((n) => n.opType === 'Identity' && (!n.domain || n.domain === 'ai.onnx') && initializers.has(n.inputs[0] ?? '') && n.outputs[0] && !spec.outputs.some((o) => o.name === n.outputs[0]));
    if (!tied.length) break;
    for (const n of tied) {
      const source = initializers.get(n.inputs[0]!)!;
      initializers.set(n.outputs[0]!, {...source, name: n.outputs[0]!, data: source.data.slice() as typeof source.data});
    }
    const gone = new Set(tied);
    nodes = nodes.filter((n) => !gone.has(n));
  }
  if (nodes === spec.nodes) return spec;
  const used = new Set(nodes.flatMap((n) => n.inputs));
  return {...spec, nodes, initializers: [...initializers.values()].filter((t) => used.has(t.name) || spec.outputs.some((o) => o.name === t.name))};
}

export function indexGraph(original: OnnxModelSpec, model: string): GraphIndex {
  const spec = untieInitializers(original);
  const nodes = spec.nodes.map((n, i) => (n.name ? n : {...n, name: `${n.opType}_${i}`}));
  const initializers = new Map((spec.initializers ?? []).map((t) => [t.name, t]));
  const inputs = spec.inputs.map((i) => i.name).filter((n) => !initializers.has(n));
  const producer = new Map<string, number>();
  const consumers = new Map<string, number[]>();
  nodes.forEach((n, i) => {
    for (const o of n.outputs) if (o) producer.set(o, i);
    for (const v of n.inputs) if (v) consumers.set(v, [...(consumers.get(v) ?? []), i]);
  });
  const known = new Set<string>([...inputs, ...initializers.keys()]);
  for (const [i, n] of nodes.entries()) {
    for (const v of n.inputs) {
      if (v && !known.has(v) && !producer.has(v)) {
        throw new NatixError(`${model}: node ${n.name} (${n.opType}) reads "${v}", which no node, input or initializer provides`, {code: 'ONNX_GRAPH_INVALID', exitCode: ExitCode.Usage, data: {model, node: n.name, value: v, index: i}});
      }
    }
  }
  // Kahn's algorithm, stable in the file's node order.
  const pending = nodes.map((n) => new Set(n.inputs.filter((v) => v && producer.has(v))).size);
  const waiting = new Map<string, number[]>();
  nodes.forEach((n, i) => {
    for (const v of new Set(n.inputs.filter((x) => x && producer.has(x)))) waiting.set(v, [...(waiting.get(v) ?? []), i]);
  });
  const order: number[] = [];
  const ready = nodes.map((_, i) => i).filter((i) => pending[i] === 0);
  while (ready.length) {
    const i = ready.shift()!;
    order.push(i);
    for (const o of nodes[i]!.outputs) {
      for (const j of waiting.get(o) ?? []) {
        if (--pending[j]! === 0) {
          // Insert keeping file order among ready nodes.
          const at = ready.findIndex((r) => r > j);
          ready.splice(at === -1 ? ready.length : at, 0, j);
        }
      }
    }
  }
  if (order.length !== nodes.length) {
    const stuck = nodes.filter((_, i) => pending[i]! > 0).map((n) => n.name);
    throw new NatixError(`${model}: the graph has a cycle through ${stuck.slice(0, 5).join(', ')}`, {code: 'ONNX_GRAPH_INVALID', exitCode: ExitCode.Usage});
  }
  const dynamic = new Set<string>(inputs);
  for (const i of order) {
    const n = nodes[i]!;
    if (n.inputs.some((v) => v && dynamic.has(v))) for (const o of n.outputs) if (o) dynamic.add(o);
  }
  return {model, spec, nodes, order, producer, consumers, initializers, inputs, outputs: spec.outputs.map((o) => o.name), dynamic};
}

/** Nodes needed to compute `targets` when the values in `given` are already known, in topological order. */
export function nodesFor(g: GraphIndex, targets: Iterable<string>, given: ReadonlySet<string>): number[] {
  const needed = new Set<number>();
  const stack = [...targets];
  const seen = new Set<string>();
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v) || given.has(v)) continue;
    seen.add(v);
    const p = g.producer.get(v);
    if (p === undefined) continue;
    if (!needed.has(p)) {
      needed.add(p);
      for (const i of g.nodes[p]!.inputs) if (i) stack.push(i);
    }
  }
  return g.order.filter((i) => needed.has(i));
}

/** Nodes that depend on `value` (directly or not), in topological order. */
export function downstreamOf(g: GraphIndex, value: string): number[] {
  const reached = new Set<number>();
  const stack = [value];
  const seen = new Set<string>();
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    for (const c of g.consumers.get(v) ?? []) {
      if (reached.has(c)) continue;
      reached.add(c);
      for (const o of g.nodes[c]!.outputs) if (o) stack.push(o);
    }
  }
  return g.order.filter((i) => reached.has(i));
}

/** Where a graph splits into a frozen prefix and a trainable tail. */
export interface Cut {
  /** The value training starts from. */
  from: string;
  /** Tail nodes (topological order): they run on TF.js, with gradients. */
  tail: number[];
  /** Values the prefix computes and the tail reads (`from` first; then e.g. shape values or skip connections). */
  boundary: string[];
  /** Float initializers the tail trains, by ONNX name. */
  trainable: string[];
  /** Float initializers the tail reads but keeps frozen, with the reason (BatchNorm statistics, shared with the prefix, scalars). */
  frozen: Array<{name: string; reason: string}>;
}

function notFound(g: GraphIndex, value: string, hint: string): NatixError {
  return new NatixError(`${g.model}: there is no value named "${value}" to start training from`, {
    code: 'ONNX_VALUE_NOT_FOUND',
    exitCode: ExitCode.Usage,
    data: {model: g.model, value},
    actions: [hint],
  });
}

/** The cut of the graph at `from` (a value name: a graph input trains everything). */
export function cutAt(g: GraphIndex, from: string): Cut {
  const isValue = g.producer.has(from) || g.inputs.includes(from) || g.initializers.has(from);
  if (!isValue) throw notFound(g, from, 'List the blocks and their boundary values with `natix train --inspect`, or use model.train: last:N.');
  if (!g.dynamic.has(from)) throw new NatixError(`${g.model}: "${from}" is a constant of the model (it does not depend on the image), so training cannot start there`, {code: 'ONNX_CUT_INVALID', exitCode: ExitCode.Usage});
  const tail = downstreamOf(g, from);
  const reachesOutput = g.outputs.some((o) => o === from || tail.some((i) => g.nodes[i]!.outputs.includes(o)));
  if (!tail.length || !reachesOutput) throw new NatixError(`${g.model}: no graph output depends on "${from}"`, {code: 'ONNX_CUT_INVALID', exitCode: ExitCode.Usage});
  const inTail = new Set(tail);
  const producedInTail = new Set(tail.flatMap((i) => g.nodes[i]!.outputs));
  const boundary = [from];
  const used = new Map<string, string>();
  for (const i of tail) {
    const n = g.nodes[i]!;
    n.inputs.forEach((v, k) => {
      if (!v) return;
      if (g.dynamic.has(v) && !producedInTail.has(v) && !boundary.includes(v)) boundary.push(v);
      if (g.initializers.has(v) && !used.has(v)) used.set(v, n.opType === 'BatchNormalization' && k >= 3 ? 'BatchNorm running statistics stay frozen' : '');
    });
  }
  const trainable: string[] = [];
  const frozen: Array<{name: string; reason: string}> = [];
  for (const [name, reason] of used) {
    const t = g.initializers.get(name)!;
    const size = t.dims.reduce((a, b) => a * b, 1);
    const sharedWithPrefix = (g.consumers.get(name) ?? []).some((c) => !inTail.has(c));
    const why = reason || (t.type !== 'float' ? '' : size <= 1 ? 'a scalar constant' : sharedWithPrefix ? 'also used by the frozen prefix' : '');
    if (t.type !== 'float') continue;
    if (why) frozen.push({name, reason: why});
    else trainable.push(name);
  }
  return {from, tail, boundary, trainable, frozen};
}

/** A block: a run of the graph between two single-tensor boundaries, e.g. one transformer or residual block. */
export interface Block {
  /** Its name from the node names (`blocks.3`, `layer2.1`, `encoder/layer.11`), or `block.<i>` for unnamed graphs. */
  name: string;
  /** The value entering the block: `model.train-from` starts training here. */
  from: string;
  /** The value leaving it. */
  to: string;
  nodes: number;
  /** Float parameters (initializer elements) the block reads, BatchNorm statistics excluded. */
  parameters: number;
}

const NUMBERED = /[._]\d+$/;

/** Name prefixes through the first and the second numbered path component (`/blocks/blocks.0/attn/qkv` -> blocks.0). */
function scopeKeys(name: string): [string, string] {
  const parts = name.split('/').filter(Boolean);
  const numbered = parts.map((p, i) => (NUMBERED.test(p) && i < parts.length - 1 ? i : -1)).filter((i) => i >= 0);
  const upTo = (k: number | undefined): string => (k === undefined ? '' : parts.slice(0, k + 1).join('/'));
  return [upTo(numbered[0]), upTo(numbered[1])];
}

function mostCommon(keys: string[]): string {
  const counts = new Map<string, number>();
  for (const k of keys) if (k) counts.set(k, (counts.get(k) ?? 0) + 1);
  let best = '';
  let n = 0;
  for (const [k, c] of counts) if (c > n) [best, n] = [k, c];
  return best;
}

/**
 * The blocks of a graph, in order. Boundaries are the values every later computation depends on alone (apart from
 * shape values): residual streams between transformer or ResNet blocks, the output of a plain layer. Consecutive
 * segments whose node names share a numbered scope (`blocks.3`, `layer2.1`, `features.5`) form one block; a scope
 * holding several residual blocks (`stages.1/layers.0..2`) is split at its numbered sub-scopes. Graphs without
 * such names get one block per residual join.
 */
/** Values computed from tensor shapes only (Shape/Size and what is derived from them): int64 shape arithmetic. */
export function shapeValuesOf(g: GraphIndex): Set<string> {
  const shapeValues = new Set<string>();
  for (const i of g.order) {
    const n = g.nodes[i]!;
    const dynamicInputs = n.inputs.filter((v) => v && g.dynamic.has(v));
    if (n.opType === 'Shape' || n.opType === 'Size' || (dynamicInputs.length > 0 && dynamicInputs.every((v) => shapeValues.has(v)))) for (const o of n.outputs) if (o) shapeValues.add(o);
  }
  return shapeValues;
}

export function findBlocks(g: GraphIndex): Block[] {
  const shapeValues = shapeValuesOf(g);
  const tails = new Map<string, Set<number>>();
  const isBoundary = (v: string): boolean => {
    const tail = downstreamOf(g, v);
    const inTail = new Set(tail);
    const produced = new Set(tail.flatMap((i) => g.nodes[i]!.outputs));
    if (!g.outputs.every((o) => produced.has(o))) return false;
    for (const i of tail) for (const x of g.nodes[i]!.inputs) if (x && x !== v && g.dynamic.has(x) && !produced.has(x) && !shapeValues.has(x)) return false;
    tails.set(v, inTail);
    return true;
  };
  const boundaries: string[] = [];
  const input = g.inputs[0];
  if (input && isBoundary(input)) boundaries.push(input);
  for (const i of g.order) for (const v of g.nodes[i]!.outputs) if (v && g.dynamic.has(v) && !shapeValues.has(v) && !g.outputs.includes(v) && isBoundary(v)) boundaries.push(v);
  if (boundaries.length < 2) return [];
  interface Segment {
    from: string;
    to: string;
    nodes: number[];
    keys: [string, string];
    join: boolean;
  }
  const segments: Segment[] = [];
  for (let k = 1; k < boundaries.length; k++) {
    const after = tails.get(boundaries[k]!)!;
    const nodes = [...tails.get(boundaries[k - 1]!)!].filter((i) => !after.has(i));
    const names = nodes.map((i) => scopeKeys(g.nodes[i]!.name!));
    const join = nodes.some((i) => {
      const n = g.nodes[i]!;
      return (n.opType === 'Add' || n.opType === 'Sum') && n.inputs.filter((v) => v && g.dynamic.has(v) && !shapeValues.has(v)).length >= 2;
    });
    segments.push({from: boundaries[k - 1]!, to: boundaries[k]!, nodes, keys: [mostCommon(names.map((n) => n[0])), mostCommon(names.map((n) => n[1]))], join});
  }
  const groups: Segment[][] = [];
  if (segments.some((s) => s.keys[0])) {
    for (const s of segments) {
      const last = groups[groups.length - 1];
      if (last && s.keys[0] && last[0]!.keys[0] === s.keys[0]) last.push(s);
      else groups.push([s]);
    }
    // Split a scope that holds several residual blocks at its numbered sub-scopes (ConvNeXt stages.N/layers.M).
    for (let k = 0; k < groups.length; k++) {
      const group = groups[k]!;
      const sub: Segment[][] = [];
      for (const s of group) {
        const last = sub[sub.length - 1];
        if (last && last[0]!.keys[1] === s.keys[1]) last.push(s);
        else sub.push([s]);
      }
      if (sub.length > 1 && sub.filter((x) => x.some((s) => s.join)).length > 1 && sub.every((x) => x[0]!.keys[1])) groups.splice(k, 1, ...sub);
    }
  } else {
    let current: Segment[] = [];
    const anyJoin = segments.some((s) => s.join);
    for (const s of segments) {
      current.push(s);
      if (!anyJoin || s.join) {
        groups.push(current);
        current = [];
      }
    }
  }
  const named = segments.some((s) => s.keys[0]);
  const blocks = groups
    .filter((group) => !named || group[0]!.keys[0])
    .map((group, i) => {
      const nodes = group.flatMap((s) => s.nodes);
      const params = new Set<string>();
      for (const n of nodes) {
        const node = g.nodes[n]!;
        node.inputs.forEach((v, k) => {
          if (v && g.initializers.get(v)?.type === 'float' && !(node.opType === 'BatchNormalization' && k >= 3)) params.add(v);
        });
      }
      const parameters = [...params].reduce((s, p) => s + g.initializers.get(p)!.dims.reduce((a, b) => a * b, 1), 0);
      const [key1, key2] = group[0]!.keys;
      const split = key2 && groups.some((o) => o !== group && o[0]!.keys[0] === key1);
      const name = !named ? `block.${i}` : split ? `${key1.split('/').pop()}${key2.slice(key1.length)}` : key1.split('/').pop()!;
      return {name, from: group[0]!.from, to: group[group.length - 1]!.to, nodes: nodes.length, parameters};
    });
  return withParameters(blocks);
}

/**
 * Folds blocks without parameters into their neighbour (the one before, else the one after): in an nn.Sequential
 * the numbered children are layers (`down.0` Conv, `down.2` ReLU), and `last:1` must train something.
 */
function withParameters(blocks: Block[]): Block[] {
  if (!blocks.some((b) => b.parameters > 0)) return blocks;
  const out: Block[] = [];
  let pending: Block | undefined;
  for (const b of blocks) {
    const last = out[out.length - 1];
    if (b.parameters === 0 && last) {
      out[out.length - 1] = {...last, to: b.to, nodes: last.nodes + b.nodes};
    } else if (b.parameters === 0) {
      pending = pending ? {...pending, to: b.to, nodes: pending.nodes + b.nodes} : b;
    } else {
      out.push(pending ? {...b, from: pending.from, nodes: pending.nodes + b.nodes} : b);
      pending = undefined;
    }
  }
  return out;
}

/** The value training starts from for `all`, `last:N` or an explicit value name. */
export function trainFrom(g: GraphIndex, what: {all: true} | {last: number} | {from: string}): string {
  if ('all' in what) return g.inputs[0]!;
  if ('from' in what) return what.from;
  const blocks = findBlocks(g);
  if (!blocks.length) throw new NatixError(`${g.model}: natix found no blocks in this graph (no single-tensor boundaries)`, {code: 'ONNX_NO_BLOCKS', exitCode: ExitCode.Usage, actions: ['Name the value to start from with model.train-from, or train everything (model.train: all).']});
  if (!Number.isInteger(what.last) || what.last < 1 || what.last > blocks.length) {
    throw new NatixError(`${g.model}: last:${what.last} asks for more blocks than the ${blocks.length} natix found (${blocks.map((b) => b.name).join(', ')})`, {code: 'ONNX_NO_BLOCKS', exitCode: ExitCode.Usage, actions: [`Use last:1 ... last:${blocks.length}, or model.train: all.`]});
  }
  return blocks[blocks.length - what.last]!.from;
}

/**
 * The frozen prefix as a model of its own, for onnxruntime: the nodes that compute the boundary values from the
 * graph inputs, with those values as outputs. Undefined when the cut starts at a graph input (nothing is frozen).
 */
export function prefixSpec(g: GraphIndex, cut: Cut): OnnxModelSpec | undefined {
  const computed = cut.boundary.filter((v) => !g.inputs.includes(v));
  if (!computed.length) return undefined;
  const nodes = nodesFor(g, computed, new Set(g.inputs)).map((i) => g.nodes[i]!);
  const read = new Set(nodes.flatMap((n) => n.inputs));
  const shapeValues = shapeValuesOf(g);
  const known = new Map((g.spec.valueInfo ?? []).map((v) => [v.name, v]));
  return {
    ...g.spec,
    graphName: `${g.spec.graphName ?? 'model'}-frozen-prefix`,
    nodes,
    initializers: (g.spec.initializers ?? []).filter((t) => read.has(t.name)),
    inputs: g.spec.inputs.filter((i) => read.has(i.name) && !g.initializers.has(i.name)),
    outputs: computed.map((name) => ({name, type: known.get(name)?.type ?? (shapeValues.has(name) ? 'int64' : 'float')})),
    valueInfo: undefined,
  };
}
