import os from 'node:os';
import path from 'node:path';
import {existsSync} from 'node:fs';
import {Flags} from '@oclif/core';
import {NatixCommand} from '../lib/cli/base-command.js';
import {formatTable} from '../lib/cli/ui.js';
import {baselineMismatches, baselineResult, parseMaxRegression} from '../lib/bench/baseline.js';
import {DEFAULT_GATES, parseGate, type GateName, type GateSpec} from '../lib/bench/gates.js';
import {durationFlag, flagParser, LIMITS, parseNumberIn, parseWarmup, thresholdFlag, trackingTimeoutFlag} from '../lib/cli/numeric-flags.js';
import {runBench, type BenchResult} from '../lib/bench/index.js';
import {runTune, type TuneResult} from '../lib/bench/tune.js';
import {writeTunePlot} from '../lib/bench/tune-plot.js';
import {cascadeFileOf, loadCascade, type Cascade} from '../lib/cascade/index.js';
import {DATASET_FORMATS, openDataset, type FormatChoice} from '../lib/data/open.js';
import {assertOutsideDataset} from '../lib/data/safe-path.js';
import type {Sample} from '../lib/data/sample.js';
import {errorMessage, ExitCode, NatixError} from '../lib/errors.js';
import {minQueriesForPercentile} from '../lib/metrics/latency.js';
import {junitXml} from '../lib/report/junit.js';
import {benchMarkdown} from '../lib/report/markdown.js';
import {writeBenchPlot} from '../lib/report/plot.js';
import {packageRoot} from '../lib/runtime/environment.js';
import {describeRun, logBenchRun, startCommandRun} from '../lib/tracking/commands.js';
import {writeFileAtomic} from '../lib/util/fs.js';
import {readUserFile} from '../lib/util/user-files.js';

const GATE_FLAGS: GateName[] = ['min-mcc', 'min-accuracy', 'max-p50-ms', 'max-p95-ms', 'max-p99-ms', 'min-throughput', 'min-reward'];
// Gates are parsed (and range-checked) as flags, so a bad value in a config file names the file and the key.
const gateFlag = (name: GateName, what: string) => Flags.custom<GateSpec>({description: `${what} Value "pass" or "pass,warn".`, helpGroup: 'GATES', parse: flagParser((input) => parseGate(name, input))})();

export default class Bench extends NatixCommand<typeof Bench> {
  static summary = 'Measure MCC, accuracy and latency of a model or cascade as the subnet would score it, with CI gates.';
  static description = `Runs the model on a labelled dataset: warm-up, then queries until both --min-queries and --min-duration are met
(cycling the data; warm-up excluded). Accuracy metrics come from one accumulated confusion matrix (MCC as
scikit-learn, the subnet's rule: roadwork iff p > 0.5); latency percentiles are sorted[floor(N*p)], and a p90 / p95 /
p99 gate needs 64 / 130 / 662 queries (LoadGen's early-stopping rule) or it reports INVALID.
--simulate-validator turns the data into subnet challenges (50/50 labels, augmentation levels 0-3, 224x224 JPEG q75)
and scores them with the subnet's reward. Verdict PASS / WARN / FAIL / INVALID: exit 0 on PASS (and WARN unless
--strict), 1 on FAIL or INVALID, 2 on usage errors. With no arguments: the bundled default cascade on the bundled
sample's test split.`;

  static examples = [
    '<%= config.bin %> bench',
    '<%= config.bin %> bench --model my-vit/ --dataset data/roadwork --split test --min-mcc 0.95,0.9 --max-p95-ms 80',
    '<%= config.bin %> bench --simulate-validator --challenges 500 --seed 7 --plot bench.png',
    '<%= config.bin %> bench --baseline last.json --max-regression mcc=0.002,p95=10% --junit bench.xml --markdown summary.md',
  ];

