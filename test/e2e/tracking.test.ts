import {mkdir, mkdtemp, readdir, readFile, writeFile} from 'node:fs/promises';
import http from 'node:http';
import type {AddressInfo} from 'node:net';
import {fileURLToPath} from 'node:url';
import os from 'node:os';
import path from 'node:path';
import fg from 'fast-glob';
import sharp from 'sharp';
import YAML from 'yaml';
import Database from 'libsql';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {FakeMlflowServer} from '../helpers/mlflow-server.js';
import {redVsBlueLogitsModel, writeHfModelDir} from '../helpers/models.js';
import {runNatix} from '../helpers/cli.js';

const TOKEN = 'never-print-me-42';
let base: string;
let data: string;
let server: FakeMlflowServer;

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'natix-tracking-e2e-'));
  data = path.join(base, 'data');
  let k = 0;
  for (const split of ['train', 'val', 'test']) {
    for (const cls of ['roadwork', 'none'] as const) {
      await mkdir(path.join(data, split, cls), {recursive: true});
      for (let i = 0; i < 4; i++, k++) {
        const bg = cls === 'roadwork' ? {r: 200, g: 80 + k, b: 50} : {r: 50, g: 80 + k, b: 200};
        await sharp({create: {width: 20, height: 20, channels: 3, background: bg}}).png().toFile(path.join(data, split, cls, `${k}.png`));
      }
    }
  }
  server = new FakeMlflowServer();
  await server.start();
});
afterAll(async () => server.stop());

type Row = Record<string, unknown>;
/** An independent reader of mlflow.db: plain SQL against MLflow's schema. */
function query(db: string, sql: string, ...params: unknown[]): Row[] {
  const conn = new Database(db, {readonly: true});
  try {
    return conn.prepare(sql).all(...params) as Row[];
  } finally {
    conn.close();
  }
}

async function trainConfig(name: string): Promise<string> {
  const file = path.join(base, `${name}.yaml`);
  await writeFile(file, YAML.stringify({'run-name': name, out: 'runs', epochs: 2, 'batch-size': 4, seed: 1, dataset: {path: 'data', 'image-size': 16}, model: {architecture: 'tiny-cnn', width: 0.5}}));
  return file;
}

