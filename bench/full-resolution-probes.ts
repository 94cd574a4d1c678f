/**
 * The cheaper ways to CleanVision's exact dark verdict that were measured and not taken (docs/validate-data.md,
 * "Speed and memory"), on the images of the validate-data bench whose thumbnail cannot settle the verdict:
 *  (1) decode time of the whole image vs a top band of 20% of the rows (libvips stops a sequential decode early),
 *      and how many rows from the top the "not dark" count needs (what a top band would have to cover);
 *  (2) a lower bound from the green channel alone (sqrt(0.691) G <= brightness): how many "not dark" images it settles;
 *  (3) a mask built by libvips' float operations (recomb + linear), per image;
 *  (4) the start of a worker thread that loads sharp (what moving the full decodes to a worker would cost first);
 *  (5) the floor of the exact verdicts: per such image, the full-size decode, sharp's bare raw() decode and the verdict
 *      on the decoded pixels, against the 256 px decode every image gets (docs/validate-data.md: b/a >= e/a + share x
 *      full decode / a);
 *  (6) the share of 16-pixel groups that countKeys' screen skips on these images;
 *  (7) how many are sent only by the margin (thumbnail p99 at or above the threshold), and how far the full-resolution
 *      p99 lies from the thumbnail's;
 *  (8) decodes at 1/2 and 1/4 scale (libjpeg-turbo's scaled IDCT), against the whole decode of line 1.
 * Needs the bench's images: run `npm run bench:validate-data` once.
 *
 *   npx tsx bench/full-resolution-probes.ts
 */