  static flags = {
    model: Flags.string({char: 'm', description: 'A .onnx file, a model directory or a cascade file (default: checkpoints/default).'}),
    dataset: Flags.string({char: 'd', description: 'Labelled dataset (default: the bundled datasets/sample).'}),
    split: Flags.string({description: 'Split to use (default: test when the dataset has one, else everything).'}),
    format: Flags.option({description: 'Dataset layout.', options: DATASET_FORMATS, default: 'auto' as FormatChoice})(),
    device: Flags.option({description: 'Execution provider.', options: ['auto', 'cpu', 'cuda'] as const, default: 'auto'})(),
    threads: Flags.integer({description: 'Intra-op threads per model session (0 = onnxruntime default).', default: 0, min: 0, max: LIMITS.concurrency}),
    threshold: thresholdFlag('Roadwork iff probability > threshold, in [0, 1].'),
    scenario: Flags.option({
      description: 'single-stream: one query at a time (latency); offline: all at once (throughput); server: Poisson arrivals at --target-qps, latency from the scheduled arrival, VALID when p99 <= --max-p99-ms.',
      options: ['single-stream', 'offline', 'server'] as const,
      default: 'single-stream',
    })(),
    'target-qps': Flags.custom<number>({description: 'Server scenario: arrival rate, queries per second (Poisson, seeded by --seed), at most 100000.', helpGroup: 'SERVER', parse: flagParser((input) => parseNumberIn(input, 0, 100_000))})(),
    'find-peak': Flags.boolean({description: 'Server scenario: search the highest --target-qps that stays VALID (starting from --target-qps).', default: false, helpGroup: 'SERVER'}),
    concurrency: Flags.integer({description: 'Queries in flight in the offline scenario (default 4 x cores: images decode on the main thread while the models run in their worker threads).', default: os.availableParallelism() * 4, min: 1, max: LIMITS.concurrency}),
    warmup: Flags.custom<{queries: number; ms: number}>({description: 'Warm-up before measuring: a query count (5) or a duration (200ms).', default: {queries: 1, ms: 200}, defaultHelp: async () => '200ms', parse: flagParser(parseWarmup)})(),
    'min-queries': Flags.integer({description: 'Measure at least this many queries (default: the dataset size, raised to what the latency gates need).', min: 1, max: LIMITS.count}),
    'min-duration': durationFlag('Measure for at least this long (500ms, 10s).', 0, '0ms'),
    'max-queries': Flags.integer({description: 'Never measure more than this many queries.', min: 1, max: LIMITS.count}),
    'min-mcc': gateFlag('min-mcc', 'Gate: MCC at least (default 0.9975,0.995).'),
    'min-accuracy': gateFlag('min-accuracy', 'Gate: accuracy at least.'),
    'max-p50-ms': gateFlag('max-p50-ms', 'Gate: p50 latency at most, ms (default 25,30).'),
    'max-p95-ms': gateFlag('max-p95-ms', 'Gate: p95 latency at most, ms (default 40,50).'),
    'max-p99-ms': gateFlag('max-p99-ms', 'Gate: p99 latency at most, ms.'),
    'min-throughput': gateFlag('min-throughput', 'Gate: images/s at least.'),
    'min-reward': gateFlag('min-reward', 'Gate: validator moving-average score at least (needs --simulate-validator).'),
    'no-default-gates': Flags.boolean({description: 'Only the gates given; drop the defaults (MCC, p50, p95).', default: false, helpGroup: 'GATES'}),
    strict: Flags.boolean({description: 'Exit 1 on WARN too.', default: false, helpGroup: 'GATES'}),
    'simulate-validator': Flags.boolean({description: 'Score the model on simulated subnet challenges.', default: false, helpGroup: 'VALIDATOR'}),
    challenges: Flags.integer({description: 'Number of simulated challenges.', default: 200, min: 1, max: LIMITS.count, helpGroup: 'VALIDATOR'}),
    seed: Flags.integer({description: 'Seed of the challenge draw and of the server scenario\'s arrivals (same seed, same draw).', default: 1, min: 0, max: LIMITS.seed, helpGroup: 'VALIDATOR'}),
    flips: Flags.boolean({description: 'Enable the random flips the subnet intends (they never fire there because of a bug).', default: false, helpGroup: 'VALIDATOR'}),
    baseline: Flags.string({description: 'A previous `natix bench --json` output to compare with.', helpGroup: 'OUTPUT'}),
    'max-regression': Flags.string({description: 'Fail when worse than the baseline by more than this.', default: 'mcc=0.002,p95=10%', helpGroup: 'OUTPUT'}),
    junit: Flags.string({description: 'Write JUnit XML (one testcase per gate).', helpGroup: 'OUTPUT'}),
    markdown: Flags.string({description: 'Write a Markdown summary (for a CI job page).', helpGroup: 'OUTPUT'}),
    predictions: Flags.string({description: 'Write per-image predictions as JSON lines (and challenges when simulated).', helpGroup: 'OUTPUT'}),
    plot: Flags.string({description: 'Write a picture (.svg or .png): latency histogram, confusion matrix, reward curve.', helpGroup: 'OUTPUT'}),
    tune: Flags.boolean({description: 'Tune the exit thresholds: run every stage on every image once, then evaluate every band choice offline.', default: false, helpGroup: 'TUNE'}),
    'target-exit': Flags.string({description: 'Tune: share of the images each stage should answer itself (default 0.6).', helpGroup: 'TUNE'}),
    'target-exit-accuracy': Flags.string({description: 'Tune: accuracy required on those exits (default 0.99).', helpGroup: 'TUNE'}),
    'latency-budget': Flags.string({description: 'Tune: instead of the exit targets, the best MCC with a mean latency at most this (ms).', helpGroup: 'TUNE'}),
    'write-cascade': Flags.string({description: 'Tune: write the cascade file with the recommended bands here (YAML).', helpGroup: 'TUNE'}),
    track: Flags.boolean({description: 'Log this benchmark as an MLflow run (metrics, gates, verdict, reports).', default: false, helpGroup: 'TRACKING'}),
    'tracking-uri': Flags.string({description: 'MLflow store: sqlite:///mlflow.db (default), a folder / file: URI (mlruns file store) or an http(s) server; default MLFLOW_TRACKING_URI.', helpGroup: 'TRACKING'}),
    'tracking-timeout': trackingTimeoutFlag(),
    experiment: Flags.string({description: 'MLflow experiment (default MLFLOW_EXPERIMENT_NAME, else natix-bench).', helpGroup: 'TRACKING'}),
  };

