/**
 * The tracking interface natix logs runs through, with two implementations: the MLflow file store (`mlruns/`,
 * default, offline) and the MLflow REST API (http/https tracking URIs). Keys are sanitised to MLflow's characters.
 */

export type RunStatus = 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';

/** MLflow's file-store status codes. */
export const RUN_STATUS_CODE: Record<RunStatus, number> = {RUNNING: 1, FINISHED: 3, FAILED: 4, KILLED: 5};

export interface RunInfo {
  runId: string;
  experimentId: string;
  artifactUri: string;
}

export interface TrackedRun {
  readonly info: RunInfo;
  logParams(params: Record<string, string | number | boolean>): Promise<void>;
  /** One batch per call (e.g. one per epoch); `step` is the epoch. */
  logMetrics(metrics: Record<string, number>, step: number, timestampMs?: number): Promise<void>;
  setTags(tags: Record<string, string>): Promise<void>;
  /** Uploads a file or a folder (recursively) under `artifactPath`. */
  logArtifacts(localPath: string, artifactPath?: string): Promise<void>;
  /** Registers `artifactPath` of this run as a new version of model `name`, optionally setting an alias. */
  registerModel(name: string, artifactPath: string, alias?: string): Promise<{version: string} | undefined>;
  end(status: RunStatus): Promise<void>;
}

export interface Tracker {
  readonly kind: 'file' | 'rest';
  readonly uri: string;
  startRun(options: {experimentName: string; runName: string; tags?: Record<string, string>}): Promise<TrackedRun>;
}

/** MLflow allows `^[/\w.\- ]*$` in keys; anything else becomes `_`. */
export function sanitizeKey(key: string): string {
  const clean = key.replace(/[^/\w.\- ]/g, '_');
  return clean.length > 250 ? clean.slice(0, 250) : clean;
}

/** Flattens nested config objects to dotted keys (`optimizer.name`), arrays to JSON. */
export function flattenParams(value: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flattenParams(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out[prefix] = Array.isArray(value) ? JSON.stringify(value) : String(value);
  }
  return out;
}
