/**
 * `natix doctor`: the first thing to run when something is off (as `yolo checks` is). Each check says what natix
 * would use on this machine and why: the inference execution provider, the training backend, a GPU if one is
 * visible, whether the bundled model and sample load and answer (one timed inference), the MLflow store runs would
 * be written to, and the free disk space where checkpoints go. Nothing is written anywhere.
 */
import {execFile} from 'node:child_process';
import {existsSync} from 'node:fs';
import {access, readdir, statfs} from 'node:fs/promises';
import path from 'node:path';
import {errorMessage} from '../errors.js';
import {describeEnvironment, packageRoot, type EnvironmentReport} from './environment.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  name: 'gpu' | 'inference' | 'training' | 'bundled-model' | 'tracking' | 'disk';
  status: CheckStatus;
  /** What natix would use / what was found. */
  summary: string;
  /** Why, or what to do. */
  detail?: string;
  /** Measured values (ms, GiB, ...). */
  data?: Record<string, unknown>;
}

export interface DoctorReport {
  environment: EnvironmentReport;
  checks: DoctorCheck[];
}

export interface DoctorOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Where checkpoints would go (default <cwd>/checkpoints). */
  checkpoints?: string;
}

/** `nvidia-smi` answers within 5 s, or there is no visible NVIDIA GPU. */
function visibleGpus(): Promise<{gpus: string[]; reason?: string}> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', ['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader'], {timeout: 5000}, (error, stdout) => {
      if (error) {
        const code = (error as NodeJS.ErrnoException).code;
        resolve({gpus: [], reason: code === 'ENOENT' ? 'nvidia-smi is not installed' : `nvidia-smi failed: ${errorMessage(error).split('\n')[0]}`});
        return;
      }
      resolve({gpus: stdout.split('\n').map((l) => l.trim()).filter(Boolean)});
    });
  });
}

async function gpuCheck(): Promise<DoctorCheck> {
  const {gpus, reason} = await visibleGpus();
  if (gpus.length > 0) return {name: 'gpu', status: 'ok', summary: gpus.join('; '), data: {gpus}};
  return {name: 'gpu', status: 'ok', summary: 'no NVIDIA GPU visible', detail: `${reason ?? 'nvidia-smi lists none'}: inference and training run on the CPU`, data: {gpus: []}};
}

/** Loads the bundled default cascade with --device auto and runs one image of the bundled sample through it. */
async function inferenceChecks(): Promise<DoctorCheck[]> {
  const sampleDir = path.join(packageRoot(), 'datasets', 'sample', 'test', 'roadwork');
  const image = existsSync(sampleDir) ? (await readdir(sampleDir)).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort()[0] : undefined;
  const {cudaProviderInstalled} = await import('../cascade/onnx-session.js');
  const cudaInstalled = cudaProviderInstalled();
  let cascade: Awaited<ReturnType<typeof import('../cascade/index.js').loadCascade>> | undefined;
  try {
    const {loadCascade} = await import('../cascade/index.js');
    const loadStarted = performance.now();
    cascade = await loadCascade(undefined, {device: 'auto'});
    const loadMs = performance.now() - loadStarted;
    const d = cascade.describe();
    const device = d.devices.includes('cuda') ? 'cuda' : 'cpu';
    const inference: DoctorCheck = {
      name: 'inference',
      status: 'ok',
      summary: `onnxruntime-node, ${device === 'cuda' ? 'CUDA execution provider' : 'CPU execution provider'}`,
      detail: device === 'cuda' ? 'the CUDA provider is installed and loads (--device auto)' : (d.deviceNotes[0] ?? (cudaInstalled ? 'CUDA did not load' : 'the CUDA provider is not installed (CPU install; see README "GPU")')),
      data: {device, cudaProviderInstalled: cudaInstalled},
    };
    if (!image) return [inference, {name: 'bundled-model', status: 'fail', summary: 'the bundled sample (datasets/sample/test/roadwork) is missing', detail: 'reinstall natix'}];
    const first = await cascade.predict(path.join(sampleDir, image), {path: image});
    const second = await cascade.predict(path.join(sampleDir, image), {path: image});
    const failed = first.error ?? second.error;
    const model: DoctorCheck = failed
      ? {name: 'bundled-model', status: 'fail', summary: `checkpoints/default loaded but failed on ${image}`, detail: failed}
      : {
          name: 'bundled-model',
          status: 'ok',
          summary: `checkpoints/default answers: ${image} -> ${second.roadwork ? 'roadwork' : 'none'} (p=${second.probability.toFixed(3)})`,
          detail: `load ${loadMs.toFixed(0)} ms, first inference ${first.totalMs.toFixed(1)} ms, second ${second.totalMs.toFixed(1)} ms (decode + ${d.stages.length} stage(s))`,
          data: {image, loadMs, firstMs: first.totalMs, secondMs: second.totalMs, probability: second.probability},
        };
    return [inference, model];
  } catch (error) {
    return [
      {name: 'inference', status: 'fail', summary: 'onnxruntime-node could not load the bundled model', detail: errorMessage(error).split('\n')[0], data: {cudaProviderInstalled: cudaInstalled}},
      {name: 'bundled-model', status: 'fail', summary: 'checkpoints/default did not load', detail: errorMessage(error).split('\n')[0]},
    ];
  } finally {
    await cascade?.close();
  }
}

