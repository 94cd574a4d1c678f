/**
 * Head training on cached features, in one run:
 *  (1) one epoch of a linear head over 10,000 cached features (D = 768, batch 256, AdamW, train metrics), goal < 2 s,
 *      plus the validation pass and an MLP head for reference;
 *  (2) the whole `trainHead` (hashing, extraction, epochs, checkpoints, history, calibration) vs its extraction and
 *      head epochs measured separately (goal: overhead <= 10%), on a small image set with the stand-in backbone.
 *
 *   npx tsx bench/head-train.ts [features=10000] [dim=768] [backend=auto]
 */
import {mkdir, mkdtemp} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {loadTfjs, type TfjsBackendChoice} from '../src/lib/runtime/tfjs.js';
import {Head} from '../src/lib/train/head.js';
import {evaluateLogits, resolveHeadConfig, trainHead} from '../src/lib/train/head-trainer.js';
import {SeededRandom} from '../src/lib/util/random.js';
import {writeVitLikeBackbone} from './backbone-model.js';

const n = Number(process.argv[2] ?? 10000);
const dim = Number(process.argv[3] ?? 768);
const {tf, backend} = await loadTfjs((process.argv[4] ?? 'auto') as TfjsBackendChoice);
const rng = new SeededRandom('bench-head');
const x = Float32Array.from({length: n * dim}, () => rng.normal());
const labels = Array.from({length: n}, (_, i) => (x[i * dim]! + 0.5 * x[i * dim + 1]! > 0 ? 1 : 0));
const opt = {weightDecay: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, maxGradNorm: 1, ema: 0.999, labelSmoothing: 0.1, classWeights: [1, 1]};

async function epoch(type: 'linear' | 'mlp'): Promise<{epochMs: number; evalMs: number; mcc: number}> {
  const head = new Head(tf, {type, hidden: 768, dropout: 0.3, inputDim: dim, classes: 2, seed: 1}, opt);
  const order = new SeededRandom('order').shuffle(labels.map((_, i) => i));
  const run = async (t0Step: number): Promise<number> => {
    const t0 = performance.now();
    const logits: number[] = [];
    for (let s = 0, step = t0Step; s < n; s += 256, step++) {
      const idx = order.slice(s, s + 256);
      const xb = new Float32Array(idx.length * dim);
      idx.forEach((k, i) => xb.set(x.subarray(k * dim, (k + 1) * dim), i * dim));
      const r = head.step(xb, idx.map((k) => labels[k]!), 1e-2, step + 1, `d${step}`);
      for (const v of r.logits) logits.push(v);
      await new Promise((resolve) => setImmediate(resolve)); // as the trainer: yield between steps
    }
    evaluateLogits(Float32Array.from(logits), order.map((k) => labels[k]!), 2, []);
    return performance.now() - t0;
  };
  await run(0); // warm-up epoch (kernels, first allocations)
  const epochMs = await run(Math.ceil(n / 256));
  const t1 = performance.now();
  const val = evaluateLogits(head.predict(x, n), labels, 2, [0.9]);
  const evalMs = performance.now() - t1;
  head.dispose();
  return {epochMs, evalMs, mcc: val.mcc!};
}

console.log(`TF.js backend ${backend}; ${n} features x ${dim}; cores ${os.availableParallelism()}, load ${os.loadavg()[0]!.toFixed(1)} (shared machine: figures vary)`);
const lin = await epoch('linear');
console.log(`linear head: one epoch (${Math.ceil(n / 256)} steps of 256, AdamW + EMA + clipping + train metrics) ${(lin.epochMs / 1000).toFixed(3)} s (goal < 2 s); validation pass over ${n}: ${(lin.evalMs / 1000).toFixed(3)} s`);
const mlp = await epoch('mlp');
console.log(`mlp head (hidden 768, dropout 0.3): one epoch ${(mlp.epochMs / 1000).toFixed(3)} s; validation ${(mlp.evalMs / 1000).toFixed(3)} s`);

// (2) The whole trainHead vs its parts.
const base = await mkdtemp(path.join(os.tmpdir(), 'natix-bench-head-'));
const modelDir = await writeVitLikeBackbone(path.join(base, 'backbone'), 2);
for (const [split, count] of [['train', 24], ['val', 8]] as const) {
  for (const cls of ['roadwork', 'none']) {
    await mkdir(path.join(base, 'data', split, cls), {recursive: true});
    for (let i = 0; i < count; i++) {
      const colour = cls === 'roadwork' ? `rgb(${200 + (i % 50)},90,40)` : `rgb(40,90,${200 + (i % 50)})`;
      await sharp(Buffer.from(`<svg width="320" height="240"><rect width="320" height="240" fill="${colour}"/></svg>`)).jpeg().toFile(path.join(base, 'data', split, cls, `${i}.jpg`));
    }
  }
}
const cfg = resolveHeadConfig({dataset: {path: path.join(base, 'data')}, model: {from: modelDir}, epochs: 20, 'batch-size': 16, 'run-name': 'bench', out: path.join(base, 'runs')} as never, {}, base);
const result = await trainHead(tf, backend, cfg, false, {info: () => undefined, warn: console.warn, shouldStop: () => false}, {device: 'auto', threads: 0});
const epochs = result.history.reduce((s, h) => s + h.seconds! * 1000, 0);
const parts = result.extraction.wallMs + epochs;
console.log(`whole trainHead ${(result.timings.wallMs / 1000).toFixed(2)} s vs extraction ${(result.extraction.wallMs / 1000).toFixed(2)} s + ${result.history.length} head epochs ${(epochs / 1000).toFixed(2)} s = ${(parts / 1000).toFixed(2)} s: overhead ${(((result.timings.wallMs - parts) / parts) * 100).toFixed(1)}% (goal <= 10%; includes loading the backbone, hashing, checkpoints, history and calibration)`);
const t = result.timings;
const checkpointsEtc = t.trainMs - epochs;
console.log(
  `  breakdown: hashing ${(t.hashMs / 1000).toFixed(2)} s, extraction ${(t.extractMs / 1000).toFixed(2)} s, head loop ${(t.trainMs / 1000).toFixed(2)} s (of which checkpoints/history/pruning ${(checkpointsEtc / 1000).toFixed(2)} s), ` +
    `the rest (loading + probing the backbone and starting its worker, reading the sources, calibration) ${((t.wallMs - t.hashMs - t.extractMs - t.trainMs) / 1000).toFixed(2)} s. Under tsx the worker thread compiles its TypeScript entry; the built CLI does not.`,
);
