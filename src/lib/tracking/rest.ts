/**
 * natix's own MLflow REST client (no maintained JavaScript client exists): typed calls over fetch to
 * `/api/2.0/mlflow/...` and the artifacts proxy `/api/2.0/mlflow-artifacts/artifacts/...`.
 *
 * A slow or dead server must never stall or kill training: every request has a timeout and bounded retries with
 * exponential back-off (5xx, 429, network errors); calls are queued and run in the background; when the server
 * stays unreachable, the remaining calls of the run go to a local spool (JSON lines) that `natix tracking sync`
 * replays later. Credentials come from the environment only and are never logged or written anywhere.
 */
import {randomUUID} from 'node:crypto';
import {readdir, readFile, stat} from 'node:fs/promises';
import path from 'node:path';
import {Spool, type SpoolEntry} from './spool.js';
import {sanitizeKey, type RunStatus, type TrackedRun, type Tracker} from './types.js';

export const LOG_BATCH_LIMITS = {metrics: 1000, params: 100, tags: 100} as const;

export interface RestOptions {
  baseUrl: string;
  env: NodeJS.ProcessEnv;
  timeoutMs?: number;
  retries?: number;
  backoffMs?: number;
  spoolDir: string;
  warn: (message: string) => void;
  fetchImpl?: typeof fetch;
}

export class MlflowHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function authHeader(env: NodeJS.ProcessEnv): Record<string, string> {
  if (env.MLFLOW_TRACKING_TOKEN) return {authorization: `Bearer ${env.MLFLOW_TRACKING_TOKEN}`};
  if (env.MLFLOW_TRACKING_USERNAME && env.MLFLOW_TRACKING_PASSWORD) {
    return {authorization: `Basic ${Buffer.from(`${env.MLFLOW_TRACKING_USERNAME}:${env.MLFLOW_TRACKING_PASSWORD}`).toString('base64')}`};
  }
  return {};
}

