/**
 * What the cascade library adds on top of the model's own run time, measured in one run on the same model and
 * inputs: raw onnxruntime `session.run` on a prepared tensor vs the library's inference step for that model
 * (LoadedModel.infer + output decoding) and vs a full `cascade.predict` (reading its trace's inference time);
 * decode + preprocess ms of a 1920x1080 JPEG to a 224x224 input; batch throughput at concurrency 1 and 2.
 *
 *   npx tsx bench/cascade-overhead.ts [iterations=300]
 */
import {mkdtemp, readFile, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import {runBatch} from '../src/lib/cascade/batch.js';
import {outputProbability} from '../src/lib/cascade/decode-output.js';
import {loadCascade} from '../src/lib/cascade/index.js';
import type {Sample} from '../src/lib/data/sample.js';
import {preprocessForModel} from '../src/lib/image/preprocess.js';
import {renderScene} from '../src/lib/synth/render.js';
import {makeCamera, makeSceneSpec, ROADWORK_CLASSES} from '../src/lib/synth/scene.js';
import {SeededRandom} from '../src/lib/util/random.js';
import {benchConvNet} from './conv-net.js';

const iterations = Number(process.argv[2] ?? 300);
const rng = new SeededRandom('bench-cascade');


const dir = await mkdtemp(path.join(os.tmpdir(), 'natix-bench-cascade-'));
const modelFile = path.join(dir, 'model.onnx');
await writeFile(modelFile, benchConvNet(rng));
const classId = new Map<string, number>(ROADWORK_CLASSES.map((c, i) => [c, i]));
const images: string[] = [];
for (let i = 0; i < 32; i++) {
  const r = new SeededRandom(`img-${i}`);
  const rendered = await renderScene(makeSceneSpec(r, 1920, 1080, i % 2 === 0), makeCamera(r, 0), r, classId, 85);
  const file = path.join(dir, `img-${i}.jpg`);
  await writeFile(file, rendered.jpeg);
  images.push(file);
}

const cascade = await loadCascade(modelFile, {device: 'cpu', runtime: 'in-thread'}); // the library's own cost; the worker hop: bench/cascade-workers.ts
const model = cascade.models()[0]!;
const tensor = await preprocessForModel(images[0]!, model.preprocessing);
const session = await ort.InferenceSession.create(modelFile, {executionProviders: ['cpu'], graphOptimizationLevel: 'all'});
const feeds = {pixel_values: new ort.Tensor('float32', tensor.data as Float32Array, tensor.dims)};

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await fn();
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) await fn();
  return (performance.now() - t0) / iterations;
}
// Interleave the two measurements twice to share the machine's state fairly.
const raw1 = await timeIt(() => session.run(feeds));
const lib1 = await timeIt(async () => outputProbability((await model.infer(tensor)).data, [1, 2], model.output));
const raw2 = await timeIt(() => session.run(feeds));
const lib2 = await timeIt(async () => outputProbability((await model.infer(tensor)).data, [1, 2], model.output));
const raw = Math.min(raw1, raw2);
const lib = Math.min(lib1, lib2);

const jpeg = await readFile(images[0]!);
const traces = [];
for (let i = 0; i < 50; i++) traces.push(await cascade.predict(jpeg));
const steady = traces.slice(10);
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const decodeMs = mean(steady.map((t) => t.decodeMs));
const preMs = mean(steady.map((t) => t.stages[0]!.models[0]!.preprocessMs));
const infMs = mean(steady.map((t) => t.stages[0]!.models[0]!.inferenceMs));
const totalMs = mean(steady.map((t) => t.totalMs));
// Orchestration: everything in predict that is not decode, preprocessing, the model call or output decoding
// (stage loop, breaker, deadlines, tensor cache, trace building, clamping).
const postMs = mean(steady.map((t) => t.stages[0]!.models[0]!.postprocessMs));
const orchestrationMs = totalMs - decodeMs - preMs - infMs - postMs;

const samples: Sample[] = images.map((f) => ({id: f, path: path.basename(f), absPath: f, label: null, metadata: {}}));
const c1 = (await runBatch(cascade, samples, {concurrency: 1})).summary;
const c2 = (await runBatch(cascade, samples, {concurrency: 2})).summary;
await cascade.close();

console.log(`model: 4-conv net at 224x224 (0.35 GMAC) (onnxruntime-node ${ort.env.versions.node}, CPU, ${os.availableParallelism()} cores), ${iterations} iterations`);
console.log(`  raw session.run          : ${raw.toFixed(3)} ms`);
console.log(`  library inference step   : ${lib.toFixed(3)} ms  (overhead ${(lib - raw).toFixed(3)} ms = ${(((lib - raw) / raw) * 100).toFixed(2)}%; goal < 5% or < 0.1 ms)`);
console.log(`  cascade.predict trace    : decode ${decodeMs.toFixed(2)} ms + preprocess ${preMs.toFixed(2)} ms + inference ${infMs.toFixed(2)} ms; end to end ${totalMs.toFixed(2)} ms (1920x1080 JPEG -> 224x224)`);
console.log(`  orchestration in predict : ${orchestrationMs.toFixed(3)} ms per image (${((orchestrationMs / totalMs) * 100).toFixed(2)}% of end to end)`);
console.log(`  batch of ${samples.length} 1080p JPEGs: concurrency 1 ${c1.throughput.toFixed(1)} images/s, concurrency 2 ${c2.throughput.toFixed(1)} images/s (x${(c2.throughput / c1.throughput).toFixed(2)})`);
