/**
 * The entry of a gradient worker thread (gradient-workers.ts): loads its own TF.js backend, splits the same feature
 * graph the same way as the main thread, and holds a replica of the tuned model (tuned-model.ts). It answers a share
 * of each batch with the gradients of every micro-batch in it (as transferred arrays), and takes the optimizer's
 * values after every step. It never steps an optimizer itself, so it cannot drift from the main thread.
 *
 * Messages are handled one at a time, in order: values set after a step always land before the next batch.
 */
import {parentPort, workerData} from 'node:worker_threads';
import {errorMessage} from '../errors.js';
import {TrainableGraph} from '../onnx-exec/trainable-graph.js';
import {loadTfjs} from '../runtime/tfjs.js';
import type {FromGradientWorker, GradientWorkerInit, ToGradientWorker} from './gradient-workers.js';
import {Head} from './head.js';
import {sliceInput, TunedModel} from './tuned-model.js';

const port = parentPort!;
const init = workerData as GradientWorkerInit;
const post = (message: FromGradientWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);

/** The head's optimizer settings are never used here (no step, no EMA): only its forward pass. */
const NO_OPTIMIZER = {weightDecay: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, maxGradNorm: 0, ema: 0, labelSmoothing: 0, classWeights: []};

async function open(): Promise<TunedModel> {
  const {tf} = await loadTfjs(init.backend);
  const graph = await TrainableGraph.create(tf, init.featureGraph, {train: init.selection, model: init.model, output: init.output, device: init.device, threads: init.prefixThreads});
  const model = new TunedModel(tf, graph, new Head(tf, init.head, NO_OPTIMIZER), init.preprocessing);
  model.assign(init.values);
  return model;
}

/** An array this thread may hand over: wasm reads are fresh copies; the cpu backend's may be its own storage. */
const owned = (values: Float32Array): Float32Array => (init.backend === 'wasm' ? values : values.slice());

async function answer(model: TunedModel, message: ToGradientWorker): Promise<void> {
  if (message.type === 'values') {
    model.assign(message.values);
    return;
  }
  if (message.type === 'close') {
    await model.graph.dispose();
    port.close();
    return;
  }
  try {
    const n = message.parts.reduce((s, p) => s + p.size, 0);
    const results: Extract<FromGradientWorker, {type: 'gradients'}>['results'] = [];
    let offset = 0;
    for (const part of message.parts) {
      const {loss, logits, grads} = await model.gradients(sliceInput(message.input, n, offset, offset + part.size), part.size, {...part, totalWeight: message.totalWeight});
      offset += part.size;
      results.push({loss, logits: owned(logits), grads: grads.map((g) => owned(g.dataSync() as Float32Array))});
      for (const g of grads) g.dispose();
    }
    post({type: 'gradients', id: message.id, results}, results.flatMap((r) => [r.logits.buffer as ArrayBuffer, ...r.grads.map((g) => g.buffer as ArrayBuffer)]));
  } catch (error) {
    post({type: 'error', id: message.id, message: errorMessage(error)});
  }
}

try {
  const model = await open();
  let queue = Promise.resolve();
  port.on('message', (message: ToGradientWorker) => {
    queue = queue.then(() => answer(model, message));
  });
  post({type: 'ready'});
} catch (error) {
  post({type: 'failed', message: errorMessage(error)});
  port.close();
}
