/**
 * natix's own MLflow REST client (no maintained JavaScript client exists): typed calls over fetch to
 * `/api/2.0/mlflow/...` and the artifacts proxy `/api/2.0/mlflow-artifacts/artifacts/...`.
 *
 * A slow or dead server must never stall or kill training: every request has a timeout and bounded retries with
 * exponential back-off (5xx, 429, network errors); run creation and the final flush each have one overall deadline
 * (DEFAULT_TRACKING_DEADLINE_MS, 1 s, for all tries together; `--tracking-timeout` changes it), after which natix
 * gives up to the local spool and says so once; calls in between are queued and run in the background, so the
 * training loop never waits on the server. `natix tracking sync` replays the spool later. Credentials come from the
 * environment (or the URL's userinfo, kept in memory only); every message is passed through `redactSecrets`.
 */
import {randomUUID} from 'node:crypto';
import {readdir, stat} from 'node:fs/promises';
import path from 'node:path';
import {redactSecrets} from './redact.js';
import {Spool, type SpoolEntry} from './spool.js';
import {definedParams, MAX_TAG_VALUE_LENGTH, sanitizeKey, type RunInfo, type RunStatus, type StartRunOptions, type TrackedRun, type Tracker} from './types.js';
import {readUserFile} from '../util/user-files.js';

export const LOG_BATCH_LIMITS = {metrics: 1000, params: 100, tags: 100} as const;

/** How long run creation, and separately the final flush, may wait on a server in all (every try together). */
export const DEFAULT_TRACKING_DEADLINE_MS = 1000;

/** A duration for messages: `1 s`, `0.25 s`. */
function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

