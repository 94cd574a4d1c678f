import {mkdir, mkdtemp, readFile, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {Ajv} from 'ajv';
import sharp from 'sharp';
import {beforeAll, describe, expect, it} from 'vitest';
import {benchResultSchema} from '../../src/lib/config/schemas/bench.js';
import {evaluateGate, parseGate, overallVerdict} from '../../src/lib/bench/gates.js';
import {parseMaxRegression, compareWithBaseline, regressionGates} from '../../src/lib/bench/baseline.js';
import {redVsBlueLogitsModel, writeHfModelDir} from '../helpers/models.js';
import {runNatix} from '../helpers/cli.js';

let dir: string;
let model: string;
let data: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'natix-bench-'));
  model = await writeHfModelDir(path.join(dir, 'model'), redVsBlueLogitsModel(4));
  data = path.join(dir, 'data');
  // 12 test images: reddish roadwork, bluish none, one reddish "none" the model gets wrong.
  const specs: Array<[string, [number, number, number]]> = [];
  for (let i = 0; i < 6; i++) specs.push(['roadwork', [200 + i * 5, 60, 40]]);
  for (let i = 0; i < 5; i++) specs.push(['none', [40, 60, 200 + i * 5]]);
  specs.push(['none', [210, 80, 60]]);
  for (const [i, [cls, rgb]] of specs.entries()) {
    await mkdir(path.join(data, 'test', cls), {recursive: true});
    await sharp({create: {width: 64, height: 48, channels: 3, background: {r: rgb[0], g: rgb[1], b: rgb[2]}}}).png().toFile(path.join(data, 'test', cls, `${i}.png`));
  }
});

