/**
 * A frozen backbone for head training: any ONNX model (a `.onnx` file or a Hugging Face-style folder) with its own
 * preprocessing. Finds the feature tensor (`model.features: auto | <value name>`: `last_hidden_state`,
 * `pooler_output`, a classifier's final Gemm / MatMul+Add input with the old head dropped, or a feature map),
 * appends the pooling (`cls` token, `mean` over tokens or over H x W) as ONNX nodes, and cuts the graph there. The
 * same cut graph + pooling runs in extraction and, with the trained head stitched on, in the export, so the exported
 * logits equal the training path's.
 */
import {existsSync} from 'node:fs';
import {mkdir} from 'node:fs/promises';
import path from 'node:path';
import {resolveModelKind} from '../cascade/model.js';
import {preprocessingFromHf} from '../image/hf-processor.js';
import {openSession, ort, type SessionSettings} from '../cascade/onnx-session.js';
import {ExitCode, NatixError} from '../errors.js';
import {batchDims, explainPreprocessing, type Preprocessing} from '../image/preprocess.js';
import {readOnnxModel} from '../onnx/decode.js';
import {WorkerPool} from '../runtime/worker-pool.js';
import {writeFileAtomic} from '../util/fs.js';
import {encodeOnnxModel, int64Tensor, type Dim, type OnnxModelSpec, type OnnxNode, type OnnxTensor} from '../onnx/model.js';
import {readUserFile} from '../util/user-files.js';

export type PoolChoice = 'auto' | 'cls' | 'mean' | 'none';

/** Names of backbone outputs that are features, best first. */
const FEATURE_OUTPUTS = ['last_hidden_state', 'pooler_output', 'image_embeds', 'features', 'feature_map', 'embeddings'];
/** Ops a classifier may end with after its linear layer: skipped when looking for the head. */
const PASS_THROUGH = new Set(['Identity', 'Softmax', 'Sigmoid', 'LogSoftmax']);
/** Name of the pooled feature value in natix's cut graph. */
export const FEATURES_VALUE = 'natix_features';

export interface FeatureChoice {
  /** The value whose content is the features (before pooling). */
  name: string;
  /** How it was found, in words (for --inspect and errors). */
  how: string;
  /** Its rank when the model states it (3 = tokens [B,T,D], 4 = map [B,C,H,W], 2 = vector [B,D]). */
  rank?: number;
  /** The classifier head that was dropped, when the features are its input. */
  droppedHead?: {nodes: string[]; classes: number};
}

export interface BackboneInfo {
  /** What `model.from` named (resolved). */
  source: string;
  onnxFile: string;
  kind: 'onnx' | 'hf';
  sha256: string;
  /** preprocessor_config.json used, copied unchanged into the export. */
  preprocessorFile: string;
  preprocessing: Preprocessing;
  inputName: string;
  inputShape: Dim[];
  canBatch: boolean;
  inputs: Array<{name: string; type: string; shape?: Dim[]}>;
  outputs: Array<{name: string; type: string; shape?: Dim[]}>;
  feature: FeatureChoice;
  pool: Exclude<PoolChoice, 'auto'>;
  /** Size of the pooled feature vector (probed by running the cut graph once). */
  dim: number;
  /** Shape of the feature value for one image before pooling (probed; --inspect only). */
  rawDims?: number[];
  opset: number;
}

export interface Backbone {
  info: BackboneInfo;
  /** The decoded original model (for the export). */
  spec: OnnxModelSpec;
  /** The cut graph: original nodes up to the features, then pooling, output FEATURES_VALUE [B, dim]. */
  featureGraph: OnnxModelSpec;
  device: 'cpu' | 'cuda';
  fallbackReason?: string;
  /** Pooled features of a batch of preprocessed images ([n, ...input] packed), n * dim floats. */
  run(batch: Float32Array | Uint8Array, n: number): Promise<Float32Array>;
  /** Where the session runs: a worker thread (the main thread stays free to decode) or in-process. */
  runtime: 'worker' | 'in-process';
  close(): Promise<void>;
}

