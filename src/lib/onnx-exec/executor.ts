/**
 * Runs an ONNX graph (or the part of it between given values and requested outputs) on TF.js ops, eagerly, so
 * TF.js's automatic differentiation gives gradients for the initializers made trainable (tf.Variable, by ONNX
 * name). Everything else is constant: frozen initializers and Constant nodes stay host values, and sub-graphs of
 * constants (and the shape sub-graphs, for the batch shape in use) fold in JavaScript.
 *
 * Every op is looked up and its attributes parsed when the executor is built: an unsupported op or attribute is a
 * NatixError naming the op, the node and the model before any data is read.
 */
import type {Tensor, Variable} from '@tensorflow/tfjs';
import {ExitCode, NatixError, errorMessage} from '../errors.js';
import type {OnnxModelSpec} from '../onnx/model.js';
import type {Tf} from '../runtime/tf-type.js';
import {indexGraph, nodesFor, type GraphIndex} from './graph.js';
import {OpError, opFailure, tensorToHostValue, type ExecContext, type OpKernel} from './kernel.js';
import {findOp, supportedOps} from './registry.js';
import {device, FROM_NHWC, hostToTensor, isFloatType, logicalShape, tensorToHost, TO_NHWC, type HostValue, type Value} from './values.js';

export interface ExecutorOptions {
  /** Name used in messages (e.g. the model file). */
  model?: string;
  /** ONNX names of the float initializers to make trainable variables. */
  trainable?: Iterable<string>;
}

interface PlannedNode {
  index: number;
  name: string;
  opType: string;
  inputs: string[];
  outputs: string[];
  kernel: OpKernel<unknown>;
  attrs: unknown;
}

/** A feed: a tensor in ONNX layout, or a host value (e.g. an int64 value a frozen prefix computed). */
export type Feed = Tensor | HostValue;

export class OnnxExecutor {
  readonly graph: GraphIndex;
  /** Trainable initializers, by ONNX name. */
  readonly variables: ReadonlyMap<string, Variable>;
  private readonly planned: PlannedNode[];
  private readonly statics = new Map<string, Value>();
  private readonly constTensors = new Map<HostValue, Tensor>();
  private readonly staticHosts = new Set<HostValue>();
  private readonly memoTensors = new Map<string, Tensor>();
  private readonly plans = new Map<string, {nodes: PlannedNode[]; uses: Map<string, number>}>();

  constructor(
    private readonly tf: Tf,
    spec: OnnxModelSpec,
    options: ExecutorOptions = {},
  ) {
    const model = options.model ?? spec.graphName ?? 'model';
    this.graph = indexGraph(spec, model);
    const unsupported = this.graph.nodes.filter((n) => !findOp(n.opType, n.domain));
    if (unsupported.length) {
      const first = unsupported[0]!;
      const kinds = [...new Set(unsupported.map((n) => `${n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.` : ''}${n.opType}`))];
      throw new NatixError(`${model}: op ${kinds.join(', ')} is not supported by natix's ONNX executor (first at node ${first.name}${unsupported.length > 1 ? `; ${unsupported.length} nodes in all` : ''})`, {
        code: 'ONNX_EXEC_UNSUPPORTED_OP',
        exitCode: ExitCode.Usage,
        data: {model, ops: kinds, nodes: unsupported.map((n) => n.name), supported: supportedOps()},
        actions: ['Re-export the model with plain ONNX ops (torch.onnx.export without custom/contrib ops; no onnxruntime graph optimisations), or train the head only (model.train: head).'],
      });
    }
    const opset = spec.opsetImports?.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? spec.opset ?? 13;
    this.planned = this.graph.nodes.map((n, index) => {
      const kernel = findOp(n.opType, n.domain)!;
      let attrs: unknown;
      try {
        attrs = kernel.parse(n, opset);
      } catch (error) {
        throw opFailure(errorMessage(error), n, model, error);
      }
      return {index, name: n.name!, opType: n.opType, inputs: n.inputs, outputs: n.outputs, kernel, attrs};
    });
    const trainable = new Set(options.trainable ?? []);
    const variables = new Map<string, Variable>();
    for (const name of trainable) {
      const t = this.graph.initializers.get(name);
      if (!t) throw new NatixError(`${model}: there is no initializer named "${name}" to train`, {code: 'ONNX_EXEC_NO_INITIALIZER', exitCode: ExitCode.Usage});
      const hostValue = tensorToHostValue(t);
      if (!isFloatType(hostValue.type)) continue;
      const v = tf.variable(hostToTensor(tf, hostValue), true);
      variables.set(name, v);
    }
    this.variables = variables;
    for (const [name, t] of this.graph.initializers) {
      if (variables.has(name)) this.statics.set(name, device(variables.get(name)!));
      else {
        try {
          this.statics.set(name, tensorToHostValue(t));
        } catch (error) {
          throw new NatixError(`${model}: initializer ${name}: ${errorMessage(error)}`, {code: 'ONNX_EXEC_OP', exitCode: ExitCode.Usage});
        }
      }
    }
    this.foldConstants();
    for (const v of this.statics.values()) if (v.kind === 'host') this.staticHosts.add(v);
  }

