/** Gates and displays that must never contradict themselves or claim more than the evidence allows. */
import {describe, expect, it} from 'vitest';
import {baselineMismatches, compareWithBaseline, parseMaxRegression, regressionGates} from '../../src/lib/bench/baseline.js';
import {evaluateGate, mccGateMargin} from '../../src/lib/bench/gates.js';
import {ConfusionMatrix, mccFromConfusion} from '../../src/lib/metrics/classification.js';
import {binaryMcc, mccInterval} from '../../src/lib/metrics/mcc-interval.js';

const inputs = {mcc: 1, accuracy: 1, p50: 1, p95: 1, p99: 1, throughput: 1, reward: null, latencyN: 1000, metricN: 30};

describe('MCC confidence interval', () => {
  it('is seeded (same counts, same interval), contains the point estimate and narrows as n grows', () => {
    const small = {tp: 14, fp: 1, tn: 14, fn: 1};
    const a = mccInterval(small, {seed: 7});
    expect(mccInterval(small, {seed: 7})).toEqual(a);
    const point = binaryMcc(14, 1, 14, 1);
    expect(a.low).toBeLessThan(point);
    expect(a.high).toBeGreaterThan(point);
    const large = mccInterval({tp: 1400, fp: 100, tn: 1400, fn: 100}, {seed: 7});
    expect(large.high - large.low).toBeLessThan((a.high - a.low) / 5);
  });

  it('never collapses to a point on a perfect score (the plain bootstrap would claim MCC 1.0 exactly)', () => {
    const ci = mccInterval({tp: 15, fp: 0, tn: 15, fn: 0});
    expect(ci.high).toBeLessThanOrEqual(1);
    expect(ci.low).toBeLessThan(0.95);
  });

  it('binaryMcc agrees with the scikit-learn formula of the confusion matrix', () => {
    const cm = new ConfusionMatrix(2);
    for (const [t, p, n] of [[1, 1, 9], [0, 1, 2], [0, 0, 13], [1, 0, 4]] as const) for (let i = 0; i < n; i++) cm.add(t, p);
    expect(binaryMcc(9, 2, 13, 4)).toBeCloseTo(mccFromConfusion(cm), 12);
  });
});

describe('MCC gate evidence', () => {
  it('a perfect MCC on n=30 is INVALID: its interval is wider than the gate margin', () => {
    const g = evaluateGate({name: 'min-mcc', pass: 0.9975, warn: 0.995}, {...inputs, mccInterval: mccInterval({tp: 15, fp: 0, tn: 15, fn: 0})});
    expect(g.verdict).toBe('INVALID');
    expect(g.message).toMatch(/wider than the gate's margin 0.00250/);
    expect(g.message).toMatch(/about \d+ needed/);
    expect(mccGateMargin({name: 'min-mcc', pass: 0.9975, warn: 0.995})).toBeCloseTo(0.0025);
  });

  it('a clearly bad MCC still FAILs when even the top of its interval is below the threshold', () => {
    const ci = mccInterval({tp: 10, fp: 6, tn: 9, fn: 5});
    const g = evaluateGate({name: 'min-mcc', pass: 0.9975, warn: 0.995}, {...inputs, mcc: binaryMcc(10, 6, 9, 5), mccInterval: ci});
    expect(g.verdict).toBe('FAIL');
    expect(g.interval?.high).toBe(ci.high);
  });

  it('labels of one class: the MCC gate is INVALID and says why (MCC 0 with accuracy 1 is no measurement)', () => {
    const g = evaluateGate({name: 'min-mcc', pass: 0.5}, {...inputs, mcc: 0, labelCounts: {1: 30}});
    expect(g.verdict).toBe('INVALID');
    expect(g.message).toMatch(/all 30 labelled images are of one class \(roadwork\): MCC is 0 by definition/);
  });

  it('a FAIL message names the thresholds it is judged by, the same ones the threshold column shows', () => {
    const g = evaluateGate({name: 'min-mcc', pass: 0.9975, warn: 0.995}, {...inputs, mcc: 0.9, metricN: 100000});
    expect(g.verdict).toBe('FAIL');
    expect(g.message).toBe('mcc 0.9000 misses >= 0.9975 and the warn band (>= 0.995)');
  });
});

describe('baseline comparisons', () => {
  it('relative regression gates carry their unit, so 6.5796 is shown as 657.96% beside a 10% limit', () => {
    const base = {metrics: {mcc: 0.9, accuracy: 0.9}, latency: {p50: 10, p95: 10, p99: 30}, throughput: 100};
    const now = {metrics: {mcc: 0.9, accuracy: 0.9}, latency: {p50: 10, p95: 75.796, p99: 30}, throughput: 100};
    const [gate] = regressionGates(compareWithBaseline(now, base), parseMaxRegression('p95=10%'));
    expect(gate).toMatchObject({unit: 'percent', pass: 0.1, verdict: 'FAIL'});
    expect(gate!.value).toBeCloseTo(6.5796);
  });

  it('refuses a baseline measured under another scenario, concurrency or data; a moved folder is only a note', () => {
    const baseline = {metrics: {mcc: 1, accuracy: 1}, latency: {p50: 1, p95: 1, p99: 1}, throughput: 1, scenario: 'single-stream', settings: {concurrency: 1}, dataset: {root: '/a/data', format: 'folder', split: 'test', images: 100}};
    const same = {scenario: 'single-stream', concurrency: 1, dataset: {root: '/b/data', format: 'folder', split: 'test', images: 100}};
    expect(baselineMismatches(same, baseline)).toEqual({refuse: [], note: ['the dataset folder differs (/b/data vs /a/data in the baseline)']});
    const offline = baselineMismatches({...same, scenario: 'offline', concurrency: 8, dataset: {...same.dataset, images: 60}}, baseline);
    expect(offline.refuse).toEqual(['scenario offline vs single-stream in the baseline', 'concurrency 8 vs 1 in the baseline', '60 images vs 100 in the baseline']);
  });
});
