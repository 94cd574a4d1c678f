/**
 * A model of the cascade: where it comes from (a .onnx file, a Hugging Face-style directory), how its input is
 * prepared and how its output becomes a roadwork probability. ONNX models run in worker threads (src/lib/runtime:
 * `replicas` workers, each with its own session created once) unless `runtime: 'in-thread'` is asked for; the
 * engine only calls `infer(tensor, {timeoutMs, signal, transfer})`.
 */
import {existsSync, statSync} from 'node:fs';
import path from 'node:path';
import type {ModelConfig} from '../config/schemas/cascade.js';
import {errorMessage, ExitCode, NatixError} from '../errors.js';
import {resolveHfProcessor} from '../image/hf-processor.js';
import {DEFAULT_PREPROCESSING, type Preprocessing} from '../image/preprocess.js';
import {DEFAULT_OUTPUT, type OutputSpec} from './decode-output.js';
import {openInThreadSession} from '../runtime/in-thread.js';
import type {ModelRunner} from '../runtime/protocol.js';
import {WorkerPool} from '../runtime/worker-pool.js';
import {assertOnnxModelFiles} from '../onnx/external-data.js';
import {readUserFile} from '../util/user-files.js';
import type {LoadedModel, LoadModelOptions} from './loaded-model.js';

export type {ModelOutput} from '../runtime/protocol.js';
export type {LoadedModel, LoadModelOptions} from './loaded-model.js';


/** Moved to the image module's resolver; re-exported for existing callers. */
export {preprocessingFromHf} from '../image/hf-processor.js';

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

/** A JSON file of a model folder; regular files only (a FIFO config.json is refused, naming it, not waited on). */
function readJson<T>(file: string): Promise<T> {
  return readUserFile(file, 'utf8').then((t) => JSON.parse(t) as T);
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
  let preprocessingSource = kind === 'onnx' ? 'defaults and the ONNX input shape' : 'defaults (no preprocessor_config.json)';
  const preprocessingWarnings: string[] = [];
  if (kind === 'hf') {
    const preprocessor = path.join(source, 'preprocessor_config.json');
    if (existsSync(preprocessor)) {
      const resolved = resolveHfProcessor(await readJson<Record<string, unknown>>(preprocessor));
      preprocessing = resolved.preprocessing;
      preprocessingSource = `preprocessor_config.json: ${resolved.processorType ?? 'no image_processor_type'} (${resolved.family} rules)`;
      preprocessingWarnings.push(...resolved.warnings.map((w) => `model "${name}": ${w}`));
    }
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
  // onnxruntime opens the model and its external data files by path: every one must be a regular file, or the
  // session would wait forever on a FIFO. Checked here, on the main thread, so the error names the file (exit 2).
  await assertOnnxModelFiles(onnxFile);
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
  if (config.preprocess) {
    preprocessing = {...preprocessing, ...(config.preprocess as Partial<Preprocessing>)};
    preprocessingSource += " + the cascade file's preprocess block";
  }
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
    preprocessingSource,
    preprocessingWarnings,
    labels,
    canBatch: meta?.shape ? typeof meta.shape[0] === 'string' || meta.shape[0] === -1 : false,
    placement: runner.placement,
    infer: (input, runOptions) => runner.run(input, runOptions),
    stats: () => runner.stats(),
    close: () => runner.close(),
  };
}
