/**
 * TensorFlow.js models (`model.json` + weight shards, layers or graph format) as cascade models, run on the best
 * TF.js backend present (src/lib/runtime/tfjs.ts: tfjs-node-gpu > tfjs-node > wasm). The files are read from disk
 * with our own IO handler, so no tfjs-node `file://` loader is needed.
 */
import {readFile} from 'node:fs/promises';
import path from 'node:path';
import {errorMessage, ExitCode, NatixError} from '../errors.js';
import type {InputTensor} from '../image/preprocess.js';
import {loadTfjs, type LoadedTfjs, type Tf} from '../runtime/tfjs.js';

interface ModelJson {
  format?: string;
  modelTopology?: unknown;
  weightsManifest?: Array<{paths: string[]; weights: unknown[]}>;
  [key: string]: unknown;
}

type TfModel = {predict?: (x: unknown) => unknown; execute?: (x: unknown) => unknown; inputs: Array<{shape?: Array<number | null>; dtype?: string}>; dispose(): void};

export interface TfjsModel {
  /** Static input shape without the batch dimension, e.g. [224, 224, 3] (NHWC, as TF.js models are). */
  inputShape: Array<number | null>;
  inputDtype: string;
  /** e.g. 'tfjs-wasm' */
  device: string;
  /** Why this backend was chosen (e.g. "tfjs-node is not installed"). */
  backendReason: string;
  run(input: InputTensor): Promise<{data: Float32Array; dims: number[]}>;
  close(): void;
}

/** Reads model.json and its weight shards (in manifest order, as TF.js expects) into ModelArtifacts. */
async function readArtifacts(modelJsonFile: string): Promise<Record<string, unknown>> {
  const json = JSON.parse(await readFile(modelJsonFile, 'utf8')) as ModelJson;
  if (!json.modelTopology) throw new Error('model.json has no modelTopology');
  const dir = path.dirname(modelJsonFile);
  const buffers: Buffer[] = [];
  const weightSpecs: unknown[] = [];
  for (const group of json.weightsManifest ?? []) {
    for (const p of group.paths) buffers.push(await readFile(path.resolve(dir, p)));
    weightSpecs.push(...group.weights);
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const {weightsManifest: _manifest, ...rest} = json;
  return {...rest, weightSpecs, weightData};
}

/** Loads a TF.js model from its model.json. Throws a NatixError (exit 2) when it cannot be loaded. */
export async function loadTfjsModel(modelJsonFile: string, loaded?: LoadedTfjs): Promise<TfjsModel> {
  let runtime: LoadedTfjs;
  let model: TfModel;
  let graph: boolean;
  try {
    runtime = loaded ?? (await loadTfjs('auto'));
    const {tf} = runtime;
    const artifacts = await readArtifacts(modelJsonFile);
    const handler = {load: async () => artifacts};
    const topology = artifacts.modelTopology as {node?: unknown} | undefined;
    graph = artifacts.format === 'graph-model' || Boolean(topology?.node);
    model = (graph ? await tf.loadGraphModel(handler as never) : await tf.loadLayersModel(handler as never)) as unknown as TfModel;
  } catch (error) {
    throw new NatixError(`Cannot load TensorFlow.js model ${modelJsonFile}: ${errorMessage(error).split('\n')[0]}`, {
      code: 'MODEL_INVALID',
      exitCode: ExitCode.Usage,
      actions: ['Check that model.json and every weight file it lists are present and complete.'],
    });
  }
  const tf: Tf = runtime.tf;
  const input = model.inputs[0];
  const shape = (input?.shape ?? [null, 224, 224, 3]).slice(1);
  return {
    inputShape: shape,
    inputDtype: input?.dtype ?? 'float32',
    device: `tfjs-${runtime.backend}`,
    backendReason: runtime.reason,
    async run(x: InputTensor) {
      const out = tf.tidy(() => {
        const t = tf.tensor(x.data, x.dims, x.dtype === 'uint8' ? 'int32' : 'float32');
        const y = (graph ? model.execute!(t) : model.predict!(t)) as import('@tensorflow/tfjs').Tensor | import('@tensorflow/tfjs').Tensor[];
        return Array.isArray(y) ? y[0]! : y;
      });
      try {
        const data = (await out.data()) as Float32Array | Int32Array;
        return {data: data instanceof Float32Array ? data : Float32Array.from(data), dims: out.shape};
      } finally {
        out.dispose();
      }
    },
    close: () => model.dispose(),
  };
}