export interface BackboneOptions extends SessionSettings {
  features: string;
  pool: PoolChoice;
  /** A preprocessor_config.json to use instead of the model's own (a bare .onnx file has none). */
  preprocessor?: string;
  /** Also probe the raw feature shape (for --inspect). */
  inspect?: boolean;
  /**
   * Write the cut graph here and run it in a worker thread (onnxruntime-node's session.run blocks the thread that
   * calls it, so decoding on the main thread can only overlap inference this way). Without it: in-process.
   */
  graphFile?: string;
}

const usage = (message: string, code: string, actions: string[], data?: Record<string, unknown>): NatixError => new NatixError(message, {code, exitCode: ExitCode.Usage, actions, ...(data ? {data} : {})});

function producers(spec: OnnxModelSpec): Map<string, OnnxNode> {
  const map = new Map<string, OnnxNode>();
  for (const n of spec.nodes) for (const o of n.outputs) map.set(o, n);
  return map;
}

/** An initializer, or the tensor of a Constant node, by value name. */
function constantTensor(spec: OnnxModelSpec, name: string, made: Map<string, OnnxNode>): OnnxTensor | undefined {
  const init = spec.initializers?.find((t) => t.name === name);
  if (init) return init;
  const node = made.get(name);
  const value = node?.opType === 'Constant' ? node.attributes?.value : undefined;
  return value && typeof value === 'object' && 'dims' in value ? (value as OnnxTensor) : undefined;
}

/** The classifier head producing `output`: the last Gemm, or MatMul (+ Add) with constant weights. */
export function findClassifierHead(spec: OnnxModelSpec, output: string): FeatureChoice | undefined {
  const made = producers(spec);
  const chain: string[] = [];
  let node = made.get(output);
  while (node && PASS_THROUGH.has(node.opType)) {
    chain.push(node.name || node.opType);
    node = made.get(node.inputs[0]!);
  }
  if (!node) return undefined;
  if (node.opType === 'Gemm') {
    const w = constantTensor(spec, node.inputs[1]!, made);
    if (!w || w.dims.length !== 2) return undefined;
    const transB = node.attributes?.transB === 1;
    return {name: node.inputs[0]!, how: `input of the final Gemm "${node.name}" (old ${transB ? w.dims[0] : w.dims[1]}-class head dropped)`, droppedHead: {nodes: [node.name || 'Gemm', ...chain], classes: transB ? w.dims[0]! : w.dims[1]!}};
  }
  let add: OnnxNode | undefined;
  if (node.opType === 'Add') {
    const [a, b] = node.inputs as [string, string];
    const matmul = [a, b].map((v) => made.get(v)).find((n) => n?.opType === 'MatMul');
    if (!matmul) return undefined;
    add = node;
    node = matmul;
  }
  if (node.opType === 'MatMul') {
    const w = constantTensor(spec, node.inputs[1]!, made);
    if (!w || w.dims.length !== 2) return undefined;
    return {name: node.inputs[0]!, how: `input of the final MatMul${add ? '+Add' : ''} "${node.name}" (old ${w.dims[1]}-class head dropped)`, droppedHead: {nodes: [...(add ? [add.name || 'Add'] : []), node.name || 'MatMul', ...chain], classes: w.dims[1]!}};
  }
  return undefined;
}

/** Every value name a model computes (node outputs) plus its inputs. */
function valueNames(spec: OnnxModelSpec): Set<string> {
  return new Set([...spec.inputs.map((i) => i.name), ...spec.nodes.flatMap((n) => n.outputs)]);
}

