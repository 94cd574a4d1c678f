/**
 * The local spool of MLflow calls that could not reach the server: one JSON-lines file per run under the spool
 * folder, replayed in order by `natix tracking sync`. A replayed file is renamed `.done`, so a sync is idempotent.
 */
import {appendFile, mkdir, readdir, readFile, rename} from 'node:fs/promises';
import path from 'node:path';

export interface SpoolEntry {
  call: 'create' | 'log-batch' | 'set-tag' | 'update' | 'artifact' | 'register';
  body: unknown;
  /** When the run exists on the server already (it failed later): its id and artifact URI. */
  serverRunId?: string;
  artifactUri?: string;
}

export class Spool {
  constructor(
    readonly dir: string,
    readonly serverUrl: string,
  ) {}

  async append(runId: string, entry: SpoolEntry): Promise<void> {
    await mkdir(this.dir, {recursive: true});
    await appendFile(path.join(this.dir, `${runId}.jsonl`), `${JSON.stringify({...entry, server: this.serverUrl, time: Date.now()})}\n`);
  }
}

export interface SpooledRun {
  file: string;
  runId: string;
  entries: Array<SpoolEntry & {server: string; time: number}>;
}

export async function readSpool(dir: string): Promise<SpooledRun[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const runs: SpooledRun[] = [];
  for (const name of names.filter((n) => n.endsWith('.jsonl')).sort()) {
    const file = path.join(dir, name);
    const entries = (await readFile(file, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as SpooledRun['entries'][number]);
    runs.push({file, runId: name.replace(/\.jsonl$/, ''), entries});
  }
  return runs;
}

export async function markReplayed(run: SpooledRun): Promise<void> {
  await rename(run.file, `${run.file}.done`);
}