  /** Folds, once, every node whose inputs are all constant host values (Constant nodes, weight reshapes...). */
  private foldConstants(): void {
    for (const i of this.graph.order) {
      const p = this.planned[i]!;
      if (!p.kernel.host) continue;
      const inputs = p.inputs.map((v) => (v ? this.statics.get(v) : undefined));
      if (p.inputs.some((v, k) => v && (!inputs[k] || inputs[k]!.kind !== 'host'))) continue;
      let outs: HostValue[];
      try {
        outs = p.kernel.host(inputs as HostValue[], p.attrs);
      } catch (error) {
        throw opFailure(errorMessage(error), p, this.graph.model, error);
      }
      p.outputs.forEach((o, k) => o && outs[k] && this.statics.set(o, outs[k]!));
    }
  }

  private plan(feeds: string[], outputs: string[]): {nodes: PlannedNode[]; uses: Map<string, number>} {
    const key = `${feeds.join('\u0000')}\u0001${outputs.join('\u0000')}`;
    let plan = this.plans.get(key);
    if (!plan) {
      const given = new Set([...feeds, ...this.statics.keys()]);
      for (const o of outputs) {
        if (!given.has(o) && !this.graph.producer.has(o)) throw new NatixError(`${this.graph.model}: no value named "${o}"`, {code: 'ONNX_VALUE_NOT_FOUND', exitCode: ExitCode.Usage});
      }
      const nodes = nodesFor(this.graph, outputs, given).map((i) => this.planned[i]!);
      for (const p of nodes) {
        for (const v of p.inputs) {
          if (v && !given.has(v) && !this.graph.producer.has(v)) {
            throw new NatixError(`${this.graph.model}: computing ${outputs.join(', ')} needs "${v}", which was not fed`, {code: 'ONNX_EXEC_MISSING_FEED', exitCode: ExitCode.Usage, data: {missing: v}});
          }
        }
      }
      const uses = new Map<string, number>();
      for (const p of nodes) for (const v of p.inputs) if (v) uses.set(v, (uses.get(v) ?? 0) + 1);
      plan = {nodes, uses};
      this.plans.set(key, plan);
    }
    return plan;
  }

