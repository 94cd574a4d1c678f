/**
 * Opening a dataset of any supported layout behind the one `Dataset` interface, with `--format auto` detection.
 * Detection order: a manifest file (or a folder holding one), parquet file(s), a YOLO `data.yaml`, a COCO JSON,
 * then class folders.
 */
import {existsSync, statSync} from 'node:fs';
import {stat} from 'node:fs/promises';
import path from 'node:path';
import {ExitCode, NatixError} from '../errors.js';
import {looksLikeFolderDataset, readFolderDataset} from './folder.js';
import {MANIFEST_NAMES, readManifestDataset} from './manifest.js';
import {readCocoDataset} from './coco.js';
import {readParquetDataset} from './parquet.js';
import {readYoloDataset} from './yolo.js';
import {nonRegularKind, UserFileError} from '../util/user-files.js';
import {realRoot} from './safe-path.js';
import type {DataIssue, Dataset, DatasetFormat, ReaderOptions, Sample} from './sample.js';

export type FormatChoice = DatasetFormat | 'auto';
export const DATASET_FORMATS: FormatChoice[] = ['auto', 'folder', 'manifest', 'parquet', 'yolo', 'coco'];

export interface OpenedDataset extends Dataset {
  /** How the format was chosen, for the "detected X because Y" line. */
  detectedBy: string;
}

/** True when `p` exists and is not a directory (a FIFO or an unreadable file is chosen, then refused with a reason). */
async function existsAsFile(p: string): Promise<boolean> {
  try {
    return !(await stat(p)).isDirectory();
  } catch (error) {
    // chmod 000 parents or a symlink loop: there is something, and reading it will say what is wrong.
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'EACCES' || code === 'ELOOP';
  }
}

/** COCO annotation files of a folder: `*.json` there or in `annotations/` named like instances/annotations/coco. */
async function cocoFilesIn(dir: string): Promise<string[]> {
  const fg = (await import('fast-glob')).default;
  const all = (await fg('{,annotations/}*.json', {cwd: dir, deep: 2, suppressErrors: true})).sort();
  const named = all.filter((f) => /instances|annotations|coco/i.test(f));
  return (named.length > 0 ? named : all.length === 1 ? all : []).map((f) => path.join(dir, f));
}

/** Decides the layout of `input` (a folder or a file) and says why. */
export async function detectFormat(input: string): Promise<{format: DatasetFormat; file?: string; reason: string}> {
  const info = await stat(input);
  const kind = nonRegularKind(info);
  if (kind && kind.reason !== 'directory') throw new UserFileError(input, kind.reason, kind.what);
  if (info.isFile()) {
    if (/\.(csv|jsonl|ndjson)$/i.test(input)) return {format: 'manifest', file: input, reason: 'a CSV/JSON-lines file'};
    if (/\.parquet$/i.test(input)) return {format: 'parquet', file: input, reason: 'a .parquet file'};
    if (/\.ya?ml$/i.test(input)) return {format: 'yolo', file: input, reason: 'a YOLO data.yaml'};
    if (/\.json$/i.test(input)) return {format: 'coco', file: input, reason: 'a COCO JSON file'};
    throw new NatixError(`Cannot tell the dataset format of ${input}`, {code: 'FORMAT_UNKNOWN', actions: ['Pass --format.']});
  }
  for (const name of MANIFEST_NAMES) {
    const file = path.join(input, name);
    if (await existsAsFile(file)) return {format: 'manifest', file, reason: `found ${name}`};
  }
  const fg = (await import('fast-glob')).default;
  // Parquet shards up to two folders down: `data/`, and the Hugging Face exports `train/` and `default/train/`.
  if ((await fg('{,*/,*/*/}*.parquet', {cwd: input, deep: 3, onlyFiles: false, suppressErrors: true})).length > 0) return {format: 'parquet', reason: 'found *.parquet files'};
  for (const name of ['data.yaml', 'data.yml', 'dataset.yaml']) {
    if (await existsAsFile(path.join(input, name))) return {format: 'yolo', file: path.join(input, name), reason: `found ${name}`};
  }
  const coco = await cocoFilesIn(input);
  if (coco.length > 0) return {format: 'coco', reason: `found ${coco.map((f) => path.relative(input, f)).join(', ')}`};
  if (await looksLikeFolderDataset(input)) return {format: 'folder', reason: 'found class folders with images'};
  throw new NatixError(`No dataset found in ${input}`, {
    code: 'DATASET_EMPTY',
    exitCode: ExitCode.Usage,
    actions: ['Expected class folders, a manifest.csv/.jsonl, *.parquet, a YOLO data.yaml or a COCO JSON.', 'Pass --format to choose.'],
  });
}

