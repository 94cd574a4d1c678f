/**
 * validate-data speed and memory, measured in one run:
 *  (a) a bare pass that only decodes every image once at the reduced size validate-data uses (256 px, same
 *      concurrency), (b) the full validate-data analysis on the same folder and (c) the same with the per-image pixel
 *      work placed the other way (one worker thread where the default is none, else none), in interleaved rounds (NATIX_BENCH_ROUNDS, default 7) ->
 *      medians of images/s, of the per-round ratios b/a (goal <= 1.15) and c/a, and of CPU ms per image;
 *  peak RSS of `natix validate-data` (the real binary, in a child process) on parquet datasets of 2,000 and 10,000
 *      rows: memory must stay flat, not grow with the dataset.
 * Inputs are generated once with natix's synth generator and cached under bench/.cache/.
 *
 *   npx tsx bench/validate-data.ts [images=1000]      (NATIX_BENCH_RSS=0 skips the parquet memory part)
 */
import {spawn} from 'node:child_process';
import {existsSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import fg from 'fast-glob';
import {openDataset} from '../src/lib/data/open.js';
import type {DataIssue} from '../src/lib/data/sample.js';
import {decodeImage} from '../src/lib/image/decode.js';
import {defaultPixelWorkers} from '../src/lib/quality/pixel-pool.js';
import {DEFAULT_THRESHOLDS, validateDataset} from '../src/lib/quality/validate.js';
import {synthesizeDataset} from '../src/lib/synth/dataset.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cache = path.join(root, 'bench', '.cache');
const count = Number(process.argv[2] ?? 1000);
const concurrency = Number(process.env.NATIX_BENCH_CONCURRENCY ?? os.availableParallelism() * 4); // validate-data's default

async function ensure(dir: string, make: () => Promise<unknown>): Promise<void> {
  if (existsSync(path.join(dir, '.complete'))) return;
  console.log(`generating ${dir} (cached for later runs)...`);
  await make();
  const {writeFile} = await import('node:fs/promises');
  await writeFile(path.join(dir, '.complete'), '');
}

const synth = (out: string, n: number, width: number, height: number, format: 'folder' | 'parquet', seed: number) =>
  synthesizeDataset({out, count: n, seed, width, height, splits: [0.8, 0.1, 0.1], positiveRatio: 0.5, format, quality: [80, 92], framesPerVideo: 1, overwrite: true});

const hd = path.join(cache, `vd-1080-${count}`);
await ensure(hd, () => synth(hd, count, 1920, 1080, 'folder', 11));

// (a) bare decode pass, (b) validate-data's analysis: interleaved rounds (a b, b a, a b, ...) so slow phases of a
// shared machine hit both alike; medians of wall time and of CPU time per image (CPU time is far less sensitive to
// other load on the machine than wall time).
const files = (await fg('**/*.jpg', {cwd: hd, absolute: true})).sort();
async function pool<T>(items: T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({length: concurrency}, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}
interface Timing {
  seconds: number;
  cpuMsPerImage: number;
}
async function timed(fn: () => Promise<unknown>): Promise<Timing> {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const used = process.cpuUsage(cpu);
  return {seconds: (performance.now() - t0) / 1000, cpuMsPerImage: (used.user + used.system) / 1000 / files.length};
}
const bare = (): Promise<unknown> => pool(files, (f) => decodeImage(f, {maxSide: 256}));
let findings = 0;
const analyse = async (pixelWorkers?: number): Promise<unknown> => {
  const issues: DataIssue[] = [];
  const dataset = await openDataset(hd, 'auto', {onIssue: (i) => issues.push(i)});
  const result = await validateDataset(dataset, issues, {thresholds: DEFAULT_THRESHOLDS, severities: {}, hamming: 8, concurrency, maxSide: 256, pixelWorkers});
  findings = result.findings.length;
  return result;
};
const full = (): Promise<unknown> => analyse();
// (c) the same analysis with the other placement of the pixel work: one worker thread where the default is none
// (<= 2 cores), else none (main thread). What the worker pool would buy or cost here.
const otherWorkers = defaultPixelWorkers() === 0 ? 1 : 0;
const mainThread = (): Promise<unknown> => analyse(otherWorkers);
const rounds = Number(process.env.NATIX_BENCH_ROUNDS ?? 7);
await bare(); // warm the page cache and libvips
const runs: Array<{a: Timing; b: Timing; c: Timing}> = [];
for (let r = 0; r < rounds; r++) {
  // Rotate the order (a b c, b c a, c a b) so slow phases of a shared machine hit every pass alike.
  const passes: Array<['a' | 'b' | 'c', () => Promise<unknown>]> = [['a', bare], ['b', full], ['c', mainThread]];
  const order = [...passes.slice(r % 3), ...passes.slice(0, r % 3)];
  const round = {} as {a: Timing; b: Timing; c: Timing};
  for (const [name, fn] of order) round[name] = await timed(fn);
  runs.push(round);
  console.log(`  round ${r + 1}/${rounds}: bare ${round.a.seconds.toFixed(2)} s, validate-data ${round.b.seconds.toFixed(2)} s (with pixelWorkers ${otherWorkers}: ${round.c.seconds.toFixed(2)} s), ratio ${(round.b.seconds / round.a.seconds).toFixed(3)}`);
}
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const bareSeconds = median(runs.map((r) => r.a.seconds));
const fullSeconds = median(runs.map((r) => r.b.seconds));
const wallRatio = median(runs.map((r) => r.b.seconds / r.a.seconds));
const bareCpu = median(runs.map((r) => r.a.cpuMsPerImage));
const fullCpu = median(runs.map((r) => r.b.cpuMsPerImage));
const mainSeconds = median(runs.map((r) => r.c.seconds));
const mainRatio = median(runs.map((r) => r.c.seconds / r.a.seconds));
const mainCpu = median(runs.map((r) => r.c.cpuMsPerImage));

// The JavaScript share of (b): per-image properties on already-decoded buffers (warm, 3 rounds, best kept).
const {computeProperties} = await import('../src/lib/quality/properties.js');
const sampleBuffers = await Promise.all(files.slice(0, 200).map((f) => decodeImage(f, {maxSide: 256})));
let propsMs = Infinity;
for (let round = 0; round < 3; round++) {
  const t = performance.now();
  for (const d of sampleBuffers) computeProperties(d);
  propsMs = Math.min(propsMs, (performance.now() - t) / sampleBuffers.length);
}

console.log(`\n${files.length} JPEGs of 1920x1080, ${os.availableParallelism()} cores, concurrency ${concurrency}, ${rounds} interleaved rounds (medians), load average ${os.loadavg()[0]!.toFixed(1)}`);
console.log(`  (a) bare decode at 256 px : ${(files.length / bareSeconds).toFixed(1)} images/s, ${bareCpu.toFixed(2)} CPU ms/image`);
console.log(`  (b) validate-data         : ${(files.length / fullSeconds).toFixed(1)} images/s, ${fullCpu.toFixed(2)} CPU ms/image, ${findings} findings`);
console.log(`  ratio b/a, wall time      : ${wallRatio.toFixed(3)}  (median of per-round ratios; goal <= 1.15)`);
console.log(`  ratio b/a, CPU per image  : ${(fullCpu / bareCpu).toFixed(3)}`);
console.log(`  (c) the same with pixelWorkers ${otherWorkers} (default here ${defaultPixelWorkers()}): ${(files.length / mainSeconds).toFixed(1)} images/s, ${mainCpu.toFixed(2)} CPU ms/image, ratio c/a wall ${mainRatio.toFixed(3)}, CPU ${(mainCpu / bareCpu).toFixed(3)}`);
console.log(`  per-image properties (JS): ${propsMs.toFixed(3)} ms on ${sampleBuffers[0]!.width}x${sampleBuffers[0]!.height} buffers`);
if (process.env.NATIX_BENCH_RSS === '0') process.exit(0);

// Memory on parquet: peak RSS of the real binary in a child process.
async function peakRss(dir: string): Promise<{mb: number; seconds: number}> {
  const script = `
    const {execute} = await import('@oclif/core');
    process.on('exit', () => { process.stderr.write('MAXRSS ' + process.resourceUsage().maxRSS + '\\n'); });
    await execute({dir: ${JSON.stringify(path.join(root, 'bin', 'run.js'))}, args: ['validate-data', ${JSON.stringify(dir)}, '--json', '--max-findings', '10']});
  `;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {cwd: root, stdio: ['ignore', 'ignore', 'pipe']});
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', () => {
      const m = /MAXRSS (\d+)/.exec(err);
      if (!m) return reject(new Error(`no MAXRSS in: ${err.slice(-500)}`));
      resolve({mb: Number(m[1]) / 1024, seconds: (performance.now() - started) / 1000});
    });
  });
}
const rows: Array<[number, {mb: number; seconds: number}]> = [];
for (const n of [2000, 10000]) {
  const dir = path.join(cache, `vd-parquet-${n}`);
  await ensure(dir, () => synth(dir, n, 320, 180, 'parquet', 12));
  rows.push([n, await peakRss(dir)]);
}
console.log('\npeak RSS of natix validate-data on NATIX-style parquet (320x180 images, shards of 1,000 rows, row groups of 100):');
for (const [n, r] of rows) console.log(`  ${String(n).padStart(6)} rows: ${r.mb.toFixed(0)} MB peak RSS, ${(n / r.seconds).toFixed(0)} rows/s`);
console.log(`  growth 2k -> 10k rows: ${(rows[1]![1].mb / rows[0]![1].mb).toFixed(2)}x for 5x the rows`);
