import {mkdir, mkdtemp, readdir, readFile, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {FileStoreTracker, flattenParams, logBatchBodies, openTracker, resolveTrackingUri, RestTracker, sanitizeKey, SqliteStoreTracker, syncSpool, spoolDir} from '../../src/lib/tracking/index.js';
import {FakeMlflowServer} from '../helpers/mlflow-server.js';

let dir: string;
let server: FakeMlflowServer;
const TOKEN = 'secret-token-123';

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'natix-track-'));
  server = new FakeMlflowServer();
  await server.start();
});
afterEach(async () => server.stop());

describe('MLflow file store', () => {
  it('writes the layout mlflow ui reads: meta.yaml files, metrics lines, params, tags, artifacts, status codes', async () => {
    const tracker = openTracker({uri: path.join(dir, 'mlruns'), cwd: dir, env: {}, warn: () => {}});
    expect(tracker).toBeInstanceOf(FileStoreTracker);
    const run = await tracker.startRun({experimentName: 'roadwork', runName: 'r1', tags: {'natix.backend': 'wasm'}});
    await run.logParams({'optimizer.name': 'adam', epochs: 3, 'bad key!': 'x'});
    await run.logMetrics({loss: 0.5, val_mcc: 0.7}, 1, 1000);
    await run.logMetrics({loss: 0.25, val_mcc: 0.8}, 2, 2000);
    await writeFile(path.join(dir, 'history.csv'), 'epoch,loss\n1,0.5\n');
    await run.logArtifacts(path.join(dir, 'history.csv'));
    await run.end('FINISHED');
    const exp = path.join(dir, 'mlruns', run.info.experimentId);
    const expMeta = YAML.parse(await readFile(path.join(exp, 'meta.yaml'), 'utf8'));
    expect(expMeta).toMatchObject({name: 'roadwork', experiment_id: run.info.experimentId, lifecycle_stage: 'active'});
    expect(expMeta.artifact_location).toMatch(/^file:\/\//);
    const runDir = path.join(exp, run.info.runId);
    const meta = YAML.parse(await readFile(path.join(runDir, 'meta.yaml'), 'utf8'));
    expect(meta).toMatchObject({run_id: run.info.runId, run_uuid: run.info.runId, run_name: 'r1', status: 3, lifecycle_stage: 'active', experiment_id: run.info.experimentId});
    expect(meta.end_time).toBeGreaterThanOrEqual(meta.start_time);
    expect(await readFile(path.join(runDir, 'metrics', 'loss'), 'utf8')).toBe('1000 0.5 1\n2000 0.25 2\n');
    expect(await readFile(path.join(runDir, 'params', 'optimizer.name'), 'utf8')).toBe('adam');
    expect(await readFile(path.join(runDir, 'params', 'bad key_'), 'utf8')).toBe('x');
    expect(await readFile(path.join(runDir, 'tags', 'mlflow.runName'), 'utf8')).toBe('r1');
    expect(await readFile(path.join(runDir, 'tags', 'natix.backend'), 'utf8')).toBe('wasm');
    expect(await readdir(path.join(runDir, 'artifacts'))).toEqual(['history.csv']);
    // A second run in the same experiment reuses its id.
    const again = await tracker.startRun({experimentName: 'roadwork', runName: 'r2'});
    expect(again.info.experimentId).toBe(run.info.experimentId);
    await again.end('KILLED');
    expect(YAML.parse(await readFile(path.join(exp, again.info.runId, 'meta.yaml'), 'utf8')).status).toBe(5);
  });

  it('creates experiment 0 "Default" as MLflow does (a plain mlflow.start_run() needs it), and .trash', async () => {
    const root = path.join(dir, 'mlruns');
    const tracker = openTracker({uri: `file:${root}`, cwd: '/', env: {}, warn: () => {}});
    const run = await tracker.startRun({experimentName: 'roadwork', runName: 'r'});
    expect(run.info.experimentId).toBe('1');
    const zero = YAML.parse(await readFile(path.join(root, '0', 'meta.yaml'), 'utf8'));
    expect(zero).toMatchObject({experiment_id: '0', name: 'Default', lifecycle_stage: 'active', artifact_location: `file://${path.join(root, '0')}`});
    expect(Object.keys(zero).sort()).toEqual(['artifact_location', 'creation_time', 'experiment_id', 'last_update_time', 'lifecycle_stage', 'name']);
    expect((await readdir(root)).sort()).toEqual(['.trash', '0', '1']);
    // An existing store without experiment 0 (as natix used to write) gets it added.
    const old = path.join(dir, 'old');
    await mkdir(path.join(old, '1'), {recursive: true});
    await writeFile(path.join(old, '1', 'meta.yaml'), YAML.stringify({experiment_id: '1', name: 'natix-train', lifecycle_stage: 'active'}));
    const again = await new FileStoreTracker(old).startRun({experimentName: 'natix-train', runName: 'r'});
    expect(again.info.experimentId).toBe('1');
    expect(YAML.parse(await readFile(path.join(old, '0', 'meta.yaml'), 'utf8')).name).toBe('Default');
  });

  it('continues after 18-digit experiment ids with integers, writes NaN/Inf as MLflow does, omits unset params', async () => {
    const root = path.join(dir, 'mlruns');
    await mkdir(path.join(root, '639250780851123572'), {recursive: true});
    await writeFile(path.join(root, '639250780851123572', 'meta.yaml'), YAML.stringify({experiment_id: '639250780851123572', name: 'made-by-mlflow', lifecycle_stage: 'active'}));
    const tracker = new FileStoreTracker(root);
    const run = await tracker.startRun({experimentName: 'natix-new', runName: 'r'});
    expect(run.info.experimentId).toBe('639250780851123573');
    expect(YAML.parse(await readFile(path.join(root, '639250780851123573', 'meta.yaml'), 'utf8')).experiment_id).toBe('639250780851123573');
    await run.logMetrics({loss: Number.NaN, up: Infinity, down: -Infinity, ok: 0.5}, 2, 1000);
    await run.logParams({earlyStopping: undefined, 'model.init': null, epochs: 3});
    const runDir = path.join(root, '639250780851123573', run.info.runId);
    expect(await readFile(path.join(runDir, 'metrics', 'loss'), 'utf8')).toBe('1000 nan 2\n');
    expect(await readFile(path.join(runDir, 'metrics', 'up'), 'utf8')).toBe('1000 inf 2\n');
    expect(await readFile(path.join(runDir, 'metrics', 'down'), 'utf8')).toBe('1000 -inf 2\n');
    expect(await readdir(path.join(runDir, 'params'))).toEqual(['epochs']);
    expect(await readFile(path.join(runDir, 'tags', 'mlflow.source.name'), 'utf8')).toBe('natix');
  });

  it('writes the file model registry: models/<name>/meta.yaml, version-N/meta.yaml, aliases/<alias>', async () => {
    const root = path.join(dir, 'mlruns');
    const run = await new FileStoreTracker(root).startRun({experimentName: 'e', runName: 'r'});
    expect(await run.registerModel('roadwork', 'model/export', 'champion')).toEqual({version: '1'});
    expect(await run.registerModel('roadwork', 'model/export', 'champion')).toEqual({version: '2'});
    await expect(run.registerModel('../escape', 'model')).rejects.toThrow(/path separators/);
    await expect(run.registerModel('roadwork', 'model', 'v3')).rejects.toThrow(/reserved/);
    const model = path.join(root, 'models', 'roadwork');
    expect(YAML.parse(await readFile(path.join(model, 'meta.yaml'), 'utf8'))).toMatchObject({name: 'roadwork'});
    const v2 = YAML.parse(await readFile(path.join(model, 'version-2', 'meta.yaml'), 'utf8'));
    expect(v2).toMatchObject({name: 'roadwork', version: 2, run_id: run.info.runId, source: `${run.info.artifactUri}/model/export`, status: 'READY', current_stage: 'None'});
    expect(await readFile(path.join(model, 'aliases', 'champion'), 'utf8')).toBe('2');
  });

  it('a resumed run continues the same run id in the file store (RUNNING again, one metric file)', async () => {
    const tracker = new FileStoreTracker(path.join(dir, 'mlruns'));
    const run = await tracker.startRun({experimentName: 'e', runName: 'r'});
    await run.logMetrics({loss: 1}, 1, 1000);
    await run.end('KILLED');
    const again = await tracker.resumeRun(run.info.runId, {experimentName: 'e', runName: 'r'});
    const metaFile = path.join(dir, 'mlruns', run.info.experimentId, run.info.runId, 'meta.yaml');
    expect(YAML.parse(await readFile(metaFile, 'utf8'))).toMatchObject({status: 1, end_time: null});
    await again!.logMetrics({loss: 0.5}, 2, 2000);
    await again!.end('FINISHED');
    expect(await readFile(path.join(dir, 'mlruns', run.info.experimentId, run.info.runId, 'metrics', 'loss'), 'utf8')).toBe('1000 1 1\n2000 0.5 2\n');
    expect(YAML.parse(await readFile(metaFile, 'utf8')).status).toBe(3);
  });

  it('follows MLflow key rules: ":" kept (not on Windows), no "..", "/.", "//" or leading "/" paths; unset params omitted', () => {
    expect(sanitizeKey('val/mcc (best)!')).toBe('val/mcc _best__');
    expect(sanitizeKey('natix.gate:min-mcc', 'linux')).toBe('natix.gate:min-mcc');
    expect(sanitizeKey('natix.gate:min-mcc', 'win32')).toBe('natix.gate_min-mcc');
    expect(sanitizeKey('../../etc/passwd')).toBe('__/__/etc/passwd');
    expect(sanitizeKey('/a//b/./c/')).toBe('a/b/c');
    expect(sanitizeKey('..hidden')).toBe('__hidden');
    expect(sanitizeKey('..')).toBe('__');
    expect(sanitizeKey('')).toBe('_');
    expect(sanitizeKey('x'.repeat(300))).toHaveLength(250);
    expect(flattenParams({a: {b: undefined, c: null, d: 1}, e: [1, 2], f: false})).toEqual({'a.d': '1', e: '[1,2]', f: 'false'});
  });

  it('reads tracking URIs as MLflow does; MLFLOW_TRACKING_URI is honoured, the flag wins', () => {
    expect(resolveTrackingUri(undefined, '/w', {})).toMatchObject({kind: 'sqlite', dbPath: '/w/mlflow.db'});
    expect(resolveTrackingUri('sqlite:///runs/x.db', '/w', {})).toMatchObject({kind: 'sqlite', dbPath: '/w/runs/x.db'});
    expect(resolveTrackingUri('sqlite:////abs/x.db', '/w', {})).toMatchObject({kind: 'sqlite', dbPath: '/abs/x.db', display: 'sqlite:////abs/x.db'});
    expect(resolveTrackingUri('file:./mlruns', '/w', {})).toMatchObject({kind: 'file', root: '/w/mlruns'});
    expect(resolveTrackingUri('file:///abs/mlruns', '/w', {})).toMatchObject({kind: 'file', root: '/abs/mlruns'});
    expect(resolveTrackingUri('runs/mlruns', '/w', {})).toMatchObject({kind: 'file', root: '/w/runs/mlruns'});
    expect(resolveTrackingUri(undefined, '/w', {MLFLOW_TRACKING_URI: 'https://u:p@m.example/'})).toEqual({kind: 'rest', baseUrl: 'https://m.example', credentials: {username: 'u', password: 'p'}, display: 'https://m.example'});
    expect(resolveTrackingUri('file:./a', '/w', {MLFLOW_TRACKING_URI: 'sqlite:///b.db'})).toMatchObject({kind: 'file'});
    expect(() => resolveTrackingUri('postgresql://u:secret@db/mlflow', '/w', {})).toThrow(/Unsupported tracking URI postgresql:\/\/db\/mlflow/);
    expect(() => resolveTrackingUri('sqlite://', '/w', {})).toThrow(/database file/);
    expect(new SqliteStoreTracker('/w/mlflow.db').uri).toBe('sqlite:////w/mlflow.db');
  });

  it('splits log-batch bodies at the API limits', () => {
    const metrics = Array.from({length: 2500}, (_, i) => ({key: `m${i}`, value: i, timestamp: 0, step: 0}));
    const params = Array.from({length: 150}, (_, i) => ({key: `p${i}`, value: 'v'}));
    const bodies = logBatchBodies(metrics, params, []);
    expect(bodies.map((b) => ((b.metrics as unknown[]) ?? (b.params as unknown[])).length)).toEqual([1000, 1000, 500, 100, 50]);
  });
});

describe('MLflow REST client', () => {
  it('creates the experiment and run, batches metrics, uploads artifacts, registers a model, with bearer auth', async () => {
    // What the REST calls carry, not the deadlines (tracking-faults.test.ts): a loaded machine must not spool them.
    const tracker = openTracker({uri: server.url, cwd: dir, env: {MLFLOW_TRACKING_TOKEN: TOKEN}, warn: () => {}, deadlineMs: 60_000});
    expect(tracker).toBeInstanceOf(RestTracker);
    const run = await tracker.startRun({experimentName: 'exp', runName: 'r1', tags: {'natix.version': '0.1.0'}});
    await run.logParams({a: 1});
    await run.logMetrics(Object.fromEntries(Array.from({length: 1200}, (_, i) => [`m${i}`, i])), 3);
    await run.setTags({'natix.verdict': 'PASS'});
    await writeFile(path.join(dir, 'curves.svg'), '<svg/>');
    await run.logArtifacts(path.join(dir, 'curves.svg'), 'plots');
    await run.registerModel('roadwork', 'model/export', 'champion');
    await run.end('FINISHED');
    expect(server.calls('/api/2.0/mlflow/experiments/get-by-name')).toHaveLength(1);
    expect(server.calls('/api/2.0/mlflow/experiments/create')[0]!.body).toEqual({name: 'exp'});
    const create = server.calls('/api/2.0/mlflow/runs/create')[0]!.body as {run_name: string; tags: Array<{key: string}>};
    expect(create.run_name).toBe('r1');
    expect(create.tags.map((t) => t.key)).toContain('mlflow.runName');
    const batches = server.calls('/api/2.0/mlflow/runs/log-batch').map((r) => r.body as {metrics?: Array<{step: number}>; params?: unknown[]; run_id: string});
    expect(batches.map((b) => b.metrics?.length ?? 0)).toEqual([0, 1000, 200]);
    expect(batches[1]!.metrics![0]!.step).toBe(3);
    expect(batches.every((b) => b.run_id === 'run1')).toBe(true);
    expect(server.calls('/api/2.0/mlflow-artifacts/artifacts/1/run1/artifacts/plots/curves.svg')).toHaveLength(1);
    expect(server.calls('/api/2.0/mlflow/model-versions/create')[0]!.body).toMatchObject({name: 'roadwork', source: 'mlflow-artifacts:/1/run1/artifacts/model/export', run_id: 'run1'});
    expect(server.calls('/api/2.0/mlflow/registered-models/alias')[0]!.body).toEqual({name: 'roadwork', alias: 'champion', version: '1'});
    expect(server.calls('/api/2.0/mlflow/runs/update')[0]!.body).toMatchObject({run_id: 'run1', status: 'FINISHED'});
    expect(server.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });

  it('resumes a run on the server: same run id, set back to RUNNING; an unknown run is not resumed', async () => {
    const tracker = openTracker({uri: server.url, cwd: dir, env: {}, warn: () => {}});
    const run = await tracker.startRun({experimentName: 'e', runName: 'r'});
    await run.end('KILLED');
    const again = await tracker.resumeRun(run.info.runId, {experimentName: 'e', runName: 'r', tags: {'natix.resumed': 'true'}});
    expect(again?.info.runId).toBe(run.info.runId);
    expect(again?.info.artifactUri).toBe(run.info.artifactUri);
    await again!.logMetrics({loss: 0.5}, 2);
    await again!.end('FINISHED');
    expect(server.calls('/api/2.0/mlflow/runs/update').map((c) => (c.body as {status: string}).status)).toEqual(['KILLED', 'RUNNING', 'FINISHED']);
    expect(server.calls('/api/2.0/mlflow/runs/create')).toHaveLength(1);
    expect(await tracker.resumeRun('run99', {experimentName: 'e', runName: 'r'})).toBeUndefined();
  });

  it('retries 500s, timeouts and dropped connections with back-off, then succeeds', async () => {
    server.faults = ['http500', 'drop', 'hang'];
    const tracker = new RestTracker({baseUrl: server.url, env: {}, timeoutMs: 300, retries: 3, backoffMs: 10, startDeadlineMs: 60_000, endDeadlineMs: 60_000, spoolDir: spoolDir(dir), warn: () => {}});
    const run = await tracker.startRun({experimentName: 'e', runName: 'r'});
    expect(run.info.runId).toBe('run1');
    await run.end('FINISHED');
    expect(server.calls('/api/2.0/mlflow/experiments/get-by-name')).toHaveLength(4);
  });

  it('a dead server never stalls the caller for long: calls go to the spool with a warning, and sync replays them', async () => {
    const warnings: string[] = [];
    const port = server.port;
    await server.stop();
    const tracker = new RestTracker({baseUrl: `http://127.0.0.1:${port}`, env: {}, timeoutMs: 200, retries: 2, backoffMs: 10, spoolDir: spoolDir(dir), warn: (m) => warnings.push(m)});
    const started = performance.now();
    const run = await tracker.startRun({experimentName: 'offline', runName: 'r'});
    await run.logMetrics({loss: 1}, 1);
    await run.logParams({a: 'b'});
    await run.end('FINISHED');
    expect(performance.now() - started).toBeLessThan(5000);
    expect(warnings.join('\n')).toMatch(/natix tracking sync/);
    expect((await readdir(spoolDir(dir))).filter((f) => f.endsWith('.jsonl'))).toHaveLength(1);
    const revived = new FakeMlflowServer();
    await revived.start(port);
    try {
      const result = await syncSpool({uri: revived.url, cwd: dir, env: {}, warn: () => {}});
      expect(result).toMatchObject({runs: 1, replayed: 3, failed: []});
      expect(revived.calls('/api/2.0/mlflow/runs/create')).toHaveLength(1);
      expect(revived.calls('/api/2.0/mlflow/runs/log-batch')).toHaveLength(2);
      expect(revived.calls('/api/2.0/mlflow/runs/update')[0]!.body).toMatchObject({status: 'FINISHED', run_id: 'run1'});
      // Idempotent: the replayed file is marked done.
      expect(await syncSpool({uri: revived.url, cwd: dir, env: {}, warn: () => {}})).toMatchObject({runs: 0});
    } finally {
      await revived.stop();
    }
  });
});
