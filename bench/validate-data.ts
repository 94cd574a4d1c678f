/**
 * validate-data speed and memory, measured in one run:
 *  (a) a bare pass that only decodes every image once at the reduced size validate-data uses (256 px, same
 *      concurrency), (b) the full validate-data analysis on the same folder, (c) the same with the per-image pixel
 *      work placed the other way (one worker thread where the default is none, else none) and (d) the same with the
 *      JavaScript pixel kernels instead of the WebAssembly SIMD ones and (e) the same with exactBrightness: false
 *      (--no-exact-brightness: the thumbnail's dark / light verdicts, no full-resolution decodes), in interleaved
 *      rounds (NATIX_BENCH_ROUNDS, default 7; NATIX_BENCH_PASSES=ab skips c, d and e) -> medians of images/s, of CPU
 *      ms per image (all threads, and by thread group where Linux tells it), of major (mark-compact) GCs
 *      and of minor page faults per pass, and the per-round ratios b/a (goal <= 1.15), c/a, d/a, b/d, e/a and b/e as median [min-max] (the
 *      spread shows the noise);
 *  peak RSS of `natix validate-data` (the real binary, in a child process) on parquet datasets of 2,000 and 10,000
 *      rows: memory must stay flat, not grow with the dataset.
 * Inputs are generated once with natix's synth generator and cached under bench/.cache/.
 *
 *   npx tsx bench/validate-data.ts [images=1000]      (NATIX_BENCH_RSS=0 skips the parquet memory part)
 */
import {spawn} from 'node:child_process';
import {existsSync, readdirSync, readFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {constants as perfConstants, type PerformanceEntry, PerformanceObserver} from 'node:perf_hooks';
import {fileURLToPath} from 'node:url';
import fg from 'fast-glob';
import {openDataset} from '../src/lib/data/open.js';
import type {DataIssue} from '../src/lib/data/sample.js';
import {decodeImage} from '../src/lib/image/decode.js';
import {defaultPixelKernels, JsPixelKernels, type PixelKernels} from '../src/lib/quality/pixel-kernels.js';
import {defaultPixelWorkers} from '../src/lib/quality/pixel-pool.js';
import {DEFAULT_THRESHOLDS, validateDataset, type ValidationResult} from '../src/lib/quality/validate.js';
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
  /** cpuMsPerImage by thread group (Linux only): the main thread runs JavaScript, WebAssembly and GC; libvips decodes on its own and libuv's threads. */
  threads: ThreadGroups | undefined;
  /** Major GCs (mark-compacts) of the main thread during the pass, and their total pause. */
  majorGcs: number;
  majorGcMs: number;
  /** Minor page faults per image (fresh memory touched: libvips' 6 MB full-resolution buffers when glibc unmaps them). */
  faultsPerImage: number;
}
// Every major GC's start and duration (delivered asynchronously: each pass waits a tick before counting its own).
const majorGcs: Array<{start: number; ms: number}> = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if ((e as PerformanceEntry & {detail?: {kind?: number}}).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) majorGcs.push({start: e.startTime, ms: e.duration});
}).observe({entryTypes: ['gc']});
/**
 * CPU ms so far by thread group (Linux: /proc/self/task/<tid>/stat, in ticks of 10 ms): the main thread, libvips'
 * workers, and the rest (libuv's pool, where sharp runs each pipeline, and V8's helpers). Undefined elsewhere.
 */