/** The low-level client: one method per REST call used by natix, with timeout and retries. */
export class MlflowRestClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: Omit<RestOptions, 'spoolDir' | 'warn'>) {
    this.base = options.baseUrl.replace(/\/+$/, '');
    this.fetchImpl = options.fetchImpl ?? fetch;
  }

  /** One HTTP call with retries on 5xx / 429 / network errors and exponential back-off. */
  async request<T = unknown>(method: 'GET' | 'POST' | 'PUT', endpoint: string, body?: unknown, raw?: Uint8Array): Promise<T> {
    const retries = this.options.retries ?? 3;
    const backoff = this.options.backoffMs ?? 200;
    let lastError: unknown;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, backoff * 2 ** (attempt - 1)));
      try {
        const response = await this.fetchImpl(`${this.base}${endpoint}`, {
          method,
          headers: {...authHeader(this.options.env), ...(raw ? {'content-type': 'application/octet-stream'} : body !== undefined ? {'content-type': 'application/json'} : {})},
          body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
        });
        const text = await response.text();
        if (response.ok) return (text ? JSON.parse(text) : {}) as T;
        const error = new MlflowHttpError(response.status, `${method} ${endpoint}: HTTP ${response.status} ${text.slice(0, 200)}`);
        if (response.status < 500 && response.status !== 429) throw error; // a client error will not improve
        lastError = error;
      } catch (error) {
        if (error instanceof MlflowHttpError && error.status < 500 && error.status !== 429) throw error;
        lastError = error;
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  async getOrCreateExperiment(name: string): Promise<string> {
    try {
      const r = await this.request<{experiment: {experiment_id: string}}>('GET', `/api/2.0/mlflow/experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`);
      return r.experiment.experiment_id;
    } catch (error) {
      if (!(error instanceof MlflowHttpError) || error.status !== 404) throw error;
    }
    const created = await this.request<{experiment_id: string}>('POST', '/api/2.0/mlflow/experiments/create', {name});
    return created.experiment_id;
  }

  async createRun(experimentId: string, runName: string, tags: Record<string, string>, startTime: number): Promise<{runId: string; artifactUri: string}> {
    const r = await this.request<{run: {info: {run_id: string; artifact_uri: string}}}>('POST', '/api/2.0/mlflow/runs/create', {
      experiment_id: experimentId,
      run_name: runName,
      start_time: startTime,
      tags: Object.entries(tags).map(([key, value]) => ({key: sanitizeKey(key), value})),
    });
    return {runId: r.run.info.run_id, artifactUri: r.run.info.artifact_uri};
  }

  /** Replays one spooled call against the server (the spool holds REST calls by name). */
  async replay(entry: SpoolEntry, runId: string, artifactUri: string): Promise<void> {
    switch (entry.call) {
      case 'log-batch':
        await this.request('POST', '/api/2.0/mlflow/runs/log-batch', {...(entry.body as object), run_id: runId});
        return;
      case 'set-tag':
        await this.request('POST', '/api/2.0/mlflow/runs/set-tag', {...(entry.body as object), run_id: runId});
        return;
      case 'update':
        await this.request('POST', '/api/2.0/mlflow/runs/update', {...(entry.body as object), run_id: runId});
        return;
      case 'artifact': {
        const {localPath, artifactPath} = entry.body as {localPath: string; artifactPath: string};
        await this.uploadArtifact(artifactUri, localPath, artifactPath);
        return;
      }
      case 'register': {
        const {name, artifactPath, alias} = entry.body as {name: string; artifactPath: string; alias?: string};
        await this.registerModel(name, `${artifactUri}/${artifactPath}`, runId, alias);
        return;
      }
    }
  }

  /** PUTs a file or a folder's files through the artifacts proxy. */
  async uploadArtifact(artifactUri: string, localPath: string, artifactPath: string): Promise<void> {
    const prefix = artifactUri.replace(/^mlflow-artifacts:\/*/, '');
    const upload = async (file: string, rel: string): Promise<void> => {
      const target = [prefix, artifactPath, rel].filter(Boolean).join('/');
      await this.request('PUT', `/api/2.0/mlflow-artifacts/artifacts/${target.split('/').map(encodeURIComponent).join('/')}`, undefined, new Uint8Array(await readFile(file)));
    };
    const walk = async (p: string, rel: string): Promise<void> => {
      if ((await stat(p)).isDirectory()) {
        for (const name of (await readdir(p)).sort()) await walk(path.join(p, name), rel ? `${rel}/${name}` : name);
      } else await upload(p, rel);
    };
    await walk(localPath, path.basename(localPath));
  }

  async registerModel(name: string, source: string, runId: string, alias?: string): Promise<{version: string}> {
    try {
      await this.request('POST', '/api/2.0/mlflow/registered-models/create', {name});
    } catch (error) {
      // RESOURCE_ALREADY_EXISTS (400): the model exists; add a version to it.
      if (!(error instanceof MlflowHttpError) || error.status !== 400) throw error;
    }
    const r = await this.request<{model_version: {version: string}}>('POST', '/api/2.0/mlflow/model-versions/create', {name, source, run_id: runId});
    if (alias) await this.request('POST', '/api/2.0/mlflow/registered-models/alias', {name, alias, version: r.model_version.version});
    return {version: r.model_version.version};
  }
}

/** Splits metrics/params/tags into log-batch bodies within the API's limits. */
export function logBatchBodies(metrics: Array<{key: string; value: number; timestamp: number; step: number}>, params: Array<{key: string; value: string}>, tags: Array<{key: string; value: string}>): Array<Record<string, unknown>> {
  const bodies: Array<Record<string, unknown>> = [];
  for (let i = 0; i < metrics.length; i += LOG_BATCH_LIMITS.metrics) bodies.push({metrics: metrics.slice(i, i + LOG_BATCH_LIMITS.metrics)});
  for (let i = 0; i < params.length; i += LOG_BATCH_LIMITS.params) bodies.push({params: params.slice(i, i + LOG_BATCH_LIMITS.params)});
  for (let i = 0; i < tags.length; i += LOG_BATCH_LIMITS.tags) bodies.push({tags: tags.slice(i, i + LOG_BATCH_LIMITS.tags)});
  return bodies;
}

export class RestTracker implements Tracker {
  readonly kind = 'rest' as const;
  readonly client: MlflowRestClient;

  constructor(private readonly options: RestOptions) {
    this.client = new MlflowRestClient(options);
  }

  get uri(): string {
    return this.options.baseUrl;
  }

  async startRun(options: {experimentName: string; runName: string; tags?: Record<string, string>}): Promise<TrackedRun> {
    const spool = new Spool(this.options.spoolDir, this.options.baseUrl);
    const tags = {'mlflow.runName': options.runName, 'mlflow.source.type': 'LOCAL', ...options.tags};
    const startTime = Date.now();
    let runId: string;
    let artifactUri: string;
    let experimentId = '';
    let offline = false;
    try {
      experimentId = await this.client.getOrCreateExperiment(options.experimentName);
      ({runId, artifactUri} = await this.client.createRun(experimentId, options.runName, tags, startTime));
    } catch (error) {
      offline = true;
      runId = `spooled-${randomUUID().replaceAll('-', '')}`;
      artifactUri = '';
      this.options.warn(`MLflow server ${this.options.baseUrl} unreachable (${(error as Error).message}); logging to the spool ${this.options.spoolDir} - replay it with: natix tracking sync`);
      await spool.append(runId, {call: 'create', body: {experimentName: options.experimentName, runName: options.runName, tags, startTime}});
    }
    // Calls run one after another in the background; a failure switches the run to the spool for good.
    let queue: Promise<void> = Promise.resolve();
    const enqueue = (entry: SpoolEntry): Promise<void> => {
      queue = queue.then(async () => {
        if (offline) return spool.append(runId, entry);
        try {
          await this.client.replay(entry, runId, artifactUri);
        } catch (error) {
          offline = true;
          this.options.warn(`MLflow call ${entry.call} failed (${(error as Error).message}); spooling the rest of run ${runId} to ${this.options.spoolDir} - replay with: natix tracking sync`);
          await spool.append(runId, {...entry, serverRunId: runId, artifactUri});
        }
      });
      return Promise.resolve();
    };
    const info = {runId, experimentId, artifactUri};
    return {
      info,
      logParams: (params) => {
        const list = Object.entries(params).map(([key, value]) => ({key: sanitizeKey(key), value: String(value).slice(0, 6000)}));
        for (const body of logBatchBodies([], list, [])) void enqueue({call: 'log-batch', body});
        return Promise.resolve();
      },
      logMetrics: (metrics, step, timestamp = Date.now()) => {
        const list = Object.entries(metrics).filter(([, v]) => Number.isFinite(v)).map(([key, value]) => ({key: sanitizeKey(key), value, timestamp, step}));
        for (const body of logBatchBodies(list, [], [])) void enqueue({call: 'log-batch', body});
        return Promise.resolve();
      },
      setTags: (t) => {
        for (const [key, value] of Object.entries(t)) void enqueue({call: 'set-tag', body: {key: sanitizeKey(key), value}});
        return Promise.resolve();
      },
      logArtifacts: (localPath, artifactPath = '') => enqueue({call: 'artifact', body: {localPath: path.resolve(localPath), artifactPath}}),
      registerModel: async (name, artifactPath, alias) => {
        await enqueue({call: 'register', body: {name, artifactPath, alias}});
        await queue;
        return undefined;
      },
      end: async (status: RunStatus) => {
        await enqueue({call: 'update', body: {status, end_time: Date.now()}});
        // Bounded wait: a stuck server cannot hold the process longer than the per-call timeouts and retries.
        await queue;
      },
    };
  }
}
