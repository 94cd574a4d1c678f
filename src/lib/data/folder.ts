/**
 * Class-folder datasets: `root/[train|val|test/]<class>/*.{jpg,jpeg,png,webp}`.
 * Split folders are recognised by name (train, val/valid/validation, test); class folder names map to labels by
 * the rule in labels.ts. Files are yielded in sorted order; a symlink leaving the root is reported, never read.
 */
import {readdir, stat} from 'node:fs/promises';
import path from 'node:path';
import fg from 'fast-glob';
import {labelForClassName, namesByLabel} from './labels.js';
import {PathEscapeError, relativePosix, resolveInsideRoot} from './safe-path.js';
import type {Dataset, ReaderOptions, Sample} from './sample.js';

export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp'] as const;

const SPLIT_ALIASES: Record<string, string> = {train: 'train', val: 'val', valid: 'val', validation: 'val', test: 'test'};

/** The canonical split name of a folder name, or undefined. */
export function splitForFolder(name: string): string | undefined {
  return SPLIT_ALIASES[name.toLowerCase()];
}

/** Sub-folders of `dir`, symlinked ones included (they are checked against the root before use). */
async function subdirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, {withFileTypes: true});
  const names: string[] = [];
  for (const e of entries) {
    if (e.isDirectory()) names.push(e.name);
    else if (e.isSymbolicLink()) {
      try {
        if ((await stat(path.join(dir, e.name))).isDirectory()) names.push(e.name);
      } catch {
        // dangling link: nothing to list
      }
    }
  }
  return names.sort();
}

const IMAGE_NAME = new RegExp(`\\.(${IMAGE_EXTENSIONS.join('|')})$`, 'i');

/** Image files of a class folder: regular files and symlinks (symlinks are vetted by resolveInsideRoot later). */
async function imageFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, {withFileTypes: true});
  return entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && !e.name.startsWith('.') && IMAGE_NAME.test(e.name))
    .map((e) => e.name)
    .sort();
}

/** True when `root` looks like a class-folder dataset (class dirs, optionally under split dirs, holding images). */
export async function looksLikeFolderDataset(root: string): Promise<boolean> {
  const files = await fg(`*/{,*/}*.{${IMAGE_EXTENSIONS.join(',')}}`, {cwd: root, caseSensitiveMatch: false, deep: 3, onlyFiles: true});
  return files.length > 0;
}

export async function readFolderDataset(root: string, options: ReaderOptions = {}): Promise<Dataset> {
  const top = await subdirs(root);
  const splitDirs = top.filter((d) => splitForFolder(d));
  const layout: Array<{split?: string; dir: string}> =
    splitDirs.length > 0 ? splitDirs.map((d) => ({split: splitForFolder(d), dir: d})) : [{dir: ''}];
  const wanted = options.splits;
  const classNames = new Map<number, string>();

  // Listing is cheap next to decoding; do it up front so the order is stable and counts are known.
  const entries: Array<{rel: string; split?: string; className: string}> = [];
  for (const {split, dir} of layout) {
    if (wanted && (!split || !wanted.includes(split))) continue;
    const base = path.join(root, dir);
    for (const className of await subdirs(base)) {
      for (const f of await imageFiles(path.join(base, className))) entries.push({rel: path.posix.join(dir, className, f), split, className});
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
            options.onIssue?.({check: 'path-escape', path: entry.rel, message: error.message});
            continue;
          }
          throw error;
        }
        const label = labelForClassName(entry.className, options.classMap);
        if (label === undefined) {
          options.onIssue?.({
            check: 'label-class-unknown',
            path: entry.rel,
            message: `Class folder "${entry.className}" has no label (use --class-map ${entry.className}=N)`,
          });
        } else if (!classNames.has(label)) {
          classNames.set(label, entry.className);
        }
        yield {
          id: entry.rel,
          path: relativePosix(root, path.join(root, entry.rel)),
          absPath,
          label: label ?? null,
          labelName: entry.className,
          split: entry.split,
          metadata: {},
        };
      }
    },
  };
}
