import os from 'node:os';
import path from 'node:path';
import {Flags} from '@oclif/core';
import {NatixCommand} from '../lib/cli/base-command.js';
import {formatTable} from '../lib/cli/ui.js';
import {runBatch, type BatchRecord, type BatchSummary} from '../lib/cascade/batch.js';
import {loadCascade, type Cascade, type CascadeResult} from '../lib/cascade/index.js';
import {explainModels, type PreprocessingExplanation} from '../lib/image/explain.js';
import {DATASET_FORMATS, datasetRootFor, openDataset, type FormatChoice} from '../lib/data/open.js';
import {assertOutsideDataset} from '../lib/data/safe-path.js';
import {ExitCode, NatixError} from '../lib/errors.js';
import type {Sample} from '../lib/data/sample.js';
import {openInferenceLogs, type InferenceLogs} from '../lib/logging/inference-logs.js';
import {writeFileAtomic} from '../lib/util/fs.js';
import {stat} from 'node:fs/promises';
import {LIMITS, thresholdFlag} from '../lib/cli/numeric-flags.js';

type SingleResult = CascadeResult & {latencyTarget?: {ms: number; verdict: 'PASS' | 'FAIL'}; preprocessing?: PreprocessingExplanation[]};

export default class TestInference extends NatixCommand<typeof TestInference> {
  static summary = 'Run one image or a folder through the model cascade, with the time of every stage.';
  static description = `--image prints the decision, the probability and a stage-by-stage timing table (stage, models, ms, probability,
ran/skipped) and the end-to-end wall time. --batch runs a whole dataset (any layout natix reads) with concurrency,
writes one record per image to --output and prints a summary (decisions, latency percentiles, throughput, and
accuracy/MCC when the images carry labels). Without --model, the bundled checkpoints/default cascade is used.`;

  static examples = [
    '<%= config.bin %> test-inference --image datasets/sample/test/roadwork/synth-2026-000000.jpg',
    '<%= config.bin %> test-inference --image photo.jpg --model my-vit/ --latency-target 50',
    '<%= config.bin %> test-inference --batch datasets/sample --output results.json --concurrency 2',
  ];

  static flags = {
    image: Flags.string({char: 'i', description: 'One image file.', exactlyOne: ['image', 'batch']}),
    batch: Flags.string({char: 'b', description: 'A dataset folder or file (class folders, manifest, parquet, YOLO, COCO).', exactlyOne: ['image', 'batch']}),
    model: Flags.string({char: 'm', description: 'A .onnx file, a model directory (Hugging Face layout) or a cascade file. Default: checkpoints/default.'}),
    device: Flags.option({description: 'Execution provider.', options: ['auto', 'cpu', 'cuda'] as const, default: 'auto'})(),
    threads: Flags.integer({description: 'Intra-op threads per model session (0 = onnxruntime default).', default: 0, min: 0, max: LIMITS.concurrency}),
    concurrency: Flags.integer({description: 'Images in flight at once (--batch; default: enough to keep every model worker busy, at least the core count).', min: 1, max: LIMITS.concurrency}),
    'batch-size': Flags.integer({description: 'Images per model call in --batch (models with a free batch dimension run them in one session call).', default: 1, min: 1, max: LIMITS.concurrency}),
    output: Flags.string({char: 'o', description: 'Write the records and summary here as JSON (--batch).'}),
    format: Flags.option({description: 'Dataset layout for --batch.', options: DATASET_FORMATS, default: 'auto' as FormatChoice})(),
    split: Flags.string({description: 'Only this split of the --batch dataset (e.g. test).'}),
    'latency-target': Flags.integer({description: 'PASS/FAIL the end-to-end time against this many ms (exit 1 on FAIL).', min: 1, max: LIMITS.timeoutMs}),
    'log-dir': Flags.string({description: 'Write inference.log, errors.log and performance.log here (default: off for --image, ./logs for --batch).'}),
    'no-log': Flags.boolean({description: 'Do not write logs, even for --batch.', default: false}),
    threshold: thresholdFlag('Roadwork iff probability > threshold, in [0, 1] (subnet rule: 0.5).'),
    'timeout-ms': Flags.integer({description: 'Per-model inference timeout when the cascade file sets none.', default: 5000, min: 1, max: LIMITS.timeoutMs}),
    'explain-preprocessing': Flags.boolean({description: 'Print (and put under "preprocessing" in --json) each model\'s resolved preprocessing steps: resize WxH with filter, crop box, rescale, mean/std - to compare with a Python pipeline.', default: false}),
  };