type ThreadGroups = {main: number; libvips: number; other: number};
function threadCpuMs(): ThreadGroups | undefined {
  const groups: ThreadGroups = {main: 0, libvips: 0, other: 0};
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        groups[Number(tid) === process.pid ? 'main' : name.startsWith('libvips') ? 'libvips' : 'other'] += ms;
      } catch {
        // a thread that ended between the listing and the read
      }
    }
    return groups;
  } catch {
    return undefined;
  }
}
async function timed(fn: () => Promise<unknown>): Promise<Timing> {
  const cpu = process.cpuUsage();
  const faults = process.resourceUsage().minorPageFault;
  const threads0 = threadCpuMs();
  const t0 = performance.now();
  await fn();
  const used = process.cpuUsage(cpu);
  const faultsPerImage = (process.resourceUsage().minorPageFault - faults) / files.length;
  const threads1 = threadCpuMs();
  const t1 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 20));
  const gcs = majorGcs.filter((g) => g.start >= t0 && g.start < t1);
  // Threads that ended during the pass are missing from threads1: the groups can add up to a little less than the total.
  const perImage = (g: keyof ThreadGroups): number => (threads1![g] - threads0![g]) / files.length;
  const threads = threads0 && threads1 ? {main: perImage('main'), libvips: perImage('libvips'), other: perImage('other')} : undefined;
  return {seconds: (t1 - t0) / 1000, cpuMsPerImage: (used.user + used.system) / 1000 / files.length, threads, majorGcs: gcs.length, majorGcMs: gcs.reduce((sum, g) => sum + g.ms, 0), faultsPerImage};
}
const bare = (): Promise<unknown> => pool(files, (f) => decodeImage(f, {maxSide: 256}));
let findings = 0;
const analyse = async (pixelWorkers?: number, pixelKernels?: PixelKernels, exactBrightness?: boolean): Promise<ValidationResult> => {
  const issues: DataIssue[] = [];
  const dataset = await openDataset(hd, 'auto', {onIssue: (i) => issues.push(i)});
  return validateDataset(dataset, issues, {thresholds: DEFAULT_THRESHOLDS, severities: {}, hamming: 8, concurrency, maxSide: 256, pixelWorkers, pixelKernels, exactBrightness});
};
// (b)'s finding count is the one printed (the other passes differ on purpose: (e) keeps the thumbnail's verdicts).
const full = async (): Promise<void> => {
  findings = (await analyse()).findings.length;
};
// (c) the same analysis with the other placement of the pixel work: one worker thread where the default is none
// (<= 2 cores), else none (main thread). What the worker pool would buy or cost here.
const otherWorkers = defaultPixelWorkers() === 0 ? 1 : 0;
const mainThread = (): Promise<unknown> => analyse(otherWorkers);
// (d) the same analysis with the JavaScript pixel kernels instead of the WebAssembly SIMD ones (identical results):
// what the kernels buy, measured in the same rounds.
const jsKernels = new JsPixelKernels();
const withJsKernels = (): Promise<unknown> => analyse(undefined, jsKernels);
// (e) the same analysis keeping the thumbnail's dark / light verdicts (no full-resolution decodes): what the exact
// CleanVision verdicts cost, measured in the same rounds.
const thumbnailVerdicts = (): Promise<unknown> => analyse(undefined, undefined, false);
const rounds = Number(process.env.NATIX_BENCH_ROUNDS ?? 7);
type Pass = 'a' | 'b' | 'c' | 'd' | 'e';
const all: Record<Pass, () => Promise<unknown>> = {a: bare, b: full, c: mainThread, d: withJsKernels, e: thumbnailVerdicts};
const chosen = [...new Set(['a', 'b', ...(process.env.NATIX_BENCH_PASSES ?? 'abcde')])].filter((p): p is Pass => p in all);
await bare(); // warm the page cache and libvips
const runs: Array<Partial<Record<Pass, Timing>>> = [];
for (let r = 0; r < rounds; r++) {
  // Rotate the order (a b c d, b c d a, ...) so slow phases of a shared machine hit every pass alike.
  const order = [...chosen.slice(r % chosen.length), ...chosen.slice(0, r % chosen.length)];
  const round: Partial<Record<Pass, Timing>> = {};
  for (const name of order) round[name] = await timed(all[name]);
  runs.push(round);
  console.log(`  round ${r + 1}/${rounds}: ${chosen.map((p) => `${p} ${round[p]!.seconds.toFixed(2)} s / ${round[p]!.cpuMsPerImage.toFixed(2)} CPU ms`).join(', ')}; b/a ${(round.b!.seconds / round.a!.seconds).toFixed(3)} wall, ${(round.b!.cpuMsPerImage / round.a!.cpuMsPerImage).toFixed(3)} CPU`);
}
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
/** Median [min-max] of a per-round quantity. */
const spread = (f: (r: Partial<Record<Pass, Timing>>) => number): string => {
  const xs = runs.map(f);
  return `${median(xs).toFixed(3)} [${Math.min(...xs).toFixed(3)}-${Math.max(...xs).toFixed(3)}]`;
};
const seconds = (p: Pass): number => median(runs.map((r) => r[p]!.seconds));
const cpu = (p: Pass): number => median(runs.map((r) => r[p]!.cpuMsPerImage));
const byThread = (p: Pass): string => {
  if (!runs[0]![p]!.threads) return '';
  const group = (g: keyof ThreadGroups): string => median(runs.map((r) => r[p]!.threads![g])).toFixed(2);
  return ` (main thread ${group('main')}, libvips ${group('libvips')}, libuv and V8 ${group('other')})`;
};
const gcs = (p: Pass): string => `${median(runs.map((r) => r[p]!.majorGcs))} major GCs (${median(runs.map((r) => r[p]!.majorGcMs)).toFixed(0)} ms of pauses), ${median(runs.map((r) => r[p]!.faultsPerImage)).toFixed(0)} minor page faults/image`;
const wallRatio = (p: Pass, q: Pass = 'a'): string => spread((r) => r[p]!.seconds / r[q]!.seconds);
const cpuRatio = (p: Pass, q: Pass = 'a'): string => spread((r) => r[p]!.cpuMsPerImage / r[q]!.cpuMsPerImage);

