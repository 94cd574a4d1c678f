/**
 * TensorFlow.js models (`model.json` + weight shards, layers or graph format) as cascade models, run on the best
 * TF.js backend present (src/lib/runtime/tfjs.ts: tfjs-node-gpu > tfjs-node > wasm). The files are read from disk
 * with our own IO handler, so no tfjs-node `file://` loader is needed. TF.js image models are NHWC; the size comes
 * from the model's input shape, the input is pixel/255 unless the cascade file says otherwise.
 * TF.js models run on the main thread (tfjs-node's and wasm's kernels are bound to it): a timeout is noticed when
 * the call returns and cannot interrupt it (src/lib/runtime/in-thread.ts).
 */
import path from 'node:path';
import type {ModelConfig} from '../config/schemas/cascade.js';
import {errorMessage, ExitCode, NatixError} from '../errors.js';
import {DEFAULT_PREPROCESSING, type Preprocessing} from '../image/preprocess.js';
import {functionRunner} from '../runtime/in-thread.js';
import {loadTfjs} from '../runtime/tfjs.js';
import {DEFAULT_OUTPUT, type OutputSpec} from './decode-output.js';
import type {LoadedModel, LoadModelOptions} from './loaded-model.js';
import type {ModelOutput} from '../runtime/protocol.js';
import {readUserFile} from '../util/user-files.js';

interface ModelJson {
  format?: string;
  modelTopology?: {node?: unknown};
  weightsManifest?: Array<{paths: string[]; weights: unknown[]}>;
  [key: string]: unknown;
}

type TfTensor = import('@tensorflow/tfjs').Tensor;
interface TfModel {
  predict?: (x: TfTensor) => TfTensor | TfTensor[];
  execute?: (x: TfTensor) => TfTensor | TfTensor[];
  inputs: Array<{shape?: Array<number | null>; dtype?: string}>;
  dispose(): void;
}

/**
 * Reads model.json and its weight shards (concatenated in manifest order, as TF.js expects) into ModelArtifacts.
 * Regular files only (readUserFile: a FIFO shard is refused, not waited on); a shard path leaving the model's
 * folder is refused.
 */
async function readArtifacts(modelJsonFile: string): Promise<Record<string, unknown>> {
  const json = JSON.parse(await readUserFile(modelJsonFile, 'utf8')) as ModelJson;
  if (!json.modelTopology) throw new Error('model.json has no modelTopology');
  const dir = path.dirname(modelJsonFile);
  const buffers: Buffer[] = [];
  const weightSpecs: unknown[] = [];
  for (const group of json.weightsManifest ?? []) {
    for (const p of group.paths) {
      const shard = path.resolve(dir, String(p));
      const relative = path.relative(path.resolve(dir), shard);
      if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) throw new NatixError(`${modelJsonFile} lists the weight file "${p}", which is not inside the model's folder`, {code: 'MODEL_INVALID', exitCode: ExitCode.Usage});
      buffers.push(await readUserFile(shard));
    }
    weightSpecs.push(...group.weights);
  }
  const all = Buffer.concat(buffers);
  const {weightsManifest: _manifest, ...rest} = json;
  return {...rest, weightSpecs, weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)};
}

/** Loads a TF.js model (model.json path) as a cascade model. A model that cannot be loaded is a NatixError (exit 2). */
export async function loadTfjsModel(name: string, config: ModelConfig, modelJsonFile: string, options: LoadModelOptions): Promise<LoadedModel> {
  const runtime = await loadTfjs('auto');
  const {tf} = runtime;
  let model: TfModel;
  let graph: boolean;
  try {
    const artifacts = await readArtifacts(modelJsonFile);
    graph = artifacts.format === 'graph-model' || Boolean((artifacts.modelTopology as ModelJson['modelTopology'])?.node);
    const handler = {load: async () => artifacts};
    model = (graph ? await tf.loadGraphModel(handler as never) : await tf.loadLayersModel(handler as never)) as unknown as TfModel;
  } catch (error) {
    if (error instanceof NatixError) throw error; // names the file already (FIFO, directory, outside the folder...)
    throw new NatixError(`Cannot load TensorFlow.js model "${name}" (${modelJsonFile}): ${errorMessage(error).split('\n')[0]}`, {
      code: 'MODEL_INVALID',
      exitCode: ExitCode.Usage,
      actions: ['Check that model.json and every weight file it lists are present and complete.'],
    });
  }
  const input = model.inputs[0];
  const shape = input?.shape ?? [];
  let preprocessing: Preprocessing = {...DEFAULT_PREPROCESSING, layout: 'nhwc'};
  if (shape.length === 4 && typeof shape[1] === 'number' && typeof shape[2] === 'number') {
    preprocessing = shape[3] === 3 ? {...preprocessing, height: shape[1], width: shape[2]} : {...preprocessing, layout: 'nchw', height: shape[2]!, width: shape[3]!};
  }
  preprocessing = {...preprocessing, ...(config.preprocess as Partial<Preprocessing> | undefined)};
  const output: OutputSpec = {...DEFAULT_OUTPUT, ...(Object.fromEntries(Object.entries(config.output ?? {}).filter(([k]) => k !== 'positiveLabel' && k !== 'outputName')) as Partial<OutputSpec>)};
  const gpu = runtime.backend === 'tensorflow-gpu';
  const runner = functionRunner(
    {inputNames: ['input'], outputNames: ['output'], inputs: [{shape: shape.map((d) => d ?? -1)}], device: gpu ? 'cuda' : 'cpu'},
    0,
    async (x): Promise<ModelOutput> => {
      const out = tf.tidy(() => {
        const t = tf.tensor(x.data, [...x.dims], x.dtype === 'uint8' ? 'int32' : 'float32');
        const y = graph ? model.execute!(t) : model.predict!(t);
        return Array.isArray(y) ? y[0]! : y;
      });
      try {
        const data = (await out.data()) as Float32Array | Int32Array;
        return {data: data instanceof Float32Array ? data : Float32Array.from(data), dims: out.shape};
      } finally {
        out.dispose();
      }
    },
    async () => model.dispose(),
  );
  return {
    name,
    source: modelJsonFile,
    kind: 'tfjs',
    preprocessing,
    output,
    timeoutMs: config.timeoutMs ?? options.defaultTimeoutMs,
    device: gpu ? 'cuda' : 'cpu',
    fallbackReason: gpu ? undefined : `TF.js model "${name}" runs on the ${runtime.backend} backend (${runtime.reason})`,
    preprocessingSource: `defaults and the TF.js input shape${config.preprocess ? " + the cascade file's preprocess block" : ''}`,
    preprocessingWarnings: [],
    canBatch: (model.inputs[0]?.shape?.[0] ?? null) === null || model.inputs[0]?.shape?.[0] === -1,
    placement: runner.placement,
    infer: (x, runOptions) => runner.run(x, runOptions),
    stats: () => runner.stats(),
    close: () => runner.close(),
  };
}