describe('natix bench', () => {
  it('measures quality and latency, validates against the published schema, writes JUnit, Markdown, predictions and a plot', async () => {
    const out = (f: string): string => path.join(dir, f);
    const r = await runNatix([
      // On 12 images the MCC interval is ~0.63 wide: only a gate with a wider margin (1 - 0.3) can decide.
      'bench', '--model', model, '--dataset', data, '--no-default-gates', '--min-mcc', '0.3', '--max-p50-ms', '5000', '--warmup', '2',
      '--junit', out('bench.xml'), '--markdown', out('bench.md'), '--predictions', out('pred.jsonl'), '--plot', out('bench.svg'), '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const result = r.json.result;
    const ajv = new Ajv({strict: false, allowUnionTypes: true});
    expect(ajv.validate(benchResultSchema, result), JSON.stringify(ajv.errors)).toBe(true);
    expect(result.metrics.confusion).toEqual({tp: 6, fp: 1, tn: 5, fn: 0});
    // MCC by hand: (6*5 - 1*0) / sqrt(7 * 6 * 6 * 5)
    expect(result.metrics.mcc).toBeCloseTo(30 / Math.sqrt(7 * 6 * 6 * 5), 12);
    expect(result.metrics.auc).toBeGreaterThan(0.8);
    expect(result.latency.n).toBeGreaterThanOrEqual(12);
    expect(result.verdict).toBe('PASS');
    expect(result.gates.map((g: {name: string; verdict: string}) => `${g.name}:${g.verdict}`)).toEqual(['min-mcc:PASS', 'max-p50-ms:PASS']);
    const junit = await readFile(out('bench.xml'), 'utf8');
    expect(junit).toContain('<testsuite name="natix-bench" tests="2" failures="0"');
    expect(await readFile(out('bench.md'), 'utf8')).toContain('## natix bench: PASS');
    const predictions = (await readFile(out('pred.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(predictions).toHaveLength(12);
    expect(predictions[0]).toHaveProperty('probability');
    expect(await readFile(out('bench.svg'), 'utf8')).toMatch(/^<svg/);
  });

  it('a p99 gate on too few queries is INVALID (exit 1), not PASS', async () => {
    const r = await runNatix(['bench', '--model', model, '--dataset', data, '--no-default-gates', '--max-p99-ms', '100000', '--min-queries', '20', '--warmup', '1', '--json']);
    expect(r.code).toBe(1);
    expect(r.json.result.verdict).toBe('INVALID');
    expect(r.json.result.gates[0].message).toContain('662');
  });

  it('a failing gate exits 1; WARN exits 0 unless --strict; an MCC gate the interval cannot decide is INVALID', async () => {
    // MCC 0.845 on 12 images: even the top of its 95% interval (0.96) is below 0.99, so this FAIL is evidenced.
    const fail = await runNatix(['bench', '--model', model, '--dataset', data, '--no-default-gates', '--min-mcc', '0.99', '--warmup', '1', '--json']);
    expect(fail.code).toBe(1);
    expect(fail.json.result.verdict).toBe('FAIL');
    expect(fail.json.result.gates[0].message).toMatch(/even the top of its 95% interval/);
    const undecided = await runNatix(['bench', '--model', model, '--dataset', data, '--no-default-gates', '--min-mcc', '0.99,0.8', '--warmup', '1', '--json']);
    expect(undecided.code).toBe(1);
    expect(undecided.json.result.verdict).toBe('INVALID');
    expect(undecided.json.result.gates[0].message).toMatch(/wider than the gate's margin 0.190/);
    const warn = await runNatix(['bench', '--model', model, '--dataset', data, '--no-default-gates', '--max-p50-ms', '0.0001,100000', '--warmup', '1', '--json']);
    expect(warn.code).toBe(0);
    expect(warn.json.result.verdict).toBe('WARN');
    const strict = await runNatix(['bench', '--model', model, '--dataset', data, '--no-default-gates', '--max-p50-ms', '0.0001,100000', '--warmup', '1', '--strict', '--json']);
    expect(strict.code).toBe(1);
  }, 240_000);

  it('--baseline: deltas, and a regression beyond --max-regression fails', async () => {
    const baselineFile = path.join(dir, 'baseline.json');
    const better = {result: {metrics: {mcc: 0.99, accuracy: 0.99}, latency: {p50: 1, p95: 1, p99: 1}, throughput: 1000}};
    await writeFile(baselineFile, JSON.stringify(better));
    const r = await runNatix(['bench', '--model', model, '--dataset', data, '--no-default-gates', '--baseline', baselineFile, '--max-regression', 'mcc=0.002', '--warmup', '1', '--json']);
    expect(r.code).toBe(1);
    expect(r.json.result.baseline.deltas.find((d: {metric: string}) => d.metric === 'mcc').baseline).toBe(0.99);
    expect(r.json.result.gates[0]).toMatchObject({name: 'max-regression:mcc', verdict: 'FAIL'});
  });

  it('--simulate-validator: reproducible challenges with levels and parameters, reward and score reported', async () => {
    const args = ['bench', '--model', model, '--dataset', data, '--no-default-gates', '--simulate-validator', '--challenges', '24', '--seed', '3', '--min-reward', '0', '--warmup', '1', '--json', '--predictions'];
    const a = await runNatix([...args, path.join(dir, 'a.jsonl')]);
    const b = await runNatix([...args, path.join(dir, 'b.jsonl')]);
    expect(a.code, a.stderr).toBe(0);
    const v = a.json.result.validator;
    expect(v.challenges).toBe(24);
    expect(v.perLevel.map((p: {n: number}) => p.n).reduce((x: number, y: number) => x + y, 0)).toBe(24);
    expect(v.finalScore).toBeGreaterThanOrEqual(0);
    expect(v.finalScore).toBeLessThanOrEqual(1);
    const challenges = (await readFile(path.join(dir, 'a.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.kind === 'challenge');
    expect(challenges).toHaveLength(24);
    expect(challenges[0]).toHaveProperty('level');
    expect(challenges[0].params).toHaveProperty('crop');
    const again = (await readFile(path.join(dir, 'b.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.kind === 'challenge');
    expect(again.map((c) => [c.id, c.level, c.params, c.probability])).toEqual(challenges.map((c) => [c.id, c.level, c.params, c.probability]));
    expect(b.json.result.validator.finalScore).toBe(v.finalScore);
  });
});

describe('gates', () => {
  it('parses pass,warn and rejects a warn band on the wrong side', () => {
    expect(parseGate('min-mcc', '0.9975,0.995')).toEqual({name: 'min-mcc', pass: 0.9975, warn: 0.995});
    expect(() => parseGate('min-mcc', '0.99,0.999')).toThrow(/below/);
    expect(() => parseGate('max-p95-ms', '40,30')).toThrow(/above/);
  });

  it('evaluates PASS / WARN / FAIL / INVALID and combines them', () => {
    const inputs = {mcc: 0.996, accuracy: 0.9, p50: 20, p95: 45, p99: 60, throughput: 10, reward: null, latencyN: 200, metricN: 100};
    expect(evaluateGate({name: 'min-mcc', pass: 0.9975, warn: 0.995}, inputs).verdict).toBe('WARN');
    expect(evaluateGate({name: 'max-p50-ms', pass: 25}, inputs).verdict).toBe('PASS');
    expect(evaluateGate({name: 'max-p95-ms', pass: 40, warn: 44}, inputs).verdict).toBe('FAIL');
    expect(evaluateGate({name: 'max-p99-ms', pass: 100}, inputs).verdict).toBe('INVALID');
    expect(evaluateGate({name: 'min-reward', pass: 0.5}, inputs).verdict).toBe('INVALID');
    expect(overallVerdict([{verdict: 'PASS'}, {verdict: 'WARN'}])).toBe('WARN');
    expect(overallVerdict([{verdict: 'INVALID'}, {verdict: 'WARN'}])).toBe('INVALID');
    expect(overallVerdict([{verdict: 'INVALID'}, {verdict: 'FAIL'}])).toBe('FAIL');
  });

  it('regression limits: absolute for MCC, relative for latency', () => {
    const limits = parseMaxRegression('mcc=0.002,p95=10%');
    const base = {metrics: {mcc: 0.9, accuracy: 0.9}, latency: {p50: 10, p95: 20, p99: 30}, throughput: 100};
    const now = {metrics: {mcc: 0.899, accuracy: 0.9}, latency: {p50: 10, p95: 23, p99: 30}, throughput: 100};
    const gates = regressionGates(compareWithBaseline(now, base), limits);
    expect(gates.map((g) => g.verdict)).toEqual(['PASS', 'FAIL']);
    expect(() => parseMaxRegression('speed=3')).toThrow(/bad --max-regression/);
  });
});
