/**
 * The head stitched onto a backbone graph: the graph cut at the feature value (a classifier's old head dropped), the
 * pooling nodes the extraction ran, the head as Gemm nodes, the logits divided by the temperature T inside the graph
 * (output `logits`) and their softmax (output `probabilities`). Used by the export and, for fine-tuning runs, by the
 * per-epoch validation in onnxruntime.
 */
import {ExitCode, NatixError} from '../errors.js';
import {floatTensor, type OnnxModelSpec, type OnnxNode} from '../onnx/model.js';
import {natixVersion} from '../runtime/environment.js';
import {cutGraph, FEATURES_VALUE, poolingNodes} from '../train/backbone.js';
import type {NamedArray} from '../train/checkpoint.js';

/** The backbone graph + pooling + head + temperature: outputs `logits` (already / T) and `probabilities`. */
export function stitchHead(spec: OnnxModelSpec, feature: string, rank: number, pool: 'cls' | 'mean' | 'none', opset: number, head: NamedArray[], type: 'linear' | 'mlp', temperature: number, classes: number): OnnxModelSpec {
  const cut = cutGraph(spec, [feature]);
  const taken = new Set(cut.nodes.flatMap((n) => n.outputs));
  for (const name of ['logits', 'probabilities', FEATURES_VALUE]) {
    if (taken.has(name)) throw new NatixError(`The backbone already has a value named "${name}" before its features`, {code: 'EXPORT_NAME_CLASH', exitCode: ExitCode.Usage});
  }
  const pooling = poolingNodes(feature, rank, pool, opset, FEATURES_VALUE);
  const w = (name: string): NamedArray => head.find((a) => a.name === name)!;
  const init = (name: string): ReturnType<typeof floatTensor> => floatTensor(`natix_${name.replace('/', '_')}`, w(name).shape, w(name).data);
  const headNodes: OnnxNode[] = [];
  const headInits = [];
  if (type === 'linear') {
    headInits.push(init('head/W'), init('head/b'));
    headNodes.push({opType: 'Gemm', name: 'natix_head', inputs: [FEATURES_VALUE, 'natix_head_W', 'natix_head_b'], outputs: ['natix_logits_raw']});
  } else {
    headInits.push(init('head/W1'), init('head/b1'), init('head/W2'), init('head/b2'));
    headNodes.push(
      {opType: 'Gemm', name: 'natix_head_fc1', inputs: [FEATURES_VALUE, 'natix_head_W1', 'natix_head_b1'], outputs: ['natix_hidden']},
      {opType: 'Relu', name: 'natix_head_relu', inputs: ['natix_hidden'], outputs: ['natix_hidden_relu']},
      {opType: 'Gemm', name: 'natix_head_fc2', inputs: ['natix_hidden_relu', 'natix_head_W2', 'natix_head_b2'], outputs: ['natix_logits_raw']},
    );
  }
  headInits.push(floatTensor('natix_temperature', [], [temperature]));
  headNodes.push(
    {opType: 'Div', name: 'natix_temperature_scaling', inputs: ['natix_logits_raw', 'natix_temperature'], outputs: ['logits']},
    {opType: 'Softmax', name: 'natix_softmax', inputs: ['logits'], outputs: ['probabilities'], attributes: {axis: 1}},
  );
  return {
    ...spec,
    nodes: [...cut.nodes, ...pooling.nodes, ...headNodes],
    initializers: [...cut.initializers, ...pooling.initializers, ...headInits],
    inputs: cut.inputs,
    outputs: [
      {name: 'logits', type: 'float', shape: ['batch_size', classes]},
      {name: 'probabilities', type: 'float', shape: ['batch_size', classes]},
    ],
    valueInfo: undefined,
    producerName: 'natix',
    producerVersion: natixVersion(),
    docString: `natix head on ${spec.producerName ?? 'an ONNX'} backbone`,
  };
}