describe('experiment tracking end to end', () => {
  it('natix train logs to sqlite:///mlflow.db by default: params, one metric row per epoch (step = epoch), tags, artifacts, FINISHED', async () => {
    const r = await runNatix(['train', '--config', await trainConfig('tracked'), '--json'], {cwd: base, env: {MLFLOW_TRACKING_URI: undefined}});
    expect(r.code, r.stderr).toBe(0);
    const db = path.join(base, 'mlflow.db');
    const runs = query(db, 'SELECT run_uuid, name, status, experiment_id, artifact_uri FROM runs');
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({run_uuid: r.json.result.trackingRunId, name: 'tracked', status: 'FINISHED'});
    expect(query(db, 'SELECT experiment_id, name FROM experiments ORDER BY experiment_id')).toEqual([
      {experiment_id: 0, name: 'Default'},
      {experiment_id: 1, name: 'natix-train'},
    ]);
    expect(query(db, "SELECT step FROM metrics WHERE key = 'val_mcc' ORDER BY step").map((m) => m.step)).toEqual([1, 2]);
    const params = Object.fromEntries(query(db, 'SELECT key, value FROM params').map((p) => [p.key, p.value]));
    expect(params['dataset.imageSize']).toBe('16');
    expect(Object.values(params)).not.toContain('undefined');
    const tags = Object.fromEntries(query(db, 'SELECT key, value FROM tags').map((t) => [t.key, t.value]));
    expect(tags).toMatchObject({'natix.backend': 'wasm', 'mlflow.source.name': 'natix train'});
    expect(String(tags['natix.dataset.fingerprint'])).toHaveLength(16);
    const artifacts = fileURLToPath(String(runs[0]!.artifact_uri));
    expect(artifacts.startsWith(path.join(base, 'mlartifacts'))).toBe(true);
    expect((await readdir(artifacts)).sort()).toEqual(['config.json', 'curves.svg', 'history.csv', 'model']);
    expect((await readdir(path.join(artifacts, 'model', 'export'))).sort()).toEqual(['config.json', 'model.onnx', 'model_card.json', 'preprocessor_config.json']);
  }, 120_000);

  it('natix train --resume continues the same MLflow run: one run, one metric history, FINISHED; --register writes the local registry', async () => {
    const config = await trainConfig('resumed');
    const uri = `sqlite:///${path.join(base, 'resume.db')}`;
    const first = await runNatix(['train', '--config', config, '--tracking-uri', uri, '--json'], {cwd: base});
    expect(first.code, first.stderr).toBe(0);
    const second = await runNatix(['train', '--config', config, '--tracking-uri', uri, '--resume', '--epochs', '3', '--register', 'roadwork', '--alias', 'champion', '--json'], {cwd: base});
    expect(second.code, second.stderr).toBe(0);
    expect(second.json.result.trackingRunId).toBe(first.json.result.trackingRunId);
    const db = path.join(base, 'resume.db');
    expect(query(db, 'SELECT run_uuid, status FROM runs')).toEqual([{run_uuid: first.json.result.trackingRunId, status: 'FINISHED'}]);
    expect(query(db, "SELECT step FROM metrics WHERE key = 'val_mcc' ORDER BY step").map((m) => m.step)).toEqual([1, 2, 3]);
    expect(query(db, 'SELECT name, version, run_id FROM model_versions')).toEqual([{name: 'roadwork', version: 1, run_id: first.json.result.trackingRunId}]);
    expect(query(db, 'SELECT alias, version FROM registered_model_aliases')).toEqual([{alias: 'champion', version: 1}]);
  }, 180_000);

  it('natix train --register against a server: exported model uploaded, version registered with an alias; the token never leaks', async () => {
    const r = await runNatix(['train', '--config', await trainConfig('registered'), '--tracking-uri', server.url, '--register', 'roadwork', '--alias', 'champion', '--experiment', 'natix-ci'], {cwd: base, env: {MLFLOW_TRACKING_TOKEN: TOKEN}});
    expect(r.code, r.stderr).toBe(0);
    expect(server.calls('/api/2.0/mlflow/experiments/create')[0]!.body).toEqual({name: 'natix-ci'});
    expect(server.calls('/api/2.0/mlflow/runs/log-batch').filter((c) => (c.body as {metrics?: unknown[]}).metrics).length).toBe(2);
    expect(server.requests.filter((c) => c.method === 'PUT').map((c) => c.path)).toEqual(expect.arrayContaining([expect.stringMatching(/artifacts\/model\/export\/model\.onnx$/), expect.stringMatching(/history\.csv$/)]));
    expect(server.calls('/api/2.0/mlflow/registered-models/alias')[0]!.body).toMatchObject({name: 'roadwork', alias: 'champion'});
    expect(server.calls('/api/2.0/mlflow/runs/update').at(-1)!.body).toMatchObject({status: 'FINISHED'});
    expect(server.requests.every((c) => c.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
    // The secret appears in no output and no written file.
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
    for (const f of await fg('**/*', {cwd: base, dot: true, onlyFiles: true})) {
      if (/\.(png|bin|onnx)$/.test(f)) continue;
      expect(await readFile(path.join(base, f), 'utf8'), f).not.toContain(TOKEN);
    }
  }, 120_000);

  it('natix bench --track logs metrics, gates and the verdict as a run', async () => {
    const model = await writeHfModelDir(path.join(base, 'model'), redVsBlueLogitsModel(3));
    // 8 test images: only an MCC gate with a wide margin (1 - 0.1) can be decided on them (see the MCC interval rule).
    const r = await runNatix(['bench', '--model', model, '--dataset', data, '--no-default-gates', '--min-mcc', '0.1', '--track', '--tracking-uri', path.join(base, 'bench-runs'), '--warmup', '1', '--min-duration', '1s', '--json'], {cwd: base});
    expect(r.code, r.stderr).toBe(0);
    const runDir = path.join(base, path.dirname((await fg('bench-runs/*/*/meta.yaml', {cwd: base}))[0]!));
    expect(await readFile(path.join(runDir, 'tags', 'natix.verdict'), 'utf8')).toBe('PASS');
    expect(await readFile(path.join(runDir, 'tags', 'natix.gate.min-mcc'), 'utf8')).toMatch(/^PASS/);
    expect((await readFile(path.join(runDir, 'metrics', 'mcc'), 'utf8')).split(' ')[1]).toBe(String(r.json.result.metrics.mcc));
    // The run's times cover the benchmark itself (at least its measured window), not only the logging.
    const meta = YAML.parse(await readFile(path.join(runDir, 'meta.yaml'), 'utf8'));
    expect(meta.end_time - meta.start_time).toBeGreaterThanOrEqual(Math.floor(r.json.result.windowSeconds * 1000));
    expect(YAML.parse(await readFile(path.join(path.dirname(runDir), '..', '0', 'meta.yaml'), 'utf8')).name).toBe('Default');
  }, 60_000);

  it('natix tracking sync --json never shows the token a server echoes back, nor URL credentials', async () => {
    const cwd = await mkdtemp(path.join(os.tmpdir(), 'natix-sync-secrets-'));
    const spool = path.join(cwd, '.natix', 'mlflow-spool');
    await mkdir(spool, {recursive: true});
    await writeFile(path.join(spool, 'spooled-1.jsonl'), `${JSON.stringify({call: 'create', body: {experimentName: 'e', runName: 'r', tags: {}, startTime: 1}, server: server.url, time: 1})}\n`);
    server.always = 'echo-auth';
    try {
      const withToken = await runNatix(['tracking', 'sync', '--json'], {cwd, env: {MLFLOW_TRACKING_TOKEN: TOKEN, MLFLOW_TRACKING_URI: undefined}});
      expect(withToken.code).toBe(1);
      expect(withToken.stdout).toMatch(/HTTP 403/);
      expect(withToken.stdout + withToken.stderr).not.toContain(TOKEN);
      const withUserinfo = await runNatix(['tracking', 'sync', '--tracking-uri', `http://carol:pw-${TOKEN}@127.0.0.1:${server.port}`], {cwd, env: {MLFLOW_TRACKING_URI: undefined}});
      expect(withUserinfo.code).toBe(1);
      expect(withUserinfo.stdout + withUserinfo.stderr).toMatch(/HTTP 403/);
      expect(withUserinfo.stdout + withUserinfo.stderr).not.toContain(TOKEN);
      expect(withUserinfo.stdout + withUserinfo.stderr).not.toContain('carol');
    } finally {
      server.always = undefined;
    }
  }, 60_000);

  it('any natix error or warning hides the values of the token variables (HF_TOKEN here)', async () => {
    const secret = 'hf_e2eSecretValue987';
    const r = await runNatix(['train', '--config', `/nonexistent/${secret}.yaml`, '--json'], {env: {HF_TOKEN: secret}});
    expect(r.code).toBe(2);
    expect(r.json.message).toMatch(/\[REDACTED\]/);
    expect(r.stdout + r.stderr).not.toContain(secret);
  });

  it('a server that accepts connections and never answers: training goes on, exit 0, one warning within the 1 s default, the run in the spool', async () => {
    const silent = http.createServer(() => {}); // accepts, reads nothing, answers nothing
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const cwd = await mkdtemp(path.join(base, 'silent-'));
    try {
      const r = await runNatix(['train', '--config', await trainConfig('silent'), '--tracking-uri', `http://127.0.0.1:${(silent.address() as AddressInfo).port}`], {cwd});
      expect(r.code, r.stderr).toBe(0);
      const warnings = r.stderr.split('\n').filter((l) => /MLflow/.test(l) && /warn/i.test(l));
      expect(warnings, r.stderr).toHaveLength(1);
      expect(warnings[0]).toMatch(/did not answer within 1 s.*spool.*replay it with: natix tracking sync/);
      const spool = path.join(cwd, '.natix', 'mlflow-spool');
      const files = await readdir(spool);
      expect(files).toHaveLength(1);
      const calls = (await readFile(path.join(spool, files[0]!), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as {call: string; body: {metrics?: Array<{step: number}>; status?: string; runName?: string}});
      expect(calls[0]).toMatchObject({call: 'create', body: {runName: 'silent'}});
      expect(calls.flatMap((c) => c.body.metrics?.map((m) => m.step) ?? []).sort()).toEqual(expect.arrayContaining([1, 2]));
      expect(calls.filter((c) => c.call === 'artifact').length).toBeGreaterThan(0);
      expect(calls.at(-1)).toMatchObject({call: 'update', body: {status: 'FINISHED'}});
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  }, 120_000);

  it('bench --tracking-timeout: a server that stops answering after creating the run; the final flush gives up within the given time', async () => {
    const model = await writeHfModelDir(path.join(base, 'model-flush'), redVsBlueLogitsModel(3));
    const stalling = new FakeMlflowServer();
    await stalling.start();
    stalling.faults = ['none', 'none', 'none', ...Array<'hang'>(100).fill('hang')]; // get-by-name, experiments/create, runs/create
    const cwd = await mkdtemp(path.join(base, 'stall-'));
    try {
      const r = await runNatix(['bench', '--model', model, '--dataset', data, '--no-default-gates', '--min-mcc', '0.1', '--track', '--tracking-uri', stalling.url, '--tracking-timeout', '3', '--warmup', '1', '--min-duration', '1s'], {cwd});
      expect(r.code, r.stderr).toBe(0);
      const warnings = r.stderr.split('\n').filter((l) => /MLflow/.test(l) && /warn/i.test(l));
      expect(warnings, r.stderr).toHaveLength(1);
      // 3 s: enough for the 3 creation calls to a local server even on a loaded machine; the flush then waits 3 s.
      expect(warnings[0]).toMatch(/did not take the run's last calls within 3 s.*natix tracking sync/);
      const spool = path.join(cwd, '.natix', 'mlflow-spool');
      const text = (await Promise.all((await readdir(spool)).map((f) => readFile(path.join(spool, f), 'utf8')))).join('');
      expect(text).toContain('"call":"update"');
      expect(text).toContain('"serverRunId":"run1"');
      const usage = await runNatix(['bench', '--track', '--tracking-timeout', '99999999999999999999'], {cwd});
      expect(usage.code).toBe(2);
      expect(usage.stderr).toMatch(/tracking-timeout/);
    } finally {
      await stalling.stop();
    }
  }, 120_000);

  it('with the server down, training goes on and spools; natix tracking sync replays the spool', async () => {
    const port = server.port;
    await server.stop();
    const r = await runNatix(['train', '--config', await trainConfig('offline'), '--tracking-uri', `http://127.0.0.1:${port}`], {cwd: base});
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/natix tracking sync/);
    const revived = new FakeMlflowServer();
    await revived.start(port);
    try {
      // No --tracking-uri: the spool recorded the server.
      const sync = await runNatix(['tracking', 'sync', '--json'], {cwd: base, env: {MLFLOW_TRACKING_URI: undefined}});
      expect(sync.code, sync.stderr).toBe(0);
      expect(sync.json.result.runs).toBe(1);
      expect(sync.json.result.failed).toEqual([]);
      expect(revived.calls('/api/2.0/mlflow/runs/create')).toHaveLength(1);
      expect(revived.calls('/api/2.0/mlflow/runs/update').at(-1)!.body).toMatchObject({status: 'FINISHED'});
    } finally {
      await revived.stop();
      await server.start(port);
    }
  }, 120_000);
});