import {existsSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {Worker} from 'node:worker_threads';
import fg from 'fast-glob';
import sharp from 'sharp';
import {decodeImage} from '../src/lib/image/decode.js';
import {screenBytes} from '../src/lib/quality/pixel-kernels.js';
import {computeProperties, exactBrightnessPercentiles, fullResolutionBrightness, needsExactBrightness, PropertiesScratch, type ImageProperties} from '../src/lib/quality/properties.js';
import {DEFAULT_THRESHOLDS} from '../src/lib/quality/validate.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, 'bench', '.cache', 'vd-1080-1000');
if (!existsSync(path.join(dir, '.complete'))) throw new Error(`${dir} is missing: run npm run bench:validate-data first`);
const files = (await fg('**/*.jpg', {cwd: dir, absolute: true})).sort();
const {dark, light} = DEFAULT_THRESHOLDS;
const keyAbove = Math.ceil(1000 * (255 * (dark + 1e-9)) ** 2) + 1; // as settleBrightnessByCount
const scratch = new PropertiesScratch();
const cpuMs = async (fn: () => Promise<unknown>): Promise<number> => {
  const c = process.cpuUsage();
  await fn();
  const u = process.cpuUsage(c);
  return (u.user + u.system) / 1000;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const range = (xs: number[], digits = 1): string => `median ${median(xs).toFixed(digits)} [${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}]`;

const uncertain: string[] = [];
const thumbnails: ImageProperties[] = [];
for (const f of files) {
  const thumbnail = computeProperties(await decodeImage(f, {maxSide: 256}), scratch);
  if (!needsExactBrightness(thumbnail, dark, light)) continue;
  uncertain.push(f);
  thumbnails.push(thumbnail);
}

const opts = {failOn: 'none' as const, sequentialRead: true};
const fullMs: number[] = [];
const halfMs: number[] = [];
const quarterMs: number[] = [];
const bandMs: number[] = [];
const maskMs: number[] = [];
const rowsNeeded: number[] = [];
let notDark = 0;
let greenSettles = 0;
const greenAbove = Math.floor((255 * dark + 0.01) / Math.sqrt(0.691)); // G above this: brightness > dark, margin 0.01
const fullPixels: Uint8Array[] = [];
const [screenHigh] = screenBytes(keyAbove, -1);
const screened: number[] = [];
const p99Gain: number[] = [];
for (const [k, f] of uncertain.entries()) {
  fullMs.push(await cpuMs(() => sharp(f, opts).raw().toBuffer()));
  halfMs.push(await cpuMs(() => sharp(f, opts).resize(960, 960, {fit: 'inside', fastShrinkOnLoad: true}).raw().toBuffer()));
  quarterMs.push(await cpuMs(() => sharp(f, opts).resize(480, 480, {fit: 'inside', fastShrinkOnLoad: true}).raw().toBuffer()));
  bandMs.push(await cpuMs(async () => {
    const {width, height} = await sharp(f).metadata();
    return sharp(f, opts).extract({left: 0, top: 0, width: width!, height: Math.round(height! * 0.2)}).raw().toBuffer();
  }));
  const w: [number, number, number] = [0.241, 0.691, 0.068];
  maskMs.push(await cpuMs(() => sharp(f, opts).recomb([w, w, w]).linear(1e4, -1e4 * (255 * dark + 0.01)).extractChannel(0).raw().toBuffer()));
  const {data, width, height} = await decodeImage(f, {strict: false});
  fullPixels.push(data);
  // (6) The share of 16-pixel groups countKeys' screen skips (every byte <= the screen byte of the dark threshold).
  let groups = 0;
  let skipped = 0;
  for (let i = 0; i + 48 <= data.length; i += 48, groups++) if (data.subarray(i, i + 48).every((v) => v <= screenHigh)) skipped++;
  screened.push((100 * skipped) / groups);
  // (7) How far the full-resolution 99th percentile lies from the thumbnail's.
  p99Gain.push(exactBrightnessPercentiles(data, [99])[0]! - thumbnails[k]!.brightnessP99);
  const n = width * height;
  const need = n - Math.floor(0.99 * (n - 1));
  let bright = 0;
  let green = 0;
  let row = -1;
  for (let y = 0; y < height; y++) {
    for (let i = y * width * 3, end = i + width * 3; i < end; i += 3) {
      if (241 * data[i]! ** 2 + 691 * data[i + 1]! ** 2 + 68 * data[i + 2]! ** 2 >= keyAbove) bright++;
      if (data[i + 1]! > greenAbove) green++;
    }
    if (row < 0 && bright >= need) row = y;
  }
  if (bright < need) continue; // dark: the exact percentiles are needed whatever the shortcut
  notDark++;
  rowsNeeded.push((row + 1) / height);
  if (green >= need) greenSettles++;
}

const workerStart = await cpuMs(async () => {
  const worker = new Worker(`import('sharp').then(() => require('node:worker_threads').parentPort.postMessage(1))`, {eval: true});
  await new Promise((resolve) => worker.once('message', resolve));
  await worker.terminate();
});

// (5) What validate-data pays per image that needs the exact verdict, one image after another (no other decode running),
// median of 3 passes over all of them: its full-size decode (decodeImage), sharp's bare raw() decode, the verdict on the
// decoded pixels, and the 256 px decode every image gets (the bench's pass a, per image).
const passMs = async (fn: (f: string, k: number) => unknown): Promise<number> => {
  const passes: number[] = [];
  for (let round = 0; round < 3; round++) passes.push((await cpuMs(async () => {
    for (let k = 0; k < uncertain.length; k++) await fn(uncertain[k]!, k);
  })) / uncertain.length);
  return median(passes);
};
const floor = {
  decodeImage: await passMs((f) => decodeImage(f, {strict: false})),
  raw: await passMs((f) => sharp(f, opts).raw().toBuffer()),
  verdict: await passMs((_, k) => fullResolutionBrightness(fullPixels[k]!, thumbnails[k]!, dark, light)),
  thumbnail: await passMs((f) => decodeImage(f, {maxSide: 256})),
};

console.log(`${uncertain.length} of ${files.length} images need a full-resolution verdict; ${notDark} of them are not dark`);
console.log(`(1) CPU ms per image: whole decode ${range(fullMs)}, top 20% of the rows ${range(bandMs)}; rows from the top the "not dark" count needs: ${range(rowsNeeded.map((r) => r * 100), 0)} %`);
console.log(`(2) the green channel alone settles ${greenSettles} of the ${notDark} "not dark" images`);
console.log(`(3) recomb + linear mask: ${range(maskMs)} CPU ms per image`);
console.log(`(4) a worker thread that loads sharp: ${workerStart.toFixed(0)} CPU ms to its first message`);
const byMargin = thumbnails.filter((t) => t.brightnessP99 >= dark).length;
console.log(`(5) CPU ms per image, one after another: decodeImage at full size ${floor.decodeImage.toFixed(2)} (sharp raw() alone ${floor.raw.toFixed(2)}), the verdict ${floor.verdict.toFixed(2)}; the 256 px decode ${floor.thumbnail.toFixed(2)}`);
console.log(`(6) countKeys' screen (every byte <= ${screenHigh}) skips ${range(screened, 0)} % of the 16-pixel groups`);
console.log(`(7) ${byMargin} of the ${uncertain.length} are sent only by the margin (thumbnail p99 >= ${dark}); full-resolution p99 minus the thumbnail's: ${range(p99Gain, 3)}`);
console.log(`(8) scaled decodes, CPU ms per image: 1/2 ${range(halfMs)}, 1/4 ${range(quarterMs)} (whole: line 1)`);