  private cascade?: Cascade;

  async run(): Promise<BenchResult | TuneResult> {
    const {flags} = this;
    const gates = new Map<GateName, GateSpec>();
    if (!flags['no-default-gates']) for (const g of DEFAULT_GATES) gates.set(g.name, g);
    for (const name of GATE_FLAGS) {
      const spec = flags[name];
      if (spec !== undefined) gates.set(name, spec);
    }
    if (gates.has('min-reward') && !flags['simulate-validator']) this.warn('--min-reward needs --simulate-validator; the gate will be INVALID');

    let baseline: Parameters<typeof runBench>[3]['baseline'];
    if (flags.baseline) {
      try {
        baseline = {file: flags.baseline, result: baselineResult(JSON.parse(await readUserFile(flags.baseline, 'utf8'))), limits: parseMaxRegression(flags['max-regression'])};
      } catch (error) {
        throw new NatixError(`--baseline ${flags.baseline}: ${errorMessage(error)}`, {code: 'BASELINE_INVALID', exitCode: ExitCode.Usage});
      }
    }

    const datasetPath = flags.dataset ?? path.join(packageRoot(), 'datasets', 'sample');
    if (!existsSync(datasetPath)) throw new NatixError(`Dataset not found: ${datasetPath}`, {code: 'DATASET_NOT_FOUND', exitCode: ExitCode.Usage, actions: ['Pass --dataset, or make one with natix datasets synth.']});
    const dataset = await openDataset(datasetPath, flags.format);
    // natix never writes into a dataset: every output is checked (symlinks resolved) before the run.
    for (const flag of ['junit', 'markdown', 'predictions', 'plot', 'write-cascade'] as const) {
      const output = flags[flag];
      if (output) assertOutsideDataset(output, dataset.root, `--${flag}`);
    }
    const all: Sample[] = [];
    for await (const s of dataset.samples()) all.push(s);
    const hasTest = all.some((s) => s.split === 'test');
    const split = flags.split ?? (hasTest ? 'test' : undefined);
    const samples = split ? all.filter((s) => s.split === split) : all;
    if (samples.length === 0) throw new NatixError(`No images${split ? ` in split "${split}"` : ''} of ${dataset.root}`, {code: 'DATASET_EMPTY', exitCode: ExitCode.Usage});
    if (samples.every((s) => s.label === null)) this.warn('the images carry no labels: only latency is measured');
    this.info(`Dataset ${dataset.root} (${dataset.format}, ${dataset.detectedBy})${split ? `, split ${split}` : ''}: ${samples.length} images`);
    if (baseline) {
      const conditions = {scenario: flags.scenario, concurrency: flags.scenario === 'offline' ? flags.concurrency : 1, dataset: {root: dataset.root, format: dataset.format, split: split ?? null, images: samples.length}};
      const {refuse, note} = baselineMismatches(conditions, baseline.result);
      for (const n of note) this.warn(`--baseline ${baseline.file}: ${n}`);
      if (refuse.length > 0) {
        const b = baseline.result;
        throw new NatixError(`--baseline ${baseline.file} was measured under other conditions: ${refuse.join('; ')}. Its deltas would measure the difference in conditions, not a regression.`, {
          code: 'BASELINE_MISMATCH',
          exitCode: ExitCode.Usage,
          actions: [`Re-run under the baseline's conditions${b.scenario ? ` (--scenario ${b.scenario}${b.scenario === 'offline' && b.settings?.concurrency ? ` --concurrency ${b.settings.concurrency}` : ''}${b.dataset?.split ? ` --split ${b.dataset.split}` : ''})` : ''}, or make a new baseline with --json.`],
        });
      }
    }

    const threshold = flags.threshold;
    this.cascade = await loadCascade(flags.model, {device: flags.device, threads: flags.threads, threshold});
    const described = this.cascade.describe();
    for (const note of described.deviceNotes) this.info(`Using CPU: ${note}.`);
    for (const warning of described.preprocessingWarnings) this.warn(`preprocessing: ${warning}`);

    let server: Parameters<typeof runBench>[3]['server'];
    if (flags.scenario === 'server') {
      const qps = Number(flags['target-qps']);
      if (flags['target-qps'] === undefined || !Number.isFinite(qps) || qps <= 0) {
        throw new NatixError('--scenario server needs --target-qps, a rate above 0 (queries per second)', {code: 'USAGE', exitCode: ExitCode.Usage, actions: ['natix bench --scenario server --target-qps 20 --max-p99-ms 100', 'Add --find-peak to search the highest rate that stays within the bound.']});
      }
      const bound = gates.get('max-p99-ms');
      if (!bound) {
        throw new NatixError('--scenario server needs --max-p99-ms, the p99 latency bound (measured from the scheduled arrival)', {code: 'USAGE', exitCode: ExitCode.Usage, actions: [`natix bench --scenario server --target-qps ${qps} --max-p99-ms 100`]});
      }
      server = {targetQps: qps, p99BoundMs: bound.pass, seed: flags.seed, findPeak: flags['find-peak']};
    } else if (flags['target-qps'] !== undefined || flags['find-peak']) {
      throw new NatixError('--target-qps and --find-peak belong to --scenario server', {code: 'USAGE', exitCode: ExitCode.Usage});
    }
    if (flags.tune) return this.tune(samples);
    const warmup = flags.warmup;
    const latencyNeeds = [...gates.keys()].map((g) => ({'max-p50-ms': 0.5, 'max-p95-ms': 0.95, 'max-p99-ms': 0.99})[g as 'max-p50-ms']).filter((p): p is number => p !== undefined);
    const minQueries = flags['min-queries'] ?? Math.max(samples.length, ...latencyNeeds.map((p) => minQueriesForPercentile(p)));
    const progress = this.ui.progress('bench', minQueries + (flags['simulate-validator'] ? flags.challenges : 0));
    let reported = 0;
    const benchStarted = Date.now();
    const output = await runBench(this.cascade, samples, {root: dataset.root, format: dataset.format, split: split ?? null, images: samples.length}, {
      run: {scenario: flags.scenario, concurrency: flags.concurrency, warmup, minQueries, minDurationMs: flags['min-duration'], maxQueries: flags['max-queries']},
      server,
      gates: [...gates.values()],
      strict: flags.strict,
      validator: flags['simulate-validator'] ? {challenges: flags.challenges, seed: flags.seed, flips: flags.flips} : undefined,
      baseline,
      onProgress: (phase, done) => {
        const total = phase === 'measure' ? done : minQueries + done;
        progress.increment(Math.max(0, total - reported));
        reported = Math.max(reported, total);
      },
    });
    const benchEnded = Date.now();
    progress.stop();
    for (const w of output.warnings) this.warn(w);
    const r = output.result;

    if (flags.junit) await writeFileAtomic(flags.junit, junitXml('natix-bench', r.gates, r.verdict, r.windowSeconds));
    if (flags.markdown) await writeFileAtomic(flags.markdown, benchMarkdown(r));
    if (flags.predictions) {
      const lines = [...output.predictions.map((p) => JSON.stringify(p)), ...output.challenges.map((c) => JSON.stringify({...c, kind: 'challenge'}))];
      await writeFileAtomic(flags.predictions, `${lines.join('\n')}\n`);
    }
    if (flags.plot) {
      await writeBenchPlot(flags.plot, {
        title: `natix bench - ${r.verdict} - MCC ${r.metrics.mcc.toFixed(4)}, p95 ${r.latency.p95.toFixed(2)} ms`,
        latencies: output.latencies,
        p50: r.latency.p50,
        p95: r.latency.p95,
        confusion: r.metrics.confusion,
        rewards: r.validator?.rewards,
        scores: r.validator?.scores,
      });
    }
    const demo = flags.model === undefined && flags.dataset === undefined;
    if (demo) this.info(this.ui.color.dim(demoNote(r)));
    this.render(r);
    if (demo && r.verdict !== 'PASS') this.info(`(${r.verdict} is expected here: the bundled demo model is small and the default gates are subnet-grade. Bench your own model with --model DIR --dataset DIR.)`);
    if (flags.track) {
      // The run's times cover the benchmark itself, not just the logging.
      const run = await startCommandRun({trackingUri: flags['tracking-uri'], experiment: flags.experiment, cwd: process.cwd(), env: process.env, warn: (m) => this.warn(m), timeoutMs: flags['tracking-timeout']}, 'natix-bench', `bench-${path.basename(dataset.root)}-${new Date(benchStarted).toISOString().slice(0, 19)}`, {'natix.command': 'bench'}, {startTime: benchStarted});
      await logBenchRun(run, r, [flags.junit, flags.markdown, flags.plot].filter((f): f is string => Boolean(f)));
      await run.end('FINISHED', benchEnded);
      this.info(describeRun(run));
    }
    if (r.verdict === 'FAIL' || r.verdict === 'INVALID' || (r.verdict === 'WARN' && flags.strict)) this.failCheck();
    // The reward/score series are for plots; the --json result keeps them out to stay small.
    if (r.validator) r.validator = {...r.validator, rewards: [], scores: []};
    return r;
  }

