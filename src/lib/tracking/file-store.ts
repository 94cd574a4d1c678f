/**
 * The MLflow file store layout (`--tracking-uri ./mlruns` or `file:...`; MLflow >= 3.13 reads it only with
 * MLFLOW_ALLOW_FILE_STORE=true, which is why the default is the SQLite store):
 *   mlruns/0/meta.yaml                       experiment 0 "Default" (MLflow fails without it)
 *   mlruns/<exp_id>/meta.yaml                experiment (artifact_location, creation_time, experiment_id, ...)
 *   mlruns/<exp_id>/<run_id>/meta.yaml       run (artifact_uri, end_time, run_id, run_name, status as an int, ...)
 *   mlruns/<exp_id>/<run_id>/metrics/<key>   lines "timestamp_ms value step" (value as Python prints it: nan, inf)
 *   mlruns/<exp_id>/<run_id>/params/<key>    the value
 *   mlruns/<exp_id>/<run_id>/tags/<key>      the value (mlflow.runName, mlflow.user, mlflow.source.name, ...)
 *   mlruns/<exp_id>/<run_id>/artifacts/
 *   mlruns/models/<name>/meta.yaml, version-<N>/meta.yaml, aliases/<alias>   the file model registry
 * Experiment ids are integers of any size (MLflow makes 18-digit ones): the next id is computed with BigInt.
 */
