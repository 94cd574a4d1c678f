/**
 * Resolving user-supplied paths (manifest rows, label files, COCO file names) against a dataset root without
 * ever opening anything outside it: `..` escapes, absolute paths and symlinks pointing outside are refused.
 */
import {realpathSync} from 'node:fs';
import path from 'node:path';
import {ExitCode, NatixError} from '../errors.js';

export class PathEscapeError extends NatixError {
  constructor(
    readonly requested: string,
    reason: string,
  ) {
    super(`Path "${requested}" ${reason}; it was not opened.`, {
      code: 'PATH_ESCAPE',
      exitCode: ExitCode.CheckFailed,
      actions: ['Use paths relative to the dataset root that stay inside it.'],
    });
    this.name = 'PathEscapeError';
  }
}

function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Returns the absolute path of `requested` inside `root` (which must already be a real path), or throws
 * PathEscapeError. A path that does not exist is resolved lexically (the caller's open will fail normally);
 * one that exists is resolved through symlinks and must still be inside the root.
 */
export function resolveInsideRoot(root: string, requested: string): string {
  if (requested.includes('\0')) throw new PathEscapeError(requested, 'contains a NUL byte');
  const normalised = requested.replaceAll('\\', '/');
  if (path.isAbsolute(normalised) || /^[a-zA-Z]:\//.test(normalised)) {
    throw new PathEscapeError(requested, 'is absolute');
  }
  const lexical = path.resolve(root, normalised);
  if (!isInside(root, lexical)) throw new PathEscapeError(requested, 'leaves the dataset root');
  let real: string;
  try {
    real = realpathSync.native(lexical); // one realpath(3) call: the JS fallback lstat()s every component from JS
  } catch {
    return lexical;
  }
  if (!isInside(root, real)) throw new PathEscapeError(requested, 'is a symlink pointing outside the dataset root');
  return real;
}

/** The posix path of `abs` relative to `root`, for ids and reports. */
export function relativePosix(root: string, abs: string): string {
  return path.relative(root, abs).split(path.sep).join('/');
}

/** The real path of a dataset root, with a clear error when it does not exist. */
export function realRoot(root: string): string {
  try {
    return realpathSync(path.resolve(root));
  } catch {
    throw new NatixError(`Dataset not found: ${root}`, {
      code: 'DATASET_NOT_FOUND',
      exitCode: ExitCode.Usage,
      actions: ['Check the path, or make a sample with `natix datasets synth --out DIR`.'],
    });
  }
}

/**
 * The real location `output` would be written to: the real path of its nearest existing ancestor (symlinks
 * resolved) joined with the part that does not exist yet.
 */
export function realOutputPath(output: string): string {
  let existing = path.resolve(output);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(realpathSync(existing), ...rest.reverse());
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) return path.join(existing, ...rest.reverse());
      rest.push(path.basename(existing));
      existing = parent;
    }
  }
}

/**
 * The guard every command that writes files calls for each output path when it reads a dataset: the output,
 * resolved through symlinks, must not be inside the dataset root (natix never writes into a dataset).
 * Returns the absolute path to write to; throws a usage error (exit 2) naming the flag otherwise.
 */
export function assertOutsideDataset(output: string, datasetRoot: string, flag: string): string {
  const absolute = path.resolve(output);
  const real = realOutputPath(absolute);
  let root: string;
  try {
    root = realpathSync(datasetRoot);
  } catch {
    root = path.resolve(datasetRoot);
  }
  if (isInside(root, real) || isInside(root, absolute)) {
    throw new NatixError(`${flag} ${output} resolves to ${real}, inside the dataset ${root}: natix never writes into a dataset`, {
      code: 'OUTPUT_INSIDE_DATASET',
      exitCode: ExitCode.Usage,
      actions: [`Choose a ${flag} path outside ${root}.`],
      data: {flag, output, resolved: real, dataset: root},
    });
  }
  return absolute;
}
