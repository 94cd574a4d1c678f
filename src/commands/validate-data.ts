import {mkdir} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {Args, Flags} from '@oclif/core';
import {NatixCommand} from '../lib/cli/base-command.js';
import {LIMITS} from '../lib/cli/numeric-flags.js';
import {validateDataConfigSchema, type CheckId, type ValidateDataConfig} from '../lib/config/schemas/validate-data.js';
import type {Progress} from '../lib/cli/ui.js';
import {parseClassMapFlag} from '../lib/data/labels.js';
import {DATASET_FORMATS, openDataset, type FormatChoice} from '../lib/data/open.js';
import {assertOutsideDataset} from '../lib/data/safe-path.js';
import type {DataIssue} from '../lib/data/sample.js';
import {errorMessage, ExitCode, NatixError} from '../lib/errors.js';
import {quarantineFlagged} from '../lib/quality/quarantine.js';
import {validateHtmlReport} from '../lib/quality/report-html.js';
import {shardFileName, writeShardFile} from '../lib/quality/shard.js';
import {parseShard, type Shard} from '../lib/quality/shard-key.js';
import {summariseFindings, validationJson, validationText, type FailOn} from '../lib/quality/summary.js';
import {DEFAULT_THRESHOLDS, validateDataset, type Severity} from '../lib/quality/validate.js';
import {writeFileAtomic} from '../lib/util/fs.js';

export default class ValidateData extends NatixCommand<typeof ValidateData> {
  static summary = 'Find every problem in a dataset before training: unreadable files, quality issues, duplicates, leaks, label errors.';
  static description = `Reads class folders, manifests (CSV/JSON lines), NATIX-style parquet shards, YOLO or COCO datasets, decodes each image
ONCE at reduced size, and reports findings {check, severity, path, message} for: unreadable, extension-mismatch,
too-small, too-large, dark, light, blurry, low-information, grayscale, odd-aspect-ratio, odd-size, exact-duplicate,
near-duplicate, split-leak, class-imbalance, single-class, split-ratio, label-missing, label-malformed, label-class-unknown,
box-out-of-bounds, box-degenerate, duplicate-box, label-description-mismatch and path-escape. The dataset is never
written to. Exit 1 when a finding is at or above --fail-on.

Too big for one machine: run \`--shard i/n\` for i = 1..n (anywhere: a CI matrix, a Kubernetes Indexed Job), each
writing its findings and fingerprints to a file, then \`natix validate-data merge FILES...\` for the one report.`;

  static examples = [
    '<%= config.bin %> validate-data datasets/sample',
    '<%= config.bin %> validate-data data/roadwork --format parquet --report report.html',
    '<%= config.bin %> validate-data data/yolo --fail-on warning --json > findings.json',
    '<%= config.bin %> validate-data data/raw --quarantine flagged/ --config validate.yaml',
    '<%= config.bin %> validate-data data/natix --shard 2/8 --shard-output shards/',
  ];

  static args = {dataset: Args.string({description: 'Dataset folder or file.', required: true})};

  static configSchema = validateDataConfigSchema;

  static flags = {
    format: Flags.option({description: 'Dataset layout.', options: DATASET_FORMATS, default: 'auto' as FormatChoice})(),
    'fail-on': Flags.option({description: 'Exit 1 when any finding is at or above this severity.', options: ['error', 'warning', 'never'] as const, default: 'error'})(),
    hamming: Flags.integer({description: 'Near-duplicate radius: perceptual-hash Hamming distance (0-32); candidates must also match in colour.', default: 8, min: 0, max: 32}),
    report: Flags.string({description: 'Write a self-contained HTML report with thumbnails of flagged images.'}),
    quarantine: Flags.string({description: 'COPY flagged files here (never moves), with quarantine.json saying why.'}),
    concurrency: Flags.integer({description: 'Images decoded at once (default 4 x cores: keeps libvips busy while JavaScript computes statistics).', min: 1, max: LIMITS.concurrency}),
    'class-map': Flags.string({description: 'Class name -> label overrides, e.g. "cones=1,empty=0".'}),
    'max-findings': Flags.integer({description: 'Findings listed in --json (the summary counts them all).', default: 10_000, min: 1, max: LIMITS.count}),
    'exact-brightness': Flags.boolean({
      description:
        "Decide dark / light as CleanVision does, on every full-resolution pixel, for the images whose thumbnail cannot settle it (4% of the bench's synthetic 1080p scenes, more on night footage; one more full decode each). --no-exact-brightness keeps the thumbnail's verdict: faster, and it may flag images dark whose small highlights CleanVision would count.",
      default: true,
      allowNo: true,
    }),
    shard: Flags.string({description: 'Check only shard i of n (1-based, e.g. 2/8; by a stable hash of each sample id) and write its findings and fingerprints for `validate-data merge`.'}),
    'shard-output': Flags.string({description: 'With --shard: the file to write, or a folder for validate-shard-<i>-of-<n>.jsonl (default: the current folder).'}),
  };