/** Picks the feature tensor: a named value, or by the rules in the module comment. */
export function chooseFeatures(spec: OnnxModelSpec, features: string): FeatureChoice {
  const rankOf = (name: string): number | undefined => [...spec.outputs, ...(spec.valueInfo ?? [])].find((v) => v.name === name)?.shape?.length;
  const outputs = spec.outputs.map((o) => o.name);
  const hint = [`Outputs: ${outputs.join(', ')}. Name the feature value with model.features (natix train --inspect lists the model).`];
  if (features !== 'auto') {
    if (!valueNames(spec).has(features)) {
      throw usage(`model.features "${features}" is not a value of the model`, 'FEATURES_NOT_FOUND', hint, {outputs});
    }
    return {name: features, how: outputs.includes(features) ? `output "${features}" (model.features)` : `intermediate value "${features}" (model.features)`, rank: rankOf(features)};
  }
  for (const name of FEATURE_OUTPUTS) if (outputs.includes(name)) return {name, how: `output "${name}"`, rank: rankOf(name)};
  for (const out of spec.outputs) {
    const head = findClassifierHead(spec, out.name);
    if (head) return {...head, rank: rankOf(head.name)};
  }
  const first = spec.outputs[0]!;
  const rank = first.shape?.length;
  // A [B, C] output that is not a known feature name and has no linear head to cut looks like predictions.
  if (/logit|prob|score|pred/i.test(first.name) || (rank !== undefined && rank < 2)) {
    throw usage(`Cannot find the feature tensor of this model: output "${first.name}"${rank ? ` (rank ${rank})` : ''} looks like predictions and no final Gemm / MatMul+Add produces it`, 'FEATURES_NOT_FOUND', hint, {outputs});
  }
  return {name: first.name, how: `output "${first.name}" (the model's first output)`, rank};
}

function resolvePool(pool: PoolChoice, rank: number | undefined): Exclude<PoolChoice, 'auto'> {
  if (pool !== 'auto') return pool;
  if (rank === 3) return 'cls';
  if (rank === 4) return 'mean';
  return 'none';
}

function opsetOf(spec: OnnxModelSpec): number {
  return spec.opsetImports?.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? spec.opset ?? 13;
}

/** Pooling nodes from `feature` (rank 3 tokens / rank 4 map / rank 2) to `out` [B, D]. */
export function poolingNodes(feature: string, rank: number, pool: Exclude<PoolChoice, 'auto'>, opset: number, out: string): {nodes: OnnxNode[]; initializers: OnnxTensor[]} {
  const reduceMean = (axes: number[]): {nodes: OnnxNode[]; initializers: OnnxTensor[]} =>
    opset >= 18
      ? {nodes: [{opType: 'ReduceMean', name: 'natix_pool', inputs: [feature, 'natix_pool_axes'], outputs: [out], attributes: {keepdims: 0}}], initializers: [int64Tensor('natix_pool_axes', [axes.length], axes)]}
      : {nodes: [{opType: 'ReduceMean', name: 'natix_pool', inputs: [feature], outputs: [out], attributes: {axes: {ints: axes}, keepdims: 0}}], initializers: []};
  if (pool === 'cls') {
    if (rank !== 3) throw usage(`model.pool cls needs token features [B, T, D]; the feature value has rank ${rank}`, 'FEATURES_POOL', ['Use model.pool: mean (feature maps) or auto.']);
    return {nodes: [{opType: 'Gather', name: 'natix_pool', inputs: [feature, 'natix_cls_index'], outputs: [out], attributes: {axis: 1}}], initializers: [int64Tensor('natix_cls_index', [], [0])]};
  }
  if (pool === 'mean') {
    if (rank === 3) return reduceMean([1]);
    if (rank === 4) return reduceMean([2, 3]);
    if (rank === 2) return {nodes: [{opType: 'Identity', name: 'natix_pool', inputs: [feature], outputs: [out]}], initializers: []};
    throw usage(`model.pool mean needs features of rank 2-4; the feature value has rank ${rank}`, 'FEATURES_POOL', ['Choose another model.features.']);
  }
  if (rank === 2) return {nodes: [{opType: 'Identity', name: 'natix_pool', inputs: [feature], outputs: [out]}], initializers: []};
  return {nodes: [{opType: 'Flatten', name: 'natix_pool', inputs: [feature], outputs: [out], attributes: {axis: 1}}], initializers: []};
}

