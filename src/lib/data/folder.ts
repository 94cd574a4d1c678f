/**
 * Class-folder datasets: `root/[train|val|test/]<class>/*.{jpg,jpeg,png,webp}`, and flat folders of unlabelled
 * photos (`root/*.jpg`: label unknown). Split folders are recognised by name (train, val/valid/validation/dev,
 * test/eval, as Hugging Face maps them); class folder names map to labels by the rule in labels.ts. Files are
 * yielded in sorted order; a symlink (file or folder) leaving the root is reported, never read or listed.
 */
import path from 'node:path';
import fg from 'fast-glob';
import {labelForClassName, namesByLabel} from './labels.js';
import {IMAGE_EXTENSIONS, listFolder} from './listing.js';
import {PathEscapeError, relativePosix, resolveInsideRoot} from './safe-path.js';
import type {DataIssue, Dataset, ReaderOptions, Sample} from './sample.js';

export {IMAGE_EXTENSIONS} from './listing.js';

/** Split names as Hugging Face `datasets` maps them (train / validation / test), natix spelling `val`. */
const SPLIT_ALIASES: Record<string, string> = {
  train: 'train',
  training: 'train',
  val: 'val',
  valid: 'val',
  validation: 'val',
  dev: 'val',
  test: 'test',
  testing: 'test',
  eval: 'test',
  evaluation: 'test',
};

/** The canonical split name of a folder name, or undefined. */
export function splitForFolder(name: string): string | undefined {
  return SPLIT_ALIASES[name.toLowerCase()];
}

/** True when `root` looks like a class-folder dataset (class dirs, optionally under split dirs, holding images) or a flat folder of images. */
export async function looksLikeFolderDataset(root: string): Promise<boolean> {
  const files = await fg(`{,*/,*/*/}*.{${IMAGE_EXTENSIONS.join(',')}}`, {cwd: root, caseSensitiveMatch: false, deep: 3, onlyFiles: false, suppressErrors: true});
  return files.length > 0;
}

export async function readFolderDataset(root: string, options: ReaderOptions = {}): Promise<Dataset> {
  const issue = (i: DataIssue): void => options.onIssue?.(i);
  const top = listFolder(root, root, issue);
  const splitDirs = top.dirs.filter((d) => splitForFolder(d));
  const layout: Array<{split?: string; dir: string}> =
    splitDirs.length > 0 ? splitDirs.map((d) => ({split: splitForFolder(d), dir: d})) : [{dir: ''}];
  const wanted = options.splits;
  const classNames = new Map<number, string>();

  // Listing is cheap next to decoding; do it up front so the order is stable and counts are known.
  const entries: Array<{rel: string; split?: string; className?: string}> = [];
  for (const {split, dir} of layout) {
    if (wanted && (!split || !wanted.includes(split))) continue;
    const base = path.join(root, dir);
    const listing = dir === '' ? top : listFolder(root, base, issue);
    for (const className of listing.dirs) {
      for (const f of listFolder(root, path.join(base, className), issue).images) entries.push({rel: path.posix.join(dir, className, f), split, className});
    }
  }
  // Images directly in the root: a flat folder of unlabelled photos (label unknown). Next to class folders they
  // are reported: such a file has no class.
  const flat = !wanted && splitDirs.length === 0;
  if (flat) {
    const classified = entries.length > 0;
    for (const f of top.images) {
      if (classified) issue({check: 'label-missing', path: f, message: `${f} is not inside a class folder: its label is unknown`});
      entries.push({rel: f});
    }
  }

  return {
    format: 'folder',
    root,
    get classNames() {
      return namesByLabel(classNames);
    },
    async *samples(): AsyncIterable<Sample> {
      for (const entry of entries) {
        let absPath: string;
        try {
          absPath = resolveInsideRoot(root, entry.rel);
        } catch (error) {
          if (error instanceof PathEscapeError) {
            issue({check: 'path-escape', path: entry.rel, message: error.message});
            continue;
          }
          throw error;
        }
        const label = entry.className === undefined ? undefined : labelForClassName(entry.className, options.classMap);
        if (entry.className !== undefined && label === undefined) {
          issue({
            check: 'label-class-unknown',
            path: entry.rel,
            message: `Class folder "${entry.className}" has no label (use --class-map ${entry.className}=N)`,
          });
        } else if (label !== undefined && !classNames.has(label)) {
          classNames.set(label, entry.className!);
        }
        yield {
          id: entry.rel,
          path: relativePosix(root, path.join(root, entry.rel)),
          absPath,
          label: label ?? null,
          ...(entry.className === undefined ? {} : {labelName: entry.className}),
          split: entry.split,
          metadata: {},
        };
      }
    },
  };
}
