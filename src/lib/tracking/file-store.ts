/**
 * The MLflow file store layout (what `mlflow ui --backend-store-uri ./mlruns` reads):
 *   mlruns/<exp_id>/meta.yaml                 experiment (artifact_location, creation_time, experiment_id, ...)
 *   mlruns/<exp_id>/<run_id>/meta.yaml        run (artifact_uri, end_time, run_id, run_name, status as an int, ...)
 *   mlruns/<exp_id>/<run_id>/metrics/<key>    lines "timestamp_ms value step"
 *   mlruns/<exp_id>/<run_id>/params/<key>     the value
 *   mlruns/<exp_id>/<run_id>/tags/<key>       the value (mlflow.runName, mlflow.user, ...)
 *   mlruns/<exp_id>/<run_id>/artifacts/
 * Experiment 0 is "Default". Recent MLflow versions need MLFLOW_ALLOW_FILE_STORE=true to read it.
 */
import {randomUUID} from 'node:crypto';
import {appendFile, copyFile, cp, mkdir, readdir, readFile, stat, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {pathToFileURL} from 'node:url';
import YAML from 'yaml';
import {RUN_STATUS_CODE, sanitizeKey, type RunInfo, type RunStatus, type TrackedRun, type Tracker} from './types.js';

export class FileStoreTracker implements Tracker {
  readonly kind = 'file' as const;

  constructor(readonly root: string) {}

  get uri(): string {
    return pathToFileURL(this.root).href;
  }

  private async experimentId(name: string): Promise<string> {
    await mkdir(this.root, {recursive: true});
    const ids: number[] = [];
    for (const entry of await readdir(this.root)) {
      if (!/^\d+$/.test(entry)) continue;
      ids.push(Number(entry));
      try {
        const meta = YAML.parse(await readFile(path.join(this.root, entry, 'meta.yaml'), 'utf8')) as {name?: string};
        if (meta?.name === name) return entry;
      } catch {
        // not an experiment folder
      }
    }
    const id = name === 'Default' && !ids.includes(0) ? '0' : String(Math.max(0, ...ids) + 1);
    const now = Date.now();
    await mkdir(path.join(this.root, id), {recursive: true});
    await writeFile(
      path.join(this.root, id, 'meta.yaml'),
      YAML.stringify({artifact_location: pathToFileURL(path.join(this.root, id)).href, creation_time: now, experiment_id: id, last_update_time: now, lifecycle_stage: 'active', name}),
    );
    return id;
  }

  async startRun(options: {experimentName: string; runName: string; tags?: Record<string, string>}): Promise<TrackedRun> {
    const experimentId = await this.experimentId(options.experimentName);
    const runId = randomUUID().replaceAll('-', '');
    const dir = path.join(this.root, experimentId, runId);
    for (const sub of ['metrics', 'params', 'tags', 'artifacts']) await mkdir(path.join(dir, sub), {recursive: true});
    const meta = {
      artifact_uri: pathToFileURL(path.join(dir, 'artifacts')).href,
      end_time: null as number | null,
      entry_point_name: '',
      experiment_id: experimentId,
      lifecycle_stage: 'active',
      run_id: runId,
      run_name: options.runName,
      run_uuid: runId,
      source_name: '',
      source_type: 4,
      source_version: '',
      start_time: Date.now(),
      status: RUN_STATUS_CODE.RUNNING,
      tags: [],
      user_id: os.userInfo().username,
    };
    const writeMeta = (): Promise<void> => writeFile(path.join(dir, 'meta.yaml'), YAML.stringify(meta));
    await writeMeta();
    const writeKeyed = async (sub: string, key: string, value: string, append = false): Promise<void> => {
      const file = path.join(dir, sub, sanitizeKey(key));
      await mkdir(path.dirname(file), {recursive: true});
      await (append ? appendFile(file, value) : writeFile(file, value));
    };
    const info: RunInfo = {runId, experimentId, artifactUri: meta.artifact_uri};
    const run: TrackedRun = {
      info,
      async logParams(params) {
        for (const [k, v] of Object.entries(params)) await writeKeyed('params', k, String(v));
      },
      async logMetrics(metrics, step, timestampMs = Date.now()) {
        for (const [k, v] of Object.entries(metrics)) if (Number.isFinite(v)) await writeKeyed('metrics', k, `${timestampMs} ${v} ${step}\n`, true);
      },
      async setTags(tags) {
        for (const [k, v] of Object.entries(tags)) await writeKeyed('tags', k, v);
      },
      async logArtifacts(localPath, artifactPath = '') {
        const target = path.join(dir, 'artifacts', artifactPath);
        if ((await stat(localPath)).isDirectory()) await cp(localPath, path.join(target, path.basename(localPath)), {recursive: true});
        else {
          await mkdir(target, {recursive: true});
          await copyFile(localPath, path.join(target, path.basename(localPath)));
        }
      },
      async registerModel() {
        // The file store has no model registry; registration needs a tracking server.
        return undefined;
      },
      async end(status: RunStatus) {
        meta.status = RUN_STATUS_CODE[status];
        meta.end_time = Date.now();
        await writeMeta();
      },
    };
    await run.setTags({'mlflow.runName': options.runName, 'mlflow.user': meta.user_id, 'mlflow.source.type': 'LOCAL', ...options.tags});
    return run;
  }
}