// The JavaScript / WebAssembly share of (b): per-image properties on already-decoded buffers (warm, 3 rounds, best kept).
const {computeProperties, PropertiesScratch} = await import('../src/lib/quality/properties.js');
const sampleBuffers = await Promise.all(files.slice(0, 200).map((f) => decodeImage(f, {maxSide: 256})));
const propertiesMs = (scratch: InstanceType<typeof PropertiesScratch>): number => {
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const t = performance.now();
    for (const d of sampleBuffers) computeProperties(d, scratch);
    best = Math.min(best, (performance.now() - t) / sampleBuffers.length);
  }
  return best;
};
const propsMs = propertiesMs(new PropertiesScratch());
const propsJsMs = propertiesMs(new PropertiesScratch(jsKernels));

console.log(`\n${files.length} JPEGs of 1920x1080, ${os.availableParallelism()} cores, concurrency ${concurrency}, ${rounds} interleaved rounds (medians; per-round ratios as median [min-max]), load average ${os.loadavg()[0]!.toFixed(1)}, pixel kernels ${defaultPixelKernels().kind}`);
console.log(`  (a) bare decode at 256 px : ${(files.length / seconds('a')).toFixed(1)} images/s, ${cpu('a').toFixed(2)} CPU ms/image${byThread('a')}, ${gcs('a')}`);
console.log(`  (b) validate-data         : ${(files.length / seconds('b')).toFixed(1)} images/s, ${cpu('b').toFixed(2)} CPU ms/image${byThread('b')}, ${gcs('b')}, ${findings} findings`);
console.log(`  ratio b/a, wall time      : ${wallRatio('b')}  (goal <= 1.15)`);
console.log(`  ratio b/a, CPU per image  : ${cpuRatio('b')}`);
if (chosen.includes('c')) console.log(`  (c) the same with pixelWorkers ${otherWorkers} (default here ${defaultPixelWorkers()}): ${(files.length / seconds('c')).toFixed(1)} images/s, ${cpu('c').toFixed(2)} CPU ms/image, ratio c/a wall ${wallRatio('c')}, CPU ${cpuRatio('c')}`);
if (chosen.includes('d')) console.log(`  (d) the same with the JavaScript pixel kernels: ${(files.length / seconds('d')).toFixed(1)} images/s, ${cpu('d').toFixed(2)} CPU ms/image, ratio d/a wall ${wallRatio('d')}, CPU ${cpuRatio('d')}; b/d (what the WebAssembly kernels save) wall ${wallRatio('b', 'd')}, CPU ${cpuRatio('b', 'd')}`);
if (chosen.includes('e')) console.log(`  (e) the same with --no-exact-brightness: ${(files.length / seconds('e')).toFixed(1)} images/s, ${cpu('e').toFixed(2)} CPU ms/image${byThread('e')}, ${gcs('e')}, ratio e/a wall ${wallRatio('e')}, CPU ${cpuRatio('e')}; b/e (what the exact verdicts cost) wall ${wallRatio('b', 'e')}, CPU ${cpuRatio('b', 'e')}`);
console.log(`  per-image properties      : ${propsMs.toFixed(3)} ms (${defaultPixelKernels().kind}), ${propsJsMs.toFixed(3)} ms (js) on ${sampleBuffers[0]!.width}x${sampleBuffers[0]!.height} buffers`);
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
