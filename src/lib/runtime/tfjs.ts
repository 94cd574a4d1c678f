/**
 * Choosing the TensorFlow.js backend at run time: `auto` takes the best one that loads - @tensorflow/tfjs-node-gpu
 * (with a visible GPU), then @tensorflow/tfjs-node, then @tensorflow/tfjs-backend-wasm (always installed) - and never
 * the pure-JS cpu backend (~100x slower) unless asked for. Optional packages are imported dynamically.
 */
import {ExitCode, NatixError, errorMessage} from '../errors.js';
import type {Tf} from './tf-type.js';
import {registerWasmTrainingKernels} from './wasm-kernels.js';

export type TfjsBackendChoice = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type {Tf} from './tf-type.js';

export interface LoadedTfjs {
  tf: Tf;
  backend: Exclude<TfjsBackendChoice, 'auto'>;
  /** Why this backend (and not a better one) was chosen. */
  reason: string;
}

const PACKAGES = {'tensorflow-gpu': '@tensorflow/tfjs-node-gpu', tensorflow: '@tensorflow/tfjs-node'} as const;

async function tryNode(kind: 'tensorflow-gpu' | 'tensorflow'): Promise<Tf | string> {
  try {
    const tf = (await import(PACKAGES[kind])) as Tf;
    if (kind === 'tensorflow-gpu') {
      // tfjs-node-gpu falls back to the CPU silently when no GPU is visible; check there is one.
      const devices = ((tf as unknown as {backend(): {binding?: {TF_Version?: string}}}).backend() as unknown as {getNumOfGPUs?: () => number}).getNumOfGPUs?.();
      if (devices === 0) return 'no GPU is visible to tfjs-node-gpu';
    }
    return tf;
  } catch (error) {
    const code = (error as {code?: string}).code;
    return code === 'ERR_MODULE_NOT_FOUND' ? `${PACKAGES[kind]} is not installed` : `${PACKAGES[kind]} failed to load (${errorMessage(error).split('\n')[0]})`;
  }
}

async function loadWasm(): Promise<Tf> {
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend('wasm');
  await tf.ready();
  registerWasmTrainingKernels(tf);
  return tf;
}

export async function loadTfjs(choice: TfjsBackendChoice = 'auto'): Promise<LoadedTfjs> {
  if (choice === 'tensorflow-gpu' || choice === 'tensorflow') {
    const tf = await tryNode(choice);
    if (typeof tf === 'string') {
      throw new NatixError(`Backend ${choice} is not available: ${tf}`, {
        code: 'BACKEND_UNAVAILABLE',
        exitCode: ExitCode.Usage,
        actions: [`Install it on a machine with internet access: npm install ${PACKAGES[choice]}`, 'Or use --backend auto / wasm.'],
      });
    }
    return {tf, backend: choice, reason: 'requested'};
  }
  if (choice === 'cpu') {
    const tf = await import('@tensorflow/tfjs');
    await tf.setBackend('cpu');
    return {tf, backend: 'cpu', reason: 'requested (pure JavaScript: slow)'};
  }
  if (choice === 'wasm') return {tf: await loadWasm(), backend: 'wasm', reason: 'requested'};
  const reasons: string[] = [];
  for (const kind of ['tensorflow-gpu', 'tensorflow'] as const) {
    const tf = await tryNode(kind);
    if (typeof tf !== 'string') return {tf, backend: kind, reason: reasons.length ? `better backends unavailable: ${reasons.join('; ')}` : 'best available'};
    reasons.push(tf);
  }
  return {tf: await loadWasm(), backend: 'wasm', reason: reasons.join('; ')};
}