  /** `--tune`: record every stage on every image, evaluate every band choice, recommend, plot, write the cascade. */
  private async tune(samples: Sample[]): Promise<TuneResult> {
    const {flags} = this;
    const fraction = (name: 'target-exit' | 'target-exit-accuracy', fallback: number): number => {
      const v = flags[name] === undefined ? fallback : Number(flags[name]);
      if (!Number.isFinite(v) || v < 0 || v > 1) throw new NatixError(`--${name} expects a share between 0 and 1, got "${flags[name]}"`, {code: 'USAGE', exitCode: ExitCode.Usage});
      return v;
    };
    const budget = flags['latency-budget'] === undefined ? undefined : Number(flags['latency-budget']);
    if (budget !== undefined && !(Number.isFinite(budget) && budget > 0 && budget <= LIMITS.timeoutMs)) throw new NatixError(`--latency-budget expects milliseconds above 0 and at most ${LIMITS.timeoutMs}, got "${flags['latency-budget']}"`, {code: 'USAGE', exitCode: ExitCode.Usage});
    const cascadeFile = cascadeFileOf(flags.model);
    if (flags['write-cascade'] && !cascadeFile) this.warn('--write-cascade needs a cascade file as --model (a single model has no bands to tune); nothing written');
    const progress = this.ui.progress('tune', samples.length);
    const run = await runTune(this.cascade!, samples, {
      concurrency: this.cascade!.capacity(),
      targets: {exit: fraction('target-exit', 0.6), exitAccuracy: fraction('target-exit-accuracy', 0.99), latencyBudgetMs: budget},
      cascadeFile,
      writeTo: flags['write-cascade'],
      onImage: () => progress.increment(),
    }).catch((error: unknown) => {
      throw error instanceof NatixError ? error : new NatixError(errorMessage(error), {code: 'TUNE_FAILED', exitCode: ExitCode.Usage});
    });
    progress.stop();
    if (run.skipped > 0) this.warn(`${run.skipped} image(s) without a 0/1 label or unreadable were left out of the tuning`);
    if (run.cascadeYaml && flags['write-cascade']) await writeFileAtomic(flags['write-cascade'], run.cascadeYaml);
    if (flags.plot) await writeTunePlot(flags.plot, run.result, run.all);
    this.renderTune(run.result);
    if (run.cascadeYaml) this.info(`Wrote ${flags['write-cascade']} (bands ${run.result.recommended.thresholds.map((t) => (t === null ? '-' : `[${(Math.round((1 - t) * 100) / 100).toFixed(2)}, ${t.toFixed(2)}]`)).join(', ')})`);
    return run.result;
  }

