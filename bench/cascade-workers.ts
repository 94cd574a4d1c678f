/**
 * What running models in worker threads buys and costs, measured in one run:
 *   1. a stage of 3 models of different cost: its wall time vs the slowest model alone and vs the sum
 *      (workers run them at once; the in-thread runtime runs them one after the other);
 *   2. the thread hop: the same model call through a worker vs on the main thread (p50 per call), on a tiny model
 *      (pure overhead) and on the bundled cascade's models; then single-stream p50 of the bundled cascade, both ways;
 *   3. offline throughput of the bundled cascade on datasets/sample with 1, 2 and 4 workers per model.
 *
 *   npx tsx bench/cascade-workers.ts [calls=300]      (npm run bench:cascade-workers)
 */
import {mkdtemp, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import {runBatch} from '../src/lib/cascade/batch.js';
import {loadCascade, type Cascade} from '../src/lib/cascade/index.js';
import {openDataset} from '../src/lib/data/open.js';
import type {Sample} from '../src/lib/data/sample.js';
import {decodeImage} from '../src/lib/image/decode.js';
import {preprocessImage} from '../src/lib/image/preprocess.js';
import {latencyPercentiles} from '../src/lib/metrics/latency.js';
import {encodeOnnxModel, floatTensor, int64Tensor, type OnnxNode} from '../src/lib/onnx/model.js';
import {packageRoot} from '../src/lib/runtime/environment.js';

const calls = Number(process.argv[2] ?? 300);
const cores = os.availableParallelism();
const dir = await mkdtemp(path.join(os.tmpdir(), 'natix-bench-workers-'));

/** p = mean(x) after `steps` products of a fixed n x n matrix (cost ~ 2 steps n^3 FLOP, independent of the image). */
function matmulModel(n: number, steps: number): Uint8Array {
  const nodes: OnnxNode[] = [
    {opType: 'ReduceMean', inputs: ['x'], outputs: ['m'], attributes: {axes: [1, 2, 3], keepdims: 0}},
    {opType: 'ConstantOfShape', inputs: ['nn'], outputs: ['A0'], attributes: {value: floatTensor('v', [1], [0.001])}},
    {opType: 'Mul', inputs: ['A0', 'm'], outputs: ['y0']},
  ];
  for (let i = 0; i < steps; i++) nodes.push({opType: 'MatMul', inputs: [`y${i}`, 'A0'], outputs: [`y${i + 1}`]});
  nodes.push(
    {opType: 'ReduceMean', inputs: [`y${steps}`], outputs: ['r'], attributes: {keepdims: 0}},
    {opType: 'Mul', inputs: ['r', 'zero'], outputs: ['z']},
    {opType: 'Add', inputs: ['z', 'm'], outputs: ['p']},
    {opType: 'Reshape', inputs: ['p', 'shape'], outputs: ['prob']},
  );
  return encodeOnnxModel({
    inputs: [{name: 'x', type: 'float', shape: [1, 3, 32, 32]}],
    outputs: [{name: 'prob', type: 'float', shape: [1, 1]}],
    initializers: [int64Tensor('nn', [2], [n, n]), floatTensor('zero', [], [0]), int64Tensor('shape', [2], [1, 1])],
    nodes,
  });
}

const median = (xs: number[]): number => latencyPercentiles(xs).p50;
const image = path.join(packageRoot(), 'datasets', 'sample');
const dataset = await openDataset(image, 'auto');
const samples: Sample[] = [];
for await (const s of dataset.samples()) samples.push(s);
const first = samples[0]!;

// 1. A stage of 3 models.
for (const [name, n] of [['a', 256], ['b', 384], ['c', 512]] as const) await writeFile(path.join(dir, `${name}.onnx`), matmulModel(n, 4));
const stageFile = path.join(dir, 'stage.yaml');
await writeFile(stageFile, YAML.stringify({models: {a: {path: 'a.onnx'}, b: {path: 'b.onnx'}, c: {path: 'c.onnx'}}, stages: [{models: ['a', 'b', 'c']}]}));
async function stageTimes(runtime: 'workers' | 'in-thread'): Promise<{stage: number; models: number[]}> {
  const cascade = await loadCascade(stageFile, {device: 'cpu', threads: 1, runtime});
  const input = first.bytes ?? first.absPath!;
  for (let i = 0; i < 5; i++) await cascade.predict(input);
  const stage: number[] = [];
  const models: number[][] = [[], [], []];
  for (let i = 0; i < Math.max(20, calls / 10); i++) {
    const r = await cascade.predict(input);
    stage.push(r.stages[0]!.ms);
    r.stages[0]!.models.forEach((m, k) => models[k]!.push(m.inferenceMs));
  }
  await cascade.close();
  return {stage: median(stage), models: models.map(median)};
}
// Each model alone (one-model cascades through workers): the reference for "slowest" and "sum".
async function aloneMs(name: string): Promise<number> {
  const cascade = await loadCascade(path.join(dir, `${name}.onnx`), {device: 'cpu', threads: 1});
  const input = first.bytes ?? first.absPath!;
  for (let i = 0; i < 5; i++) await cascade.predict(input);
  const xs: number[] = [];
  for (let i = 0; i < Math.max(20, calls / 10); i++) xs.push((await cascade.predict(input)).stages[0]!.models[0]!.inferenceMs);
  await cascade.close();
  return median(xs);
}
// Three interleaved rounds, the best of each (a shared machine's noise only ever adds time).
const alone = [Infinity, Infinity, Infinity];
let workersStage = {stage: Infinity, models: [] as number[]};
let inThreadStage = {stage: Infinity, models: [] as number[]};
for (let round = 0; round < 3; round++) {
  for (const [k, name] of ['a', 'b', 'c'].entries()) alone[k] = Math.min(alone[k]!, await aloneMs(name));
  const w = await stageTimes('workers');
  if (w.stage < workersStage.stage) workersStage = w;
  const t = await stageTimes('in-thread');
  if (t.stage < inThreadStage.stage) inThreadStage = t;
}
const slowest = Math.max(...alone);
const sum = alone.reduce((a, b) => a + b, 0);

// 2. The thread hop.
async function hop(file: string | undefined, model?: string): Promise<{workers: number; inThread: number}> {
  const out: Record<string, number> = {};
  for (const runtime of ['workers', 'in-thread', 'workers', 'in-thread'] as const) {
    const cascade = await loadCascade(file, {device: 'cpu', runtime});
    const m = cascade.models().find((x) => !model || x.name === model)!;
    const tensor = await preprocessImage(await decodeImage(first.bytes ?? first.absPath!, {minSide: 256}), m.preprocessing);
    for (let i = 0; i < 20; i++) await m.infer(tensor);
    const xs: number[] = [];
    for (let i = 0; i < calls; i++) {
      const t0 = performance.now();
      await m.infer(tensor);
      xs.push(performance.now() - t0);
    }
    await cascade.close();
    out[runtime] = Math.min(out[runtime] ?? Number.POSITIVE_INFINITY, median(xs));
  }
  return {workers: out.workers!, inThread: out['in-thread']!};
}
const tiny = path.join(dir, 'tiny.onnx');
await writeFile(tiny, matmulModel(2, 1));
const hopTiny = await hop(tiny);
const hopFast = await hop(undefined, 'fast');
const hopStrong = await hop(undefined, 'strong');

async function singleStream(runtime: 'workers' | 'in-thread'): Promise<number> {
  const cascade = await loadCascade(undefined, {device: 'cpu', runtime});
  const inputs = samples.slice(0, 50).map((s) => s.bytes ?? s.absPath!);
  for (const x of inputs.slice(0, 10)) await cascade.predict(x);
  const xs: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await cascade.predict(inputs[i % inputs.length]!);
    xs.push(performance.now() - t0);
  }
  await cascade.close();
  return median(xs);
}
let ssWorkers = Infinity;
let ssInThread = Infinity;
for (let round = 0; round < 3; round++) {
  ssWorkers = Math.min(ssWorkers, await singleStream('workers'));
  ssInThread = Math.min(ssInThread, await singleStream('in-thread'));
}

