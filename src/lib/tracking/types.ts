/**
 * The tracking interface natix logs runs through, with three implementations: MLflow's SQL store in a SQLite file
 * (`mlflow.db`, the offline default), MLflow's `mlruns/` file store, and the MLflow REST API (http/https URIs).
 * Keys follow MLflow's validation rules; values follow MLflow's storage rules (NaN/Inf, length limits).
 */

export type RunStatus = 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';

/** MLflow's file-store status codes. */
export const RUN_STATUS_CODE: Record<RunStatus, number> = {RUNNING: 1, FINISHED: 3, FAILED: 4, KILLED: 5};

export interface RunInfo {
  runId: string;
  /** A decimal string: MLflow's ids go up to 19 digits, beyond a double's exact integers. */
  experimentId: string;
  experimentName: string;
  artifactUri: string;
  /** The store the run lives in, as printable text (never with credentials). */
  storeUri: string;
  /** True when the server could not be reached and the run's calls are in the local spool. */
  spooled?: boolean;
}

export interface StartRunOptions {
  experimentName: string;
  runName: string;
  tags?: Record<string, string>;
  /** Epoch milliseconds; default now (bench passes the time the benchmark itself started). */
  startTime?: number;
}

export interface TrackedRun {
  readonly info: RunInfo;
  logParams(params: Record<string, string | number | boolean | undefined | null>): Promise<void>;
  /** One batch per call (e.g. one per epoch); `step` is the epoch. NaN and +-Inf are stored as MLflow does. */
  logMetrics(metrics: Record<string, number>, step: number, timestampMs?: number): Promise<void>;
  setTags(tags: Record<string, string>): Promise<void>;
  /** Uploads a file or a folder (recursively) under `artifactPath`. */
  logArtifacts(localPath: string, artifactPath?: string): Promise<void>;
  /** Registers `artifactPath` of this run as a new version of model `name`, optionally setting an alias. */
  registerModel(name: string, artifactPath: string, alias?: string): Promise<{version: string} | undefined>;
  /** Sets the final status and end time (default now). */
  end(status: RunStatus, endTime?: number): Promise<void>;
}

export interface Tracker {
  readonly kind: 'sqlite' | 'file' | 'rest';
  /** Printable store address (no credentials). */
  readonly uri: string;
  startRun(options: StartRunOptions): Promise<TrackedRun>;
  /**
   * Continues an existing run (a resumed training): same run id, status back to RUNNING, end time cleared, metric
   * history kept. Undefined when the store has no such run.
   */
  resumeRun(runId: string, options: StartRunOptions): Promise<TrackedRun | undefined>;
}

/** MLflow's longest key. */
export const MAX_KEY_LENGTH = 250;
/** MLflow's longest param value (MAX_PARAM_VAL_LENGTH) and tag value. */
export const MAX_PARAM_VALUE_LENGTH = 6000;
export const MAX_TAG_VALUE_LENGTH = 5000;

/**
 * A key MLflow accepts (`validate_param_and_metric_name`): `^[/\w.\- :]*$` (no `:` on Windows), and a path that
 * `posixpath.normpath` leaves unchanged and that does not start with `..` or `/`. Anything else becomes `_`.
 */
export function sanitizeKey(key: string, platform: NodeJS.Platform = process.platform): string {
  const bad = platform === 'win32' ? /[^/\p{L}\p{N}_.\- ]/gu : /[^/\p{L}\p{N}_.\- :]/gu;
  let clean = key
    .replace(bad, '_')
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .map((s) => (s === '..' ? '__' : s))
    .join('/');
  clean = clean.replace(/^\.\./, '__');
  if (clean.length > MAX_KEY_LENGTH) clean = clean.slice(0, MAX_KEY_LENGTH).replace(/\/+$/, '');
  return clean || '_';
}

/** A param value as MLflow stores it: text, at most MAX_PARAM_VALUE_LENGTH characters. */
export function paramValue(value: string | number | boolean): string {
  return String(value).slice(0, MAX_PARAM_VALUE_LENGTH);
}

/** Params with unset (undefined/null) values left out: MLflow has no "unset" param. */
export function definedParams(params: Record<string, string | number | boolean | undefined | null>): Array<[string, string]> {
  return Object.entries(params)
    .filter((e): e is [string, string | number | boolean] => e[1] !== undefined && e[1] !== null)
    .map(([k, v]) => [sanitizeKey(k), paramValue(v)]);
}

/** A metric value as MLflow's file store writes it (Python's repr: `nan`, `inf`, `-inf`). */
export function pythonFloat(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  return String(value);
}

/** Flattens nested config objects to dotted keys (`optimizer.name`), arrays to JSON; unset values are left out. */
export function flattenParams(value: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (value === undefined || value === null) return out;
  if (typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flattenParams(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out[prefix] = Array.isArray(value) ? JSON.stringify(value) : String(value);
  }
  return out;
}