  async run(): Promise<Record<string, unknown>> {
    const {flags} = this;
    const config = this.fileConfig as ValidateDataConfig;
    let classMap: Record<string, number> | undefined;
    try {
      classMap = flags['class-map'] ? parseClassMapFlag(flags['class-map']) : undefined;
    } catch (error) {
      throw new NatixError(errorMessage(error), {code: 'USAGE', exitCode: ExitCode.Usage});
    }
    let shard: Shard | undefined;
    if (flags.shard) {
      const parsed = parseShard(flags.shard);
      if (typeof parsed === 'string') throw new NatixError(parsed, {code: 'USAGE', exitCode: ExitCode.Usage});
      shard = parsed;
      if (flags.report || flags.quarantine) throw new NatixError('--report and --quarantine belong to `natix validate-data merge` when sharding (a shard sees only its images)', {code: 'USAGE', exitCode: ExitCode.Usage});
    } else if (flags['shard-output']) {
      throw new NatixError('--shard-output needs --shard i/n', {code: 'USAGE', exitCode: ExitCode.Usage});
    }
    const issues: DataIssue[] = [];
    const dataset = await openDataset(this.args.dataset, flags.format, {onIssue: (i) => issues.push(i), classMap});
    this.info(`Reading ${dataset.root} as ${dataset.format} (${dataset.detectedBy})${shard ? `, shard ${shard.index}/${shard.count}` : ''}`);
    // Every output is checked before any work: resolved through symlinks, none may land inside the dataset.
    const quarantineDir = flags.quarantine ? assertOutsideDataset(flags.quarantine, dataset.root, '--quarantine') : undefined;
    const reportFile = flags.report ? assertOutsideDataset(flags.report, dataset.root, '--report') : undefined;
    let shardFile: string | undefined;
    if (shard) {
      shardFile = path.resolve(flags['shard-output'] ?? '.');
      if (!/\.jsonl$/i.test(shardFile)) shardFile = path.join(shardFile, shardFileName(shard));
      assertOutsideDataset(shardFile, dataset.root, '--shard-output');
    }
    const progress = this.ui.progress('decode', 0);
    let last = 0;
    let search: Progress | undefined;
    let searched = 0;
    const options = {
      thresholds: {...DEFAULT_THRESHOLDS, ...(config.thresholds ?? {})},
      severities: (config.severities ?? {}) as Partial<Record<CheckId, Severity | 'off'>>,
      hamming: flags.hamming,
      expectedSplits: config['expected-splits'],
      exactBrightness: flags['exact-brightness'],
    };
    const result = await validateDataset(dataset, issues, {
      ...options,
      concurrency: flags.concurrency ?? os.availableParallelism() * 4,
      maxSide: 256,
      keepBytes: Boolean(flags.report || flags.quarantine),
      shard,
      onImage: (done) => {
        progress.setTotal(done + 1);
        progress.increment(done - last);
        last = done;
      },
      onSearch: (done, total) => {
        if (!search) {
          progress.stop();
          search = this.ui.progress('near-duplicate search', total);
        }
        search.increment(done - searched);
        searched = done;
      },
    });
    progress.stop();
    search?.stop();
    const info = {root: dataset.root, format: dataset.format, detectedBy: dataset.detectedBy};

    if (shard && shardFile) {
      const file = shardFile;
      await mkdir(path.dirname(file), {recursive: true});
      await writeShardFile(file, {shard, dataset: info, options, images: result.images.length, seconds: result.seconds}, result);
      this.log(`shard ${shard.index}/${shard.count}: ${result.images.length} images in ${result.seconds.toFixed(2)} s, ${result.findings.length} per-image findings -> ${file}`);
      this.log(`When all ${shard.count} shards are done: natix validate-data merge <the ${shard.count} files>`);
      return {shard, dataset: {...info, images: result.images.length}, findings: result.findings.length, output: file, seconds: Math.round(result.seconds * 1000) / 1000};
    }

    const failOn = flags['fail-on'] as FailOn;
    let report: string | undefined;
    if (reportFile) {
      const {summary} = summariseFindings(result.findings, failOn);
      report = reportFile;
      await writeFileAtomic(report, await validateHtmlReport({title: 'natix validate-data', root: dataset.root, format: dataset.format, images: result.images.length, findings: result.findings, summary, records: result.images}));
    }
    let quarantine: string | undefined;
    if (quarantineDir) quarantine = (await quarantineFlagged(quarantineDir, result.findings, result.images, dataset.root)).manifest;
    const json = validationJson(info, result, failOn, flags['max-findings'], {...(report ? {report} : {}), ...(quarantine ? {quarantine} : {})});
    if (json.verdict === 'fail') this.failCheck();
    this.log(validationText(info, result, failOn, this.ui.color));
    if (report) this.log(`HTML report: ${report}`);
    if (quarantine) this.log(`Flagged files copied; manifest: ${quarantine}`);
    return json;
  }
}
