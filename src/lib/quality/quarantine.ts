/**
 * `--quarantine DIR`: COPIES (never moves) flagged files into DIR, keeping their relative paths, with a
 * `quarantine.json` manifest of why each was flagged. Rows inside parquet files are written out as image files.
 * The dataset is never written to: DIR is checked by the caller (assertOutsideDataset), and every folder made
 * inside DIR is checked again after it exists, so a symlink already inside DIR cannot redirect a copy into the
 * dataset. Files are written under a fresh temporary name and renamed, so a symlink at the target is replaced,
 * never followed.
 */
import {randomBytes} from 'node:crypto';
import {constants} from 'node:fs';
import {copyFile, mkdir, realpath, rename, rm, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {assertOutsideDataset} from '../data/safe-path.js';
import {ExitCode, NatixError} from '../errors.js';
import type {Finding, ImageRecord} from './validate.js';

function inside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Writes `source` (a file to copy, or data) to `target` without following a symlink already at `target`. */
async function writeNoFollow(target: string, source: {copyOf: string} | {data: string | Uint8Array}): Promise<void> {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    if ('copyOf' in source) await copyFile(source.copyOf, tmp, constants.COPYFILE_EXCL);
    else await writeFile(tmp, source.data, {flag: 'wx'});
    await rename(tmp, target);
  } catch (error) {
    await rm(tmp, {force: true});
    throw error;
  }
}

export async function quarantineFlagged(dir: string, findings: Finding[], records: ImageRecord[], datasetRoot?: string): Promise<{files: number; manifest: string}> {
  if (datasetRoot) assertOutsideDataset(dir, datasetRoot, '--quarantine');
  const byPath = new Map(records.map((r) => [r.path, r]));
  const reasons = new Map<string, Finding[]>();
  for (const f of findings) if (byPath.has(f.path)) reasons.set(f.path, [...(reasons.get(f.path) ?? []), f]);
  await mkdir(dir, {recursive: true});
  const realDir = await realpath(dir);
  if (datasetRoot) assertOutsideDataset(realDir, datasetRoot, '--quarantine');
  const entries: Array<{path: string; copy: string; checks: Array<{check: string; severity: string; message: string}>}> = [];
  for (const [rel, list] of reasons) {
    const record = byPath.get(rel)!;
    if (!record.source) continue;
    const target = path.join(realDir, 'files', rel.replace(/#(\d+)$/, '_row$1.img'));
    await mkdir(path.dirname(target), {recursive: true});
    const realParent = await realpath(path.dirname(target));
    if (!inside(realDir, realParent)) {
      throw new NatixError(`--quarantine: ${path.dirname(target)} resolves to ${realParent}, outside ${realDir} (a symlink inside the quarantine folder); nothing more was copied`, {code: 'OUTPUT_ESCAPE', exitCode: ExitCode.Usage});
    }
    await writeNoFollow(path.join(realParent, path.basename(target)), typeof record.source === 'string' ? {copyOf: record.source} : {data: record.source});
    entries.push({path: rel, copy: path.relative(realDir, target).split(path.sep).join('/'), checks: list.map((f) => ({check: f.check, severity: f.severity, message: f.message}))});
  }
  const manifest = path.join(realDir, 'quarantine.json');
  await writeNoFollow(manifest, {data: `${JSON.stringify({created: new Date().toISOString(), files: entries}, null, 2)}\n`});
  return {files: entries.length, manifest};
}