  private renderTune(r: TuneResult): void {
    const c = this.ui.color;
    const f = (v: number | null | undefined, d = 4): string => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(d));
    const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
    const shown = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99];
    this.log(`${c.bold('Exit thresholds')} on ${r.images} images (every stage ran on every image once; exit when p >= t or p <= 1 - t):`);
    for (const s of r.stages) {
      const rows = s.table.filter((row) => shown.includes(row.t));
      this.log(formatTable([`${s.name} (mean ${f(s.meanMs, 2)} ms)`, ...rows.map((row) => `t=${row.t.toFixed(2)}`)], [['exit coverage', ...rows.map((row) => pct(row.coverage))], ['exit accuracy', ...rows.map((row) => (row.exitAccuracy === null ? 'n/a' : pct(row.exitAccuracy)))]], ['left', ...rows.map(() => 'right' as const)]));
    }
    const band = (b: TuneResult['current']): string => b.bands.map((x) => (x ? `${x.when} [${x.band[0]}, ${x.band[1]}]` : 'always')).join(' | ') || '-';
    const line = (b: TuneResult['current']): string[] => [band(b), b.exitRates.map(pct).join(' / '), f(b.mcc), f(b.accuracy), f(b.meanMs, 2)];
    const step = Math.max(1, Math.ceil(r.frontier.length / 15));
    const frontier = r.frontier.filter((_, i) => i % step === 0 || i === r.frontier.length - 1);
    this.log(`${c.bold('Frontier')} (${r.frontier.length} of ${r.choices} band choices: none is both faster and better; escalate while inside the band):`);
    this.log(formatTable(['bands', 'answered by stage', 'MCC', 'accuracy', 'mean ms'], [...frontier.map(line), ['current: ' + band(r.current), ...line(r.current).slice(1)], ['RECOMMENDED: ' + band(r.recommended), ...line(r.recommended).slice(1)]], ['left', 'right', 'right', 'right', 'right']));
    this.log(`${c.bold('Recommended')} (${r.recommended.rule}): MCC ${f(r.recommended.mcc)} (now ${f(r.current.mcc)}), mean ${f(r.recommended.meanMs, 2)} ms per image (now ${f(r.current.meanMs, 2)})`);
    for (const note of r.recommended.notes) this.warn(note);
  }

  private render(r: BenchResult): void {
    const c = this.ui.color;
    const paint = (v: string): string => (v === 'PASS' ? c.green(v) : v === 'WARN' ? c.yellow(v) : c.red(v));
    const f = (v: number | null | undefined, d = 4): string => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(d));
    const m = r.metrics;
    const ci = m.mccInterval ? ` (${Math.round(m.mccInterval.confidence * 100)}% CI ${f(m.mccInterval.low)} to ${f(m.mccInterval.high)})` : '';
    this.log(`${c.bold('Quality')} (n=${m.n}): MCC ${f(m.mcc)}${ci}  accuracy ${f(m.accuracy)}  precision ${f(m.precision)}  recall ${f(m.recall)}  F1 ${f(m.f1)}  AUC ${f(m.auc)}  [tp ${m.confusion.tp} fp ${m.confusion.fp} tn ${m.confusion.tn} fn ${m.confusion.fn}]`);
    const l = r.latency;
    this.log(`${c.bold('Latency')} ms (n=${l.n}, ${r.scenario}, ${l.definition}): min ${f(l.min, 2)}  p50 ${f(l.p50, 2)}  p90 ${f(l.p90, 2)}  p95 ${f(l.p95, 2)}  p99 ${f(l.p99, 2)}  max ${f(l.max, 2)}  mean ${f(l.mean, 2)} +- ${f(l.stddev, 2)}`);
    const atMax = tailPercentilesAtMax(l.n);
    if (atMax.length > 0) this.log(c.dim(`  ${atMax.join(', ')} ${atMax.length > 1 ? 'are' : 'is'} the largest sample (max): with n=${l.n}, sorted[floor(n*p)] is the last one; ${atMax.map((p) => `${p} needs n > ${minSamplesBelowMax(p)}`).join(', ')} to differ from it`));
    this.log(`${c.bold('Throughput')} ${f(r.throughput, 1)} images/s over ${f(r.windowSeconds, 2)} s; CPU ${f(r.cpu.coresBusy, 2)} of ${r.cpu.cores} cores busy (${r.warmupQueries} warm-up queries excluded)`);
    if (r.cascade.length > 1) {
      this.log(formatTable(['stage', 'ran', 'time share', 'mean ms', 'acc if last', 'MCC if last'], r.cascade.map((s) => [s.name, `${(s.runRate * 100).toFixed(1)}%`, `${(s.timeShare * 100).toFixed(1)}%`, f(s.meanMs, 2), f(s.accuracyIfLast), f(s.mccIfLast)]), ['left', 'right', 'right', 'right', 'right', 'right']));
    }
    if (r.server) {
      const sv = r.server;
      const verdict = sv.valid ? c.green('VALID') : c.red('INVALID');
      this.log(`${c.bold('Server scenario')} target ${f(sv.targetQps, 2)} queries/s (seed ${sv.seed}, ${sv.queries} queries): scheduled ${f(sv.scheduledQps, 2)}/s, completed ${f(sv.completedQps, 2)}/s; latency from the scheduled arrival p50 ${f(sv.latency.p50, 2)}  p99 ${f(sv.latency.p99, 2)} ms (bound ${sv.p99BoundMs}); issue delay p99 ${f(sv.issueDelay.p99, 2)} ms: ${verdict}`);
      this.log(formatTable(['constraint', 'ok', 'detail'], sv.constraints.map((k) => [k.name, k.ok ? c.green('yes') : c.red('no'), k.detail]), ['left', 'left', 'left']));
      if (sv.peak) {
        this.log(formatTable(['trial qps', 'verdict', 'p99 ms'], sv.peak.trials.map((t) => [f(t.qps, 2), t.valid ? 'VALID' : 'INVALID', f(t.p99, 2)]), ['right', 'left', 'right']));
        this.log(`${c.bold('Peak')}: ${sv.peak.peakQps === null ? 'no rate tried was VALID (lower --target-qps)' : `${f(sv.peak.peakQps, 2)} queries/s within p99 <= ${sv.p99BoundMs} ms`}`);
      }
      this.log(c.dim(`Recommendation: ${sv.recommendation}`));
    }
    if (r.validator) {
      const v = r.validator;
      this.log(`${c.bold('Validator simulation')} (${v.challenges} challenges, seed ${v.seed}): final reward ${f(v.finalReward)}  moving-average score ${f(v.finalScore)}  MCC ${f(v.mcc)}  accuracy ${f(v.accuracy)}`);
      this.log(formatTable(['level', 'n', 'MCC', 'accuracy'], v.perLevel.map((p) => [p.level, p.n, f(p.mcc), f(p.accuracy)]), ['left', 'right', 'right', 'right']));
      this.log(c.dim(v.notSimulated));
    }
    if (r.baseline) {
      this.log(formatTable(['vs baseline', 'baseline', 'now', 'delta'], r.baseline.deltas.map((d) => [d.metric, f(d.baseline), f(d.current), `${d.delta >= 0 ? '+' : ''}${f(d.delta)}`]), ['left', 'right', 'right', 'right']));
    }
    const pct = (v: number): string => `${Number((v * 100).toPrecision(6))}%`;
    const shown = (g: BenchResult['gates'][number], v: number | null): string => (v === null ? 'n/a' : g.unit === 'percent' ? pct(v) : f(v));
    const threshold = (g: BenchResult['gates'][number]): string => {
      const op = /^(min|max)-/.exec(g.name)?.[1] === 'min' ? '>=' : '<=';
      const t = (v: number): string => (g.unit === 'percent' ? pct(v) : String(v));
      return `${op} ${t(g.pass)}${g.warn !== undefined ? ` (warn ${op} ${t(g.warn)})` : ''}`;
    };
    this.log(formatTable(['gate', 'value', 'threshold', 'verdict', 'why'], r.gates.map((g) => [g.name, shown(g, g.value), threshold(g), paint(g.verdict), g.message])));
    this.log(`${c.bold('Verdict:')} ${paint(r.verdict)}`);
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    await this.cascade?.close();
    await super.finally(err);
  }
}