import {appendFile, mkdir, readdir, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';
import YAML from 'yaml';
import {ExitCode, NatixError} from '../errors.js';
import {checkRegistration, copyArtifacts, currentUser, newRunId, standardTags} from './local-common.js';
import {definedParams, MAX_TAG_VALUE_LENGTH, pythonFloat, RUN_STATUS_CODE, sanitizeKey, type RunInfo, type RunStatus, type StartRunOptions, type TrackedRun, type Tracker} from './types.js';
import {readUserFile} from '../util/user-files.js';

interface RunMeta {
  artifact_uri: string;
  end_time: number | null;
  entry_point_name: string;
  experiment_id: string;
  lifecycle_stage: string;
  run_id: string;
  run_name: string;
  run_uuid: string;
  source_name: string;
  source_type: number;
  source_version: string;
  start_time: number;
  status: number;
  tags: never[];
  user_id: string;
}

export class FileStoreTracker implements Tracker {
  readonly kind = 'file' as const;

  constructor(readonly root: string) {}

  get uri(): string {
    return pathToFileURL(this.root).href;
  }

  private async writeExperiment(id: string, name: string): Promise<void> {
    const now = Date.now();
    await mkdir(path.join(this.root, id), {recursive: true});
    const meta = {artifact_location: pathToFileURL(path.join(this.root, id)).href, creation_time: now, experiment_id: id, last_update_time: now, lifecycle_stage: 'active', name};
    await writeFile(path.join(this.root, id, 'meta.yaml'), YAML.stringify(meta));
  }

  /** Creates the store as MLflow does (experiment 0 "Default", `.trash`), and finds or creates `name`. */
  private async experimentId(name: string): Promise<string> {
    await mkdir(path.join(this.root, '.trash'), {recursive: true});
    const ids: bigint[] = [];
    let found: string | undefined;
    for (const entry of await readdir(this.root)) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const meta = YAML.parse(await readUserFile(path.join(this.root, entry, 'meta.yaml'), 'utf8')) as {name?: string; lifecycle_stage?: string};
        ids.push(BigInt(entry));
        if (meta?.name === name && found === undefined) {
          if (meta.lifecycle_stage === 'deleted') throw new NatixError(`Experiment "${name}" is deleted in ${this.root}`, {code: 'USAGE', exitCode: ExitCode.Usage, actions: ['Restore it (mlflow experiments restore) or pick another --experiment.']});
          found = entry;
        }
      } catch (error) {
        if (error instanceof NatixError) throw error;
        // not an experiment folder
      }
    }
    if (!ids.includes(0n)) {
      await this.writeExperiment('0', 'Default');
      ids.push(0n);
      if (name === 'Default') return '0';
    }
    if (found !== undefined) return found;
    const next = ids.reduce((a, b) => (b > a ? b : a), 0n) + 1n;
    await this.writeExperiment(next.toString(), name);
    return next.toString();
  }

  async startRun(options: StartRunOptions): Promise<TrackedRun> {
    const experimentId = await this.experimentId(options.experimentName);
    const runId = newRunId();
    const dir = path.join(this.root, experimentId, runId);
    for (const sub of ['metrics', 'params', 'tags', 'artifacts']) await mkdir(path.join(dir, sub), {recursive: true});
    const user = currentUser();
    const meta: RunMeta = {
      artifact_uri: pathToFileURL(path.join(dir, 'artifacts')).href,
      end_time: null,
      entry_point_name: '',
      experiment_id: experimentId,
      lifecycle_stage: 'active',
      run_id: runId,
      run_name: options.runName,
      run_uuid: runId,
      source_name: '',
      source_type: 4,
      source_version: '',
      start_time: options.startTime ?? Date.now(),
      status: RUN_STATUS_CODE.RUNNING,
      tags: [],
      user_id: user,
    };
    await writeFile(path.join(dir, 'meta.yaml'), YAML.stringify(meta));
    const run = this.handle(dir, meta, options.experimentName);
    await run.setTags(standardTags(options, user));
    return run;
  }

  async resumeRun(runId: string, options: StartRunOptions): Promise<TrackedRun | undefined> {
    if (!/^[a-zA-Z0-9][\w-]{0,255}$/.test(runId)) return undefined;
    let entries: string[];
    try {
      entries = await readdir(this.root);
    } catch {
      return undefined;
    }
    for (const exp of entries.filter((e) => /^\d+$/.test(e))) {
      const dir = path.join(this.root, exp, runId);
      let meta: RunMeta;
      try {
        meta = YAML.parse(await readUserFile(path.join(dir, 'meta.yaml'), 'utf8')) as RunMeta;
      } catch {
        continue;
      }
      meta.status = RUN_STATUS_CODE.RUNNING;
      meta.end_time = null;
      await writeFile(path.join(dir, 'meta.yaml'), YAML.stringify(meta));
      const run = this.handle(dir, meta, options.experimentName);
      if (options.tags) await run.setTags(options.tags);
      return run;
    }
    return undefined;
  }

  private handle(dir: string, meta: RunMeta, experimentName: string): TrackedRun {
    const root = this.root;
    const writeKeyed = async (sub: string, key: string, value: string, append = false): Promise<void> => {
      const file = path.join(dir, sub, ...sanitizeKey(key).split('/'));
      await mkdir(path.dirname(file), {recursive: true});
      await (append ? appendFile(file, value) : writeFile(file, value));
    };
    const info: RunInfo = {runId: meta.run_id, experimentId: meta.experiment_id, experimentName, artifactUri: meta.artifact_uri, storeUri: this.uri};
    return {
      info,
      async logParams(params) {
        for (const [k, v] of definedParams(params)) await writeKeyed('params', k, v);
      },
      async logMetrics(metrics, step, timestampMs = Date.now()) {
        for (const [k, v] of Object.entries(metrics)) if (typeof v === 'number') await writeKeyed('metrics', k, `${timestampMs} ${pythonFloat(v)} ${step}\n`, true);
      },
      async setTags(tags) {
        for (const [k, v] of Object.entries(tags)) await writeKeyed('tags', k, v.slice(0, MAX_TAG_VALUE_LENGTH));
      },
      async logArtifacts(localPath, artifactPath = '') {
        await copyArtifacts(path.join(dir, 'artifacts'), localPath, artifactPath);
      },
      async registerModel(name, artifactPath, alias) {
        checkRegistration(name, alias);
        const modelDir = path.join(root, 'models', name);
        await mkdir(modelDir, {recursive: true});
        const now = Date.now();
        const metaFile = path.join(modelDir, 'meta.yaml');
        let modelMeta: Record<string, unknown> = {creation_timestamp: now, description: null, last_updated_timestamp: now, name};
        try {
          modelMeta = {...(YAML.parse(await readUserFile(metaFile, 'utf8')) as Record<string, unknown>), last_updated_timestamp: now};
        } catch {
          // a new registered model
        }
        const versions = (await readdir(modelDir)).map((d) => /^version-(\d+)$/.exec(d)?.[1]).filter((v): v is string => v !== undefined).map(Number);
        const version = Math.max(0, ...versions) + 1;
        await mkdir(path.join(modelDir, `version-${version}`, 'tags'), {recursive: true});
        const source = `${meta.artifact_uri}/${artifactPath}`;
        await writeFile(
          path.join(modelDir, `version-${version}`, 'meta.yaml'),
          YAML.stringify({creation_timestamp: now, current_stage: 'None', description: null, last_updated_timestamp: now, name, run_id: meta.run_id, run_link: null, source, status: 'READY', status_message: null, storage_location: fileURLToPath(source), user_id: null, version}),
        );
        await writeFile(metaFile, YAML.stringify(modelMeta));
        if (alias) {
          await mkdir(path.join(modelDir, 'aliases'), {recursive: true});
          await writeFile(path.join(modelDir, 'aliases', alias), String(version));
        }
        return {version: String(version)};
      },
      async end(status: RunStatus, endTime = Date.now()) {
        meta.status = RUN_STATUS_CODE[status];
        meta.end_time = endTime;
        await writeFile(path.join(dir, 'meta.yaml'), YAML.stringify(meta));
      },
    };
  }
}