/** The nodes (in order) and initializers needed to compute `targets`; the rest of the graph is dropped. */
export function cutGraph(spec: OnnxModelSpec, targets: string[]): {nodes: OnnxNode[]; initializers: OnnxTensor[]; inputs: OnnxModelSpec['inputs']} {
  const made = producers(spec);
  const needed = new Set<string>();
  const keep = new Set<OnnxNode>();
  const stack = [...targets];
  while (stack.length) {
    const v = stack.pop()!;
    if (needed.has(v)) continue;
    needed.add(v);
    const node = made.get(v);
    if (node && !keep.has(node)) {
      keep.add(node);
      stack.push(...node.inputs.filter(Boolean));
      // Subgraph bodies (If / Loop) may read outer values; keep it simple: refuse to cut through them.
      if (Object.values(node.attributes ?? {}).some((a) => typeof a === 'object' && 'attributeProto' in a)) {
        for (const n of spec.nodes) keep.add(n);
      }
    }
  }
  const nodes = spec.nodes.filter((n) => keep.has(n));
  const used = new Set(nodes.flatMap((n) => n.inputs));
  return {nodes, initializers: (spec.initializers ?? []).filter((t) => used.has(t.name)), inputs: spec.inputs.filter((i) => used.has(i.name) || targets.includes(i.name))};
}

/** The feature graph: the original graph cut at the features, pooling appended, output FEATURES_VALUE. */
export function featureGraph(spec: OnnxModelSpec, feature: FeatureChoice, rank: number, pool: Exclude<PoolChoice, 'auto'>, extraOutputs: string[] = []): OnnxModelSpec {
  const cut = cutGraph(spec, [feature.name, ...extraOutputs]);
  const pooling = poolingNodes(feature.name, rank, pool, opsetOf(spec), FEATURES_VALUE);
  return {
    ...spec,
    nodes: [...cut.nodes, ...pooling.nodes],
    initializers: [...cut.initializers, ...pooling.initializers],
    inputs: cut.inputs,
    outputs: [{name: FEATURES_VALUE, type: 'float', shape: ['batch', 'features']}, ...extraOutputs.map((name) => ({name, type: 'float' as const}))],
    // Intermediate shapes of the original graph no longer all exist; onnxruntime infers what it needs.
    valueInfo: undefined,
  };
}

/** Finds the model file and its preprocessor config (required: a backbone's preprocessing is never guessed). */
export function resolveBackboneFiles(from: string, preprocessor?: string): {kind: 'onnx' | 'hf'; onnxFile: string; preprocessorFile: string} {
  const {kind, onnxFile} = resolveModelKind(from);
  const candidates = preprocessor ? [preprocessor] : [path.join(kind === 'hf' ? from : path.dirname(from), 'preprocessor_config.json')];
  if (kind === 'hf' && !preprocessor && onnxFile.includes(`${path.sep}onnx${path.sep}`)) candidates.push(path.join(path.dirname(onnxFile), 'preprocessor_config.json'));
  // The first that exists, whatever it is: a FIFO or a folder named preprocessor_config.json is refused when read.
  const found = candidates.find((c) => existsSync(c));
  if (!found) {
    throw usage(`No preprocessor_config.json for ${from}: natix uses the model's own preprocessing and will not guess it`, 'MODEL_PREPROCESSOR_MISSING', [
      'Export the model with its processor (optimum-cli export onnx --model <id> <dir> writes preprocessor_config.json).',
      'Or point model.preprocessor at a preprocessor_config.json.',
    ]);
  }
  return {kind, onnxFile, preprocessorFile: found};
}

