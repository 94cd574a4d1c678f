/**
 * Choosing and using a tracker: `--tracking-uri` / MLFLOW_TRACKING_URI (flag wins; default `./mlruns` under the
 * explicit working folder) -> the file store for a path or file: URI, the REST API for http(s)://.
 * MLFLOW_EXPERIMENT_NAME names the experiment when no flag does. Credentials: MLFLOW_TRACKING_TOKEN or
 * MLFLOW_TRACKING_USERNAME/PASSWORD, from the environment only.
 */
import {readFile} from 'node:fs/promises';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {ExitCode, NatixError} from '../errors.js';
import {FileStoreTracker} from './file-store.js';
import {MlflowRestClient, RestTracker} from './rest.js';
import {markReplayed, readSpool} from './spool.js';
import type {Tracker} from './types.js';

export * from './types.js';
export {FileStoreTracker} from './file-store.js';
export {RestTracker, MlflowRestClient, LOG_BATCH_LIMITS, logBatchBodies} from './rest.js';

export interface TrackerOptions {
  /** --tracking-uri; falls back to MLFLOW_TRACKING_URI, then ./mlruns. */
  uri?: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  warn: (message: string) => void;
  timeoutMs?: number;
  retries?: number;
}

export function spoolDir(cwd: string): string {
  return path.join(cwd, '.natix', 'mlflow-spool');
}

export function openTracker(options: TrackerOptions): Tracker {
  const uri = options.uri ?? options.env.MLFLOW_TRACKING_URI ?? 'mlruns';
  if (/^https?:\/\//i.test(uri)) {
    return new RestTracker({baseUrl: uri, env: options.env, timeoutMs: options.timeoutMs, retries: options.retries, spoolDir: spoolDir(options.cwd), warn: options.warn});
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri) && !uri.startsWith('file:')) {
    throw new NatixError(`Unsupported tracking URI ${uri}`, {code: 'USAGE', exitCode: ExitCode.Usage, actions: ['Use a folder, a file: URI, or an http(s):// MLflow server.']});
  }
  return new FileStoreTracker(uri.startsWith('file:') ? fileURLToPath(uri) : path.resolve(options.cwd, uri));
}

export function experimentName(flag: string | undefined, env: NodeJS.ProcessEnv, fallback: string): string {
  return flag ?? env.MLFLOW_EXPERIMENT_NAME ?? fallback;
}

/** The current git commit of `cwd`, read from .git without spawning git; undefined outside a repository. */
export async function gitCommit(cwd: string): Promise<string | undefined> {
  let dir = path.resolve(cwd);
  for (;;) {
    try {
      const head = (await readFile(path.join(dir, '.git', 'HEAD'), 'utf8')).trim();
      if (!head.startsWith('ref: ')) return head;
      const ref = head.slice(5);
      try {
        return (await readFile(path.join(dir, '.git', ref), 'utf8')).trim();
      } catch {
        const packed = await readFile(path.join(dir, '.git', 'packed-refs'), 'utf8').catch(() => '');
        return packed.split('\n').find((l) => l.endsWith(` ${ref}`))?.split(' ')[0];
      }
    } catch {
      const parent = path.dirname(dir);
      if (parent === dir) return undefined;
      dir = parent;
    }
  }
}

export interface SyncResult {
  runs: number;
  replayed: number;
  failed: Array<{runId: string; error: string}>;
}

/** Replays every spooled run to `uri` (a REST server); each fully replayed run file is marked done. */
export async function syncSpool(options: TrackerOptions & {uri: string}): Promise<SyncResult> {
  const client = new MlflowRestClient({baseUrl: options.uri, env: options.env, timeoutMs: options.timeoutMs, retries: options.retries});
  const result: SyncResult = {runs: 0, replayed: 0, failed: []};
  for (const run of await readSpool(spoolDir(options.cwd))) {
    result.runs++;
    try {
      let runId = run.entries.find((e) => e.serverRunId)?.serverRunId;
      let artifactUri = run.entries.find((e) => e.artifactUri)?.artifactUri ?? '';
      for (const entry of run.entries) {
        if (entry.call === 'create') {
          const body = entry.body as {experimentName: string; runName: string; tags: Record<string, string>; startTime: number};
          const experimentId = await client.getOrCreateExperiment(body.experimentName);
          ({runId, artifactUri} = await client.createRun(experimentId, body.runName, body.tags, body.startTime));
          continue;
        }
        if (!runId) throw new Error('spool has calls but no run to attach them to');
        await client.replay(entry, runId, artifactUri);
        result.replayed++;
      }
      await markReplayed(run);
    } catch (error) {
      result.failed.push({runId: run.runId, error: (error as Error).message});
    }
  }
  return result;
}
