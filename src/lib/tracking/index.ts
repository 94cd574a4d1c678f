/**
 * Choosing and using a tracker: `--tracking-uri` / MLFLOW_TRACKING_URI (flag wins; default `sqlite:///mlflow.db`
 * in the explicit working folder, as in MLflow) -> the SQLite store for sqlite:///, the `mlruns/` file store for a
 * path or file: URI, the REST API for http(s)://. MLFLOW_EXPERIMENT_NAME names the experiment when no flag does.
 * Credentials: MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD from the environment, or the URL's
 * userinfo (kept in memory, never printed or stored).
 */
import path from 'node:path';
import {FileStoreTracker} from './file-store.js';
import {redactSecrets} from './redact.js';
import {MlflowRestClient, RestTracker} from './rest.js';
import {markReplayed, readSpool, readSyncProgress, writeSyncProgress} from './spool.js';
import {SqliteStoreTracker} from './sqlite-store.js';
import type {Tracker} from './types.js';
import {resolveTrackingUri} from './uri.js';
import {readUserFile} from '../util/user-files.js';

export * from './types.js';
export {FileStoreTracker} from './file-store.js';
export {SqliteStoreTracker, sqlMetricValue} from './sqlite-store.js';
export {MLFLOW_SCHEMA_REVISION, MLFLOW_SCHEMA_RELEASE} from './sqlite-schema.js';
export {RestTracker, MlflowRestClient, LOG_BATCH_LIMITS, DEFAULT_TRACKING_DEADLINE_MS, logBatchBodies} from './rest.js';
export {redactSecrets, stripUserinfo} from './redact.js';
export {resolveTrackingUri, DEFAULT_TRACKING_URI} from './uri.js';

export interface TrackerOptions {
  /** --tracking-uri; falls back to MLFLOW_TRACKING_URI, then sqlite:///mlflow.db. */
  uri?: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  warn: (message: string) => void;
  /** Per-request timeout of the calls made in the background during a run (and by `tracking sync`). */
  timeoutMs?: number;
  retries?: number;
  /**
   * `--tracking-timeout`: how long run creation, and separately the final flush, may wait on an http(s) server in
   * all (default DEFAULT_TRACKING_DEADLINE_MS, 1 s); past it natix goes on with the local spool.
   */
  deadlineMs?: number;
  /** Overrides deadlineMs for run creation only (tests). */
  startDeadlineMs?: number;
  /** Overrides deadlineMs for the final flush only (tests). */
  endDeadlineMs?: number;
}

export function spoolDir(cwd: string): string {
  return path.join(cwd, '.natix', 'mlflow-spool');
}

export function openTracker(options: TrackerOptions): Tracker {
  const target = resolveTrackingUri(options.uri, options.cwd, options.env);
  switch (target.kind) {
    case 'rest':
      return new RestTracker({
        baseUrl: target.baseUrl,
        ...(target.credentials ? {credentials: target.credentials} : {}),
        env: options.env,
        timeoutMs: options.timeoutMs,
        retries: options.retries,
        startDeadlineMs: options.startDeadlineMs ?? options.deadlineMs,
        endDeadlineMs: options.endDeadlineMs ?? options.deadlineMs,
        spoolDir: spoolDir(options.cwd),
        warn: options.warn,
      });
    case 'sqlite': {
      const tracker = new SqliteStoreTracker(target.dbPath);
      tracker.open(); // refuse an incompatible database before any work starts
      return tracker;
    }
    case 'file':
      return new FileStoreTracker(target.root);
  }
}

export function experimentName(flag: string | undefined, env: NodeJS.ProcessEnv, fallback: string): string {
  return flag ?? env.MLFLOW_EXPERIMENT_NAME ?? fallback;
}

/** The current git commit of `cwd`, read from .git without spawning git; undefined outside a repository. */
export async function gitCommit(cwd: string): Promise<string | undefined> {
  let dir = path.resolve(cwd);
  for (;;) {
    try {
      const head = (await readUserFile(path.join(dir, '.git', 'HEAD'), 'utf8')).trim();
      if (!head.startsWith('ref: ')) return head;
      const ref = head.slice(5);
      try {
        return (await readUserFile(path.join(dir, '.git', ref), 'utf8')).trim();
      } catch {
        const packed = await readUserFile(path.join(dir, '.git', 'packed-refs'), 'utf8').catch(() => '');
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
  /** Where each run went (server addresses without credentials). */
  servers: string[];
  failed: Array<{runId: string; error: string}>;
  /** Lines skipped (a truncated last line after a kill) while the rest of their run replayed. */
  skipped: string[];
}

/**
 * Replays every spooled run to `uri`, or, without one, to the server each run recorded (MLFLOW_TRACKING_URI when a
 * spool records none); each fully replayed run file is marked done. One run failing never stops the others.
 */
export async function syncSpool(options: TrackerOptions): Promise<SyncResult> {
  const result: SyncResult = {runs: 0, replayed: 0, servers: [], failed: [], skipped: []};
  const clients = new Map<string, MlflowRestClient>();
  const clientFor = (uri: string): {client: MlflowRestClient; display: string} => {
    const target = resolveTrackingUri(uri, options.cwd, options.env);
    if (target.kind !== 'rest') throw new Error(`${target.display} is not an http(s) MLflow server`);
    let client = clients.get(target.baseUrl);
    if (!client) {
      client = new MlflowRestClient({baseUrl: target.baseUrl, ...(target.credentials ? {credentials: target.credentials} : {}), env: options.env, timeoutMs: options.timeoutMs, retries: options.retries});
      clients.set(target.baseUrl, client);
    }
    return {client, display: target.baseUrl};
  };
  for (const run of await readSpool(spoolDir(options.cwd))) {
    result.runs++;
    result.skipped.push(...run.skipped);
    try {
      if (run.error) throw new Error(run.error);
      const envServer = /^https?:\/\//i.test(options.env.MLFLOW_TRACKING_URI ?? '') ? options.env.MLFLOW_TRACKING_URI : undefined;
      const address = options.uri ?? run.server ?? envServer;
      if (!address) throw new Error('the spool records no server: pass --tracking-uri or set MLFLOW_TRACKING_URI');
      const {client, display} = clientFor(address);
      if (!result.servers.includes(display)) result.servers.push(display);
      // A sync that failed half-way left its progress: go on from there (no second run, no call sent twice).
      const progress = await readSyncProgress(run);
      let runId = progress?.serverRunId ?? run.entries.find((e) => e.serverRunId)?.serverRunId;
      let artifactUri = progress?.artifactUri ?? run.entries.find((e) => e.artifactUri)?.artifactUri ?? '';
      for (const [i, entry] of run.entries.entries()) {
        if (i < (progress?.done ?? 0)) continue;
        if (entry.call === 'create') {
          const body = entry.body as {experimentName: string; runName: string; tags: Record<string, string>; startTime: number};
          const experimentId = await client.getOrCreateExperiment(body.experimentName);
          ({runId, artifactUri} = await client.createRun(experimentId, body.runName, body.tags, body.startTime));
        } else {
          if (!runId) throw new Error('spool has calls but no run to attach them to');
          if (!artifactUri && entry.call === 'artifact') artifactUri = (await client.getRun(runId))?.artifactUri ?? '';
          await client.replay(entry, runId, artifactUri);
          result.replayed++;
        }
        await writeSyncProgress(run, {serverRunId: runId!, artifactUri, done: i + 1});
      }
      await markReplayed(run);
    } catch (error) {
      result.failed.push({runId: run.runId, error: redactSecrets((error as Error).message, options.env)});
    }
  }
  return result;
}
