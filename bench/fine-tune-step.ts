/**
 * One fine-tuning step (FineTuner.step: the frozen prefix in onnxruntime, forward + backward of the tail and head on
 * wasm, AdamW) on 1 and on N gradient threads, in-process, interleaved: wall ms per image and CPU ms per image (all
 * threads of the process), and the share of the 1-thread step spent in the frozen prefix, for a ResNet-18-shaped and a
 * ViT-shaped graph (vit-depth blocks) at 224 px. CPU per image should barely
 * change with N (the work is the same, shared out); the wall time falls with N where N cores are free.
 *
 *   npx tsx bench/fine-tune-step.ts [threads=2] [steps=3] [batch=16] [micro-batch=4] [scopes=last:2,all] [size=224] [vit-depth=4]
 */
import os from 'node:os';
import path from 'node:path';
import {mkdtempSync} from 'node:fs';
import {loadTfjs} from '../src/lib/runtime/tfjs.js';
import {loadBackbone} from '../src/lib/train/backbone.js';
import {FineTuner, selectionOf} from '../src/lib/train/fine-tune.js';
import {Head} from '../src/lib/train/head.js';
import {resolveTrainScope} from '../src/lib/train/train-scope.js';
import {SeededRandom} from '../src/lib/util/random.js';
import {coresObtained, wasmParallelCeiling, writeBackbones} from './fine-tune-setup.js';

const threads = Number(process.argv[2] ?? 2);
const steps = Number(process.argv[3] ?? 3);
const batch = Number(process.argv[4] ?? 16);
const microBatch = Number(process.argv[5] ?? 4);
const scopes = (process.argv[6] ?? 'last:2,all').split(',');
const size = Number(process.argv[7] ?? 224);
const {tf} = await loadTfjs('wasm');
const root = mkdtempSync(path.join(os.tmpdir(), 'natix-bench-step-'));
const backbones = writeBackbones(root, size, Number(process.argv[8] ?? 4));
const rng = new SeededRandom(3);
const input = Float32Array.from({length: batch * 3 * size * size}, () => rng.normal());
const labels = Array.from({length: batch}, (_, i) => i % 2);
const optimizer = {weightDecay: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, maxGradNorm: 1, ema: 0.9, labelSmoothing: 0, classWeights: [1, 1]};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`FineTuner.step, wasm, ${size} px, batch ${batch}, micro-batch ${microBatch}, ${steps} steps each after a warm-up, interleaved; ${os.availableParallelism()} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, cores obtained by a spin test ${(await coresObtained()).toFixed(2)}`);
console.log(`| model | model.train | 1 thread: wall / CPU ms per image | frozen prefix share (1 thread) | ${threads} threads: wall / CPU ms per image | wall speed-up | CPU ratio |`);
console.log('|---|---|---|---|---|---|---|');
for (const [name, dir] of Object.entries(backbones)) {
  const backbone = await loadBackbone(dir, {features: 'auto', pool: 'auto', device: 'cpu', threads: 0});
  for (const scope of scopes) {
    const parsed = resolveTrainScope({model: {from: dir, train: scope as 'all'}}, 1e-3).scope;
    if (parsed.kind === 'head') continue;
    const tuners = new Map<number, FineTuner>();
    for (const t of [1, threads]) {
      const head = new Head(tf, {type: 'linear', hidden: 0, dropout: 0, inputDim: backbone.info.dim, classes: 2, seed: 1}, {...optimizer, ema: 0});
      tuners.set(t, await FineTuner.create(tf, backbone, head, {selection: selectionOf(parsed), optimizer, device: 'cpu', microBatch, gradientThreads: {count: t, backend: 'wasm', warn: (m) => console.warn(m)}}));
    }
    // The 1-thread tuner's time in the frozen prefix (onnxruntime), to show its share of a step.
    let prefixMs = 0;
    const single = tuners.get(1)!.graph;
    const prefix = single.prefix.bind(single);
    single.prefix = async (...args: Parameters<typeof prefix>) => {
      const start = performance.now();
      const out = await prefix(...args);
      prefixMs += performance.now() - start;
      return out;
    };
    const wall: Record<number, number[]> = {1: [], [threads]: []};
    const cpu: Record<number, number[]> = {1: [], [threads]: []};
    for (let s = 0; s <= steps; s++) {
      for (const t of s % 2 === 0 ? [1, threads] : [threads, 1]) {
        const c0 = process.cpuUsage();
        const w0 = performance.now();
        await tuners.get(t)!.step({images: input}, labels, 1e-3, 1e-4, s + 1, `s${s}`);
        const used = process.cpuUsage(c0);
        if (s === 0) {
          if (t === 1) prefixMs = 0;
          continue; // warm-up
        }
        wall[t]!.push((performance.now() - w0) / batch);
        cpu[t]!.push((used.user + used.system) / 1000 / batch);
      }
    }
    for (const t of tuners.values()) {
      t.head.dispose();
      await t.dispose();
    }
    const [w1, wn, c1, cn] = [median(wall[1]!), median(wall[threads]!), median(cpu[1]!), median(cpu[threads]!)];
    const share = prefixMs / (wall[1]!.reduce((a, b) => a + b, 0) * batch);
    console.log(`| ${name} | ${scope} | ${w1.toFixed(0)} / ${c1.toFixed(0)} | ${(100 * share).toFixed(0)}% | ${wn.toFixed(0)} / ${cn.toFixed(0)} | ${(w1 / wn).toFixed(2)}x | ${(cn / c1).toFixed(2)} |`);
  }
  await backbone.close();
}
console.log(`the machine's ceiling: the same wasm work on one worker vs one worker per core, ${(await wasmParallelCeiling()).toFixed(2)}x`);
console.log(`at the end: load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, cores obtained by a spin test ${(await coresObtained()).toFixed(2)}`);