/** What `natix bench` with no arguments measures, so a newcomer reads its verdict for what it is. */
function demoNote(r: BenchResult): string {
  const mcc = DEFAULT_GATES.find((g) => g.name === 'min-mcc');
  const lat = DEFAULT_GATES.filter((g) => g.name !== 'min-mcc').map((g) => `${g.name.replace(/^max-|-ms$/g, '')} <= ${g.pass} ms`);
  return [
    `Demo: the bundled default cascade (checkpoints/default: two small CNNs trained on synthetic images, val MCC ~0.75) on the`,
    `bundled sample's ${r.dataset.split ?? 'whole'} split (${r.dataset.images} images). The default gates are subnet-grade: MCC >= ${mcc?.pass} (warn ${mcc?.warn}),`,
    `${lat.join(', ')}. A small demo model is not expected to pass them; they are there for your model (--model DIR --dataset DIR).`,
  ].join('\n');
}

const TAIL = {p90: 0.9, p95: 0.95, p99: 0.99} as const;

/** Whether sorted[floor(n*p)] (the latency definition) is the last of n samples. */
const isMax = (n: number, p: number): boolean => Math.floor(n * p) >= n - 1;

/** The largest n at which percentile `label` is still the maximum. */
function minSamplesBelowMax(label: keyof typeof TAIL): number {
  let n = 1;
  while (isMax(n + 1, TAIL[label])) n++;
  return n;
}

/** Tail percentiles (p90, p95, p99) that equal the maximum because n is small. */
function tailPercentilesAtMax(n: number): Array<keyof typeof TAIL> {
  return (Object.keys(TAIL) as Array<keyof typeof TAIL>).filter((label) => n > 0 && isMax(n, TAIL[label]));
}
