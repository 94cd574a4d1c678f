/**
 * The local spool of MLflow calls that could not reach the server: one JSON-lines file per run under the spool
 * folder, replayed in order by `natix tracking sync`. A replayed file is renamed `.done`, so a sync is idempotent.
 * Each line records the server address (without userinfo), so a sync needs no flag. A sync that fails half-way
 * records how far it got (`<run>.jsonl.progress`), so the next one neither creates the run again nor resends calls. A kill during an append can
 * leave a truncated last line: it is skipped with a note and the intact lines (and every other spool) replay.
 */
import {appendFile, mkdir, readdir, rename, rm} from 'node:fs/promises';
import path from 'node:path';
import {writeFileAtomic} from '../util/fs.js';
import {redactSecrets, stripUserinfo} from './redact.js';
import {readUserFile, UserFileError} from '../util/user-files.js';

export interface SpoolEntry {
  call: 'create' | 'log-batch' | 'set-tag' | 'update' | 'artifact' | 'register';
  body: unknown;
  /** When the run exists on the server already (it failed later): its id and artifact URI. */
  serverRunId?: string;
  artifactUri?: string;
}

export class Spool {
  readonly serverUrl: string;

  constructor(
    readonly dir: string,
    serverUrl: string,
  ) {
    this.serverUrl = stripUserinfo(serverUrl);
  }

  async append(runId: string, entry: SpoolEntry): Promise<void> {
    await mkdir(this.dir, {recursive: true});
    await appendFile(path.join(this.dir, `${runId}.jsonl`), `${JSON.stringify({...entry, server: this.serverUrl, time: Date.now()})}\n`);
  }
}

export interface SpooledRun {
  file: string;
  runId: string;
  /** The server the calls were meant for (the last recorded one). */
  server?: string;
  entries: Array<SpoolEntry & {server?: string; time?: number}>;
  /** Lines that could not be read (e.g. a truncated last line after a kill); the rest is replayed. */
  skipped: string[];
  /** Set when the file cannot be replayed at all (an unreadable file or a damaged line before the end). */
  error?: string;
}

const CALLS = new Set(['create', 'log-batch', 'set-tag', 'update', 'artifact', 'register']);

function parseLine(line: string): (SpoolEntry & {server?: string; time?: number}) | undefined {
  try {
    const value = JSON.parse(line) as unknown;
    if (value && typeof value === 'object' && CALLS.has((value as {call?: string}).call ?? '')) return value as SpoolEntry & {server?: string};
  } catch {
    // not JSON
  }
  return undefined;
}

/** Every spooled run, each read on its own: one bad file never hides the others. */
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
    const run: SpooledRun = {file, runId: name.replace(/\.jsonl$/, ''), entries: [], skipped: []};
    runs.push(run);
    let text: string;
    try {
      text = await readUserFile(file, 'utf8'); // regular files only: a FIFO is reported, not waited on
    } catch (error) {
      run.error = error instanceof UserFileError ? `cannot read ${name}: it ${error.what}` : `cannot read ${name}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
      continue;
    }
    const lines = text.split('\n');
    const complete = text.endsWith('\n');
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      const entry = parseLine(line);
      if (entry) {
        run.entries.push(entry);
        return;
      }
      const last = i === lines.length - 1 || (i === lines.length - 2 && complete);
      if (last) run.skipped.push(`${name}: line ${i + 1} is truncated (an interrupted write); skipped`);
      else run.error ??= `${name}: line ${i + 1} is damaged; the run is not replayed (fix or delete the line)`;
    });
    run.server = [...run.entries].reverse().find((e) => e.server)?.server;
    if (run.server) run.server = redactSecrets(stripUserinfo(run.server));
  }
  return runs;
}

/** How far a sync got with one spooled run: the server's run id and the number of lines already sent. */
export interface SyncProgress {
  serverRunId: string;
  artifactUri: string;
  done: number;
}

const progressFile = (run: SpooledRun): string => `${run.file}.progress`;

export async function readSyncProgress(run: SpooledRun): Promise<SyncProgress | undefined> {
  try {
    const value = JSON.parse(await readUserFile(progressFile(run), 'utf8')) as Partial<SyncProgress>;
    if (typeof value.serverRunId === 'string' && typeof value.done === 'number') return {serverRunId: value.serverRunId, artifactUri: String(value.artifactUri ?? ''), done: value.done};
  } catch {
    // no progress yet (or a damaged one: start over)
  }
  return undefined;
}

export async function writeSyncProgress(run: SpooledRun, progress: SyncProgress): Promise<void> {
  await writeFileAtomic(progressFile(run), JSON.stringify(progress));
}

export async function markReplayed(run: SpooledRun): Promise<void> {
  await rename(run.file, `${run.file}.done`);
  await rm(progressFile(run), {force: true});
}