  private cascade?: Cascade;
  private logs?: InferenceLogs;

  async run(): Promise<SingleResult | {records: BatchRecord[]; summary: BatchSummary; output?: string; preprocessing?: PreprocessingExplanation[]}> {
    const {flags} = this;
    const threshold = flags.threshold;
    // A bad --image is a usage error found before anything is loaded.
    if (flags.image) await checkImagePath(flags.image);
    const logDir = flags['no-log'] ? undefined : (flags['log-dir'] ?? (flags.batch ? 'logs' : undefined));
    if (flags.batch) {
      // natix never writes into a dataset: outputs are checked (symlinks resolved) before anything is written.
      const root = datasetRootFor(flags.batch);
      if (logDir) assertOutsideDataset(logDir, root, '--log-dir');
      if (flags.output) assertOutsideDataset(flags.output, root, '--output');
    }
    this.logs = logDir ? openInferenceLogs(path.resolve(logDir)) : undefined;
    this.cascade = await loadCascade(flags.model, {
      device: flags.device,
      threads: flags.threads,
      threshold,
      timeoutMs: flags['timeout-ms'],
      logs: this.logs,
    });
    const description = this.cascade.describe();
    for (const note of description.deviceNotes) this.info(`Using CPU: ${note}.`);
    for (const warning of description.preprocessingWarnings) this.warn(`preprocessing: ${warning}`);
    if (flags.image) return this.single(flags.image);
    const batch = await this.batch(flags.batch!);
    if (!flags['explain-preprocessing']) return batch;
    const preprocessing = await explainModels(this.cascade.models());
    this.printExplanations(preprocessing);
    return {...batch, preprocessing};
  }

  private async single(image: string): Promise<SingleResult> {
    const result: SingleResult = await this.cascade!.predict(path.resolve(image), {path: image});
    if (result.error?.startsWith('unreadable')) {
      throw new NatixError(`${image}: ${result.error}`, {code: 'IMAGE_UNREADABLE', exitCode: ExitCode.CheckFailed});
    }
    // An image no stage answered has no decision: never a green result.
    if (result.error) this.failCheck();
    const target = this.flags['latency-target'];
    if (target !== undefined) {
      result.latencyTarget = {ms: target, verdict: result.totalMs <= target ? 'PASS' : 'FAIL'};
      if (result.latencyTarget.verdict === 'FAIL') this.failCheck();
    }
    const c = this.ui.color;
    this.log(`${result.roadwork ? c.bold.yellow('ROADWORK') : c.bold('none')}  probability ${result.probability.toFixed(4)}${result.degraded ? c.red('  (degraded)') : ''}`);
    const rows: Array<Array<string | number>> = [['decode', '', result.decodeMs.toFixed(2), '', 'ran']];
    for (const stage of result.stages) {
      rows.push([stage.name, stage.models.map((m) => m.name).join(', '), stage.ms.toFixed(2), stage.probability?.toFixed(4) ?? '', stage.ran ? 'ran' : `skipped: ${stage.reason ?? ''}`]);
      for (const m of stage.models) {
        if (m.status === 'skipped' && !stage.ran) continue;
        rows.push([`  ${m.name}`, `pre ${m.preprocessMs.toFixed(2)} / inf ${m.inferenceMs.toFixed(2)} / post ${m.postprocessMs.toFixed(2)}`, (m.preprocessMs + m.inferenceMs + m.postprocessMs).toFixed(2), m.probability?.toFixed(4) ?? '', m.status + (m.error ? `: ${m.error}` : m.reason ? `: ${m.reason}` : '')]);
      }
    }
    this.log(formatTable(['stage', 'models', 'ms', 'probability', 'status'], rows, ['left', 'left', 'right', 'right', 'left']));
    this.log(`total ${result.totalMs.toFixed(2)} ms end to end${result.latencyTarget ? ` - ${result.latencyTarget.verdict === 'PASS' ? c.green('PASS') : c.red('FAIL')} against ${result.latencyTarget.ms} ms` : ''}`);
    if (this.flags['explain-preprocessing']) {
      result.preprocessing = await explainModels(this.cascade!.models(), path.resolve(image));
      this.printExplanations(result.preprocessing);
    }
    return result;
  }