async function probe(session: ort.InferenceSession, inputName: string, p: Preprocessing, outputs: string[]): Promise<Record<string, readonly number[]>> {
  const dims = batchDims(p, 1);
  const size = dims.reduce((a, b) => a * b, 1);
  const tensor = p.dtype === 'uint8' ? new ort.Tensor('uint8', new Uint8Array(size), dims) : new ort.Tensor('float32', new Float32Array(size), dims);
  const result = await session.run({[inputName]: tensor}, outputs);
  return Object.fromEntries(outputs.map((o) => [o, result[o]!.dims]));
}

/** Loads a backbone: decode, choose the features, cut + pool, open the session, probe the feature size. */
export async function loadBackbone(from: string, options: BackboneOptions): Promise<Backbone> {
  const files = resolveBackboneFiles(from, options.preprocessor);
  const {spec, sha256} = await readOnnxModel(files.onnxFile);
  const preprocessing: Preprocessing = preprocessingFromHf(JSON.parse(await readUserFile(files.preprocessorFile, 'utf8')) as Record<string, unknown>);
  if (preprocessing.resize === 'shorter-side' || (preprocessing.resize === 'none' && !(preprocessing.width > 0))) {
    throw usage(`The preprocessing of ${files.preprocessorFile} gives images of varying size (no crop): natix batches fixed-size inputs`, 'MODEL_PREPROCESSOR_UNSUPPORTED', ['Use a processor with a centre crop (do_center_crop + crop_size) or an exact size {height, width}.']);
  }
  const feature = chooseFeatures(spec, options.features);
  const imageInputs = spec.inputs.filter((i) => !(spec.initializers ?? []).some((t) => t.name === i.name));
  if (imageInputs.length !== 1) throw usage(`The model has ${imageInputs.length} inputs (${imageInputs.map((i) => i.name).join(', ')}); natix needs one image input`, 'MODEL_INPUTS', ['Export the vision model alone (e.g. optimum-cli ... --task image-feature-extraction).']);
  const input = imageInputs[0]!;
  const inputShape = input.shape ?? [];
  if (inputShape.length === 4) {
    if (inputShape[1] === 3) preprocessing.layout = 'nchw';
    else if (inputShape[3] === 3) preprocessing.layout = 'nhwc';
  }
  if (input.type === 'uint8') preprocessing.dtype = 'uint8';
  const opset = opsetOf(spec);
  // The rank decides the pooling; when the model does not state it, run the model once to learn it.
  let rank = feature.rank;
  let rawDims: number[] | undefined;
  if (rank === undefined || options.inspect) {
    const opened = await openSession(encodeOnnxModel(cutGraphAsModel(spec, feature.name)), {device: 'cpu', threads: options.threads});
    rawDims = [...(await probe(opened.session, input.name, preprocessing, [feature.name]))[feature.name]!];
    await opened.session.release();
    rank = rawDims.length;
  }
  const pool = resolvePool(options.pool, rank);
  const graph = featureGraph(spec, feature, rank, pool);
  // The session: in a worker thread when a graph file is given (one session, probed there), else in-process.
  const graphBytes = encodeOnnxModel(graph);
  let workerPool: WorkerPool | undefined;
  let opened: Awaited<ReturnType<typeof openSession>> | undefined;
  let dims: readonly number[];
  const probeDims = batchDims(preprocessing, 1);
  if (options.graphFile) {
    await mkdir(path.dirname(options.graphFile), {recursive: true});
    await writeFileAtomic(options.graphFile, graphBytes);
    workerPool = await WorkerPool.open(options.graphFile, {device: options.device, threads: options.threads, replicas: 1, outputName: FEATURES_VALUE});
    const size = probeDims.reduce((a, b) => a * b, 1);
    dims = (await workerPool.run({data: preprocessing.dtype === 'uint8' ? new Uint8Array(size) : new Float32Array(size), dims: probeDims, dtype: preprocessing.dtype})).dims;
  } else {
    opened = await openSession(graphBytes, options);
    dims = (await probe(opened.session, input.name, preprocessing, [FEATURES_VALUE]))[FEATURES_VALUE]!;
  }
  if (dims.length !== 2) {
    await (workerPool ? workerPool.close() : opened!.session.release());
    throw usage(`Pooled features have shape [${dims.join(', ')}], expected [batch, D]`, 'FEATURES_POOL', ['Choose model.pool / model.features so that the features are one vector per image.']);
  }
  const dim = dims[1]!;
  const batchDim = inputShape[0];
  const info: BackboneInfo = {
    source: path.resolve(from),
    onnxFile: files.onnxFile,
    kind: files.kind,
    sha256,
    preprocessorFile: files.preprocessorFile,
    preprocessing,
    inputName: input.name,
    inputShape,
    canBatch: typeof batchDim !== 'number' || batchDim === -1,
    inputs: spec.inputs.map((i) => ({name: i.name, type: i.type, shape: i.shape})),
    outputs: spec.outputs.map((o) => ({name: o.name, type: o.type, shape: o.shape})),
    feature: {...feature, rank},
    pool,
    dim,
    ...(rawDims ? {rawDims} : {}),
    opset,
  };
  const p = preprocessing;
  const perImage = 3 * p.width * p.height;
  if (workerPool) {
    const workers = workerPool;
    return {
      info,
      spec,
      featureGraph: graph,
      device: workers.info.device,
      fallbackReason: workers.info.fallbackReason,
      runtime: 'worker',
      async run(batch, n) {
        const data = batch.subarray(0, n * perImage);
        return (await workers.run({data, dims: batchDims(p, n), dtype: data instanceof Uint8Array ? 'uint8' : 'float32'}, {transfer: data.byteLength === data.buffer.byteLength})).data;
      },
      close: () => workers.close(),
    };
  }
  const common = {info, spec, featureGraph: graph, device: opened!.device, fallbackReason: opened!.fallbackReason};
  const session = opened!.session;
  return {
    ...common,
    runtime: 'in-process',
    async run(batch, n) {
      const data = batch.subarray(0, n * perImage);
      const tensor = data instanceof Uint8Array ? new ort.Tensor('uint8', data, batchDims(p, n)) : new ort.Tensor('float32', data, batchDims(p, n));
      const out = (await session.run({[info.inputName]: tensor}, [FEATURES_VALUE]))[FEATURES_VALUE]!;
      return out.data instanceof Float32Array ? out.data : Float32Array.from(out.data as ArrayLike<number>);
    },
    close: () => session.release(),
  };
}

