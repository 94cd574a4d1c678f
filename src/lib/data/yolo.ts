/**
 * YOLO detection datasets (Ultralytics conventions): `data.yaml` with `path`, `train`, `val`, `test` (folders or
 * .txt lists of images) and `names` (list or map); one `labels/.../<image>.txt` per image with rows
 * `class x_center y_center width height`, normalised to [0, 1]; no label file = background.
 * An image's label is 1 (roadwork) when it has at least one box, else 0. Label-file problems are reported as issues.
 */
import {realpathSync} from 'node:fs';
import {stat} from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import {ExitCode, NatixError} from '../errors.js';
import {describeFsError, readUserFile, UserFileError} from '../util/user-files.js';
import {walkFiles} from './listing.js';
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

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Parses one label file; returns boxes in pixels (when the size is known later) as normalised values here. */
export function parseYoloLabels(text: string, file: string, classes: number, issue: (i: DataIssue) => void): Array<{classId: number; xc: number; yc: number; w: number; h: number}> {
  const rows: Array<{classId: number; xc: number; yc: number; w: number; h: number}> = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((line, n) => {
    const trimmed = line.trim();
    if (trimmed === '') return;
    const parts = trimmed.split(/\s+/);
    const lineNo = n + 1;
    // Strict numbers: `0x1`, `1e400`, `Infinity` or `1_0` are findings, not values JavaScript happens to accept.
    if (parts.length !== 5 || !/^\d+$/.test(parts[0]!) || parts.slice(1).some((p) => !DECIMAL.test(p) || !Number.isFinite(Number(p)))) {
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

async function imagesOf(root: string, base: string, entry: string, issue: (i: DataIssue) => void, yamlRel: string): Promise<string[]> {
  let target: string;
  try {
    target = resolveInsideRoot(root, path.posix.join(base, entry.replaceAll('\\', '/')));
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
  } catch (error) {
    issue({check: 'label-malformed', path: yamlRel, value: entry, message: `${yamlRel}: "${entry}" ${describeFsError(error).what}`});
    return [];
  }
  if (info.isDirectory()) return walkFiles(root, target, issue);
  // A .txt list of image paths, relative to the dataset's `path`.
  let text: string;
  try {
    text = await readUserFile(target, 'utf8');
  } catch (error) {
    const listRel = relativePosix(root, target);
    issue({check: 'unreadable', path: listRel, value: entry, message: `${listRel} ${error instanceof UserFileError ? error.what : describeFsError(error).what}`});
    return [];
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => path.posix.join(base, l.replace(/^\.\//, '')));
}

export async function readYoloDataset(yamlFile: string, options: ReaderOptions = {}): Promise<Dataset> {
  // The dataset root is the yaml's folder: nothing outside it is ever opened, whatever `path:` says.
  const root = realpathSync(path.dirname(yamlFile));
  const yamlRel = relativePosix(root, path.join(root, path.basename(yamlFile)));
  let data: DataYaml;
  try {
    const parsed = YAML.parse(await readUserFile(yamlFile, 'utf8')) as unknown;
    data = (parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {}) as DataYaml;
  } catch (error) {
    if (error instanceof UserFileError) throw error;
    throw new NatixError(`${yamlRel}: not valid YAML: ${(error as Error).message}`, {code: 'CONFIG_PARSE', exitCode: ExitCode.Usage});
  }
  const issue = (i: DataIssue): void => options.onIssue?.(i);
  // `path:` (Ultralytics' dataset root) is honoured only inside the yaml's folder; an absolute one is ignored (it is
  // usually the author's machine), one that leaves the folder is a path-escape finding and nothing is read.
  let base = '';
  let escaped = false;
  if (typeof data.path === 'string' && data.path !== '' && !path.isAbsolute(data.path)) {
    try {
      base = relativePosix(root, resolveInsideRoot(root, data.path));
    } catch (error) {
      if (!(error instanceof PathEscapeError)) throw error;
      issue({check: 'path-escape', path: yamlRel, value: data.path, message: `${yamlRel}: path: ${error.message}`});
      escaped = true;
    }
  }
  const names = Array.isArray(data.names) ? data.names : Object.entries(data.names && typeof data.names === 'object' ? data.names : {}).sort((a, b) => Number(a[0]) - Number(b[0])).map(([, v]) => v);
  if (names.length === 0) issue({check: 'label-malformed', path: yamlRel, message: `${yamlRel}: no class names (names:)`});
  return {
    format: 'yolo',
    root,
    classNames: ['None', 'Roadwork'],
    async *samples(): AsyncIterable<Sample> {
      for (const split of ['train', 'val', 'test'] as const) {
        if (options.splits && !options.splits.includes(split)) continue;
        const entries = data[split];
        if (!entries || escaped) continue;
        for (const entry of Array.isArray(entries) ? entries : [entries]) {
          if (typeof entry !== 'string') {
            issue({check: 'label-malformed', path: yamlRel, value: entry, message: `${yamlRel}: ${split}: expected a folder or .txt list, got ${JSON.stringify(entry)}`});
            continue;
          }
          for (const rel of await imagesOf(root, base, entry, issue, yamlRel)) {
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
            let labelText: string | undefined;
            let labelUnreadable = false;
            try {
              labelText = await readUserFile(resolveInsideRoot(root, labelRel), 'utf8');
            } catch (error) {
              if (error instanceof PathEscapeError) issue({check: 'path-escape', path: labelRel, message: error.message});
              else if (error instanceof UserFileError && error.reason !== 'missing') {
                // A label file that exists but cannot be read is not "background": say what happened.
                issue({check: 'unreadable', path: labelRel, message: `label file ${labelRel} ${error.what}`});
                labelUnreadable = true;
              }
              // No label file: a background image, as Ultralytics reads it.
            }
            if (labelText !== undefined) rows = parseYoloLabels(labelText, labelRel, Math.max(1, names.length), issue);
            const boxes: Box[] = rows.map((r) => ({classId: r.classId, className: names[r.classId], x: r.xc - r.w / 2, y: r.yc - r.h / 2, width: r.w, height: r.h}));
            yield {id: rel, path: rel, absPath, label: labelUnreadable ? null : boxes.length > 0 ? 1 : 0, split, metadata: {labelFile: labelRel, normalisedBoxes: true}, boxes};
          }
        }
      }
    },
  };
}