  private async batch(input: string): Promise<{records: BatchRecord[]; summary: BatchSummary; output?: string}> {
    const dataset = await openDataset(input, this.flags.format, {splits: this.flags.split ? [this.flags.split] : undefined});
    this.info(`Reading ${dataset.root} as ${dataset.format} (${dataset.detectedBy})`);
    const samples: Sample[] = [];
    for await (const s of dataset.samples()) samples.push(s);
    if (samples.length === 0) throw new NatixError(`No images in ${input}${this.flags.split ? ` (split ${this.flags.split})` : ''}`, {code: 'DATASET_EMPTY', exitCode: ExitCode.Usage});
    const progress = this.ui.progress('inference', samples.length);
    const {records, summary} = await runBatch(this.cascade!, samples, {concurrency: this.flags.concurrency ?? Math.max(os.availableParallelism(), this.cascade!.capacity()), batchSize: this.flags['batch-size'], onResult: () => progress.increment()});
    progress.stop();
    const {latency: l} = summary;
    const output = this.flags.output ? path.resolve(this.flags.output) : undefined;
    if (output) await writeFileAtomic(output, `${JSON.stringify({summary, records}, null, 2)}\n`);
    this.logs?.performance.info({input: dataset.root, count: summary.count, errors: summary.errors, degraded: summary.degraded, throughput: summary.throughput, concurrency: summary.concurrency, latency: l, stageRuns: summary.stageRuns}, 'batch-summary');
    this.log(`${summary.count} images: ${summary.decisions.roadwork} roadwork, ${summary.decisions.none} none${summary.errors ? `, ${summary.errors} errors` : ''}${summary.degraded ? `, ${summary.degraded} degraded` : ''}`);
    this.log(`latency ms (n=${l.n}, ${l.definition}): min ${l.min.toFixed(2)}  p50 ${l.p50.toFixed(2)}  p90 ${l.p90.toFixed(2)}  p95 ${l.p95.toFixed(2)}  p99 ${l.p99.toFixed(2)}  max ${l.max.toFixed(2)}`);
    this.log(`throughput ${summary.throughput.toFixed(1)} images/s at concurrency ${summary.concurrency} (${summary.wallSeconds.toFixed(2)} s wall)`);
    if (summary.metrics) this.log(`accuracy ${summary.metrics.accuracy.toFixed(4)}  MCC ${summary.metrics.mcc.toFixed(4)}  (n=${summary.metrics.n})`);
    if (output) this.log(`records written to ${output}`);
    if (summary.errors > 0) {
      // Errors are never answers: a batch with unanswered images exits 1.
      this.warn(`${summary.errors} of ${summary.count} image(s) were not answered (unreadable, or no stage answered); see the records${this.flags['no-log'] ? '' : ' and errors.log'}`);
      this.failCheck();
    }
    return {records, summary, output};
  }

  private printExplanations(explanations: PreprocessingExplanation[]): void {
    for (const e of explanations) {
      this.log(`preprocessing of model "${e.model}" (${e.source}):`);
      for (const step of e.steps) this.log(`  - ${step}`);
    }
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    if (this.cascade) await this.cascade.close();
    else await this.logs?.close();
    await super.finally(err);
  }
}

/** --image must name an existing regular file: a folder is what --batch is for. */
async function checkImagePath(image: string): Promise<void> {
  const info = await stat(image).catch((error: NodeJS.ErrnoException) => error);
  if (info instanceof Error) {
    throw new NatixError(`--image ${image}: ${info.code === 'ENOENT' ? 'no such file' : info.code === 'EACCES' ? 'permission denied' : info.message}`, {code: 'IMAGE_NOT_FOUND', exitCode: ExitCode.Usage, actions: ['Check the path; `natix test-inference --help` shows an example that ships with natix.']});
  }
  if (info.isDirectory()) {
    throw new NatixError(`--image ${image} is a folder: --image takes one image file`, {code: 'USAGE', exitCode: ExitCode.Usage, actions: [`Run every image in it: natix test-inference --batch ${image}`]});
  }
  if (!info.isFile()) throw new NatixError(`--image ${image} is not a regular file`, {code: 'USAGE', exitCode: ExitCode.Usage});
}
