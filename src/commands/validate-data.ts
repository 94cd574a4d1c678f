import os from 'node:os';
import {Args, Flags} from '@oclif/core';
import {NatixCommand} from '../lib/cli/base-command.js';
import {LIMITS} from '../lib/cli/numeric-flags.js';
import {formatTable} from '../lib/cli/ui.js';
import {CHECK_IDS, validateDataConfigSchema, type CheckId, type ValidateDataConfig} from '../lib/config/schemas/validate-data.js';
import {parseClassMapFlag} from '../lib/data/labels.js';
import {DATASET_FORMATS, openDataset, type FormatChoice} from '../lib/data/open.js';
import {assertOutsideDataset} from '../lib/data/safe-path.js';
import type {DataIssue} from '../lib/data/sample.js';
import {errorMessage, ExitCode, NatixError} from '../lib/errors.js';
import {quarantineFlagged} from '../lib/quality/quarantine.js';
import {validateHtmlReport} from '../lib/quality/report-html.js';
import {DEFAULT_THRESHOLDS, validateDataset, type Finding, type Severity} from '../lib/quality/validate.js';
import {writeFileAtomic} from '../lib/util/fs.js';

const RANK: Record<Severity, number> = {info: 0, warning: 1, error: 2};

const ADVICE: Partial<Record<CheckId, string>> = {
  unreadable: 'remove or re-export these files; they cannot be trained on',
  'path-escape': 'fix the manifest/label paths so they stay inside the dataset folder',
  'split-leak': 'split by video / location, or drop the duplicates from one side: leaked pairs inflate validation scores',
  'exact-duplicate': 'drop the copies (they weigh those images twice)',
  'near-duplicate': 'check them side by side in --report; keep one per group or group them into one split',
  'class-imbalance': 'validators draw labels 50/50: use class weights or balanced sampling when training',
  'label-description-mismatch': 'validators skip these rows: fix the label or the scene_description',
  'too-large': 'these files were refused, not decoded: resize them or raise thresholds.too-large',
  blurry: 'inspect them in --report; drop those that are blurred beyond what the validators send',
};

export default class ValidateData extends NatixCommand<typeof ValidateData> {
  static summary = 'Find every problem in a dataset before training: unreadable files, quality issues, duplicates, leaks, label errors.';
  static description = `Reads class folders, manifests (CSV/JSON lines), NATIX-style parquet shards, YOLO or COCO datasets, decodes each image
ONCE at reduced size, and reports findings {check, severity, path, message} for: unreadable, extension-mismatch,
too-small, too-large, dark, light, blurry, low-information, grayscale, odd-aspect-ratio, odd-size, exact-duplicate,
near-duplicate, split-leak, class-imbalance, split-ratio, label-missing, label-malformed, label-class-unknown,
box-out-of-bounds, box-degenerate, duplicate-box, label-description-mismatch and path-escape. The dataset is never
written to. Exit 1 when a finding is at or above --fail-on.`;

