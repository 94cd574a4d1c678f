/**
 * `--quarantine DIR`: COPIES (never moves) flagged files into DIR, keeping their relative paths, with a
 * `quarantine.json` manifest of why each was flagged. Rows inside parquet files are written out as image files.
 */
import {copyFile, mkdir, writeFile} from 'node:fs/promises';
import path from 'node:path';
import type {Finding, ImageRecord} from './validate.js';

export async function quarantineFlagged(dir: string, findings: Finding[], records: ImageRecord[]): Promise<{files: number; manifest: string}> {
  const byPath = new Map(records.map((r) => [r.path, r]));
  const reasons = new Map<string, Finding[]>();
  for (const f of findings) if (byPath.has(f.path)) reasons.set(f.path, [...(reasons.get(f.path) ?? []), f]);
  await mkdir(dir, {recursive: true});
  const entries: Array<{path: string; copy: string; checks: Array<{check: string; severity: string; message: string}>}> = [];
  for (const [rel, list] of reasons) {
    const record = byPath.get(rel)!;
    if (!record.source) continue;
    const target = path.join(dir, 'files', rel.replace(/#(\d+)$/, '_row$1.img'));
    await mkdir(path.dirname(target), {recursive: true});
    if (typeof record.source === 'string') await copyFile(record.source, target);
    else await writeFile(target, record.source);
    entries.push({path: rel, copy: path.relative(dir, target).split(path.sep).join('/'), checks: list.map((f) => ({check: f.check, severity: f.severity, message: f.message}))});
  }
  const manifest = path.join(dir, 'quarantine.json');
  await writeFile(manifest, `${JSON.stringify({created: new Date().toISOString(), files: entries}, null, 2)}\n`);
  return {files: entries.length, manifest};
}
