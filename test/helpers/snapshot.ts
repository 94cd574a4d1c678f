/** SHA-256 of every file under `dir` (symlinks not followed): to prove a command never wrote to a dataset. */
import {createHash} from 'node:crypto';
import {readFile} from 'node:fs/promises';
import path from 'node:path';
import fg from 'fast-glob';

export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of (await fg('**/*', {cwd: dir, dot: true, onlyFiles: true, followSymbolicLinks: false})).sort()) {
    out[f] = createHash('sha256').update(await readFile(path.join(dir, f))).digest('hex');
  }
  return out;
}
