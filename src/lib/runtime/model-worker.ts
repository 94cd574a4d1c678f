/**
 * The entry of a model worker thread: opens one onnxruntime session (workerData: WorkerInit), answers RunRequests
 * one at a time on transferred input buffers, and exits after a CloseRequest once its current run has returned.
 *
 * It is never terminated from outside while a run is in progress: onnxruntime-node's native run does not notice a
 * terminated thread and aborts the whole process when it returns into it (measured with onnxruntime-node 1.30).
 * A run that overruns its deadline is therefore abandoned by the pool, which sends CloseRequest and starts a
 * replacement; this thread finishes the run, drops the answer and exits.
 */
import {parentPort, workerData} from 'node:worker_threads';
import {openSession, ort} from '../cascade/onnx-session.js';
import {errorMessage, isNatixError} from '../errors.js';
import type {FromWorker, RunReply, SessionInfo, ToWorker, WorkerInit} from './protocol.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (message: FromWorker): void => port.postMessage(message);

let session: ort.InferenceSession;
let info: SessionInfo;
try {
  const opened = await openSession(init.modelFile, init.settings);
  session = opened.session;
  info = {
    inputNames: [...session.inputNames],
    outputNames: [...session.outputNames],
    inputs: ((session.inputMetadata as unknown as Array<{shape?: Array<number | string>; type?: string}> | undefined) ?? []).map((m) => ({shape: m.shape, type: m.type})),
    device: opened.device,
    fallbackReason: opened.fallbackReason,
  };
} catch (error) {
  post({type: 'load-failed', message: errorMessage(error), ...(isNatixError(error) ? {natix: {code: error.code, exitCode: error.exitCode, actions: error.actions}} : {})});
  port.close();
  process.exit(0);
}

const inputName = info.inputNames[0]!;
const outputName = init.outputName ?? info.outputNames[0]!;
let closing = false;

port.on('message', (message: ToWorker) => {
  if (message.type === 'close') {
    if (closing) return;
    closing = true;
    void session.release().finally(() => port.close());
    return;
  }
  if (closing) return;
  const {id, input} = message;
  const t0 = performance.now();
  const data = input.dtype === 'uint8' ? new Uint8Array(input.data) : new Float32Array(input.data);
  session
    .run({[inputName]: new ort.Tensor(input.dtype, data, input.dims)}, [outputName])
    .then((result) => {
      const out = result[outputName]!;
      const values = out.data instanceof Float32Array ? out.data : Float32Array.from(out.data as ArrayLike<number>);
      const reply: RunReply = {type: 'result', id, data: values, dims: [...out.dims], runMs: performance.now() - t0};
      post(reply);
    })
    .catch((error: unknown) => post({type: 'result', id, error: errorMessage(error).split('\n')[0], runMs: performance.now() - t0}));
});

post({type: 'ready', info});
