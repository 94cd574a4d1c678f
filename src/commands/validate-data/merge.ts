import path from 'node:path';
import {Args, Flags} from '@oclif/core';
import {NatixCommand} from '../../lib/cli/base-command.js';
import {LIMITS} from '../../lib/cli/numeric-flags.js';
import type {Progress} from '../../lib/cli/ui.js';
import {assertOutsideDataset} from '../../lib/data/safe-path.js';
import {quarantineFlagged} from '../../lib/quality/quarantine.js';
import {validateHtmlReport} from '../../lib/quality/report-html.js';
import {mergeShards} from '../../lib/quality/shard.js';
import {summariseFindings, validationJson, validationText, type FailOn} from '../../lib/quality/summary.js';
import {writeFileAtomic} from '../../lib/util/fs.js';
import {assertRegularFile} from '../../lib/util/user-files.js';

export default class ValidateDataMerge extends NatixCommand<typeof ValidateDataMerge> {
  static summary = 'Merge the shard files of `validate-data --shard i/n` into one report (duplicates, leaks and balance over all images).';
  static description = `Reads the n files written by \`natix validate-data DATASET --shard i/n\` (i = 1..n), checks that they are the
shards of one run (same dataset, same options, each shard once), runs the cross-image checks - exact and near
duplicates, label conflicts, split leaks, odd sizes, class balance, split ratios - over every image's fingerprint and
prints the report an unsharded run prints (the same findings, statistics and verdict). Exit 1 when a finding is at or
above --fail-on.`;

  static examples = [
    '<%= config.bin %> validate-data merge shards/validate-shard-*-of-8.jsonl',
    '<%= config.bin %> validate-data merge shards/*.jsonl --fail-on warning --json > findings.json',
  ];

  static strict = false;

  static args = {shards: Args.string({description: 'Shard files (validate-shard-<i>-of-<n>.jsonl), all n of them.', required: true})};

  static flags = {
    'fail-on': Flags.option({description: 'Exit 1 when any finding is at or above this severity.', options: ['error', 'warning', 'never'] as const, default: 'error'})(),
    report: Flags.string({description: 'Write a self-contained HTML report with thumbnails of flagged images (read from the paths the shards saw).'}),
    quarantine: Flags.string({description: 'COPY flagged files here (never moves), with quarantine.json saying why.'}),
    'max-findings': Flags.integer({description: 'Findings listed in --json (the summary counts them all).', default: 10_000, min: 1, max: LIMITS.count}),
  };

  async run(): Promise<Record<string, unknown>> {
    const {flags} = this;
    // Every positional argument is a shard file (strict = false lets the list be as long as the shard count).
    const {argv} = await this.parse(ValidateDataMerge);
    const files = (argv as string[]).map((f) => path.resolve(f));
    // Regular files only: a FIFO given as a shard file would block forever.
    for (const file of files) await assertRegularFile(file);
    let search: Progress | undefined;
    let searched = 0;
    const {dataset, result} = await mergeShards(files, (done, total) => {
      search ??= this.ui.progress('near-duplicate search', total);
      search.increment(done - searched);
      searched = done;
    });
    search?.stop();
    this.info(`Merged ${files.length} shard files of ${dataset.root} (${dataset.format})`);
    // natix never writes into a dataset: outputs are resolved through symlinks and refused inside it.
    const reportFile = flags.report ? assertOutsideDataset(flags.report, dataset.root, '--report') : undefined;
    const quarantineDir = flags.quarantine ? assertOutsideDataset(flags.quarantine, dataset.root, '--quarantine') : undefined;
    const failOn = flags['fail-on'] as FailOn;
    let report: string | undefined;
    if (reportFile) {
      report = reportFile;
      const {summary} = summariseFindings(result.findings, failOn);
      await writeFileAtomic(report, await validateHtmlReport({title: 'natix validate-data', root: dataset.root, format: dataset.format, images: result.images.length, findings: result.findings, summary, records: result.images}));
    }
    let quarantine: string | undefined;
    if (quarantineDir) quarantine = (await quarantineFlagged(quarantineDir, result.findings, result.images, dataset.root)).manifest;
    const json = validationJson(dataset, result, failOn, flags['max-findings'], {...(report ? {report} : {}), ...(quarantine ? {quarantine} : {})});
    if (json.verdict === 'fail') this.failCheck();
    this.log(validationText(dataset, result, failOn, this.ui.color));
    if (report) this.log(`HTML report: ${report}`);
    if (quarantine) this.log(`Flagged files copied; manifest: ${quarantine}`);
    return json;
  }
}
