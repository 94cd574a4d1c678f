/**
 * onnxruntime-node sessions: execution-provider choice (`--device auto|cpu|cuda`) and thread settings.
 * `auto` uses CUDA only when its provider library is installed and loads; otherwise CPU, with the reason.
 */
import {existsSync} from 'node:fs';
import {createRequire} from 'node:module';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import {errorMessage, ExitCode, NatixError} from '../errors.js';
import {assertOnnxModelFiles} from '../onnx/external-data.js';

export type Device = 'auto' | 'cpu' | 'cuda';

export interface SessionSettings {
  device: Device;
  /** Intra-op threads per session (0 = onnxruntime's default). */
  threads: number;
}

export interface OpenedSession {
  session: ort.InferenceSession;
  device: 'cpu' | 'cuda';
  /** Why CPU was used under `auto`, when it was. */
  fallbackReason?: string;
}

const require = createRequire(import.meta.url);

/** Whether onnxruntime-node's CUDA provider library is installed (it is skipped by CPU installs). */
export function cudaProviderInstalled(): boolean {
  try {
    const dir = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(path.join(dir, 'libonnxruntime_providers_cuda.so')) || existsSync(path.join(dir, 'onnxruntime_providers_cuda.dll'));
  } catch {
    return false;
  }
}

function options(providers: string[], threads: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: providers,
    graphOptimizationLevel: 'all',
    ...(threads > 0 ? {intraOpNumThreads: threads, interOpNumThreads: 1} : {}),
    logSeverityLevel: 3,
  };
}

/** Opens a session from a file or bytes on the requested device. */
export async function openSession(model: string | Uint8Array, settings: SessionSettings): Promise<OpenedSession> {
  // A path: onnxruntime opens it (and its external data files) itself and would block on a FIFO.
  if (typeof model === 'string') await assertOnnxModelFiles(model);
  const create = (providers: string[]): Promise<ort.InferenceSession> =>
    typeof model === 'string' ? ort.InferenceSession.create(model, options(providers, settings.threads)) : ort.InferenceSession.create(model, options(providers, settings.threads));
  if (settings.device === 'cpu') return {session: await create(['cpu']), device: 'cpu'};
  const installed = cudaProviderInstalled();
  if (settings.device === 'cuda') {
    if (!installed) {
      throw new NatixError('The CUDA execution provider of onnxruntime-node is not installed', {
        code: 'CUDA_UNAVAILABLE',
        exitCode: ExitCode.Usage,
        actions: ['Install it: ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js', 'Or use --device cpu / auto.'],
      });
    }
    try {
      return {session: await create(['cuda']), device: 'cuda'};
    } catch (error) {
      throw new NatixError(`CUDA execution provider failed to load: ${errorMessage(error)}`, {code: 'CUDA_UNAVAILABLE', exitCode: ExitCode.Usage, actions: ['Check the CUDA 12 / cuDNN install, or use --device cpu.']});
    }
  }
  if (!installed) return {session: await create(['cpu']), device: 'cpu', fallbackReason: 'the CUDA execution provider is not installed (CPU install; see README "GPU")'};
  try {
    return {session: await create(['cuda', 'cpu']), device: 'cuda'};
  } catch (error) {
    return {session: await create(['cpu']), device: 'cpu', fallbackReason: `CUDA failed to load: ${errorMessage(error).split('\n')[0]}`};
  }
}

export {ort};
