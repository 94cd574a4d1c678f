/**
 * What the fine-tuning benches share: a small two-class JPEG folder dataset at a given size (noise with a
 * class-dependent tint), a ViT-shaped and a ResNet-18-shaped backbone in Hugging Face layout, and one `natix train`
 * run (the real binary, in a child process) timed by its own report.
 */
import {spawnSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {encodeOnnxModel, type OnnxModelSpec} from '../src/lib/onnx/model.js';
import {SeededRandom} from '../src/lib/util/random.js';
import {resnetGraph, vitGraph} from '../test/helpers/onnx-graphs.js';

const bin = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'bin', 'run.js');

export interface FineTuneBench {
  root: string;
  /** Training images (validation: a quarter of that, at least 4). */
  images: number;
  valImages: number;
  /** Model name -> backbone folder. */
  models: Record<string, string>;
}

/** Writes the dataset (`images` for training) and the two backbones under a new temporary folder. */
export async function fineTuneBench(size: number, images: number, vitDepth: number): Promise<FineTuneBench> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'natix-bench-fine-tune-'));
  const rng = new SeededRandom(1);
  for (const [split, n] of [['train', images / 2], ['val', Math.max(2, images / 8)]] as const) {
    for (const [label, cls] of ['none', 'roadwork'].entries()) {
      mkdirSync(path.join(root, 'data', split, cls), {recursive: true});
      for (let i = 0; i < n; i++) {
        const pixels = Buffer.alloc(size * size * 3);
        for (let k = 0; k < pixels.length; k++) pixels[k] = Math.max(0, Math.min(255, Math.round(110 + (k % 3 === label ? 30 : 0) + 40 * rng.normal())));
        await sharp(pixels, {raw: {width: size, height: size, channels: 3}}).jpeg({quality: 90}).toFile(path.join(root, 'data', split, cls, `${i}.jpg`));
      }
    }
  }
  return {
    root,
    images,
    valImages: Math.max(2, images / 8) * 2,
    models: writeBackbones(root, size, vitDepth),
  };
}

/** A ViT-shaped (patch 16, dim 192) and a ResNet-18-shaped backbone in Hugging Face layout under `root`: name -> folder. */
export function writeBackbones(root: string, size: number, vitDepth: number): Record<string, string> {
  const backbone = (name: string, spec: OnnxModelSpec): string => {
    const dir = path.join(root, name);
    mkdirSync(dir, {recursive: true});
    writeFileSync(path.join(dir, 'model.onnx'), encodeOnnxModel(spec));
    writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify({do_resize: true, size: {height: size, width: size}, resample: 2, do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5]}));
    return dir;
  };
  return {
    [`ViT (${vitDepth} blocks, dim 192)`]: backbone('vit', vitGraph({image: size, patch: 16, dim: 192, depth: vitDepth, heads: 3, mlp: 768, classes: 2})),
    'ResNet-18-shaped': backbone('resnet', resnetGraph({image: size, widths: [64, 128, 256, 512], blocks: [2, 2, 2, 2], classes: 2})),
  };
}

export interface TrainRun {
  trainMs: number;
  extractMs: number;
  /** Seconds of each epoch (history.csv), validation included. */
  epochSeconds: number[];
  /** SHA-256 of the last epoch's weights.bin. */
  weights: string;
}

