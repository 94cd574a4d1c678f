/**
 * The cascade library's entry point.
 *
 *   const cascade = await loadCascade(modelPath, {device: 'auto', threads: 0});
 *   const result = await cascade.predict('image.jpg', {path: 'image.jpg'}); // CascadeResult (types.ts)
 *   await cascade.close();
 *
 * `modelPath` may be a single `.onnx` file, a Hugging Face-style directory (`model.onnx` + `config.json` +
 * `preprocessor_config.json`), a cascade file (YAML/JSON, schema in src/lib/config/schemas/cascade.ts), or a
 * directory holding `cascade.yaml`. Without it, the bundled `checkpoints/default/cascade.yaml` is used.
 * `predict` never throws for a bad image or a failing model: see CascadeResult.error and .degraded.
 */
import {existsSync, statSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {cascadeFileSchema, type CascadeFile, type ModelConfig} from '../config/schemas/cascade.js';
import {loadConfigFile} from '../config/load.js';
import {ExitCode, NatixError} from '../errors.js';
import {openInferenceLogs, type InferenceLogs} from '../logging/inference-logs.js';
import {packageRoot} from '../runtime/environment.js';
import {nonRegularKind, UserFileError} from '../util/user-files.js';
import {Cascade, type StagePlan} from './cascade.js';
import {loadModel, type LoadedModel} from './model.js';
import type {Device} from './onnx-session.js';

export {Cascade} from './cascade.js';
export type {CascadeDescription, StagePlan} from './cascade.js';
export type {CascadeResult, ModelTrace, StageTrace} from './types.js';
export type {Device} from './onnx-session.js';

export interface LoadCascadeOptions {
  device?: Device;
  /** Intra-op threads per ONNX session; 0 = onnxruntime's default. */
  threads?: number;
  /** Timeout per model inference when the cascade file gives none (ms). */
  timeoutMs?: number;
  /** Decision threshold override (default: the cascade file's, else 0.5). */
  threshold?: number;
  /** Circuit breaker for every model (a model's `breaker` in the cascade file overrides it). Default 3 failures, 30 s. */
  breaker?: {failures: number; cooldownMs: number};
  /** The breakers' clock in ms (default performance.now); for tests. */
  breakerClock?: () => number;
  /** Open inference.log / errors.log / performance.log here (closed by cascade.close()). Ignored when `logs` is given. */
  logDir?: string;
  logs?: InferenceLogs;
  /** Where the default cascade is looked for (default: the natix package root). */
  root?: string;
  /** `workers` (default): every ONNX model in its own worker thread(s); `in-thread`: on the main thread. */
  runtime?: 'workers' | 'in-thread';
  /** Cascade-level deadline override (ms): the best answer available then, marked degraded. */
  deadlineMs?: number;
  /** Workers per model when the cascade file gives no `replicas` (default 1). */
  replicas?: number;
}

/**
 * Intra-op threads per session when the user gave none: onnxruntime's default when at most one worker runs per
 * stage, else the cores shared among the workers a stage can keep busy at once (each session would otherwise
 * start one thread per core, and N workers would oversubscribe the machine N times).
 */
export function threadsPerWorker(file: CascadeFile, cores: number, defaultReplicas = 1): number {
  const replicas = (name: string): number => file.models[name]?.replicas ?? defaultReplicas;
  const parallel = Math.max(1, ...file.stages.map((s) => s.models.reduce<number>((sum, m) => sum + replicas(typeof m === 'string' ? m : m.model), 0)));
  return parallel <= 1 ? 0 : Math.max(1, Math.floor(cores / parallel));
}

const CASCADE_NAMES = ['cascade.yaml', 'cascade.yml', 'cascade.json'];

/** The bundled default cascade file, or undefined when it does not exist. */
export function defaultCascadePath(root = packageRoot()): string | undefined {
  for (const name of CASCADE_NAMES) {
    const file = path.join(root, 'checkpoints', 'default', name);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** The cascade file `--model` stands for (the default cascade when undefined), or undefined for a single model. */
export function cascadeFileOf(modelPath: string | undefined, root?: string): string | undefined {
  const target = modelPath ?? defaultCascadePath(root);
  if (!target || classifyModelPath(target) !== 'cascade') return undefined;
  if (!statSync(target).isDirectory()) return target;
  const name = CASCADE_NAMES.find((n) => existsSync(path.join(target, n)));
  return name ? path.join(target, name) : undefined;
}

/** Classifies what `--model` points at. */
export function classifyModelPath(modelPath: string): 'cascade' | 'onnx' | 'hf' | 'tfjs' {
  if (!existsSync(modelPath)) throw new NatixError(`Model not found: ${modelPath}`, {code: 'MODEL_NOT_FOUND', exitCode: ExitCode.Usage, actions: ['Pass a .onnx file, a model directory or a cascade file to --model.']});
  const info = statSync(modelPath);
  // Regular files only: a FIFO given as --model would block the loader forever.
  const kind = nonRegularKind(info);
  if (kind && kind.reason !== 'directory') throw new UserFileError(modelPath, kind.reason, kind.what);
  if (info.isDirectory()) {
    if (CASCADE_NAMES.some((n) => existsSync(path.join(modelPath, n)))) return 'cascade';
    if (existsSync(path.join(modelPath, 'model.json')) && !existsSync(path.join(modelPath, 'model.onnx'))) return 'tfjs';
    return 'hf';
  }
  if (/\.(ya?ml)$/i.test(modelPath)) return 'cascade';
  if (/model\.json$/i.test(modelPath)) return 'tfjs';
  if (/\.json$/i.test(modelPath)) return 'cascade';
  return 'onnx';
}

/** Loads a cascade (or a single model as a one-stage cascade). */
export async function loadCascade(modelPath: string | undefined, options: LoadCascadeOptions = {}): Promise<Cascade> {
  let target = modelPath;
  if (!target) {
    target = defaultCascadePath(options.root);
    if (!target) {
      throw new NatixError('No model given and the bundled default cascade (checkpoints/default/cascade.yaml) does not exist', {
        code: 'NO_DEFAULT_CASCADE',
        exitCode: ExitCode.Usage,
        actions: ['Pass --model (a .onnx file, a model directory or a cascade file).', 'Or train one: natix train, then natix export.'],
      });
    }
  }
  const kind = classifyModelPath(target);
  let file: CascadeFile;
  let baseDir: string;
  // Errors about a model declared in a cascade file name that file (and the model's key in it).
  let inFile = (what: string): string => what;
  if (kind === 'cascade') {
    const cascadeFile = statSync(target).isDirectory() ? path.join(target, CASCADE_NAMES.find((n) => existsSync(path.join(target!, n)))!) : target;
    file = await loadConfigFile<CascadeFile>(cascadeFile, cascadeFileSchema);
    baseDir = path.dirname(path.resolve(cascadeFile));
    inFile = (what) => `${cascadeFile}: ${what}`;
  } else {
    const base = kind === 'tfjs' && /model\.json$/i.test(target) ? path.basename(path.dirname(path.resolve(target))) : path.basename(target);
    const name = base.replace(/\.onnx$/i, '') || 'model';
    file = {models: {[name]: {path: path.resolve(target), ...(kind === 'tfjs' ? {type: 'tfjs' as const} : {})}}, stages: [{name: 'stage1', models: [name]}]};
    baseDir = process.cwd();
  }
  const threads = options.threads || threadsPerWorker(file, os.availableParallelism(), options.replicas);
  const settings = {device: options.device ?? 'auto', threads, defaultTimeoutMs: options.timeoutMs ?? 5000, runtime: options.runtime ?? 'workers', replicas: options.replicas};
  const need = (name: string, where: string): ModelConfig => {
    const config = file.models[name];
    if (!config) {
      throw new NatixError(inFile(`${where} refers to model "${name}", which is not declared under models (${Object.keys(file.models).join(', ')})`), {code: 'CONFIG_INVALID', exitCode: ExitCode.Usage});
    }
    return config;
  };
  // Every referenced model, loaded at once (their workers start in parallel); on any failure the others are closed.
  const wanted = new Map<string, ModelConfig>();
  for (const [i, stage] of file.stages.entries()) {
    for (const m of stage.models) {
      const name = typeof m === 'string' ? m : m.model;
      wanted.set(name, need(name, `stages[${i}]`));
    }
    if (stage.fallback !== undefined && stage.fallback !== 'skip') wanted.set(stage.fallback, need(stage.fallback, `stages[${i}].fallback`));
  }
  const settled = await Promise.allSettled([...wanted].map(([name, config]) => loadModel(name, config, baseDir, settings)));
  const failedAt = settled.findIndex((r) => r.status === 'rejected');
  if (failedAt >= 0) {
    await Promise.all(settled.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
    const reason = (settled[failedAt] as PromiseRejectedResult).reason as unknown;
    if (kind === 'cascade' && reason instanceof NatixError) {
      throw new NatixError(inFile(`models.${[...wanted.keys()][failedAt]}: ${reason.message}`), {code: reason.code, exitCode: reason.exitCode, actions: reason.actions, cause: reason, data: reason.data});
    }
    throw reason;
  }
  const loaded = new Map<string, LoadedModel>([...wanted.keys()].map((name, i) => [name, (settled[i] as PromiseFulfilledResult<LoadedModel>).value]));
  const get = async (name: string): Promise<LoadedModel> => loaded.get(name)!;
  const stages: StagePlan[] = [];
  for (const [i, stage] of file.stages.entries()) {
    const members: StagePlan['members'] = [];
    for (const m of stage.models) {
      const ref = typeof m === 'string' ? {model: m, weight: 1} : {model: m.model, weight: m.weight ?? 1};
      members.push({model: await get(ref.model), weight: ref.weight});
    }
    const fallback = stage.fallback === undefined || stage.fallback === 'skip' ? stage.fallback : await get(stage.fallback);
    stages.push({
      name: stage.name ?? `stage${i + 1}`,
      members,
      combine: stage.combine ?? (members.some((m) => m.weight !== 1) ? 'weighted-mean' : 'mean'),
      escalate: stage.escalate as StagePlan['escalate'],
      fallback: fallback as StagePlan['fallback'],
      deadlineMs: stage.deadlineMs,
    });
  }
  const breakers: Record<string, {failures?: number; cooldownMs?: number}> = {};
  for (const [name, config] of Object.entries(file.models)) if (config.breaker) breakers[name] = config.breaker;
  return new Cascade(stages, {
    threshold: options.threshold ?? file.threshold ?? 0.5,
    breaker: options.breaker ?? {failures: 3, cooldownMs: 30_000},
    breakers,
    breakerClock: options.breakerClock,
    deadlineMs: options.deadlineMs ?? file.deadlineMs,
    logs: options.logs ?? (options.logDir ? openInferenceLogs(path.resolve(options.logDir)) : undefined),
  });
}
