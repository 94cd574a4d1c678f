/**
 * How fast `natix datasets synth` makes data: 1,000 images of 640x360 (the foundation issue's yardstick: "well
 * under a minute on 2 cores"), with concurrency 1 and the default, to show both cores are used.
 *
 *   npx tsx bench/synth.ts [count]
 */
import {mkdtemp, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {synthesizeDataset} from '../src/lib/synth/dataset.js';

const count = Number(process.argv[2] ?? 1000);
const base = await mkdtemp(path.join(os.tmpdir(), 'natix-bench-synth-'));

async function once(concurrency: number | undefined): Promise<{seconds: number; cpu: number}> {
  const out = path.join(base, `c${concurrency ?? 'default'}`);
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  await synthesizeDataset({
    out,
    count,
    seed: 1,
    width: 640,
    height: 360,
    splits: [0.8, 0.1, 0.1],
    positiveRatio: 0.5,
    format: 'folder',
    quality: [60, 95],
    framesPerVideo: 1,
    overwrite: false,
    concurrency,
  });
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  await rm(out, {recursive: true, force: true});
  return {seconds, cpu: (cpu.user + cpu.system) / 1e6 / seconds};
}

const serial = await once(1);
const parallel = await once(undefined);
console.log(`synth ${count} images of 640x360 on ${os.availableParallelism()} cores`);
console.log(`  concurrency 1      : ${serial.seconds.toFixed(2)} s  ${(count / serial.seconds).toFixed(1)} images/s  cpu ${(serial.cpu * 100).toFixed(0)}%`);
console.log(`  concurrency default: ${parallel.seconds.toFixed(2)} s  ${(count / parallel.seconds).toFixed(1)} images/s  cpu ${(parallel.cpu * 100).toFixed(0)}%`);
console.log(`  speed-up from concurrency: ${(serial.seconds / parallel.seconds).toFixed(2)}x`);
await rm(base, {recursive: true, force: true});