  /**
   * Computes `outputs` (default: the graph's outputs) from `feeds` (graph inputs, or any values of the graph, e.g.
   * the activations at a freeze boundary). Returns tensors in ONNX layout; intermediate tensors are released as soon
   * as their last consumer ran (tensors a gradient needs are kept by TF.js's tape).
   */
  run(feeds: Record<string, Feed>, outputs: string[] = this.graph.outputs): Record<string, Tensor> {
    const tf = this.tf;
    const plan = this.plan(Object.keys(feeds).sort(), outputs);
    return tf.tidy(() => {
      const values = new Map<string, Value>(this.statics);
      for (const [name, f] of Object.entries(feeds)) values.set(name, 'kind' in f && (f as HostValue).kind === 'host' ? (f as HostValue) : device(f as Tensor));
      const plainCache = new Map<Value, Tensor>();
      const ctx = this.context(plainCache);
      const node = {name: ''};
      ctx.memo = (from, tag, compute) => this.memo(from, `${node.name}\u0000${tag}`, compute);
      const remaining = new Map(plan.uses);
      const keep = new Set([...outputs, ...Object.keys(feeds), ...this.statics.keys()]);
      for (const p of plan.nodes) {
        node.name = p.name;
        const inputs = p.inputs.map((v) => (v ? values.get(v) : undefined));
        let outs: Value[];
        try {
          outs = p.kernel.host && inputs.every((v, k) => !p.inputs[k] || v?.kind === 'host') ? p.kernel.host(inputs as HostValue[], p.attrs) : p.kernel.run(ctx, inputs, p.attrs);
        } catch (error) {
          if (error instanceof NatixError) throw error;
          throw opFailure(`${errorMessage(error)} (input shapes ${inputs.map((v) => (v ? `[${logicalShape(v).join(', ')}]` : '-')).join(', ')})`, p, this.graph.model, error);
        }
        p.outputs.forEach((o, k) => {
          if (!o) return;
          if (!outs[k]) throw opFailure(`output ${k} (${o}) is not computed by natix's ${p.opType}`, p, this.graph.model);
          values.set(o, outs[k]!);
        });
        for (const v of p.inputs) {
          if (!v || keep.has(v)) continue;
          const left = remaining.get(v)! - 1;
          remaining.set(v, left);
          const value = values.get(v);
          if (left === 0 && value?.kind === 'device') {
            value.tensor.dispose();
            plainCache.get(value)?.dispose();
            values.delete(v);
          }
        }
      }
      const result: Record<string, Tensor> = {};
      for (const o of outputs) {
        const v = values.get(o);
        if (!v) throw new NatixError(`${this.graph.model}: output ${o} was not computed`, {code: 'ONNX_EXEC_OP', exitCode: ExitCode.Usage});
        result[o] = v.kind === 'host' ? hostToTensor(tf, v) : v.nhwc ? v.tensor.transpose(FROM_NHWC) : v.tensor;
      }
      return result;
    });
  }

  private memo(from: ReadonlyArray<Value | undefined>, key: string, compute: () => Tensor): Tensor {
    if (!from.every((v) => !v || (v.kind === 'host' && this.staticHosts.has(v)))) return compute();
    let t = this.memoTensors.get(key);
    if (!t) {
      t = this.tf.keep(compute());
      this.memoTensors.set(key, t);
    }
    return t;
  }

  private context(plainCache: Map<Value, Tensor>): ExecContext {
    const tf = this.tf;
    const constTensors = this.constTensors;
    const toTensor = (v: HostValue): Tensor => {
      const cached = constTensors.get(v);
      if (cached) return cached;
      const t = hostToTensor(tf, v);
      if (this.staticHosts.has(v)) constTensors.set(v, tf.keep(t));
      return t;
    };
    return {
      tf,
      plain(v) {
        if (v.kind === 'host') return toTensor(v);
        if (!v.nhwc) return v.tensor;
        let t = plainCache.get(v);
        if (!t) plainCache.set(v, (t = v.tensor.transpose(FROM_NHWC)));
        return t;
      },
      nhwc(v) {
        if (v.kind === 'device' && v.nhwc) return v.tensor;
        const t = this.plain(v);
        if (t.shape.length !== 4) throw new OpError(`expected a 4-D (NCHW) input, got shape [${t.shape.join(', ')}]`);
        return t.transpose(TO_NHWC);
      },
      host(v) {
        return v.kind === 'host' ? v : tensorToHost(v);
      },
      memo: (_from, _tag, compute) => compute(),
    };
  }

  /** Releases the variables and cached constant tensors. */
  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
    for (const t of this.constTensors.values()) t.dispose();
    for (const t of this.memoTensors.values()) t.dispose();
    this.constTensors.clear();
    this.memoTensors.clear();
  }
}
