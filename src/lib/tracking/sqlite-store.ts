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
import {mkdirSync, statSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';
import Database from 'libsql';
import {ExitCode, NatixError} from '../errors.js';
import {nonRegularKind} from '../util/user-files.js';
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
type SqlValue = string | number | bigint | null;

/**
 * UPDATE the row with these key columns, or INSERT it. Written without `ON CONFLICT (...)` targets on purpose: newer
 * MLflow schemas widen some primary keys (e.g. a `workspace` column in the registry tables), which would make such a
 * target match no constraint; a plain UPDATE-then-INSERT works on every revision.
 */
function upsertByKey(db: Db, table: string, key: Record<string, SqlValue>, values: Record<string, SqlValue>): void {
  const keyCols = Object.keys(key);
  const valueCols = Object.keys(values);
  const where = keyCols.map((c) => `${c} = ?`).join(' AND ');
  const updated = db.prepare(`UPDATE ${table} SET ${valueCols.map((c) => `${c} = ?`).join(', ')} WHERE ${where}`).run(...Object.values(values), ...Object.values(key));
  if (updated.changes > 0) return;
  const cols = [...keyCols, ...valueCols];
  db.prepare(`INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...Object.values(key), ...Object.values(values));
}

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
    // SQLite would open a FIFO (or a FIFO journal) and wait on it forever: the database and its side files must be
    // regular files when they exist (symlinks followed).
    for (const file of [this.dbPath, `${this.dbPath}-wal`, `${this.dbPath}-shm`, `${this.dbPath}-journal`]) {
      const info = statSync(file, {throwIfNoEntry: false});
      const kind = info && nonRegularKind(info);
      if (kind) throw new NatixError(`The MLflow database file ${file} ${kind.what}`, {code: 'TRACKING_STORE', exitCode: ExitCode.Usage, actions: ['Point --tracking-uri at a regular file, or pass --no-tracking.']});
    }
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
    // The next id is computed here (BigInt, inside the write lock) rather than left to SQLite's rowid, so it stays
    // exact next to MLflow's 18-digit ids and works whether or not a newer schema keeps experiment_id a rowid alias.
    const max = (db.prepare('SELECT MAX(experiment_id) AS id FROM experiments').safeIntegers(true).get() as {id: bigint | null}).id;
    const id = (max ?? 0n) + 1n;
    const now = Date.now();
    db.prepare("INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES (?, ?, ?, 'active', ?, ?)").run(id, name, pathToFileURL(path.join(this.artifactRoot, id.toString())).href, now, now);
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
          for (const [k, v] of list) upsertByKey(db, 'params', {key: k, run_uuid: runId}, {value: v});
        });
      },
      logMetrics: async (metrics, step, timestamp = Date.now()) => {
        this.write((db) => {
          const insert = db.prepare('INSERT OR IGNORE INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)');
          const current = db.prepare('SELECT step, timestamp, value FROM latest_metrics WHERE key = ? AND run_uuid = ?');
          for (const [k, raw] of Object.entries(metrics)) {
            if (typeof raw !== 'number') continue;
            const key = sanitizeKey(k);
            const {value, isNan} = sqlMetricValue(raw);
            insert.run(key, value, timestamp, runId, step, isNan);
            // latest_metrics keeps the metric with the greatest (step, timestamp, value), as MLflow does.
            const old = current.get(key, runId) as {step: number; timestamp: number; value: number} | undefined;
            const newer = !old || step > Number(old.step) || (step === Number(old.step) && (timestamp > Number(old.timestamp) || (timestamp === Number(old.timestamp) && value > Number(old.value))));
            if (newer) upsertByKey(db, 'latest_metrics', {key, run_uuid: runId}, {value, timestamp, step, is_nan: isNan});
          }
        });
      },
      setTags: async (tags) => {
        this.write((db) => {
          for (const [k, v] of Object.entries(tags)) upsertByKey(db, 'tags', {key: sanitizeKey(k), run_uuid: runId}, {value: v.slice(0, MAX_TAG_VALUE_LENGTH)});
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
          if (db.prepare('UPDATE registered_models SET last_updated_time = ? WHERE name = ?').run(now, name).changes === 0) {
            db.prepare('INSERT INTO registered_models (name, creation_time, last_updated_time, description) VALUES (?, ?, ?, NULL)').run(name, now, now);
          }
          const next = Number((db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM model_versions WHERE name = ?').get(name) as {v: number}).v) + 1;
          db.prepare("INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id, current_stage, source, run_id, status, status_message, run_link) VALUES (?, ?, ?, ?, NULL, NULL, 'None', ?, ?, 'READY', NULL, NULL)").run(name, next, now, now, source, runId);
          if (alias) upsertByKey(db, 'registered_model_aliases', {name, alias}, {version: next});
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

