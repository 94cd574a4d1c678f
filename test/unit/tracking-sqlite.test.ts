/**
 * The SQLite store read back with an independent reader: plain SQL against MLflow's documented schema (through the
 * same SQLite binding, but none of natix's store code), as `mlflow ui` would see it.
 */
import {spawn} from 'node:child_process';
import {mkdtemp, readdir, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import Database from 'libsql';
import {beforeEach, describe, expect, it} from 'vitest';
import {MLFLOW_SCHEMA_REVISION, openTracker, SqliteStoreTracker} from '../../src/lib/tracking/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'natix-sqlite-'));
});

type Row = Record<string, unknown>;
/** An independent reader: raw SQL, integers as BigInt (MLflow ids can pass 2^53). */
function query(db: string, sql: string, ...params: unknown[]): Row[] {
  const conn = new Database(db, {readonly: true});
  try {
    return conn.prepare(sql).safeIntegers(true).all(...params) as Row[];
  } finally {
    conn.close();
  }
}

describe('MLflow SQLite store (mlflow.db)', () => {
  it('is the default: sqlite:///mlflow.db in the working folder, with the pinned schema and experiment 0 "Default"', async () => {
    const tracker = openTracker({cwd: dir, env: {}, warn: () => {}});
    expect(tracker.kind).toBe('sqlite');
    const run = await tracker.startRun({experimentName: 'roadwork', runName: 'r1'});
    await run.end('FINISHED');
    const db = path.join(dir, 'mlflow.db');
    expect(query(db, 'SELECT version_num FROM alembic_version')).toEqual([{version_num: MLFLOW_SCHEMA_REVISION}]);
    const tables = query(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").map((r) => r.name);
    expect(tables).toEqual(['alembic_version', 'experiment_tags', 'experiments', 'latest_metrics', 'metrics', 'model_version_tags', 'model_versions', 'params', 'registered_model_aliases', 'registered_model_tags', 'registered_models', 'runs', 'tags']);
    const experiments = query(db, 'SELECT experiment_id, name, lifecycle_stage, artifact_location FROM experiments ORDER BY experiment_id');
    expect(experiments.map((e) => [e.experiment_id, e.name, e.lifecycle_stage])).toEqual([
      [0n, 'Default', 'active'],
      [1n, 'roadwork', 'active'],
    ]);
    expect(experiments[1]!.artifact_location).toBe(`file://${path.join(dir, 'mlartifacts', '1')}`);
    const [r] = query(db, 'SELECT run_uuid, name, status, experiment_id, lifecycle_stage, source_type, start_time, end_time FROM runs');
    expect(r).toMatchObject({run_uuid: run.info.runId, name: 'r1', status: 'FINISHED', experiment_id: 1n, lifecycle_stage: 'active', source_type: 'LOCAL'});
    expect(r!.end_time as bigint).toBeGreaterThanOrEqual(r!.start_time as bigint);
    const tags = Object.fromEntries(query(db, 'SELECT key, value FROM tags WHERE run_uuid = ?', run.info.runId).map((t) => [t.key, t.value]));
    expect(tags).toMatchObject({'mlflow.runName': 'r1', 'mlflow.source.type': 'LOCAL', 'mlflow.source.name': 'natix'});
    expect(query(db, 'PRAGMA integrity_check')).toEqual([{integrity_check: 'ok'}]);
  });

  it('stores params (unset ones left out), metric histories with NaN/Inf as MLflow does, latest_metrics and artifacts', async () => {
    const tracker = openTracker({uri: `sqlite:///${path.join(dir, 'sub', 'runs.db')}`, cwd: '/nonexistent', env: {}, warn: () => {}});
    const run = await tracker.startRun({experimentName: 'e', runName: 'r'});
    await run.logParams({'optimizer.name': 'adam', earlyStopping: undefined, 'model.init': null, epochs: 3});
    await run.logMetrics({loss: 0.5, val_mcc: Number.NaN, grad: Infinity, neg: -Infinity}, 1, 1000);
    await run.logMetrics({loss: 0.25, val_mcc: 0.75}, 2, 2000);
    await writeFile(path.join(dir, 'history.csv'), 'epoch,loss\n');
    await run.logArtifacts(path.join(dir, 'history.csv'), 'reports');
    await run.end('FINISHED');
    const db = path.join(dir, 'sub', 'runs.db');
    expect(query(db, 'SELECT key, value FROM params ORDER BY key')).toEqual([
      {key: 'epochs', value: '3'},
      {key: 'optimizer.name', value: 'adam'},
    ]);
    const metrics = query(db, 'SELECT key, value, step, is_nan, timestamp FROM metrics ORDER BY key, step');
    expect(metrics).toEqual([
      {key: 'grad', value: Number.MAX_VALUE, step: 1n, is_nan: 0n, timestamp: 1000n},
      {key: 'loss', value: 0.5, step: 1n, is_nan: 0n, timestamp: 1000n},
      {key: 'loss', value: 0.25, step: 2n, is_nan: 0n, timestamp: 2000n},
      {key: 'neg', value: -Number.MAX_VALUE, step: 1n, is_nan: 0n, timestamp: 1000n},
      {key: 'val_mcc', value: 0, step: 1n, is_nan: 1n, timestamp: 1000n},
      {key: 'val_mcc', value: 0.75, step: 2n, is_nan: 0n, timestamp: 2000n},
    ]);
    expect(query(db, "SELECT value, step, is_nan FROM latest_metrics WHERE key = 'val_mcc'")).toEqual([{value: 0.75, step: 2n, is_nan: 0n}]);
    const [{artifact_uri: artifactUri}] = query(db, 'SELECT artifact_uri FROM runs') as [{artifact_uri: string}];
    expect(await readdir(path.join(fileURLToPath(artifactUri), 'reports'))).toEqual(['history.csv']);
  });

  it('continues 18-digit experiment ids exactly (no float rounding)', async () => {
    const db = path.join(dir, 'mlflow.db');
    new SqliteStoreTracker(db).open();
    const conn = new Database(db);
    conn.prepare("INSERT INTO experiments (experiment_id, name, lifecycle_stage) VALUES (?, 'from-mlflow', 'active')").run(639250780851123572n);
    conn.close();
    const tracker = openTracker({uri: `sqlite:///${db}`, cwd: dir, env: {}, warn: () => {}});
    const old = await tracker.startRun({experimentName: 'from-mlflow', runName: 'a'});
    const fresh = await tracker.startRun({experimentName: 'natix-new', runName: 'b'});
    expect(old.info.experimentId).toBe('639250780851123572');
    expect(fresh.info.experimentId).toBe('639250780851123573');
    expect(query(db, 'SELECT experiment_id FROM runs WHERE run_uuid = ?', fresh.info.runId)).toEqual([{experiment_id: 639250780851123573n}]);
  });

  it('registers model versions and aliases in the registry tables', async () => {
    const tracker = openTracker({cwd: dir, env: {}, warn: () => {}});
    const run = await tracker.startRun({experimentName: 'e', runName: 'r'});
    expect(await run.registerModel('roadwork', 'model/export', 'champion')).toEqual({version: '1'});
    expect(await run.registerModel('roadwork', 'model/export', 'champion')).toEqual({version: '2'});
    await expect(run.registerModel('roadwork', 'model/export', 'latest')).rejects.toThrow(/reserved/);
    const db = path.join(dir, 'mlflow.db');
    expect(query(db, 'SELECT name FROM registered_models')).toEqual([{name: 'roadwork'}]);
    expect(query(db, 'SELECT version, source, run_id, status, current_stage FROM model_versions ORDER BY version')).toEqual([
      {version: 1n, source: `${run.info.artifactUri}/model/export`, run_id: run.info.runId, status: 'READY', current_stage: 'None'},
      {version: 2n, source: `${run.info.artifactUri}/model/export`, run_id: run.info.runId, status: 'READY', current_stage: 'None'},
    ]);
    expect(query(db, 'SELECT name, alias, version FROM registered_model_aliases')).toEqual([{name: 'roadwork', alias: 'champion', version: 2n}]);
  });

  it('a resumed run continues the same run id: back to RUNNING, then one metric history', async () => {
    const tracker = openTracker({cwd: dir, env: {}, warn: () => {}});
    const first = await tracker.startRun({experimentName: 'e', runName: 'r'});
    await first.logMetrics({loss: 1}, 1, 1000);
    await first.end('KILLED');
    const again = await tracker.resumeRun(first.info.runId, {experimentName: 'e', runName: 'r', tags: {'natix.resumed': 'true'}});
    expect(again?.info.runId).toBe(first.info.runId);
    const db = path.join(dir, 'mlflow.db');
    expect(query(db, 'SELECT status, end_time FROM runs')).toEqual([{status: 'RUNNING', end_time: null}]);
    await again!.logMetrics({loss: 0.5}, 2, 2000);
    await again!.end('FINISHED');
    expect(query(db, 'SELECT COUNT(*) AS n FROM runs')).toEqual([{n: 1n}]);
    expect(query(db, "SELECT step, value FROM metrics WHERE key = 'loss' ORDER BY step")).toEqual([
      {step: 1n, value: 1},
      {step: 2n, value: 0.5},
    ]);
    expect(await tracker.resumeRun('0123456789abcdef0123456789abcdef', {experimentName: 'e', runName: 'r'})).toBeUndefined();
  });

  it('writes into a database a newer MLflow migrated when the columns natix uses are compatible, and refuses clearly otherwise', async () => {
    // A newer MLflow added a table and a nullable / defaulted column: natix writes.
    const newer = path.join(dir, 'newer.db');
    new SqliteStoreTracker(newer).open();
    let conn = new Database(newer);
    conn.exec("UPDATE alembic_version SET version_num = 'ffffffffffff'; CREATE TABLE logged_models (model_id VARCHAR(36) PRIMARY KEY); ALTER TABLE experiments ADD COLUMN workspace VARCHAR(63) NOT NULL DEFAULT 'default'; ALTER TABLE runs ADD COLUMN note TEXT");
    conn.close();
    const run = await openTracker({uri: `sqlite:///${newer}`, cwd: dir, env: {}, warn: () => {}}).startRun({experimentName: 'e', runName: 'r'});
    await run.end('FINISHED');
    expect(query(newer, 'SELECT e.workspace AS w, r.status AS s FROM runs r JOIN experiments e USING (experiment_id)')).toEqual([{w: 'default', s: 'FINISHED'}]);
    // A NOT NULL column without default that natix does not know: refused, naming it.
    const incompatible = path.join(dir, 'incompatible.db');
    new SqliteStoreTracker(incompatible).open();
    conn = new Database(incompatible);
    conn.exec("UPDATE alembic_version SET version_num = 'eeeeeeeeeeee'; ALTER TABLE runs RENAME TO runs_old; CREATE TABLE runs AS SELECT * FROM runs_old; ALTER TABLE runs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'x'");
    conn.exec('CREATE TABLE metrics2 (key TEXT)');
    conn.exec('DROP TABLE latest_metrics');
    conn.close();
    expect(() => openTracker({uri: `sqlite:///${incompatible}`, cwd: dir, env: {}, warn: () => {}})).toThrow(/schema \(alembic revision eeeeeeeeeeee\) is not compatible: table latest_metrics is missing/);
    // Not an MLflow database at all.
    const other = path.join(dir, 'other.db');
    conn = new Database(other);
    conn.exec('CREATE TABLE notes (x TEXT)');
    conn.close();
    expect(() => openTracker({uri: `sqlite:///${other}`, cwd: dir, env: {}, warn: () => {}})).toThrow(/not an MLflow tracking database/);
  });

  it('writes into the workspace-shaped registry of newer MLflow (wider primary keys, workspace columns with defaults)', async () => {
    const db = path.join(dir, 'workspaces.db');
    new SqliteStoreTracker(db).open();
    const conn = new Database(db);
    // What MLflow's "add workspace columns" migration leaves: workspace in the keys of the registry tables.
    conn.exec(`UPDATE alembic_version SET version_num = '1b5f0d9ad7c1';
      DROP TABLE registered_model_aliases; DROP TABLE model_version_tags; DROP TABLE model_versions; DROP TABLE registered_model_tags; DROP TABLE registered_models;
      CREATE TABLE registered_models (name VARCHAR(256) NOT NULL, creation_time BIGINT, last_updated_time BIGINT, description VARCHAR(5000), workspace VARCHAR(63) DEFAULT 'default' NOT NULL, CONSTRAINT registered_model_pk PRIMARY KEY (workspace, name));
      CREATE TABLE model_versions (name VARCHAR(256) NOT NULL, version INTEGER NOT NULL, creation_time BIGINT, last_updated_time BIGINT, description VARCHAR(5000), user_id VARCHAR(256), current_stage VARCHAR(20), source VARCHAR(500), run_id VARCHAR(32), status VARCHAR(20), status_message VARCHAR(500), run_link VARCHAR(500), storage_location VARCHAR(500), workspace VARCHAR(63) DEFAULT 'default' NOT NULL, CONSTRAINT model_version_pk PRIMARY KEY (workspace, name, version));
      CREATE TABLE registered_model_aliases (alias VARCHAR(256) NOT NULL, version INTEGER NOT NULL, name VARCHAR(256) NOT NULL, workspace VARCHAR(63) DEFAULT 'default' NOT NULL, CONSTRAINT registered_model_alias_pk PRIMARY KEY (workspace, name, alias));
      ALTER TABLE experiments ADD COLUMN workspace VARCHAR(63) DEFAULT 'default' NOT NULL;`);
    conn.close();
    const run = await openTracker({uri: `sqlite:///${db}`, cwd: dir, env: {}, warn: () => {}}).startRun({experimentName: 'e', runName: 'r'});
    await run.registerModel('roadwork', 'model', 'champion');
    await run.registerModel('roadwork', 'model', 'champion');
    await run.end('FINISHED');
    expect(query(db, 'SELECT workspace, name, alias, version FROM registered_model_aliases')).toEqual([{workspace: 'default', name: 'roadwork', alias: 'champion', version: 2n}]);
    expect(query(db, 'SELECT COUNT(*) AS n FROM model_versions')).toEqual([{n: 2n}]);
  });

  it('refuses a NOT NULL column without a default that natix would leave empty', async () => {
    const db = path.join(dir, 'strict.db');
    new SqliteStoreTracker(db).open();
    const conn = new Database(db);
    conn.exec('DROP TABLE tags; CREATE TABLE tags (key VARCHAR(250) NOT NULL, value VARCHAR(5000), run_uuid VARCHAR(32) NOT NULL, workspace TEXT NOT NULL, PRIMARY KEY (key, run_uuid))');
    conn.close();
    expect(() => openTracker({uri: `sqlite:///${db}`, cwd: dir, env: {}, warn: () => {}})).toThrow(/tags requires workspace \(no default\)/);
  });

  it('two processes logging into the same database at once never corrupt it and lose nothing', async () => {
    const db = path.join(dir, 'mlflow.db');
    const store = path.resolve('src/lib/tracking/index.ts');
    const child = path.join(dir, 'writer.mts');
    await writeFile(
      child,
      `import {openTracker} from ${JSON.stringify(store)};
const [db, name] = process.argv.slice(2);
const tracker = openTracker({uri: 'sqlite:///' + db, cwd: process.cwd(), env: {}, warn: () => {}});
const run = await tracker.startRun({experimentName: 'shared', runName: name});
for (let step = 1; step <= 150; step++) await run.logMetrics({loss: 1 / step, acc: step / 150}, step, 1000 + step);
await run.logParams({writer: name});
await run.end('FINISHED');
`,
    );
    const runChild = (name: string): Promise<{code: number | null; stderr: string}> =>
      new Promise((resolve) => {
        const p = spawn(process.execPath, ['--import', 'tsx', child, db, name], {stdio: ['ignore', 'ignore', 'pipe']});
        let stderr = '';
        p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        p.on('close', (code) => resolve({code, stderr}));
      });
    const results = await Promise.all([runChild('a'), runChild('b'), runChild('c')]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    expect(query(db, 'PRAGMA integrity_check')).toEqual([{integrity_check: 'ok'}]);
    expect(query(db, "SELECT COUNT(*) AS n FROM experiments WHERE name = 'shared'")).toEqual([{n: 1n}]);
    expect(query(db, 'SELECT r.name AS name, COUNT(m.key) AS n, r.status AS status FROM runs r JOIN metrics m ON m.run_uuid = r.run_uuid GROUP BY r.run_uuid ORDER BY r.name')).toEqual([
      {name: 'a', n: 300n, status: 'FINISHED'},
      {name: 'b', n: 300n, status: 'FINISHED'},
      {name: 'c', n: 300n, status: 'FINISHED'},
    ]);
  }, 120_000);
});
