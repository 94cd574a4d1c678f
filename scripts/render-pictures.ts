/**
 * Renders every picture natix writes - training curves, the bench plot (latency histogram + confusion matrix) and
 * validate-data's HTML report - and screenshots each in headless Chromium, so a person can LOOK at them.
 *
 *   npx tsx scripts/render-pictures.ts [OUT_DIR]     (default .cache/pictures; needs chromium on PATH or CHROMIUM)
 *
 * The inputs are made up on purpose to hit the cases that used to draw badly: a negative validation MCC, a loss far
 * from 0, 12 epochs, a long latency tail, findings with labels and splits.
 */
import {execFileSync} from 'node:child_process';
import {copyFile, mkdir, readdir, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import sharp from 'sharp';
import {benchPlotSvg} from '../src/lib/report/plot.js';
import {curvesSvg} from '../src/lib/train/history.js';
import {SeededRandom} from '../src/lib/util/random.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.resolve(process.argv[2] ?? path.join(root, '.cache', 'pictures'));
const chromium = process.env.CHROMIUM ?? 'chromium';
await mkdir(out, {recursive: true});

function screenshot(page: string, png: string, width: number, height: number): void {
  execFileSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--window-size=${width},${height}`, `--screenshot=${png}`, `file://${page}`], {stdio: 'ignore', timeout: 120_000});
  console.log(png);
}

// Training curves: 12 epochs, loss between 0.9 and 0.35, validation MCC negative at first.
const history = Array.from({length: 12}, (_, i) => ({
  epoch: i + 1,
  lr: 0.001,
  loss: 0.35 + 0.55 * Math.exp(-i / 3),
  accuracy: 0.5 + 0.035 * i,
  val_loss: 0.45 + 0.5 * Math.exp(-i / 4) + (i > 8 ? 0.02 * (i - 8) : 0),
  val_accuracy: 0.45 + 0.03 * i,
  val_mcc: -0.25 + 0.07 * i,
  val_precision: 0.5,
  val_recall: 0.5,
  seconds: 3,
}));
await writeFile(path.join(out, 'curves.svg'), curvesSvg(history, 'demo-run (tiny-cnn, wasm)'));
screenshot(path.join(out, 'curves.svg'), path.join(out, 'curves.png'), 840, 340);

// Bench plot: 700 latencies with a long tail.
const rng = new SeededRandom(3);
const latencies = Float64Array.from({length: 700}, () => Math.exp(2.3 + 0.35 * rng.normal()) + (rng.next() < 0.05 ? 40 * rng.next() : 0));
const sorted = [...latencies].sort((a, b) => a - b);
await writeFile(path.join(out, 'bench.svg'), benchPlotSvg({title: 'natix bench - FAIL - MCC 0.6421, p95 25.10 ms', latencies, p50: sorted[350]!, p95: sorted[665]!, confusion: {tp: 34, fp: 3, tn: 47, fn: 16}}));
screenshot(path.join(out, 'bench.svg'), path.join(out, 'bench.png'), 820, 360);

// validate-data's HTML report on a few sample images plus a dark copy, an exact copy across splits, and a tiny one.
const data = path.join(out, 'report-data');
const sample = path.join(root, 'datasets', 'sample');
for (const [split, cls] of [['train', 'roadwork'], ['train', 'none'], ['test', 'roadwork']] as const) {
  await mkdir(path.join(data, split, cls), {recursive: true});
  for (const f of (await readdir(path.join(sample, split, cls))).slice(0, 3)) await copyFile(path.join(sample, split, cls, f), path.join(data, split, cls, f));
}
const first = (await readdir(path.join(data, 'train', 'roadwork')))[0]!;
await sharp(path.join(data, 'train', 'roadwork', first)).linear(0.12, 0).jpeg().toFile(path.join(data, 'train', 'none', 'dark.jpg'));
await copyFile(path.join(data, 'train', 'roadwork', first), path.join(data, 'test', 'roadwork', 'copy.jpg'));
await sharp(path.join(data, 'train', 'roadwork', first)).resize(8, 6).jpeg().toFile(path.join(data, 'train', 'none', 'tiny.jpg'));
const report = path.join(out, 'report.html');
try {
  execFileSync(process.execPath, [path.join(root, 'bin', 'run.js'), 'validate-data', data, '--report', report], {stdio: 'ignore'});
} catch {
  // validate-data exits 1 when it finds errors: expected here.
}
screenshot(report, path.join(out, 'report.png'), 1100, 1400);
