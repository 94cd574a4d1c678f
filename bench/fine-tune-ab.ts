/**
 * Two `natix train` settings against each other: the real command on the wasm backend with config line A and with
 * config line B, in interleaved rounds (A, B, B, A, ...) so a busy phase of the machine hits both alike, on a
 * ViT-shaped and a ResNet-18-shaped backbone. Prints the median ms per training image per epoch of each, their ratio
 * (A / B: the speed-up of B), and whether the final weights are byte-identical (they must be for settings that do not
 * change results: gradient-threads, boundary-cache).
 *
 *   npx tsx bench/fine-tune-ab.ts "gradient-threads: 1" "gradient-threads: 2" [rounds=3] [train-images=32] [image-size=224] [scopes=last:2,all] [epochs=1] [vit-depth=4]
 *   npx tsx bench/fine-tune-ab.ts "boundary-cache: false" "boundary-cache: true" 3 32 224 last:1,last:2 3 12
 *
 * Batches of 16 in micro-batches of 4.
 */
import os from 'node:os';
import {coresObtained, fineTuneBench, trainOnce} from './fine-tune-setup.js';

const [a, b] = [process.argv[2] ?? 'gradient-threads: 1', process.argv[3] ?? 'gradient-threads: 2'];
const rounds = Number(process.argv[4] ?? 3);
const images = Number(process.argv[5] ?? 32);
const size = Number(process.argv[6] ?? 224);
const scopes = (process.argv[7] ?? 'last:2,all').split(',');
const epochs = Number(process.argv[8] ?? 1);
const vitDepth = Number(process.argv[9] ?? 4);
const bench = await fineTuneBench(size, images, vitDepth);
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

console.log(`natix train, wasm, ${size} px, ${images} training images, ${epochs} epoch(s), batch 16, micro-batch 4, ${rounds} interleaved round(s); ${os.availableParallelism()} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, cores obtained by a spin test ${(await coresObtained()).toFixed(2)}`);
const label = (line: string): string => line.replace(/\n/g, '; ');
console.log(`| model | model.train | A "${label(a)}" ms / image / epoch | B "${label(b)}" ms / image / epoch | A / B |${epochs > 1 ? ' epochs 2+: A / B ms / image (A / B) |' : ''} weights identical |`);
console.log(`|---|---|---|---|---|${epochs > 1 ? '---|' : ''}---|`);
for (const [name, dir] of Object.entries(bench.models)) {
  for (const scope of scopes) {
    const times: Record<'a' | 'b', number[]> = {a: [], b: []};
    const later: Record<'a' | 'b', number[]> = {a: [], b: []};
    const hashes = new Set<string>();
    let failed = '';
    for (let round = 0; round < rounds && !failed; round++) {
      for (const which of round % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const)) {
        const run = trainOnce(bench, `${name.split(' ')[0]}-${scope.replace(':', '')}-${which}-r${round}`, dir, scope, {epochs, batchSize: 16, microBatch: 4, backend: 'wasm', extra: `${which === 'a' ? a : b}\n`});
        if (typeof run === 'string') {
          failed = run;
          break;
        }
        times[which].push(run.trainMs / (images * epochs));
        if (epochs > 1) later[which].push((run.epochSeconds.slice(1).reduce((x, y) => x + y, 0) * 1000) / (images * (epochs - 1)));
        hashes.add(run.weights);
      }
    }
    if (failed) {
      console.log(`| ${name} | ${scope} | failed: ${failed} | | | |`);
      continue;
    }
    const [ta, tb] = [median(times.a), median(times.b)];
    const [la, lb] = epochs > 1 ? [median(later.a), median(later.b)] : [0, 0];
    const laterColumn = epochs > 1 ? ` ${la.toFixed(0)} / ${lb.toFixed(0)} (${(la / lb).toFixed(2)}x) |` : '';
    console.log(`| ${name} | ${scope} | ${ta.toFixed(0)} | ${tb.toFixed(0)} | ${(ta / tb).toFixed(2)}x |${laterColumn} ${hashes.size === 1 ? 'yes' : `NO (${hashes.size} different)`} |`);
  }
}
console.log(`at the end: load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, cores obtained by a spin test ${(await coresObtained()).toFixed(2)}`);
