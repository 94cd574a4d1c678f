/**
 * Tracking URIs as MLflow reads them: `sqlite:///relative.db` / `sqlite:////absolute.db` (the SQL store), a folder
 * or `file:` URI (the `mlruns/` file store) and `http(s)://` (a tracking server). Nothing set means MLflow's own
 * default, `sqlite:///mlflow.db` in the working folder. Userinfo in a server URL is split off here: the URL that
 * natix prints and stores never carries it.
 */
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {ExitCode, NatixError} from '../errors.js';
import {redactSecrets, stripUserinfo, userinfoOf} from './redact.js';

export const DEFAULT_TRACKING_URI = 'sqlite:///mlflow.db';

export type TrackingTarget =
  | {kind: 'sqlite'; dbPath: string; display: string}
  | {kind: 'file'; root: string; display: string}
  | {kind: 'rest'; baseUrl: string; credentials?: {username: string; password: string}; display: string};

function sqlitePath(uri: string, cwd: string): string {
  const rest = uri.slice('sqlite:'.length);
  if (!rest.startsWith('///') || rest === '///' || rest.includes(':memory:')) {
    throw new NatixError(`Unsupported SQLite tracking URI ${uri}: natix writes a database file`, {code: 'USAGE', exitCode: ExitCode.Usage, actions: ['Use sqlite:///mlflow.db (relative to the working folder) or sqlite:////absolute/path/mlflow.db.']});
  }
  const p = decodeURIComponent(rest.slice(3).split('?')[0]!);
  // sqlite:////abs -> "/abs"; sqlite:///C:/x -> "C:/x" (Windows); sqlite:///rel -> cwd/rel.
  return path.isAbsolute(p) || /^[a-zA-Z]:[\\/]/.test(p) ? path.resolve(p) : path.resolve(cwd, p);
}

/** Resolves `--tracking-uri` / MLFLOW_TRACKING_URI / the default against an explicit working folder. */
export function resolveTrackingUri(flag: string | undefined, cwd: string, env: NodeJS.ProcessEnv): TrackingTarget {
  const uri = (flag ?? env.MLFLOW_TRACKING_URI ?? '').trim() || DEFAULT_TRACKING_URI;
  if (/^https?:\/\//i.test(uri)) {
    const credentials = userinfoOf(uri);
    const baseUrl = stripUserinfo(uri).replace(/\/+$/, '');
    return {kind: 'rest', baseUrl, ...(credentials ? {credentials} : {}), display: baseUrl};
  }
  if (/^sqlite:/i.test(uri)) {
    const dbPath = sqlitePath(uri, cwd);
    return {kind: 'sqlite', dbPath, display: `sqlite:///${dbPath.replaceAll('\\', '/')}`};
  }
  if (/^file:/i.test(uri)) {
    const root = uri.startsWith('file://') ? fileURLToPath(uri) : path.resolve(cwd, uri.slice('file:'.length));
    return {kind: 'file', root, display: root};
  }
  if (/^[a-z][a-z0-9+.-]+:/i.test(uri) && !/^[a-zA-Z]:[\\/]/.test(uri)) {
    throw new NatixError(`Unsupported tracking URI ${redactSecrets(stripUserinfo(uri), env)}`, {
      code: 'USAGE',
      exitCode: ExitCode.Usage,
      actions: ['Use sqlite:///mlflow.db, a folder or file: URI (the mlruns file store), or an http(s):// MLflow server.'],
    });
  }
  const root = path.resolve(cwd, uri);
  return {kind: 'file', root, display: root};
}
