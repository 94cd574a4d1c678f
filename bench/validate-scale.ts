/**
 * validate-data at 1,000 / 10,000 / 100,000 images: is the time per image flat, and the memory ~1 KB per image?
 *
 * Decoding 100,000 images takes the same time per image as decoding 1,000 (bounded concurrency, a fixed ~1 KB record
 * per image): what can grow with n is the cross-image phase (duplicates, leaks, balance) and the fingerprints kept.
 * So this bench
 *  (1) measures the per-image analysis (reduced decode + properties, CPU ms per image) on the bundled sample, and
 *  (2) runs the real cross-image checks (`crossImageChecks`, what validate-data and merge run) on n fingerprints
 *      derived from the sample's real ones (each copy: 6-16 random pHash bits flipped and noise on the grey
 *      signature, so hashes cluster the way real road scenes do, plus one planted near duplicate every 200 images), in a
 *      child process per n, reporting its time, candidates per query, pairs, peak RSS and heap bytes per image: all
 *      that is kept per image (records with their paths + fingerprints), in brackets the fingerprint table alone.
 * Prints ms/image = analysis + cross-image / n for each n and the 100k / 1k ratio (goal <= 1.2).
 *
 *   npx tsx bench/validate-scale.ts            (all sizes)      npx tsx bench/validate-scale.ts 1000 10000
 */
import {spawnSync} from 'node:child_process';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import fg from 'fast-glob';
import {decodeImage} from '../src/lib/image/decode.js';
import {FingerprintTable} from '../src/lib/quality/fingerprints.js';
import {computeProperties} from '../src/lib/quality/properties.js';
import {crossImageChecks, DEFAULT_THRESHOLDS, type Finding, type ImageRecord} from '../src/lib/quality/validate.js';
import {SeededRandom} from '../src/lib/util/random.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SAMPLE = path.join(root, 'datasets', 'sample');

async function samplePool(): Promise<Array<{phash: bigint; signature: Int8Array; meanBrightness: number}>> {
  const files = (await fg('*/*/*.jpg', {cwd: SAMPLE, absolute: true})).sort();
  return Promise.all(files.map(async (f) => computeProperties(await decodeImage(f, {maxSide: 256}))));
}

async function child(n: number): Promise<void> {
  const pool = await samplePool();
  const rng = new SeededRandom(`scale:${n}`);
  global.gc?.();
  const heapBefore = process.memoryUsage();
  const images: ImageRecord[] = [];
  const fingerprints = new FingerprintTable();
  for (let i = 0; i < n; i++) {
    const planted = i % 200 === 199;
    const base = planted ? fingerprints.get(images[i - 1 - rng.int(Math.min(i, 50))]!.fingerprint!) : pool[rng.int(pool.length)]!;
    let phash = base.phash;
    for (let k = planted ? rng.int(3) : 6 + rng.int(11); k > 0; k--) phash ^= 1n << BigInt(rng.int(64));
    const signature = Int8Array.from(base.signature, (v) => Math.max(-127, Math.min(127, v + Math.round(rng.normal(0, planted ? 2 : 8)))));
    const split = ['train', 'train', 'train', 'train', 'train', 'train', 'train', 'train', 'val', 'test'][i % 10]!;
    const fingerprint = fingerprints.add({width: 1920, height: 1080, meanBrightness: base.meanBrightness, phash, signature, pixelKey: i.toString(16).padStart(16, '0')});
    images.push({ordinal: i, path: `${split}/${i % 2 ? 'roadwork' : 'none'}/img-${String(i).padStart(7, '0')}.jpg`, split, label: i % 2, fingerprint});
  }
  global.gc?.();
  const heapAfter = process.memoryUsage();
  const findings: Finding[] = [];
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const search = await crossImageChecks(images, fingerprints, {thresholds: DEFAULT_THRESHOLDS, severities: {}, hamming: 8}, (f) => findings.push({...f, severity: 'warning'}));
  const ms = performance.now() - t0;
  const used = process.cpuUsage(cpu);
  // Everything kept per image (records with their path strings + the fingerprint table), and the table alone.
  const bytes = (heapAfter.heapUsed + heapAfter.arrayBuffers - heapBefore.heapUsed - heapBefore.arrayBuffers) / n;
  process.stdout.write(JSON.stringify({n, ms, cpuMs: (used.user + used.system) / 1000, search, findings: findings.length, bytesPerImage: bytes, fingerprintBytesPerImage: fingerprints.bytes / n, maxRssMb: process.resourceUsage().maxRSS / 1024}));
}

if (process.argv[2] === '--child') {
  await child(Number(process.argv[3]));
} else {
  const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0);
  const ns = sizes.length ? sizes : [1000, 10_000, 100_000];
  // (1) Per-image analysis on real files (CPU time: less sensitive to other load than wall time).
  const files = (await fg('*/*/*.jpg', {cwd: SAMPLE, absolute: true})).sort();
  for (const f of files.slice(0, 50)) computeProperties(await decodeImage(f, {maxSide: 256})); // warm
  const cpu = process.cpuUsage();
  for (const f of files) computeProperties(await decodeImage(f, {maxSide: 256}));
  const used = process.cpuUsage(cpu);
  const analysisMs = (used.user + used.system) / 1000 / files.length;
  console.log(`per-image analysis (decode 320x180 -> 256 px + properties): ${analysisMs.toFixed(3)} CPU ms/image over ${files.length} sample images`);
  console.log('\n     n   cross-image   cand./query  probes/query   pairs  findings  bytes/image (fingerprints)  peak RSS   total ms/image');
  const rows: Array<{n: number; perImage: number}> = [];
  for (const n of ns) {
    const run = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', String(n)], {cwd: root, encoding: 'utf8', maxBuffer: 1 << 24});
    if (run.status !== 0) throw new Error(run.stderr);
    const r = JSON.parse(run.stdout) as {n: number; ms: number; cpuMs: number; search: {candidatesPerQuery: number; probesPerQuery: number; pairs: number; strategy: string}; findings: number; bytesPerImage: number; fingerprintBytesPerImage: number; maxRssMb: number};
    const perImage = analysisMs + r.cpuMs / n;
    rows.push({n, perImage});
    console.log(`${String(n).padStart(7)} ${(r.cpuMs / 1000).toFixed(2).padStart(9)} s ${r.search.candidatesPerQuery.toFixed(1).padStart(12)} ${String(r.search.probesPerQuery).padStart(13)} ${String(r.search.pairs).padStart(7)} ${String(r.findings).padStart(9)} ${r.bytesPerImage.toFixed(0).padStart(12)} (${r.fingerprintBytesPerImage.toFixed(0).padStart(5)})    ${r.maxRssMb.toFixed(0).padStart(6)} MB ${perImage.toFixed(4).padStart(12)}   (${r.search.strategy})`);
  }
  if (rows.length > 1) console.log(`\nms/image ${rows.at(-1)!.n} vs ${rows[0]!.n}: ${(rows.at(-1)!.perImage / rows[0]!.perImage).toFixed(3)}x (goal <= 1.2); cross-image CPU time, not wall time (the machine may be shared)`);
}
