/**
 * What the two local stores (SQLite and `mlruns/`) share: the standard run tags MLflow's client sets, and copying
 * artifacts into a run's artifact folder.
 */
import {randomUUID} from 'node:crypto';
import {copyFile, cp, mkdir, stat} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {ExitCode, NatixError} from '../errors.js';
import type {StartRunOptions} from './types.js';

export function currentUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** The tags MLflow's client puts on every run (`mlflow.source.name` names the program, as MLflow does). */
export function standardTags(options: StartRunOptions, user: string): Record<string, string> {
  return {'mlflow.runName': options.runName, 'mlflow.user': user, 'mlflow.source.type': 'LOCAL', 'mlflow.source.name': 'natix', ...options.tags};
}

/** Copies a file, or a folder recursively, to `<artifactsDir>/<artifactPath>/<basename>`. */
export async function copyArtifacts(artifactsDir: string, localPath: string, artifactPath = ''): Promise<void> {
  const target = path.join(artifactsDir, ...artifactPath.split('/').filter((s) => s && s !== '.' && s !== '..'));
  await mkdir(target, {recursive: true});
  if ((await stat(localPath)).isDirectory()) await cp(localPath, path.join(target, path.basename(localPath)), {recursive: true});
  else await copyFile(localPath, path.join(target, path.basename(localPath)));
}

/** A 32-hex-digit run id, as MLflow makes them. */
export function newRunId(): string {
  return randomUUID().replaceAll('-', '');
}

/**
 * MLflow's rules for a registered model name (no path separators: the file registry makes it a folder) and an alias
 * (`^[\w-]*$`, at most 255 characters, not `latest`, not a version alias like `v3`).
 */
export function checkRegistration(name: string, alias?: string): void {
  if (!name || /[/\\]/.test(name) || name === '.' || name === '..') throw new NatixError(`Invalid registered model name "${name}": it must be non-empty, without path separators`, {code: 'USAGE', exitCode: ExitCode.Usage});
  if (alias !== undefined && (!/^[\w-]{1,255}$/.test(alias) || alias.toLowerCase() === 'latest' || /^[vV]\d+$/.test(alias))) {
    throw new NatixError(`Invalid model alias "${alias}": letters, digits, _ and - only; "latest" and "v<N>" are reserved`, {code: 'USAGE', exitCode: ExitCode.Usage});
  }
}
