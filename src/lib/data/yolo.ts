/**
 * YOLO detection datasets (Ultralytics conventions): `data.yaml` with `path`, `train`, `val`, `test` (folders or
 * .txt lists of images) and `names` (list or map); one `labels/.../<image>.txt` per image with rows
 * `class x_center y_center width height`, normalised to [0, 1]; no label file = background.
 * An image's label is 1 (roadwork) when it has at least one box, else 0. Label-file problems are reported as issues.
 */
import {readFile, stat} from 'node:fs/promises';
import path from 'node:path';
import fg from 'fast-glob';
import YAML from 'yaml';
import {ExitCode, NatixError} from '../errors.js';
import {IMAGE_EXTENSIONS} from './folder.js';
import {PathEscapeError, relativePosix, resolveInsideRoot} from './safe-path.js';
import type {Box, DataIssue, Dataset, ReaderOptions, Sample} from './sample.js';

interface DataYaml {
  path?: string;
  train?: string | string[];
  val?: string | string[];
  test?: string | string[];
  names?: string[] | Record<string, string>;
}

/** The label file of an image: the last `images` path segment replaced by `labels`, extension `.txt`. */
export function yoloLabelPath(imageRel: string): string {
  const parts = imageRel.split('/');
  const i = parts.lastIndexOf('images');
  if (i >= 0) parts[i] = 'labels';
  return parts.join('/').replace(/\.[^./]+$/, '.txt');
}

/** Parses one label file; returns boxes in pixels (when the size is known later) as normalised values here. */
export function parseYoloLabels(text: string, file: string, classes: number, issue: (i: DataIssue) => void): Array<{classId: number; xc: number; yc: number; w: number; h: number}> {
  const rows: Array<{classId: number; xc: number; yc: number; w: number; h: number}> = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((line, n) => {
    const trimmed = line.trim();
    if (trimmed === '') return;
    const parts = trimmed.split(/\s+/);
    const lineNo = n + 1;
    if (parts.length !== 5 || parts.some((p) => !Number.isFinite(Number(p)))) {
      issue({check: 'label-malformed', path: file, line: lineNo, value: trimmed, message: `${file}:${lineNo}: expected 5 numbers "class xc yc w h", got "${trimmed}"`});
      return;
    }
    const [c, xc, yc, w, h] = parts.map(Number) as [number, number, number, number, number];
    if (!Number.isInteger(c) || c < 0 || c >= classes) {
      issue({check: 'label-class-unknown', path: file, line: lineNo, value: c, message: `${file}:${lineNo}: class ${c} outside names (0..${classes - 1})`});
      return;
    }
    if (w <= 0 || h <= 0) {
      issue({check: 'box-degenerate', path: file, line: lineNo, value: [w, h], message: `${file}:${lineNo}: box width/height must be > 0 (got ${w} x ${h})`});
      return;
    }
    if ([xc, yc, w, h].some((v) => v < 0 || v > 1) || xc - w / 2 < -1e-6 || xc + w / 2 > 1 + 1e-6 || yc - h / 2 < -1e-6 || yc + h / 2 > 1 + 1e-6) {
      issue({check: 'box-out-of-bounds', path: file, line: lineNo, value: [xc, yc, w, h], message: `${file}:${lineNo}: box leaves the image (normalised values must stay in [0, 1])`});
    }
    const key = parts.join(' ');
    if (seen.has(key)) {
      issue({check: 'duplicate-box', path: file, line: lineNo, value: trimmed, message: `${file}:${lineNo}: duplicate of an earlier row`});
      return;
    }
    seen.add(key);
    rows.push({classId: c, xc, yc, w, h});
  });
  return rows;
}

async function imagesOf(root: string, entry: string, issue: (i: DataIssue) => void, yamlRel: string): Promise<string[]> {
  let target: string;
  try {
    target = resolveInsideRoot(root, entry);
  } catch (error) {
    if (error instanceof PathEscapeError) {
      issue({check: 'path-escape', path: yamlRel, value: entry, message: `${yamlRel}: ${error.message}`});
      return [];
    }
    throw error;
  }
  let info;
  try {
    info = await stat(target);
  } catch {
    issue({check: 'label-malformed', path: yamlRel, value: entry, message: `${yamlRel}: "${entry}" does not exist`});
    return [];
  }
  if (info.isDirectory()) {
    return (await fg(`**/*.{${IMAGE_EXTENSIONS.join(',')}}`, {cwd: target, caseSensitiveMatch: false, onlyFiles: false, followSymbolicLinks: false}))
      .sort()
      .map((f) => relativePosix(root, path.join(target, f)));
  }
  // A .txt list of image paths, relative to the dataset root.
  return (await readFile(target, 'utf8'))
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => l.replace(/^\.\//, ''));
}

export async function readYoloDataset(yamlFile: string, options: ReaderOptions = {}): Promise<Dataset> {
  const yamlDir = path.dirname(yamlFile);
  let data: DataYaml;
  try {
    data = (YAML.parse(await readFile(yamlFile, 'utf8')) ?? {}) as DataYaml;
  } catch (error) {
    throw new NatixError(`${path.basename(yamlFile)}: not valid YAML: ${(error as Error).message}`, {code: 'CONFIG_PARSE', exitCode: ExitCode.Usage});
  }
  // `path` may be absolute in Ultralytics files; natix only honours it inside the yaml's folder.
  const root = data.path && !path.isAbsolute(data.path) ? path.resolve(yamlDir, data.path) : yamlDir;
  const names = Array.isArray(data.names) ? data.names : Object.entries(data.names ?? {}).sort((a, b) => Number(a[0]) - Number(b[0])).map(([, v]) => v);
  const yamlRel = relativePosix(root, yamlFile);
  const issue = (i: DataIssue): void => options.onIssue?.(i);
  if (names.length === 0) issue({check: 'label-malformed', path: yamlRel, message: `${yamlRel}: no class names (names:)`});
  return {
    format: 'yolo',
    root,
    classNames: ['None', 'Roadwork'],
    async *samples(): AsyncIterable<Sample> {
      for (const split of ['train', 'val', 'test'] as const) {
        if (options.splits && !options.splits.includes(split)) continue;
        const entries = data[split];
        if (!entries) continue;
        for (const entry of Array.isArray(entries) ? entries : [entries]) {
          for (const rel of await imagesOf(root, entry, issue, yamlRel)) {
            let absPath: string;
            try {
              absPath = resolveInsideRoot(root, rel);
            } catch (error) {
              if (error instanceof PathEscapeError) {
                issue({check: 'path-escape', path: rel, message: error.message});
                continue;
              }
              throw error;
            }
            const labelRel = yoloLabelPath(rel);
            let rows: ReturnType<typeof parseYoloLabels> = [];
            try {
              const labelAbs = resolveInsideRoot(root, labelRel);
              rows = parseYoloLabels(await readFile(labelAbs, 'utf8'), labelRel, Math.max(1, names.length), issue);
            } catch (error) {
              if (error instanceof PathEscapeError) issue({check: 'path-escape', path: labelRel, message: error.message});
              // No label file: a background image, as Ultralytics reads it.
            }
            const boxes: Box[] = rows.map((r) => ({classId: r.classId, className: names[r.classId], x: r.xc - r.w / 2, y: r.yc - r.h / 2, width: r.w, height: r.h}));
            yield {id: rel, path: rel, absPath, label: boxes.length > 0 ? 1 : 0, split, metadata: {labelFile: labelRel, normalisedBoxes: true}, boxes};
          }
        }
      }
    },
  };
}
