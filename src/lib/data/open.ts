/**
 * Opening a dataset of any supported layout behind the one `Dataset` interface, with `--format auto` detection.
 * Detection order: a manifest file (or a folder holding one), parquet file(s), a YOLO `data.yaml`, a COCO JSON,
 * then class folders.
 */
import {stat} from 'node:fs/promises';
import path from 'node:path';
import {ExitCode, NatixError} from '../errors.js';
import {looksLikeFolderDataset, readFolderDataset} from './folder.js';
import {MANIFEST_NAMES, readManifestDataset} from './manifest.js';
import {realRoot} from './safe-path.js';
import type {Dataset, DatasetFormat, ReaderOptions} from './sample.js';

export type FormatChoice = DatasetFormat | 'auto';
export const DATASET_FORMATS: FormatChoice[] = ['auto', 'folder', 'manifest', 'parquet', 'yolo', 'coco'];

export interface OpenedDataset extends Dataset {
  /** How the format was chosen, for the "detected X because Y" line. */
  detectedBy: string;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Decides the layout of `input` (a folder or a file) and says why. */
export async function detectFormat(input: string): Promise<{format: DatasetFormat; file?: string; reason: string}> {
  const info = await stat(input);
  if (info.isFile()) {
    if (/\.(csv|jsonl|ndjson)$/i.test(input)) return {format: 'manifest', file: input, reason: 'a CSV/JSON-lines file'};
    if (/\.parquet$/i.test(input)) return {format: 'parquet', file: input, reason: 'a .parquet file'};
    if (/\.ya?ml$/i.test(input)) return {format: 'yolo', file: input, reason: 'a YOLO data.yaml'};
    if (/\.json$/i.test(input)) return {format: 'coco', file: input, reason: 'a COCO JSON file'};
    throw new NatixError(`Cannot tell the dataset format of ${input}`, {code: 'FORMAT_UNKNOWN', actions: ['Pass --format.']});
  }
  for (const name of MANIFEST_NAMES) {
    const file = path.join(input, name);
    if (await exists(file)) return {format: 'manifest', file, reason: `found ${name}`};
  }
  const fg = (await import('fast-glob')).default;
  if ((await fg('{,data/,*/}*.parquet', {cwd: input, deep: 2})).length > 0) return {format: 'parquet', reason: 'found *.parquet files'};
  for (const name of ['data.yaml', 'data.yml', 'dataset.yaml']) {
    if (await exists(path.join(input, name))) return {format: 'yolo', file: path.join(input, name), reason: `found ${name}`};
  }
  const cocoFiles = await fg('{,annotations/}*.json', {cwd: input, deep: 2});
  const coco = cocoFiles.find((f) => /instances|annotations|coco/i.test(f)) ?? (cocoFiles.length === 1 ? cocoFiles[0] : undefined);
  if (coco) return {format: 'coco', file: path.join(input, coco), reason: `found ${coco}`};
  if (await looksLikeFolderDataset(input)) return {format: 'folder', reason: 'found class folders with images'};
  throw new NatixError(`No dataset found in ${input}`, {
    code: 'DATASET_EMPTY',
    exitCode: ExitCode.Usage,
    actions: ['Expected class folders, a manifest.csv/.jsonl, *.parquet, a YOLO data.yaml or a COCO JSON.', 'Pass --format to choose.'],
  });
}

/** Opens `input` as a dataset; `format` 'auto' detects it. */
export async function openDataset(input: string, format: FormatChoice = 'auto', options: ReaderOptions = {}): Promise<OpenedDataset> {
  const real = realRoot(input);
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
    if ((await stat(real)).isFile()) file = real;
    else if (chosen === 'manifest') {
      for (const name of MANIFEST_NAMES) if (!file && (await exists(path.join(real, name)))) file = path.join(real, name);
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
    default:
      throw new NatixError(`The ${chosen} reader is not available in this build`, {code: 'FORMAT_UNSUPPORTED', exitCode: ExitCode.Usage});
  }
  return Object.assign(dataset, {detectedBy}) as OpenedDataset;
}
