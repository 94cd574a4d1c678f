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

export function indexGraph(spec: OnnxModelSpec, model: string): GraphIndex {
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
