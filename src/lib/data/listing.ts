/**
 * Listing dataset folders without leaving the root and without crashing: a folder that cannot be read (chmod 000,
 * a symlink loop) is an issue, a symlinked folder that points outside the root is a `path-escape` issue and is
 * never listed, and every entry whose name looks like an image is returned whatever its type (a directory or a
 * FIFO named `x.jpg` is refused later, when it is opened, as a finding on its own path).
 */
import {readdirSync, realpathSync, statSync, type Dirent} from 'node:fs';
import path from 'node:path';
import {describeFsError} from '../util/user-files.js';
import {relativePosix} from './safe-path.js';
import type {DataIssue} from './sample.js';

export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp'] as const;
export const IMAGE_NAME = new RegExp(`\\.(${IMAGE_EXTENSIONS.join('|')})$`, 'i');

function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export interface Listing {
  /** Sub-folder names (symlinked ones only when they resolve inside the root), sorted. */
  dirs: string[];
  /** Names that match the wanted pattern (images by default; any file type), not hidden, sorted. */
  images: string[];
}

/**
 * Lists `dir` (absolute, inside the real `root`); problems go to `issue` with paths relative to the root.
 * Returns empty lists when the folder cannot be read.
 */
export function listFolder(root: string, dir: string, issue: (i: DataIssue) => void, wanted: RegExp = IMAGE_NAME): Listing {
  const rel = relativePosix(root, dir) || '.';
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, {withFileTypes: true});
  } catch (error) {
    const {what} = describeFsError(error);
    issue({check: 'unreadable', path: rel, message: `folder ${rel} ${what}`});
    return {dirs: [], images: []};
  }
  const dirs: string[] = [];
  const images: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const full = path.join(dir, e.name);
    const entryRel = relativePosix(root, full);
    if (e.isSymbolicLink()) {
      let real: string;
      try {
        real = realpathSync(full);
      } catch (error) {
        const {reason, what} = describeFsError(error);
        // A dangling link named like an image is still a finding when opened; one named like a folder is noise.
        if (reason === 'loop') issue({check: 'unreadable', path: entryRel, message: `${entryRel} ${what}`});
        else if (wanted.test(e.name)) images.push(e.name);
        continue;
      }
      let isDir = false;
      try {
        isDir = statSync(real).isDirectory();
      } catch {
        // raced away: treat as a file, refused when opened
      }
      if (isDir) {
        if (!isInside(root, real)) {
          issue({check: 'path-escape', path: entryRel, message: `Folder "${entryRel}" is a symlink pointing outside the dataset root; it was not listed.`});
          continue;
        }
        dirs.push(e.name);
      } else if (wanted.test(e.name)) {
        images.push(e.name); // a file link: vetted by resolveInsideRoot before use
      }
      continue;
    }
    if (e.isDirectory() && !wanted.test(e.name)) dirs.push(e.name);
    else if (wanted.test(e.name)) images.push(e.name);
  }
  return {dirs: dirs.sort(), images: images.sort()};
}

/**
 * Entries under `dir` whose names match `wanted` (images by default), recursively up to `maxDepth` folders deep
 * (symlinked folders are not followed), as sorted root-relative paths.
 */
export function walkFiles(root: string, dir: string, issue: (i: DataIssue) => void, wanted: RegExp = IMAGE_NAME, maxDepth = Infinity): string[] {
  const out: string[] = [];
  const visit = (current: string, depth: number): void => {
    const {dirs, images} = listFolder(root, current, issue, wanted);
    for (const name of images) out.push(relativePosix(root, path.join(current, name)));
    if (depth >= maxDepth) return;
    for (const name of dirs) {
      const sub = path.join(current, name);
      let link = false;
      try {
        link = realpathSync(sub) !== sub;
      } catch {
        link = true;
      }
      if (!link) visit(sub, depth + 1);
    }
  };
  visit(dir, 0);
  return out.sort();
}
