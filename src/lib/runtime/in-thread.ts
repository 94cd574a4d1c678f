/**
 * Model runners on the calling thread, with the same contract as the worker pool (protocol.ts: ModelRunner):
 * - an onnxruntime session on the main thread (`runtime: in-thread`, kept to measure what the worker hop costs);
 * - any async function (TF.js models, which stay on the main thread: tfjs-node's and wasm's kernels live there).
 * Neither can be interrupted: a call that overruns its timeout is reported as a timeout when it returns, and a
 * deadline only stops the caller from waiting.
 */
import {openSession, ort, type SessionSettings} from '../cascade/onnx-session.js';
import {ModelTimeoutError, RunAbandonedError, type InputTensorLike, type ModelOutput, type ModelRunner, type RunnerStats, type RunOptions, type SessionInfo} from './protocol.js';

/** Wraps a call with the ModelRunner rules: abandon on abort, timeout measured around the call. */
export function functionRunner(info: SessionInfo, threads: number, call: (input: InputTensorLike) => Promise<ModelOutput>, close: () => Promise<void>): ModelRunner {
  const counts = {ran: 0, failed: 0, timedOut: 0, abandoned: 0, replaced: 0};
  let busy = 0;
  return {
    info,
    placement: {runtime: 'in-thread', replicas: 1, threads},
    stats: (): RunnerStats => ({...counts, workers: 0, retired: 0, queued: busy}),
    async run(input: InputTensorLike, options: RunOptions = {}): Promise<ModelOutput> {
      const {signal, timeoutMs} = options;
      if (signal?.aborted) {
        counts.abandoned++;
        throw new RunAbandonedError(String(signal.reason ?? 'abandoned'));
      }
      const t0 = performance.now();
      busy++;
      const work = call(input).finally(() => busy--);
      let onAbort: (() => void) | undefined;
      const abandoned = new Promise<never>((_, reject) => {
        onAbort = () => reject(new RunAbandonedError(String(signal!.reason ?? 'abandoned')));
        signal?.addEventListener('abort', onAbort, {once: true});
      });
      try {
        const output = await (signal ? Promise.race([work, abandoned]) : work);
        if (timeoutMs !== undefined && performance.now() - t0 > timeoutMs) {
          counts.timedOut++;
          throw new ModelTimeoutError(timeoutMs);
        }
        counts.ran++;
        return output;
      } catch (error) {
        if (error instanceof RunAbandonedError) {
          counts.abandoned++;
          work.catch(() => undefined);
        } else if (!(error instanceof ModelTimeoutError)) counts.failed++;
        throw error;
      } finally {
        if (onAbort) signal?.removeEventListener('abort', onAbort);
      }
    },
    close,
  };
}

/** An onnxruntime session on this thread. */
export async function openInThreadSession(modelFile: string, settings: SessionSettings, outputName?: string): Promise<ModelRunner> {
  const {session, device, fallbackReason} = await openSession(modelFile, settings);
  const info: SessionInfo = {
    inputNames: [...session.inputNames],
    outputNames: [...session.outputNames],
    inputs: ((session.inputMetadata as unknown as Array<{shape?: Array<number | string>; type?: string}> | undefined) ?? []).map((m) => ({shape: m.shape, type: m.type})),
    device,
    fallbackReason,
  };
  const inputName = info.inputNames[0]!;
  const output = outputName ?? info.outputNames[0]!;
  return functionRunner(
    info,
    settings.threads,
    async (input) => {
      const result = await session.run({[inputName]: new ort.Tensor(input.dtype, input.data, input.dims)}, [output]);
      const out = result[output]!;
      return {data: out.data instanceof Float32Array ? out.data : Float32Array.from(out.data as ArrayLike<number>), dims: out.dims};
    },
    () => session.release(),
  );
}