/**
 * The folder a dataset at `input` is rooted in, without reading it: the folder itself, or the folder holding a
 * dataset file (its parent when that folder is COCO's `annotations/`). For output-path guards.
 */
export function datasetRootFor(input: string): string {
  const real = realRoot(input);
  if (!statSync(real).isFile()) return real;
  const dir = path.dirname(real);
  return path.basename(dir) === 'annotations' ? path.dirname(dir) : dir;
}

/** Opens `input` as a dataset; `format` 'auto' detects it. */
export async function openDataset(input: string, format: FormatChoice = 'auto', callerOptions: ReaderOptions = {}): Promise<OpenedDataset> {
  const real = realRoot(input);
  // Issues are counted (and the first few kept) so that a dataset that yields nothing can say why.
  const issues: DataIssue[] = [];
  let issueCount = 0;
  const options: ReaderOptions = {
    ...callerOptions,
    onIssue: (issue) => {
      issueCount++;
      if (issues.length < 5) issues.push(issue);
      callerOptions.onIssue?.(issue);
    },
  };
  let chosen: DatasetFormat;
  let file: string | undefined;
  let detectedBy: string;
  if (format === 'auto') {
    const detected = await detectFormat(real);
    chosen = detected.format;
    file = detected.file;
    detectedBy = detected.reason;
  } else {
    chosen = format;
    detectedBy = 'chosen with --format';
    const info = await stat(real);
    const kind = nonRegularKind(info);
    if (kind && kind.reason !== 'directory') throw new UserFileError(input, kind.reason, kind.what);
    if (info.isFile()) file = real;
    else if (chosen === 'manifest') {
      // Chosen explicitly: the first manifest name present is read, whatever it is (a directory says so).
      for (const name of MANIFEST_NAMES) if (!file && existsSync(path.join(real, name))) file = path.join(real, name);
    }
  }
  let dataset: Dataset;
  switch (chosen) {
    case 'folder':
      dataset = await readFolderDataset(real, options);
      break;
    case 'manifest':
      if (!file) throw new NatixError(`No manifest file in ${input} (looked for ${MANIFEST_NAMES.join(', ')})`, {code: 'DATASET_EMPTY'});
      dataset = await readManifestDataset(file, options);
      break;
    case 'parquet':
      dataset = await readParquetDataset(file ?? real, options);
      break;
    case 'yolo': {
      const yamlFile = file ?? ['data.yaml', 'data.yml', 'dataset.yaml'].map((n) => path.join(real, n)).find((f) => existsSync(f));
      if (!yamlFile) throw new NatixError(`No data.yaml in ${input}`, {code: 'DATASET_EMPTY', exitCode: ExitCode.Usage});
      dataset = await readYoloDataset(yamlFile, options);
      break;
    }
    case 'coco': {
      // A folder: every COCO JSON in it or in annotations/ (e.g. instances_train.json + instances_val.json).
      const files = file && !(await stat(file)).isDirectory() ? [file] : await cocoFilesIn(real);
      if (files.length === 0) throw new NatixError(`No COCO JSON in ${input}`, {code: 'DATASET_EMPTY', exitCode: ExitCode.Usage, actions: ['Pass the annotations JSON file itself.']});
      const parts = await Promise.all(files.map((f) => readCocoDataset(f, options)));
      dataset = {
        format: 'coco',
        root: parts[0]!.root,
        classNames: parts[0]!.classNames,
        async *samples() {
          for (const part of parts) yield* part.samples();
        },
      };
      break;
    }
  }
  const read = dataset.samples.bind(dataset);
  const what = `${real} as ${chosen} (${detectedBy})${options.splits ? `, split ${options.splits.join('/')}` : ''}`;
  // Zero samples read is never a green result: every command gets the same usage error (exit 2).
  dataset.samples = async function* samples(): AsyncIterable<Sample> {
    let count = 0;
    for await (const sample of read()) {
      count++;
      yield sample;
    }
    if (count === 0) {
      const problems = issues.map((i) => `  ${i.message}`);
      throw new NatixError(
        `No images were read from ${what}${issueCount > 0 ? `; ${issueCount} problem(s) found on the way:\n${problems.join('\n')}${issueCount > problems.length ? `\n  ... and ${issueCount - problems.length} more` : ''}` : ''}`,
        {
          code: 'NO_SAMPLES',
          exitCode: ExitCode.Usage,
          actions: [format === 'auto' ? 'Check the path: expected class folders, a flat folder of images, a manifest, parquet shards, a YOLO data.yaml or a COCO JSON.' : `Check --format ${format}: try --format auto.`],
          data: {root: real, format: chosen, detectedBy, issues: issueCount, firstIssues: issues},
        },
      );
    }
  };
  return Object.assign(dataset, {detectedBy}) as OpenedDataset;
}