// 3. Offline throughput with 1, 2, 4 workers per model.
async function offline(replicas: number | 'in-thread'): Promise<{throughput: number; concurrency: number}> {
  const cascade: Cascade = await loadCascade(undefined, replicas === 'in-thread' ? {device: 'cpu', runtime: 'in-thread'} : {device: 'cpu', replicas});
  const concurrency = replicas === 'in-thread' ? cores * 4 : cascade.capacity() * 2;
  await runBatch(cascade, samples.slice(0, 20), {concurrency});
  const {summary} = await runBatch(cascade, samples, {concurrency});
  await cascade.close();
  return {throughput: summary.throughput, concurrency};
}
const throughput = {inThread: await offline('in-thread'), w1: await offline(1), w2: await offline(2), w4: await offline(4)};

const f = (v: number, d = 2): string => v.toFixed(d);
console.log(`cascade workers bench (${cores} cores, CPU, ${calls} calls per measurement, best of interleaved rounds; p50 = sorted[floor(N/2)]; load average ${os.loadavg()[0]!.toFixed(1)})`);
console.log(`1. stage of 3 models (MatMul chains, 1 intra-op thread each): alone ${alone.map((x) => f(x)).join(' / ')} ms`);
console.log(`   workers:   stage ${f(workersStage.stage)} ms = ${f(workersStage.stage / slowest)} x slowest (${f(slowest)}), ${f(workersStage.stage / sum)} x sum (${f(sum)})`);
console.log(`   in-thread: stage ${f(inThreadStage.stage)} ms = ${f(inThreadStage.stage / slowest)} x slowest, ${f(inThreadStage.stage / sum)} x sum`);
console.log(`   (with ${cores} cores, 3 single-threaded models at once take at least max(slowest, sum / ${cores}) = ${f(Math.max(slowest, sum / cores))} ms)`);
console.log(`2. thread hop, p50 per model call (worker - in-thread; goal <= 0.2 ms):`);
for (const [name, h] of [['tiny model', hopTiny], ['bundled fast', hopFast], ['bundled strong', hopStrong]] as const) {
  console.log(`   ${name.padEnd(15)} workers ${f(h.workers, 3)} ms, in-thread ${f(h.inThread, 3)} ms, hop ${f(h.workers - h.inThread, 3)} ms`);
}
console.log(`   bundled cascade single-stream p50 (decode + stages): workers ${f(ssWorkers, 3)} ms, in-thread ${f(ssInThread, 3)} ms (${f(ssWorkers - ssInThread, 3)} ms)`);
console.log(`3. offline, bundled cascade on datasets/sample (${samples.length} images), images/s:`);
console.log(`   in-thread ${f(throughput.inThread.throughput, 1)} (concurrency ${throughput.inThread.concurrency}); workers x1 ${f(throughput.w1.throughput, 1)}, x2 ${f(throughput.w2.throughput, 1)}, x4 ${f(throughput.w4.throughput, 1)} (concurrency 2 x capacity)`);
