/**
 * MLflow's SQL store in a SQLite file (`sqlite:///mlflow.db`, natix's offline default), written with plain SQL
 * through libsql (a SQLite build shipped as prebuilt per-platform npm packages: no install script, no compiler).
 *
 * A new database gets MLflow's schema at the pinned revision (sqlite-schema.ts) with experiment 0 "Default"; an
 * existing one is written into when the tables and columns natix uses are compatible, refused otherwise. Every write
 * is one `BEGIN IMMEDIATE` transaction with a busy timeout, so several natix processes (and MLflow itself) can log
 * into the same file at once: SQLite's own file locking serialises them. Artifacts go to `mlartifacts/<exp>/<run>/
 * artifacts` beside the database (not `./mlruns`, which MLflow would take for a file store).
 */
import {mkdirSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';
import Database from 'libsql';
import {ExitCode, NatixError} from '../errors.js';
import {checkRegistration, copyArtifacts, currentUser, newRunId, standardTags} from './local-common.js';
import {incompatibility, MLFLOW_SCHEMA_DDL, MLFLOW_SCHEMA_RELEASE, MLFLOW_SCHEMA_REVISION, type ColumnInfo} from './sqlite-schema.js';
import {definedParams, MAX_TAG_VALUE_LENGTH, sanitizeKey, type RunInfo, type RunStatus, type StartRunOptions, type TrackedRun, type Tracker} from './types.js';

/** SQL cannot hold NaN or +-Inf: MLflow stores NaN as value 0 with is_nan 1, and +-Inf as +-DBL_MAX. */
export function sqlMetricValue(value: number): {value: number; isNan: 0 | 1} {
  if (Number.isNaN(value)) return {value: 0, isNan: 1};
  if (value === Infinity) return {value: Number.MAX_VALUE, isNan: 0};
  if (value === -Infinity) return {value: -Number.MAX_VALUE, isNan: 0};
  return {value, isNan: 0};
}

const BUSY_TIMEOUT_MS = 30_000;

type Db = InstanceType<typeof Database>;

export class SqliteStoreTracker implements Tracker {
  readonly kind = 'sqlite' as const;
  private db?: Db;

  constructor(readonly dbPath: string) {}

  get uri(): string {
    return `sqlite:///${this.dbPath.replaceAll('\\', '/')}`;
  }

  /** Where artifacts go: `mlartifacts/` beside the database. */
  get artifactRoot(): string {
    return path.join(path.dirname(this.dbPath), 'mlartifacts');
  }

  /** Opens (creating when new) and checks the database; throws a NatixError when natix must not write into it. */
  open(): Db {
    if (this.db) return this.db;
    mkdirSync(path.dirname(this.dbPath), {recursive: true});
    let db: Db;
    try {
      db = new Database(this.dbPath, {timeout: BUSY_TIMEOUT_MS});
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.exec('PRAGMA foreign_keys = ON');
    } catch (error) {
      throw new NatixError(`Cannot open the MLflow database ${this.dbPath}: ${(error as Error).message}`, {code: 'TRACKING_STORE', exitCode: ExitCode.Usage, actions: ['Check the --tracking-uri path, or pass --no-tracking.']});
    }
    try {
      this.transaction(db, () => this.prepareSchema(db));
    } catch (error) {
      db.close();
      if (error instanceof NatixError) throw error;
      if (/locked|busy/i.test((error as Error).message)) {
        throw new NatixError(`The MLflow database ${this.dbPath} stayed locked by another process for ${BUSY_TIMEOUT_MS / 1000} s`, {code: 'TRACKING_STORE_BUSY', exitCode: ExitCode.Usage, actions: ['Retry when the other writer is done, or pass --no-tracking.']});
      }
      throw new NatixError(`${this.dbPath} is not an MLflow database natix can write (${(error as Error).message})`, {code: 'TRACKING_STORE', exitCode: ExitCode.Usage, actions: ['Point --tracking-uri at another file, or pass --no-tracking.']});
    }
    this.db = db;
    return db;
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }

  private transaction<T>(db: Db, fn: () => T): T {
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      db.exec('COMMIT');
      return result;
    } catch (error) {
      try {
        db.exec('ROLLBACK');
      } catch {
        // already rolled back
      }
      throw error;
    }
  }

  private write<T>(fn: (db: Db) => T): T {
    const db = this.open();
    return this.transaction(db, () => fn(db));
  }

  private prepareSchema(db: Db): void {
    const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{name: string}>).map((r) => r.name));
    const refuse = (why: string, actions: string[]): never => {
      throw new NatixError(`natix cannot write MLflow runs into ${this.dbPath}: ${why}`, {code: 'TRACKING_STORE_INCOMPATIBLE', exitCode: ExitCode.Usage, actions});
    };
    if (![...tables].some((t) => !t.startsWith('sqlite_'))) {
      for (const ddl of MLFLOW_SCHEMA_DDL) db.exec(ddl);
      db.prepare('INSERT INTO alembic_version (version_num) VALUES (?)').run(MLFLOW_SCHEMA_REVISION);
    } else if (!tables.has('alembic_version') || !tables.has('experiments')) {
      refuse('it is not an MLflow tracking database (no alembic_version/experiments table)', ['Point --tracking-uri at an MLflow database or a new file.']);
    } else {
      const problem = incompatibility((table) => db.prepare(`PRAGMA table_info("${table.replaceAll('"', '')}")`).all() as ColumnInfo[]);
      if (problem) {
        const revision = (db.prepare('SELECT version_num FROM alembic_version').get() as {version_num?: string} | undefined)?.version_num ?? 'none';
        refuse(`its schema (alembic revision ${revision}) is not compatible: ${problem}`, [`natix writes schema revision ${MLFLOW_SCHEMA_REVISION} (${MLFLOW_SCHEMA_RELEASE}) and any later one that keeps these columns.`, 'Log to another database (--tracking-uri sqlite:///other.db) or to the MLflow server that owns this one (--tracking-uri http://...).']);
      }
    }
    const hasDefault = db.prepare('SELECT 1 FROM experiments WHERE experiment_id = 0').get();
    if (!hasDefault && !db.prepare("SELECT 1 FROM experiments WHERE name = 'Default'").get()) {
      const now = Date.now();
      db.prepare("INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES (0, 'Default', ?, 'active', ?, ?)").run(pathToFileURL(path.join(this.artifactRoot, '0')).href, now, now);
    }
  }

  private experimentId(db: Db, name: string): string {
    const row = db.prepare('SELECT experiment_id, lifecycle_stage FROM experiments WHERE name = ?').safeIntegers(true).get(name) as {experiment_id: bigint; lifecycle_stage: string} | undefined;
    if (row) {
      if (row.lifecycle_stage === 'deleted') throw new NatixError(`Experiment "${name}" is deleted in ${this.dbPath}`, {code: 'USAGE', exitCode: ExitCode.Usage, actions: ['Restore it (mlflow experiments restore) or pick another --experiment.']});
      return row.experiment_id.toString();
    }
    const now = Date.now();
    db.prepare("INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES (?, NULL, 'active', ?, ?)").run(name, now, now);
    const id = (db.prepare('SELECT experiment_id FROM experiments WHERE name = ?').safeIntegers(true).get(name) as {experiment_id: bigint}).experiment_id;
    db.prepare('UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?').run(pathToFileURL(path.join(this.artifactRoot, id.toString())).href, id);
    return id.toString();
  }

  async startRun(options: StartRunOptions): Promise<TrackedRun> {
    const runId = newRunId();
    const user = currentUser();
    const startTime = options.startTime ?? Date.now();
    const info = this.write((db) => {
      const experimentId = this.experimentId(db, options.experimentName);
      const artifactUri = pathToFileURL(path.join(this.artifactRoot, experimentId, runId, 'artifacts')).href;
      db.prepare(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) VALUES (?, ?, 'LOCAL', '', '', ?, 'RUNNING', ?, NULL, '', 'active', ?, ?)",
      ).run(runId, options.runName, user, startTime, artifactUri, BigInt(experimentId));
      return {runId, experimentId, experimentName: options.experimentName, artifactUri, storeUri: this.uri};
    });
    const run = this.handle(info);
    await run.setTags(standardTags(options, user));
    return run;
  }

  async resumeRun(runId: string, options: StartRunOptions): Promise<TrackedRun | undefined> {
    const info = this.write((db) => {
      const row = db.prepare('SELECT r.experiment_id AS experiment_id, r.artifact_uri AS artifact_uri, e.name AS name FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id WHERE r.run_uuid = ?').safeIntegers(true).get(runId) as {experiment_id: bigint; artifact_uri: string; name: string} | undefined;
      if (!row) return undefined;
      db.prepare("UPDATE runs SET status = 'RUNNING', end_time = NULL WHERE run_uuid = ?").run(runId);
      return {runId, experimentId: row.experiment_id.toString(), experimentName: row.name, artifactUri: row.artifact_uri, storeUri: this.uri};
    });
    if (!info) return undefined;
    const run = this.handle(info);
    if (options.tags) await run.setTags(options.tags);
    return run;
  }

  private handle(info: RunInfo): TrackedRun {
    const {runId} = info;
    const artifactsDir = info.artifactUri.startsWith('file:') ? fileURLToPath(info.artifactUri) : info.artifactUri;
    return {
      info,
      logParams: async (params) => {
        const list = definedParams(params);
        this.write((db) => {
          const upsert = db.prepare('INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?) ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value');
          for (const [k, v] of list) upsert.run(k, v, runId);
        });
      },
      logMetrics: async (metrics, step, timestamp = Date.now()) => {
        this.write((db) => {
          const insert = db.prepare('INSERT OR IGNORE INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)');
          // latest_metrics keeps the metric with the greatest (step, timestamp, value), as MLflow does.
          const latest = db.prepare(
            `INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp, step = excluded.step, is_nan = excluded.is_nan
             WHERE excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step AND (excluded.timestamp > latest_metrics.timestamp OR (excluded.timestamp = latest_metrics.timestamp AND excluded.value > latest_metrics.value)))`,
          );
          for (const [k, raw] of Object.entries(metrics)) {
            if (typeof raw !== 'number') continue;
            const key = sanitizeKey(k);
            const {value, isNan} = sqlMetricValue(raw);
            insert.run(key, value, timestamp, runId, step, isNan);
            latest.run(key, value, timestamp, step, isNan, runId);
          }
        });
      },
      setTags: async (tags) => {
        this.write((db) => {
          const upsert = db.prepare('INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?) ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value');
          for (const [k, v] of Object.entries(tags)) upsert.run(sanitizeKey(k), v.slice(0, MAX_TAG_VALUE_LENGTH), runId);
          if (tags['mlflow.runName'] !== undefined) db.prepare('UPDATE runs SET name = ? WHERE run_uuid = ?').run(tags['mlflow.runName'], runId);
        });
      },
      logArtifacts: async (localPath, artifactPath = '') => {
        await copyArtifacts(artifactsDir, localPath, artifactPath);
      },
      registerModel: async (name, artifactPath, alias) => {
        checkRegistration(name, alias);
        const source = `${info.artifactUri}/${artifactPath}`;
        const version = this.write((db) => {
          const now = Date.now();
          db.prepare('INSERT INTO registered_models (name, creation_time, last_updated_time, description) VALUES (?, ?, ?, NULL) ON CONFLICT (name) DO UPDATE SET last_updated_time = excluded.last_updated_time').run(name, now, now);
          const next = Number((db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM model_versions WHERE name = ?').get(name) as {v: number}).v) + 1;
          db.prepare("INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id, current_stage, source, run_id, status, status_message, run_link) VALUES (?, ?, ?, ?, NULL, NULL, 'None', ?, ?, 'READY', NULL, NULL)").run(name, next, now, now, source, runId);
          if (alias) db.prepare('INSERT INTO registered_model_aliases (name, alias, version) VALUES (?, ?, ?) ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version').run(name, alias, next);
          return next;
        });
        return {version: String(version)};
      },
      end: async (status: RunStatus, endTime = Date.now()) => {
        this.write((db) => db.prepare('UPDATE runs SET status = ?, end_time = ? WHERE run_uuid = ?').run(status, endTime, runId));
      },
    };
  }
}

