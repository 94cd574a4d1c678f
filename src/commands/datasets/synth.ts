import path from 'node:path';
import {Flags} from '@oclif/core';
import {NatixCommand} from '../../lib/cli/base-command.js';
import {LIMITS} from '../../lib/cli/numeric-flags.js';
import {formatTable} from '../../lib/cli/ui.js';
import {ExitCode, NatixError} from '../../lib/errors.js';
import {SYNTH_FORMATS, synthesizeDataset, type SynthFormat, type SynthSummary} from '../../lib/synth/dataset.js';

function parseSize(text: string): [number, number] {
  const m = /^(\d+)x(\d+)$/i.exec(text.trim());
  if (!m) throw new NatixError(`--size must be WxH (e.g. 640x360), got "${text}"`, {code: 'USAGE'});
  const w = Number(m[1]);
  const h = Number(m[2]);
  if (w < 32 || h < 32 || w > 4096 || h > 4096) throw new NatixError(`--size sides must be between 32 and 4096, got ${text}`, {code: 'USAGE'});
  return [w, h];
}

function parseSplits(text: string): [number, number, number] {
  const parts = text.split(',').map(Number);
  if (parts.length !== 3 || parts.some((p) => !Number.isFinite(p) || p < 0) || Math.abs(parts.reduce((a, b) => a + b, 0) - 1) > 1e-6) {
    throw new NatixError(`--splits must be three non-negative fractions summing to 1 (train,val,test), got "${text}"`, {code: 'USAGE'});
  }
  return parts as [number, number, number];
}

function parseQuality(text: string): [number, number] {
  const parts = text.split('-').map(Number);
  const [lo, hi] = parts.length === 1 ? [parts[0]!, parts[0]!] : [parts[0]!, parts[1]!];
  if (parts.length > 2 || !Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1 || hi > 100 || lo > hi) {
    throw new NatixError(`--quality must be an integer 1-100 or a range like 60-95, got "${text}"`, {code: 'USAGE'});
  }
  return [lo, hi];
}

export default class DatasetsSynth extends NatixCommand<typeof DatasetsSynth> {
  static summary = 'Generate a labelled synthetic roadwork dataset (road scenes, roadwork objects, hard negatives).';
  static description = `Procedural road scenes in perspective - sky, road, lane markings, roadside, traffic - by day, dusk and night,
in clear weather, rain and fog, with camera tilt and varying JPEG quality. Positives add roadwork objects (cones,
drums, barriers, barricades, fences, signs, arrow boards, work vehicles, workers) whose boxes are known, so YOLO and
COCO outputs carry real boxes named as in the ROADWork dataset. Hard negatives (orange cars and trucks, orange
billboards, people in orange jackets) appear in both classes. The same seed gives byte-identical output.`;

  static examples = [
    '<%= config.bin %> datasets synth --out data/synth --count 1000',
    '<%= config.bin %> datasets synth --out data/yolo --format yolo --size 640x640 --seed 7',
    '<%= config.bin %> datasets synth --out data/natix --format parquet --count 5000 --frames-per-video 5',
  ];

  static flags = {
    out: Flags.string({char: 'o', description: 'Output folder (must be empty unless --overwrite).', required: true}),
    count: Flags.integer({char: 'n', description: 'Number of images.', default: 1000, min: 1, max: 1_000_000}),
    seed: Flags.integer({description: 'Random seed; the same seed gives byte-identical files.', default: 1, min: 0, max: LIMITS.seed}),
    size: Flags.string({description: 'Image size WxH.', default: '640x360'}),
    splits: Flags.string({description: 'Train,val,test fractions.', default: '0.8,0.1,0.1'}),
    'positive-ratio': Flags.string({description: 'Fraction of roadwork images (0-1).', default: '0.5'}),
    format: Flags.option({description: 'Dataset layout.', options: SYNTH_FORMATS, default: 'folder' as SynthFormat})(),
    quality: Flags.string({description: 'JPEG quality, fixed (85) or a range (60-95) drawn per image.', default: '60-95'}),
    'frames-per-video': Flags.integer({description: 'Consecutive frames per scene ("video"): near-duplicates sharing vid_id, gps and split.', default: 1, min: 1, max: 100}),
    concurrency: Flags.integer({description: 'Images rendered at once (default: 2 x cores).', min: 1, max: LIMITS.concurrency}),
    overwrite: Flags.boolean({description: 'Write into a non-empty output folder.', default: false}),
  };

  async run(): Promise<SynthSummary> {
    const {flags} = this;
    const [width, height] = parseSize(flags.size);
    const positiveRatio = Number(flags['positive-ratio']);
    if (!Number.isFinite(positiveRatio) || positiveRatio < 0 || positiveRatio > 1) {
      throw new NatixError(`--positive-ratio must be between 0 and 1, got "${flags['positive-ratio']}"`, {code: 'USAGE', exitCode: ExitCode.Usage});
    }
    const out = path.resolve(flags.out);
    const progress = this.ui.progress('synth', flags.count);
    let reported = 0;
    const summary = await synthesizeDataset({
      out,
      count: flags.count,
      seed: flags.seed,
      width,
      height,
      splits: parseSplits(flags.splits),
      positiveRatio,
      format: flags.format as SynthFormat,
      quality: parseQuality(flags.quality),
      framesPerVideo: flags['frames-per-video'],
      overwrite: flags.overwrite,
      concurrency: flags.concurrency,
      onProgress: (done) => {
        progress.increment(done - reported);
        reported = done;
      },
    });
    progress.stop();
    this.log(`Wrote ${summary.images} images (${summary.videos} scenes, ${summary.boxes} roadwork boxes) as ${summary.format} to ${summary.out}`);
    this.log(
      formatTable(
        ['split', 'roadwork', 'none'],
        Object.entries(summary.splits).map(([split, c]) => [split, c.roadwork, c.none]),
        ['left', 'right', 'right'],
      ),
    );
    this.log(`${(summary.bytes / 1e6).toFixed(2)} MB in ${summary.seconds} s (${summary.imagesPerSecond} images/s)`);
    return summary;
  }
}
