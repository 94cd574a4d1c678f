/**
 * A model of the cascade: where it comes from (a .onnx file, a Hugging Face-style directory), how its input is
 * prepared and how its output becomes a roadwork probability. ONNX models run in worker threads (src/lib/runtime:
 * `replicas` workers, each with its own session created once) unless `runtime: 'in-thread'` is asked for; the
 * engine only calls `infer(tensor, {timeoutMs, signal, transfer})`.
 */
import {existsSync, statSync} from 'node:fs';
import {readFile} from 'node:fs/promises';
import path from 'node:path';
import type {ModelConfig} from '../config/schemas/cascade.js';
import {errorMessage, ExitCode, NatixError} from '../errors.js';
import {DEFAULT_PREPROCESSING, type InputTensor, type Preprocessing} from '../image/preprocess.js';
import {DEFAULT_OUTPUT, type OutputSpec} from './decode-output.js';
import {openInThreadSession} from '../runtime/in-thread.js';
import type {ModelOutput, ModelRunner, RunnerStats, RunOptions} from '../runtime/protocol.js';
import {WorkerPool} from '../runtime/worker-pool.js';
import type {SessionSettings} from './onnx-session.js';

export type {ModelOutput} from '../runtime/protocol.js';

export interface LoadedModel {
  name: string;
  source: string;
  kind: 'onnx' | 'hf' | 'tfjs';
  preprocessing: Preprocessing;
  output: OutputSpec;
  timeoutMs: number;
  device: 'cpu' | 'cuda';
  fallbackReason?: string;
  /** Class names by index, when the model declares them (Hugging Face id2label). */
  labels?: string[];
  /** Whether the model's input has a free batch dimension (several images in one call). */
  canBatch: boolean;
  /** Where it runs: worker threads (replicas, intra-op threads each) or the main thread. */
  placement: ModelRunner['placement'];
  /**
   * Runs the model. Rejects with ModelTimeoutError when the run overruns `timeoutMs` (a worker is replaced),
   * with RunAbandonedError when `signal` fires first; `transfer` hands the input buffer to the worker.
   */
  infer(input: InputTensor, options?: RunOptions): Promise<ModelOutput>;
  /** Call counts of the runner (ran, failed, timed out, abandoned, workers replaced, ...). */
  stats(): RunnerStats;
  close(): Promise<void>;
}

/** Hugging Face `resample` (PIL codes) -> natix resample names. */
const PIL_RESAMPLE: Record<number, Preprocessing['resample']> = {0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'bilinear', 5: 'bicubic'};

interface HfPreprocessorConfig {
  do_resize?: boolean;
  size?: number | {height?: number; width?: number; shortest_edge?: number};
  resample?: number;
  do_center_crop?: boolean;
  crop_size?: number | {height?: number; width?: number};
  do_rescale?: boolean;
  rescale_factor?: number;
  do_normalize?: boolean;
  image_mean?: number[] | number;
  image_std?: number[] | number;
}

const triple = (v: number[] | number | undefined, d: number): [number, number, number] =>
  v === undefined ? [d, d, d] : typeof v === 'number' ? [v, v, v] : [v[0] ?? d, v[1] ?? d, v[2] ?? d];

/** The preprocessing a Hugging Face image processor config describes. */
export function preprocessingFromHf(config: HfPreprocessorConfig): Preprocessing {
  const p: Preprocessing = {...DEFAULT_PREPROCESSING};
  const size = typeof config.size === 'number' ? {height: config.size, width: config.size} : (config.size ?? {height: 224, width: 224});
  const crop = typeof config.crop_size === 'number' ? {height: config.crop_size, width: config.crop_size} : config.crop_size;
  if (config.do_resize !== false && size.shortest_edge) {
    p.resize = 'shorter-side-crop';
    p.shortestEdge = size.shortest_edge;
    p.width = config.do_center_crop !== false && crop?.width ? crop.width : size.shortest_edge;
    p.height = config.do_center_crop !== false && crop?.height ? crop.height : size.shortest_edge;
  } else {
    p.resize = 'stretch';
    p.width = size.width ?? 224;
    p.height = size.height ?? 224;
    if (config.do_center_crop && crop?.width && crop.height) {
      // Stretch to size, then centre-crop crop_size (as the processor does).
      p.resize = 'shorter-side-crop';
      p.resizeWidth = p.width;
      p.resizeHeight = p.height;
      p.width = crop.width;
      p.height = crop.height;
    }
  }
  p.resample = PIL_RESAMPLE[config.resample ?? 2] ?? 'bilinear';
  p.scale = config.do_rescale === false ? 1 : (config.rescale_factor ?? 1 / 255);
  if (config.do_normalize === false) {
    p.mean = [0, 0, 0];
    p.std = [1, 1, 1];
  } else {
    p.mean = triple(config.image_mean, 0.5);
    p.std = triple(config.image_std, 0.5);
  }
  return p;
}

/** Index of the positive class in an id2label map: `positiveLabel` (case-insensitive), else 1 for two classes. */
export function positiveIndexFromLabels(id2label: Record<string, string>, positiveLabel = 'Roadwork'): number {
  for (const [id, label] of Object.entries(id2label)) if (label.toLowerCase() === positiveLabel.toLowerCase()) return Number(id);
  if (Object.keys(id2label).length === 2) return 1;
  throw new NatixError(`No class named "${positiveLabel}" in id2label (${Object.values(id2label).join(', ')})`, {
    code: 'MODEL_LABELS',
    exitCode: ExitCode.Usage,
    actions: ['Set output.positiveLabel or output.positiveIndex for this model in the cascade file.'],
  });
}

