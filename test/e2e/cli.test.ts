import {mkdtemp, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {describe, expect, it} from 'vitest';
import {runNatix} from '../helpers/cli.js';

describe('natix binary', () => {
  it('--version prints the package version', async () => {
    const r = await runNatix(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^natix\/\d+\.\d+\.\d+ /);
  });

  it('--help lists every command with a summary', async () => {
    const r = await runNatix(['--help']);
    expect(r.code).toBe(0);
    for (const command of ['doctor']) expect(r.stdout).toContain(command);
  });

  it('--json prints only the envelope on stdout; doctor diagnoses engines, the bundled model, tracking and disk', async () => {
    const r = await runNatix(['doctor', '--json'], {timeoutMs: 240_000, env: {MLFLOW_TRACKING_URI: undefined}});
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({status: 0, warnings: []});
    expect(r.json.result.environment.node).toBe(process.version);
    const checks = Object.fromEntries(r.json.result.checks.map((c: {name: string}) => [c.name, c]));
    expect(Object.keys(checks).sort()).toEqual(['bundled-model', 'disk', 'gpu', 'inference', 'tracking', 'training']);
    expect(checks.inference).toMatchObject({status: 'ok', data: {device: 'cpu'}});
    expect(checks.inference.detail).toMatch(/CUDA/);
    expect(checks.training).toMatchObject({status: 'ok', data: {backend: 'wasm'}});
    expect(checks['bundled-model'].status).toBe('ok');
    expect(checks['bundled-model'].data.secondMs).toBeGreaterThan(0);
    expect(checks.tracking.summary).toMatch(/mlflow\.db/);
    expect(checks.disk.data.freeGiB).toBeGreaterThan(0);
  }, 240_000);

  it('an unknown flag is a usage error: exit 2, JSON error envelope', async () => {
    const r = await runNatix(['doctor', '--nope', '--json']);
    expect(r.code).toBe(2);
    expect(r.json).toMatchObject({status: 2, name: 'NatixError', code: 'USAGE', exitCode: 2});
    expect(Array.isArray(r.json.actions)).toBe(true);
  });

  it('a config file with an unknown key names the file and the key; exit 2, no stack trace', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'natix-cli-'));
    const file = path.join(dir, 'doctor.yaml');
    await writeFile(file, 'frobnicate: 3\n');
    const r = await runNatix(['doctor', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('doctor.yaml: / has unknown key "frobnicate"');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