async function trainingCheck(): Promise<DoctorCheck> {
  try {
    const {loadTfjs} = await import('./tfjs.js');
    const {backend, reason} = await loadTfjs('auto');
    return {name: 'training', status: 'ok', summary: `TensorFlow.js, ${backend} backend`, detail: reason, data: {backend}};
  } catch (error) {
    return {name: 'training', status: 'fail', summary: 'no TensorFlow.js backend loads', detail: errorMessage(error).split('\n')[0]};
  }
}

async function trackingCheck(options: DoctorOptions): Promise<DoctorCheck> {
  const {resolveTrackingUri} = await import('../tracking/uri.js');
  try {
    const target = resolveTrackingUri(undefined, options.cwd, options.env);
    const from = options.env.MLFLOW_TRACKING_URI ? 'MLFLOW_TRACKING_URI' : 'the default (no MLFLOW_TRACKING_URI)';
    if (target.kind === 'rest') return {name: 'tracking', status: 'ok', summary: `MLflow server ${target.display}`, detail: `from ${from}; runs fall back to a local spool when it does not answer`, data: {kind: target.kind, store: target.display}};
    const folder = target.kind === 'sqlite' ? path.dirname(target.dbPath) : path.dirname(target.root);
    const writable = await access(folder).then(
      () => true,
      () => false,
    );
    return {
      name: 'tracking',
      status: writable ? 'ok' : 'warn',
      summary: `MLflow ${target.kind === 'sqlite' ? 'SQLite store' : 'file store'} ${target.display}`,
      detail: `from ${from}${writable ? '' : `; ${folder} is not accessible`}; --no-tracking turns it off`,
      data: {kind: target.kind, store: target.display},
    };
  } catch (error) {
    return {name: 'tracking', status: 'warn', summary: 'the tracking URI is not usable', detail: errorMessage(error)};
  }
}

async function diskCheck(options: DoctorOptions): Promise<DoctorCheck> {
  const target = options.checkpoints ?? path.join(options.cwd, 'checkpoints');
  let probe = target;
  while (!existsSync(probe) && path.dirname(probe) !== probe) probe = path.dirname(probe);
  try {
    const s = await statfs(probe);
    const freeGiB = (s.bavail * s.bsize) / 2 ** 30;
    const status: CheckStatus = freeGiB < 1 ? 'warn' : 'ok';
    return {name: 'disk', status, summary: `${freeGiB.toFixed(1)} GiB free for checkpoints in ${target}`, ...(status === 'warn' ? {detail: 'less than 1 GiB: large models and --keep-last N need room'} : {}), data: {path: target, freeGiB}};
  } catch (error) {
    return {name: 'disk', status: 'warn', summary: `cannot read the free space of ${probe}`, detail: errorMessage(error)};
  }
}

export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const environment = describeEnvironment();
  // One after the other: the inference timing should not share the CPU with TF.js starting up.
  const checks: DoctorCheck[] = [await gpuCheck(), ...(await inferenceChecks()), await trainingCheck(), await trackingCheck(options), await diskCheck(options)];
  return {environment, checks};
}
