/**
 * Data-parallel fine-tuning (`gradient-threads`): the real `natix train` on the wasm backend with 1 thread and with
 * N, in interleaved rounds (1, N, N, 1, ...) so a busy phase of the machine hits both alike, on a ViT-shaped and a
 * ResNet-18-shaped backbone at 224 px. Prints the median ms per training image per epoch of each, their ratio
 * (the speed-up), and whether the final weights are byte-identical (they must be: gradients are added in
 * micro-batch order whichever thread computed them).
 *
 *   npx tsx bench/fine-tune-threads.ts [threads=2] [rounds=3] [train-images=32] [image-size=224] [scopes=last:2,all]
 *
 * Batches of 16 in micro-batches of 4: four per batch, shared out between the threads.
 */
import os from 'node:os';
import {coresObtained, fineTuneBench, trainOnce} from './fine-tune-setup.js';

const threads = Number(process.argv[2] ?? 2);
const rounds = Number(process.argv[3] ?? 3);
const images = Number(process.argv[4] ?? 32);
const size = Number(process.argv[5] ?? 224);
const scopes = (process.argv[6] ?? 'last:2,all').split(',');
const bench = await fineTuneBench(size, images, 4);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`natix train, wasm, ${size} px, ${images} training images, batch 16, micro-batch 4, ${rounds} interleaved round(s); ${os.availableParallelism()} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, cores obtained by a spin test ${(await coresObtained()).toFixed(2)}`);
console.log(`| model | model.train | 1 thread ms / image | ${threads} threads ms / image | speed-up | weights identical |`);
console.log('|---|---|---|---|---|---|');
for (const [name, dir] of Object.entries(bench.models)) {
  for (const scope of scopes) {
    const times: Record<number, number[]> = {1: [], [threads]: []};
    const hashes = new Set<string>();
    let failed = '';
    for (let round = 0; round < rounds && !failed; round++) {
      for (const t of round % 2 === 0 ? [1, threads] : [threads, 1]) {
        const run = trainOnce(bench, `${name.split(' ')[0]}-${scope.replace(':', '')}-t${t}-r${round}`, dir, scope, {epochs: 1, batchSize: 16, microBatch: 4, backend: 'wasm', extra: `gradient-threads: ${t}\n`});
        if (typeof run === 'string') {
          failed = run;
          break;
        }
        times[t]!.push(run.trainMs / images);
        hashes.add(run.weights);
      }
    }
    if (failed) {
      console.log(`| ${name} | ${scope} | failed: ${failed} | | | |`);
      continue;
    }
    const one = median(times[1]!);
    const many = median(times[threads]!);
    console.log(`| ${name} | ${scope} | ${one.toFixed(0)} | ${many.toFixed(0)} | ${(one / many).toFixed(2)}x | ${hashes.size === 1 ? 'yes' : `NO (${hashes.size} different)`} |`);
  }
}
console.log(`at the end: load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, cores obtained by a spin test ${(await coresObtained()).toFixed(2)}`);
