/**
 * Exit-threshold tuning checked against a brute-force recomputation from the recorded per-stage probabilities
 * (exit table, every band choice's MCC / mean latency / exit rates, the frontier, both recommendation rules), and
 * end to end on real models: the cascade file it writes, run for real on the same images, scores exactly the MCC
 * the tuning predicted.
 */
import {mkdtemp, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import YAML from 'yaml';
import {describe, expect, it} from 'vitest';
import {bandFor, recordStages, THRESHOLD_GRID, tune, tunedCascadeYaml, type TuneRecord} from '../../src/lib/bench/tune.js';
import {loadCascade} from '../../src/lib/cascade/index.js';
import type {Sample} from '../../src/lib/data/sample.js';
import {SeededRandom} from '../../src/lib/util/random.js';
import {meanSigmoidModel, redVsBlueLogitsModel, writeModel} from '../helpers/models.js';

/** MCC from confusion counts, written out (scikit-learn: 0 when the denominator is 0). */
function mcc(tp: number, tn: number, fp: number, fn: number): number {
  const d = Math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
  return d === 0 ? 0 : (tp * tn - fp * fn) / d;
}

/** Brute force: one band choice (thresholds per non-last stage), image by image. */
function bruteForce(records: TuneRecord[], ts: number[]): {mcc: number; ms: number; exits: number[]} {
  let tp = 0;
  let tn = 0;
  let fp = 0;
  let fn = 0;
  let ms = 0;
  const exits = new Array<number>(records[0]!.stages.length).fill(0);
  for (const r of records) {
    let p = 0.5;
    let t = r.decodeMs;
    let at = r.stages.length - 1;
    for (let k = 0; k < r.stages.length; k++) {
      t += r.stages[k]!.ms;
      const q = r.stages[k]!.p;
      if (q === null) continue;
      p = q;
      if (k < ts.length) {
        const lo = Math.round((1 - ts[k]!) * 100) / 100;
        const go = q >= lo && q <= ts[k]!;
        if (!go) {
          at = k;
          break;
        }
      }
    }
    exits[at]!++;
    ms += t;
    const yes = p > 0.5;
    if (r.label === 1 && yes) tp++;
    else if (r.label === 1) fn++;
    else if (yes) fp++;
    else tn++;
  }
  return {mcc: mcc(tp, tn, fp, fn), ms: ms / records.length, exits: exits.map((e) => e / records.length)};
}

function syntheticRecords(n: number, seed: string): TuneRecord[] {
  const rng = new SeededRandom(seed);
  const strength = [1.2, 2.2, 3.5];
  return Array.from({length: n}, (_, i) => {
    const label = rng.next() < 0.3 ? 1 : 0;
    return {
      id: `img-${i}`,
      label,
      decodeMs: rng.uniform(2, 4),
      stages: strength.map((s, k) => ({
        // Stage 2 fails on 3% of the images (null), which the engine treats as "go on".
        p: k === 1 && rng.next() < 0.03 ? null : Math.round((1 / (1 + Math.exp(-(rng.normal(0, 1) + (label ? s : -s))))) * 1000) / 1000,
        ms: rng.uniform(1, 2) * (k + 1) ** 2,
      })),
    };
  });
}

describe('tuning against brute force', () => {
  const records = syntheticRecords(400, 'tune');
  const names = ['s1', 's2', 's3'];
  const current = [bandFor(0.8), bandFor(0.9)];
  const result = tune(records, names, current, {exit: 0.6, exitAccuracy: 0.99});

  it('per-stage exit coverage and exit accuracy at every t', () => {
    expect(result.stages.map((s) => s.table.map((r) => r.t))).toEqual([THRESHOLD_GRID, THRESHOLD_GRID, THRESHOLD_GRID]);
    for (const [k, stage] of result.stages.entries()) {
      for (const row of stage.table) {
        const exited = records.filter((r) => r.stages[k]!.p !== null && (r.stages[k]!.p! >= row.t || r.stages[k]!.p! <= 1 - row.t));
        const right = exited.filter((r) => (r.stages[k]!.p! > 0.5 ? 1 : 0) === r.label);
        expect(row.coverage).toBeCloseTo(exited.length / records.length, 12);
        expect(row.exitAccuracy).toBe(exited.length ? right.length / exited.length : null);
      }
    }
  });

  it('every band choice: MCC, mean latency and exit rates', () => {
    expect(result.choices).toBe(50 * 50);
    for (const c of result.all) {
      const b = bruteForce(records, c.thresholds as number[]);
      expect(c.mcc).toBeCloseTo(b.mcc, 12);
      expect(c.meanMs).toBeCloseTo(b.ms, 9);
      c.exitRates.forEach((e, k) => expect(e).toBeCloseTo(b.exits[k]!, 12));
    }
    const now = bruteForce(records, [0.8, 0.9]);
    expect(result.current.mcc).toBeCloseTo(now.mcc, 12);
    expect(result.current.meanMs).toBeCloseTo(now.ms, 9);
  });

  it('the frontier is exactly the non-dominated choices', () => {
    const key = (c: {meanMs: number; mcc: number}): string => `${c.meanMs.toFixed(9)}|${c.mcc.toFixed(12)}`;
    const dominated = (c: (typeof result.all)[number]): boolean => result.all.some((d) => d.meanMs <= c.meanMs && d.mcc >= c.mcc && (d.meanMs < c.meanMs || d.mcc > c.mcc));
    const expected = [...new Set(result.all.filter((c) => !dominated(c)).map(key))].sort();
    expect(result.frontier.map(key).sort()).toEqual(expected);
    for (let i = 1; i < result.frontier.length; i++) {
      expect(result.frontier[i]!.meanMs).toBeGreaterThanOrEqual(result.frontier[i - 1]!.meanMs);
      expect(result.frontier[i]!.mcc).toBeGreaterThan(result.frontier[i - 1]!.mcc);
    }
  });

  it('recommendations: the best MCC within a latency budget; the widest exits at the target exit accuracy', () => {
    const budget = (result.frontier[0]!.meanMs + result.frontier[result.frontier.length - 1]!.meanMs) / 2;
    const byBudget = tune(records, names, current, {exit: 0.6, exitAccuracy: 0.99, latencyBudgetMs: budget}).recommended;
    const best = Math.max(...result.all.filter((c) => c.meanMs <= budget).map((c) => c.mcc));
    expect(byBudget.mcc).toBeCloseTo(best, 12);
    expect(byBudget.meanMs).toBeLessThanOrEqual(budget);

    // Targets, by brute force: stage by stage, the smallest t whose exits reach the accuracy, on the images that get there.
    const target = 0.97;
    const rec = tune(records, names, current, {exit: 0.6, exitAccuracy: target}).recommended;
    let reaching = records;
    const ts: number[] = [];
    for (let k = 0; k < 2; k++) {
      const t = THRESHOLD_GRID.find((g) => {
        const ex = reaching.filter((r) => r.stages[k]!.p !== null && (r.stages[k]!.p! >= g || r.stages[k]!.p! <= 1 - g));
        return ex.length > 0 && ex.filter((r) => (r.stages[k]!.p! > 0.5 ? 1 : 0) === r.label).length / ex.length >= target;
      })!;
      ts.push(t);
      const lo = Math.round((1 - t) * 100) / 100;
      reaching = reaching.filter((r) => r.stages[k]!.p === null || (r.stages[k]!.p! >= lo && r.stages[k]!.p! <= t));
    }
    expect(rec.thresholds).toEqual(ts);
    expect(rec.mcc).toBeCloseTo(bruteForce(records, ts).mcc, 12);
  });
});

describe('tuning a real cascade', () => {
  it('records every stage on every image; the cascade file it writes scores exactly the predicted MCC', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'natix-tune-'));
    await writeModel(path.join(dir, 'models', 'bright.onnx'), meanSigmoidModel(8, -4, {size: 8})); // brightness
    await writeModel(path.join(dir, 'models', 'red.onnx'), redVsBlueLogitsModel(6, 8)); // redness
    const file = path.join(dir, 'cascade.yaml');
    await writeFile(
      file,
      YAML.stringify({
        models: {bright: {path: 'models/bright.onnx'}, red: {path: 'models/red.onnx', output: {decode: 'softmax'}}},
        stages: [{name: 'bright', models: ['bright'], escalate: {when: 'inside', band: [0.4, 0.6]}}, {name: 'red', models: ['red']}],
      }),
    );
    const rng = new SeededRandom('tune-images');
    const samples: Sample[] = [];
    for (let i = 0; i < 40; i++) {
      const label = i % 2;
      const r = Math.round(label ? rng.uniform(120, 255) : rng.uniform(0, 150));
      const g = Math.round(rng.uniform(0, 255));
      const b = Math.round(rng.uniform(0, 255));
      const bytes = await sharp({create: {width: 16, height: 16, channels: 3, background: {r, g, b}}}).png().toBuffer();
      samples.push({id: `img-${i}`, path: `img-${i}.png`, bytes, label, metadata: {}});
    }
    const cascade = await loadCascade(file, {device: 'cpu', threads: 1});
    const {records} = await recordStages(cascade, samples, {concurrency: 4});
    expect(records).toHaveLength(40);
    expect(records.every((r) => r.stages.length === 2 && r.stages.every((s) => s.p !== null))).toBe(true); // both stages, every image
    const names = cascade.stages.map((s) => s.name);
    const result = tune(records, names, cascade.stages.slice(0, -1).map((s) => s.escalate), {exit: 0.5, exitAccuracy: 0.9});
    await cascade.close();
    // A real choice: some images answered by each stage, and a band other than the current one.
    expect(result.recommended.exitRates.every((e) => e > 0)).toBe(true);
    expect(result.recommended.thresholds[0]).not.toBe(0.6);

    const out = path.join(dir, 'tuned.yaml');
    await writeFile(out, await tunedCascadeYaml(file, out, result.recommended.thresholds, 'test'));
    const written = YAML.parse(await (await import('node:fs/promises')).readFile(out, 'utf8'));
    expect(written.stages[0].escalate).toEqual(bandFor(result.recommended.thresholds[0]!));
    expect(written.models.bright.path).toBe('models/bright.onnx');
    const tuned = await loadCascade(out, {device: 'cpu', threads: 1});
    let tp = 0;
    let tn = 0;
    let fp = 0;
    let fn = 0;
    for (const s of samples) {
      const r = await tuned.predict(s.bytes!);
      if (s.label === 1 && r.roadwork) tp++;
      else if (s.label === 1) fn++;
      else if (r.roadwork) fp++;
      else tn++;
    }
    await tuned.close();
    expect(mcc(tp, tn, fp, fn)).toBeCloseTo(result.recommended.mcc, 12);
  });
});