  static examples = [
    '<%= config.bin %> validate-data datasets/sample',
    '<%= config.bin %> validate-data data/roadwork --format parquet --report report.html',
    '<%= config.bin %> validate-data data/yolo --fail-on warning --json > findings.json',
    '<%= config.bin %> validate-data data/raw --quarantine flagged/ --config validate.yaml',
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
    const issues: DataIssue[] = [];
    const dataset = await openDataset(this.args.dataset, flags.format, {onIssue: (i) => issues.push(i), classMap});
    this.info(`Reading ${dataset.root} as ${dataset.format} (${dataset.detectedBy})`);
    // Both outputs are checked before any work: resolved through symlinks, neither may land inside the dataset.
    const quarantineDir = flags.quarantine ? assertOutsideDataset(flags.quarantine, dataset.root, '--quarantine') : undefined;
    const reportFile = flags.report ? assertOutsideDataset(flags.report, dataset.root, '--report') : undefined;
    const progress = this.ui.progress('validate', 0);
    let last = 0;
    const result = await validateDataset(dataset, issues, {
      thresholds: {...DEFAULT_THRESHOLDS, ...(config.thresholds ?? {})},
      severities: (config.severities ?? {}) as Partial<Record<CheckId, Severity | 'off'>>,
      hamming: flags.hamming,
      concurrency: flags.concurrency ?? os.availableParallelism() * 4,
      maxSide: 256,
      keepBytes: Boolean(flags.report || flags.quarantine),
      expectedSplits: config['expected-splits'] ?? {train: 0.8, val: 0.1, test: 0.1},
      onImage: (done) => {
        progress.setTotal(done + 1);
        progress.increment(done - last);
        last = done;
      },
    });
    progress.stop();

    const findings = [...result.findings].sort((a, b) => RANK[b.severity] - RANK[a.severity] || a.check.localeCompare(b.check) || a.path.localeCompare(b.path));
    const summary: Record<string, {count: number; severity: Severity}> = {};
    for (const f of findings) {
      const s = (summary[f.check] ??= {count: 0, severity: f.severity});
      s.count++;
      if (RANK[f.severity] > RANK[s.severity]) s.severity = f.severity;
    }
    const failOn = flags['fail-on'];
    const failing = failOn !== 'never' && findings.some((f) => RANK[f.severity] >= RANK[failOn as Severity]);
    if (failing) this.failCheck();

    let report: string | undefined;
    if (reportFile) {
      report = reportFile;
      await writeFileAtomic(report, await validateHtmlReport({title: 'natix validate-data', root: dataset.root, format: dataset.format, images: result.images.length, findings, summary, records: result.images}));
    }
    let quarantine: string | undefined;
    if (quarantineDir) quarantine = (await quarantineFlagged(quarantineDir, findings, result.images, dataset.root)).manifest;

    this.render(dataset.root, dataset.format, result.images.length, findings, summary, result.statistics, result.seconds, failing, failOn);
    if (report) this.log(`HTML report: ${report}`);
    if (quarantine) this.log(`Flagged files copied; manifest: ${quarantine}`);
    const max = flags['max-findings'];
    return {
      dataset: {root: dataset.root, format: dataset.format, detectedBy: dataset.detectedBy, images: result.images.length, splits: result.statistics.splits, classes: result.statistics.classes},
      findings: findings.slice(0, max),
      ...(findings.length > max ? {findingsTruncated: findings.length - max} : {}),
      summary,
      statistics: result.statistics,
      seconds: Math.round(result.seconds * 1000) / 1000,
      imagesPerSecond: result.seconds > 0 ? Math.round((result.images.length / result.seconds) * 10) / 10 : 0,
      verdict: failing ? 'fail' : 'pass',
      failOn,
      ...(report ? {report} : {}),
      ...(quarantine ? {quarantine} : {}),
    };
  }

  private render(root: string, format: string, images: number, findings: Finding[], summary: Record<string, {count: number; severity: Severity}>, stats: Awaited<ReturnType<typeof validateDataset>>['statistics'], seconds: number, failing: boolean, failOn: string): void {
    const c = this.ui.color;
    const paint = (s: Severity): string => (s === 'error' ? c.red(s) : s === 'warning' ? c.yellow(s) : s);
    this.log(`${c.bold(root)} (${format}): ${images} images in ${seconds.toFixed(2)} s (${(images / Math.max(seconds, 1e-9)).toFixed(1)} images/s)`);
    const splitRows = Object.entries(stats.bySplitAndClass).map(([split, classes]) => [split, ...['0', '1'].map((k) => classes[k] ?? 0), Object.values(classes).reduce((a, b) => a + b, 0)]);
    this.log(formatTable(['split', 'label 0', 'label 1', 'images'], splitRows, ['left', 'right', 'right', 'right']));
    if (stats.width && stats.height) this.log(`size: width ${stats.width.min}..${stats.width.max} (median ${stats.width.median}), height ${stats.height.min}..${stats.height.max} (median ${stats.height.median})`);
    if (stats.brightness) this.log(`mean brightness: p5 ${stats.brightness.p5.toFixed(3)}, median ${stats.brightness.median.toFixed(3)}, p95 ${stats.brightness.p95.toFixed(3)}`);
    if (findings.length === 0) {
      this.log(c.green('No findings.'));
      return;
    }
    const rows = CHECK_IDS.filter((id) => summary[id]).map((id) => {
      const examples = findings.filter((f) => f.check === id).slice(0, 2).map((f) => f.path);
      return [id, paint(summary[id]!.severity), summary[id]!.count, examples.join(', ')];
    });
    this.log(formatTable(['check', 'severity', 'count', 'examples'], rows, ['left', 'left', 'right', 'left']));
    const next = CHECK_IDS.filter((id) => summary[id] && ADVICE[id]).map((id) => `  - ${id}: ${ADVICE[id]}`);
    if (next.length) this.log(`What to do next:\n${next.join('\n')}`);
    this.log(failing ? c.red(`FAIL: findings at or above "${failOn}"`) : c.green(`PASS (fail-on ${failOn})`));
  }
}