/** One `natix train` run of `model.train: scope` with extra config lines; a string says why it failed. */
export function trainOnce(bench: FineTuneBench, name: string, backboneDir: string, scope: string, opts: {epochs: number; batchSize: number; microBatch: number; backend: string; extra?: string}): TrainRun | string {
  const config = path.join(bench.root, `${name}.yaml`);
  const runs = path.join(bench.root, 'runs');
  writeFileSync(config, `run-name: ${name}\nout: ${runs}\nepochs: ${opts.epochs}\nbatch-size: ${opts.batchSize}\nmicro-batch: ${opts.microBatch}\n${opts.extra ?? ''}dataset:\n  path: ${path.join(bench.root, 'data')}\nmodel:\n  from: ${backboneDir}\n  train: ${scope}\n`);
  const r = spawnSync(process.execPath, [bin, 'train', '--no-tracking', '--config', config, '--backend', opts.backend, '--json'], {encoding: 'utf8', maxBuffer: 64 << 20});
  const result = JSON.parse(r.stdout || '{}') as {result?: {timings: {trainMs: number; extractMs: number}}; message?: string};
  if (!result.result) return result.message ?? r.stderr.split('\n')[0] ?? `exit ${r.status}`;
  const last = path.join(runs, name, `epoch-${String(opts.epochs).padStart(4, '0')}`, 'weights.bin');
  const [header, ...rows] = readFileSync(path.join(runs, name, 'history.csv'), 'utf8').trim().split('\n').map((line) => line.split(','));
  const seconds = header!.indexOf('seconds');
  return {...result.result.timings, epochSeconds: rows.map((r) => Number(r[seconds])), weights: createHash('sha256').update(readFileSync(last)).digest('hex')};
}

/**
 * How many cores this process can get right now: one busy worker thread per core for `ms`, CPU time obtained over
 * wall time. A shared machine whose other sessions hold a core reads ~1 on 2 cores; thread speed-ups need free cores.
 */
export async function coresObtained(ms = 1000): Promise<number> {
  const {Worker} = await import('node:worker_threads');
  const code = `const end = Date.now() + ${ms}; let x = 0; while (Date.now() < end) x += Math.sqrt(x + 1); require('node:worker_threads').parentPort.postMessage(x);`;
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(Array.from({length: os.availableParallelism()}, () => new Promise((resolve) => new Worker(code, {eval: true}).once('message', resolve))));
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / 1000 / (performance.now() - start);
}

/**
 * The machine's ceiling for data parallelism on wasm: the same convolution + matrix-product work done by one worker
 * thread, then split over one worker per core (each with its own tfjs-backend-wasm); the wall-time ratio. The
 * gradient-thread speed-ups of fine-tuning are bounded by it.
 */
export async function wasmParallelCeiling(jobs = 40): Promise<number> {
  const {Worker} = await import('node:worker_threads');
  const {createRequire} = await import('node:module');
  const {pathToFileURL} = await import('node:url');
  const require = createRequire(import.meta.url);
  const urls = [require.resolve('@tensorflow/tfjs'), require.resolve('@tensorflow/tfjs-backend-wasm')].map((p) => pathToFileURL(p).href);
  const code = `
    const {parentPort, workerData} = require('node:worker_threads');
    (async () => {
      const tf = await import(workerData.urls[0]);
      await import(workerData.urls[1]);
      await tf.setBackend('wasm');
      await tf.ready();
      const x = tf.randomNormal([2, 56, 56, 64]), w = tf.randomNormal([3, 3, 64, 64]), a = tf.randomNormal([256, 768]), b = tf.randomNormal([768, 768]);
      const work = (n) => { for (let i = 0; i < n; i++) tf.tidy(() => { tf.conv2d(x, w, 1, 'same').dataSync(); tf.matMul(a, b).dataSync(); }); };
      work(3);
      parentPort.postMessage('ready');
      parentPort.once('message', () => { const t = performance.now(); work(workerData.n); parentPort.postMessage(performance.now() - t); });
    })();`;
  const run = async (workers: number, n: number): Promise<number> => {
    const all = Array.from({length: workers}, () => new Worker(code, {eval: true, workerData: {urls, n}}));
    await Promise.all(all.map((w) => new Promise((resolve) => w.once('message', resolve))));
    const start = performance.now();
    await Promise.all(all.map((w) => new Promise((resolve) => {
      w.once('message', resolve);
      w.postMessage('go');
    })));
    const wall = performance.now() - start;
    await Promise.all(all.map((w) => w.terminate()));
    return wall;
  };
  const cores = os.availableParallelism();
  return (await run(1, jobs)) / (await run(cores, Math.ceil(jobs / cores)));
}