function cutGraphAsModel(spec: OnnxModelSpec, value: string): OnnxModelSpec {
  const cut = cutGraph(spec, [value]);
  return {...spec, nodes: cut.nodes, initializers: cut.initializers, inputs: cut.inputs, outputs: [{name: value, type: 'float'}], valueInfo: undefined};
}

/** What --inspect prints. */
export function describeBackbone(info: BackboneInfo): string[] {
  const shape = (s?: Dim[]): string => (s ? `[${s.map((d) => d ?? '?').join(', ')}]` : '[?]');
  const p = info.preprocessing;
  return [
    `Model:         ${info.onnxFile} (${info.kind === 'hf' ? 'Hugging Face folder' : 'ONNX file'}, opset ${info.opset}, sha256 ${info.sha256.slice(0, 16)}...)`,
    `Inputs:        ${info.inputs.map((i) => `${i.name} ${i.type} ${shape(i.shape)}`).join('; ')}`,
    `Outputs:       ${info.outputs.map((o) => `${o.name} ${o.type} ${shape(o.shape)}`).join('; ')}`,
    `Features:      "${info.feature.name}" - ${info.feature.how}${info.rawDims ? `, shape per image [${info.rawDims.join(', ')}]` : ''}`,
    `Pooling:       ${info.pool} -> ${info.dim} features per image`,
    `Preprocessing: ${info.preprocessorFile} -> ${p.width}x${p.height} ${p.layout} ${p.dtype} (the same path as test-inference):`,
    ...explainPreprocessing(p).map((step) => `               - ${step}`),
    `Batching:      ${info.canBatch ? 'free batch dimension' : 'fixed batch of 1'}`,
  ];
}