export interface RestOptions {
  /** The server URL without userinfo. */
  baseUrl: string;
  /** userinfo taken from the URL: used for Basic auth when the environment gives no credentials. */
  credentials?: {username: string; password: string};
  env: NodeJS.ProcessEnv;
  timeoutMs?: number;
  retries?: number;
  backoffMs?: number;
  /** Overall budget for creating (or resuming) the run, all tries together; past it the run goes to the spool. */
  startDeadlineMs?: number;
  /** Overall budget for the final flush (registerModel and end together); past it the rest goes to the spool. */
  endDeadlineMs?: number;
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

function authHeader(env: NodeJS.ProcessEnv, credentials?: {username: string; password: string}): Record<string, string> {
  if (env.MLFLOW_TRACKING_TOKEN) return {authorization: `Bearer ${env.MLFLOW_TRACKING_TOKEN}`};
  const user = env.MLFLOW_TRACKING_USERNAME ?? credentials?.username;
  const password = env.MLFLOW_TRACKING_PASSWORD ?? credentials?.password;
  if (user && password !== undefined) return {authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`};
  return {};
}

/** JSON cannot carry NaN/Inf: proto3 JSON (which MLflow's server parses) spells them as strings. */
function jsonMetricValue(value: number): number | string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return value;
}

interface RequestLimits {
  /** Epoch ms after which no new try starts and the current one is cut. */
  deadline?: number;
  signal?: AbortSignal;
}

/** The low-level client: one method per REST call used by natix, with timeout and retries. */
export class MlflowRestClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: Omit<RestOptions, 'spoolDir' | 'warn'>) {
    this.base = options.baseUrl.replace(/\/+$/, '');
    this.fetchImpl = options.fetchImpl ?? fetch;
  }

  /** Removes every credential from a message before it is printed, returned or written. */
  redact(message: string): string {
    const creds = this.options.credentials;
    return redactSecrets(message, this.options.env, creds ? [creds.password, Buffer.from(`${creds.username}:${creds.password}`).toString('base64')] : []);
  }

  /** One HTTP call with retries on 5xx / 429 / network errors and exponential back-off, within `limits`. */
  async request<T = unknown>(method: 'GET' | 'POST' | 'PUT', endpoint: string, body?: unknown, raw?: Uint8Array, limits: RequestLimits = {}): Promise<T> {
    const retries = this.options.retries ?? 3;
    const backoff = this.options.backoffMs ?? 200;
    const timeout = this.options.timeoutMs ?? 5000;
    let lastError: unknown;
    let lastWait = timeout;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        const wait = backoff * 2 ** (attempt - 1);
        if (limits.deadline !== undefined && Date.now() + wait >= limits.deadline) break;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
      const left = limits.deadline === undefined ? timeout : Math.min(timeout, limits.deadline - Date.now());
      if (left <= 0) break;
      if (limits.signal?.aborted) break;
      lastWait = left;
      try {
        const signals = [AbortSignal.timeout(left), ...(limits.signal ? [limits.signal] : [])];
        const response = await this.fetchImpl(`${this.base}${endpoint}`, {
          method,
          headers: {...authHeader(this.options.env, this.options.credentials), ...(raw ? {'content-type': 'application/octet-stream'} : body !== undefined ? {'content-type': 'application/json'} : {})},
          body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
          signal: AbortSignal.any(signals),
        });
        const text = await response.text();
        if (response.ok) return (text ? JSON.parse(text) : {}) as T;
        const error = new MlflowHttpError(response.status, this.redact(`${method} ${endpoint}: HTTP ${response.status} ${text.slice(0, 200)}`));
        if (response.status < 500 && response.status !== 429) throw error; // a client error will not improve
        lastError = error;
      } catch (error) {
        if (error instanceof MlflowHttpError && error.status < 500 && error.status !== 429) throw error;
        lastError = error;
      }
    }
    const message = lastError instanceof Error ? (lastError.name === 'TimeoutError' ? `no answer within ${Math.round(lastWait)} ms` : lastError.message) : lastError === undefined ? 'gave up: time budget spent' : String(lastError);
    throw new Error(this.redact(message));
  }

  async getOrCreateExperiment(name: string, limits?: RequestLimits): Promise<string> {
    try {
      const r = await this.request<{experiment: {experiment_id: string}}>('GET', `/api/2.0/mlflow/experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`, undefined, undefined, limits);
      return r.experiment.experiment_id;
    } catch (error) {
      if (!(error instanceof MlflowHttpError) || error.status !== 404) throw error;
    }
    const created = await this.request<{experiment_id: string}>('POST', '/api/2.0/mlflow/experiments/create', {name}, undefined, limits);
    return created.experiment_id;
  }

  async createRun(experimentId: string, runName: string, tags: Record<string, string>, startTime: number, limits?: RequestLimits): Promise<{runId: string; artifactUri: string}> {
    const r = await this.request<{run: {info: {run_id: string; artifact_uri: string}}}>(
      'POST',
      '/api/2.0/mlflow/runs/create',
      {experiment_id: experimentId, run_name: runName, start_time: startTime, tags: Object.entries(tags).map(([key, value]) => ({key: sanitizeKey(key), value: value.slice(0, MAX_TAG_VALUE_LENGTH)}))},
      undefined,
      limits,
    );
    return {runId: r.run.info.run_id, artifactUri: r.run.info.artifact_uri};
  }

  /** The run's experiment and artifact URI; undefined when the server does not know it. */
  async getRun(runId: string, limits?: RequestLimits): Promise<{experimentId: string; artifactUri: string} | undefined> {
    try {
      const r = await this.request<{run: {info: {experiment_id: string; artifact_uri: string}}}>('GET', `/api/2.0/mlflow/runs/get?run_id=${encodeURIComponent(runId)}`, undefined, undefined, limits);
      return {experimentId: r.run.info.experiment_id, artifactUri: r.run.info.artifact_uri};
    } catch (error) {
      if (error instanceof MlflowHttpError && (error.status === 404 || error.status === 400)) return undefined;
      throw error;
    }
  }

  /** Replays one spooled call against the server (the spool holds REST calls by name). */
  async replay(entry: SpoolEntry, runId: string, artifactUri: string, limits?: RequestLimits): Promise<void> {
    switch (entry.call) {
      case 'log-batch':
        await this.request('POST', '/api/2.0/mlflow/runs/log-batch', {...(entry.body as object), run_id: runId}, undefined, limits);
        return;
      case 'set-tag':
        await this.request('POST', '/api/2.0/mlflow/runs/set-tag', {...(entry.body as object), run_id: runId}, undefined, limits);
        return;
      case 'update':
        await this.request('POST', '/api/2.0/mlflow/runs/update', {...(entry.body as object), run_id: runId}, undefined, limits);
        return;
      case 'artifact': {
        const {localPath, artifactPath} = entry.body as {localPath: string; artifactPath: string};
        await this.uploadArtifact(artifactUri, localPath, artifactPath, limits);
        return;
      }
      case 'register': {
        const {name, artifactPath, alias} = entry.body as {name: string; artifactPath: string; alias?: string};
        await this.registerModel(name, `${artifactUri}/${artifactPath}`, runId, alias, limits);
        return;
      }
      case 'create':
        throw new Error('a create call cannot be replayed onto an existing run');
    }
  }

  /** PUTs a file or a folder's files through the artifacts proxy. */
  async uploadArtifact(artifactUri: string, localPath: string, artifactPath: string, limits?: RequestLimits): Promise<void> {
    const prefix = artifactUri.replace(/^mlflow-artifacts:\/*/, '');
    const upload = async (file: string, rel: string): Promise<void> => {
      const target = [prefix, artifactPath, rel].filter(Boolean).join('/');
      await this.request('PUT', `/api/2.0/mlflow-artifacts/artifacts/${target.split('/').map(encodeURIComponent).join('/')}`, undefined, new Uint8Array(await readUserFile(file)), limits);
    };
    const walk = async (p: string, rel: string): Promise<void> => {
      if ((await stat(p)).isDirectory()) {
        for (const name of (await readdir(p)).sort()) await walk(path.join(p, name), rel ? `${rel}/${name}` : name);
      } else await upload(p, rel);
    };
    await walk(localPath, path.basename(localPath));
  }

  async registerModel(name: string, source: string, runId: string, alias?: string, limits?: RequestLimits): Promise<{version: string}> {
    try {
      await this.request('POST', '/api/2.0/mlflow/registered-models/create', {name}, undefined, limits);
    } catch (error) {
      // RESOURCE_ALREADY_EXISTS (400): the model exists; add a version to it.
      if (!(error instanceof MlflowHttpError) || error.status !== 400) throw error;
    }
    const r = await this.request<{model_version: {version: string}}>('POST', '/api/2.0/mlflow/model-versions/create', {name, source, run_id: runId}, undefined, limits);
    if (alias) await this.request('POST', '/api/2.0/mlflow/registered-models/alias', {name, alias, version: r.model_version.version}, undefined, limits);
    return {version: r.model_version.version};
  }
}

/** Splits metrics/params/tags into log-batch bodies within the API's limits. */
export function logBatchBodies(metrics: Array<{key: string; value: number | string; timestamp: number; step: number}>, params: Array<{key: string; value: string}>, tags: Array<{key: string; value: string}>): Array<Record<string, unknown>> {
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

  private warn(message: string): void {
    this.options.warn(this.client.redact(message));
  }

  async startRun(options: StartRunOptions): Promise<TrackedRun> {
    const spool = new Spool(this.options.spoolDir, this.options.baseUrl);
    const tags = {'mlflow.runName': options.runName, 'mlflow.source.type': 'LOCAL', 'mlflow.source.name': 'natix', ...options.tags};
    const startTime = options.startTime ?? Date.now();
    const budget = this.options.startDeadlineMs ?? DEFAULT_TRACKING_DEADLINE_MS;
    try {
      const limits = {deadline: Date.now() + budget};
      const experimentId = await this.client.getOrCreateExperiment(options.experimentName, limits);
      const {runId, artifactUri} = await this.client.createRun(experimentId, options.runName, tags, startTime, limits);
      return this.handle({runId, experimentId, experimentName: options.experimentName, artifactUri, storeUri: this.uri}, spool, false);
    } catch (error) {
      if (error instanceof MlflowHttpError && error.status < 500 && error.status !== 429) {
        this.warn(`MLflow server ${this.uri} refused the run (${error.message}); logging to the spool ${this.options.spoolDir} - fix the cause, then replay it with: natix tracking sync`);
      } else {
        this.warn(`MLflow server ${this.uri} did not answer within ${seconds(budget)} (${(error as Error).message}); training goes on and logs to the spool ${this.options.spoolDir} - replay it with: natix tracking sync`);
      }
      const runId = `spooled-${randomUUID().replaceAll('-', '')}`;
      await spool.append(runId, {call: 'create', body: {experimentName: options.experimentName, runName: options.runName, tags, startTime}});
      return this.handle({runId, experimentId: '', experimentName: options.experimentName, artifactUri: '', storeUri: this.uri, spooled: true}, spool, true);
    }
  }

  async resumeRun(runId: string, options: StartRunOptions): Promise<TrackedRun | undefined> {
    if (runId.startsWith('spooled-') || !/^[a-zA-Z0-9][\w-]{0,255}$/.test(runId)) return undefined;
    const spool = new Spool(this.options.spoolDir, this.options.baseUrl);
    const budget = this.options.startDeadlineMs ?? DEFAULT_TRACKING_DEADLINE_MS;
    let found: {experimentId: string; artifactUri: string} | undefined;
    try {
      const limits = {deadline: Date.now() + budget};
      found = await this.client.getRun(runId, limits);
      if (!found) return undefined;
      await this.client.request('POST', '/api/2.0/mlflow/runs/update', {run_id: runId, status: 'RUNNING'}, undefined, limits);
    } catch (error) {
      this.warn(`MLflow server ${this.uri} did not answer within ${seconds(budget)} (${(error as Error).message}); the resumed run ${runId} logs to the spool ${this.options.spoolDir} - replay it with: natix tracking sync`);
      const run = this.handle({runId, experimentId: found?.experimentId ?? '', experimentName: options.experimentName, artifactUri: found?.artifactUri ?? '', storeUri: this.uri, spooled: true}, spool, true, true);
      await spool.append(runId, {call: 'update', body: {status: 'RUNNING'}, serverRunId: runId, ...(found ? {artifactUri: found.artifactUri} : {})});
      if (options.tags) await run.setTags(options.tags);
      return run;
    }
    const run = this.handle({runId, experimentId: found.experimentId, experimentName: options.experimentName, artifactUri: found.artifactUri, storeUri: this.uri}, spool, false);
    if (options.tags) await run.setTags(options.tags);
    return run;
  }

  private handle(info: RunInfo, spool: Spool, startOffline: boolean, existsOnServer = !startOffline): TrackedRun {
    const {runId} = info;
    let offline = startOffline;
    const abort = new AbortController();
    const toSpool = (entry: SpoolEntry): Promise<void> => spool.append(runId, existsOnServer ? {...entry, serverRunId: runId, artifactUri: info.artifactUri} : entry);
    // Calls run one after another in the background; a failure switches the run to the spool for good.
    let queue: Promise<void> = Promise.resolve();
    const enqueue = (entry: SpoolEntry): Promise<void> => {
      queue = queue.then(async () => {
        if (offline) return toSpool(entry);
        try {
          await this.client.replay(entry, runId, info.artifactUri, {signal: abort.signal});
        } catch (error) {
          // Cut by the final flush's deadline: that already said so, once.
          if (offline) return toSpool(entry);
          offline = true;
          this.warn(`MLflow call ${entry.call} failed (${(error as Error).message}); spooling the rest of run ${runId} to ${this.options.spoolDir} - replay with: natix tracking sync`);
          await toSpool(entry);
        }
      });
      return Promise.resolve();
    };
    /**
     * The final flush: waits for the queue until one deadline, set by the first of registerModel / end (so the two
     * together never wait longer than it); then cuts the call in flight and spools whatever is left, saying so once.
     */
    const flushBudget = this.options.endDeadlineMs ?? DEFAULT_TRACKING_DEADLINE_MS;
    let flushDeadline: number | undefined;
    const drain = async (): Promise<void> => {
      flushDeadline ??= Date.now() + flushBudget;
      let timer: NodeJS.Timeout | undefined;
      const expired = await Promise.race([queue.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), Math.max(0, flushDeadline! - Date.now()))))]);
      clearTimeout(timer);
      if (expired && !offline) {
        offline = true;
        this.warn(`MLflow server ${this.uri} did not take the run's last calls within ${seconds(flushBudget)}; they are in the spool ${this.options.spoolDir} - replay with: natix tracking sync`);
        abort.abort();
      }
      await queue;
    };
    return {
      info,
      logParams: (params) => {
        const list = definedParams(params).map(([key, value]) => ({key, value}));
        for (const body of logBatchBodies([], list, [])) void enqueue({call: 'log-batch', body});
        return Promise.resolve();
      },
      logMetrics: (metrics, step, timestamp = Date.now()) => {
        const list = Object.entries(metrics)
          .filter(([, v]) => typeof v === 'number')
          .map(([key, value]) => ({key: sanitizeKey(key), value: jsonMetricValue(value), timestamp, step}));
        for (const body of logBatchBodies(list, [], [])) void enqueue({call: 'log-batch', body});
        return Promise.resolve();
      },
      setTags: (t) => {
        for (const [key, value] of Object.entries(t)) void enqueue({call: 'set-tag', body: {key: sanitizeKey(key), value: value.slice(0, MAX_TAG_VALUE_LENGTH)}});
        return Promise.resolve();
      },
      logArtifacts: (localPath, artifactPath = '') => enqueue({call: 'artifact', body: {localPath: path.resolve(localPath), artifactPath}}),
      registerModel: async (name, artifactPath, alias) => {
        await enqueue({call: 'register', body: {name, artifactPath, alias}});
        await drain();
        return undefined;
      },
      end: async (status: RunStatus, endTime = Date.now()) => {
        await enqueue({call: 'update', body: {status, end_time: endTime}});
        // Bounded: a stuck server cannot hold the process longer than the flush deadline.
        await drain();
      },
    };
  }
}