function readJson<T>(file: string): Promise<T> {
  return readFile(file, 'utf8').then((t) => JSON.parse(t) as T);
}

/** Resolves what a model path is: an ONNX file or a Hugging Face-style directory. */
export function resolveModelKind(modelPath: string): {kind: 'onnx' | 'hf'; onnxFile: string} {
  if (!existsSync(modelPath)) throw new NatixError(`Model not found: ${modelPath}`, {code: 'MODEL_NOT_FOUND', exitCode: ExitCode.Usage});
  if (statSync(modelPath).isDirectory()) {
    for (const candidate of ['model.onnx', path.join('onnx', 'model.onnx')]) {
      if (existsSync(path.join(modelPath, candidate))) return {kind: 'hf', onnxFile: path.join(modelPath, candidate)};
    }
    throw new NatixError(`No model.onnx (or onnx/model.onnx) in ${modelPath}`, {code: 'MODEL_NOT_FOUND', exitCode: ExitCode.Usage});
  }
  return {kind: 'onnx', onnxFile: modelPath};
}

export interface LoadModelOptions extends SessionSettings {
  /** Default timeout per inference when the config gives none. */
  defaultTimeoutMs: number;
  /** `workers` (default): worker threads; `in-thread`: a session on the main thread (blocks it while it runs). */
  runtime?: 'workers' | 'in-thread';
  /** Workers for this model (the config's `replicas` wins); default 1. */
  replicas?: number;
}

/** Loads one model (session created now, once). */
export async function loadModel(name: string, config: ModelConfig, baseDir: string, options: LoadModelOptions): Promise<LoadedModel> {
  const source = path.resolve(baseDir, config.path);
  const tfjsJson = config.type === 'tfjs' || /model\.json$/i.test(source) ? (statSync(source, {throwIfNoEntry: false})?.isDirectory() ? path.join(source, 'model.json') : source) : undefined;
  if (tfjsJson || (existsSync(path.join(source, 'model.json')) && !existsSync(path.join(source, 'model.onnx')) && !existsSync(path.join(source, 'onnx', 'model.onnx')))) {
    const {loadTfjsModel} = await import('./tfjs-model.js');
    return loadTfjsModel(name, config, tfjsJson ?? path.join(source, 'model.json'), options);
  }
  const {kind, onnxFile} = resolveModelKind(source);
  let preprocessing: Preprocessing = {...DEFAULT_PREPROCESSING};
  const output: OutputSpec = {...DEFAULT_OUTPUT};
  let labels: string[] | undefined;
  if (kind === 'hf') {
    const preprocessor = path.join(source, 'preprocessor_config.json');
    if (existsSync(preprocessor)) preprocessing = preprocessingFromHf(await readJson<HfPreprocessorConfig>(preprocessor));
    const cfgFile = path.join(source, 'config.json');
    if (existsSync(cfgFile)) {
      const cfg = await readJson<{id2label?: Record<string, string>}>(cfgFile);
      if (cfg.id2label) {
        labels = Object.entries(cfg.id2label).sort((a, b) => Number(a[0]) - Number(b[0])).map(([, l]) => l);
        output.decode = 'softmax';
        output.positiveIndex = positiveIndexFromLabels(cfg.id2label, config.output?.positiveLabel);
      }
    }
  }
  const replicas = config.replicas ?? options.replicas ?? 1;
  let runner: ModelRunner;
  try {
    const outputName = config.output?.outputName;
    runner =
      options.runtime === 'in-thread'
        ? await openInThreadSession(onnxFile, options, outputName)
        : await WorkerPool.open(onnxFile, {device: options.device, threads: options.threads, replicas, outputName});
  } catch (error) {
    if (error instanceof NatixError) throw error;
    throw new NatixError(`Cannot load model "${name}" (${onnxFile}): ${errorMessage(error).split('\n')[0]}`, {
      code: 'MODEL_INVALID',
      exitCode: ExitCode.Usage,
      actions: ['Check that the file is a complete ONNX model (re-export or re-download it).'],
    });
  }
  const meta = runner.info.inputs[0];
  // Without explicit preprocessing, a bare ONNX model's static input shape tells the size and the layout.
  if (kind === 'onnx' && meta?.shape && meta.shape.length === 4) {
    const dims = meta.shape;
    if (dims[1] === 3 && typeof dims[2] === 'number' && typeof dims[3] === 'number') {
      preprocessing = {...preprocessing, layout: 'nchw', height: dims[2], width: dims[3]};
    } else if (dims[3] === 3 && typeof dims[1] === 'number' && typeof dims[2] === 'number') {
      preprocessing = {...preprocessing, layout: 'nhwc', height: dims[1], width: dims[2]};
    }
    if (meta.type === 'uint8') preprocessing.dtype = 'uint8';
  }
  preprocessing = {...preprocessing, ...(config.preprocess as Partial<Preprocessing> | undefined)};
  Object.assign(output, Object.fromEntries(Object.entries(config.output ?? {}).filter(([k]) => k !== 'positiveLabel' && k !== 'outputName')));
  return {
    name,
    source,
    kind,
    preprocessing,
    output,
    timeoutMs: config.timeoutMs ?? options.defaultTimeoutMs,
    device: runner.info.device,
    fallbackReason: runner.info.fallbackReason,
    labels,
    canBatch: meta?.shape ? typeof meta.shape[0] === 'string' || meta.shape[0] === -1 : false,
    placement: runner.placement,
    infer: (input, runOptions) => runner.run(input, runOptions),
    stats: () => runner.stats(),
    close: () => runner.close(),
  };
}
