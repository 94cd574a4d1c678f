import {mkdtemp, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import YAML from 'yaml';
import {beforeAll, describe, expect, it} from 'vitest';
import {loadCascade} from '../../src/lib/cascade/index.js';
import {CircuitBreaker} from '../../src/lib/cascade/circuit-breaker.js';
import {clampProbability, combineProbabilities} from '../../src/lib/cascade/combine.js';
import {outputProbability, DEFAULT_OUTPUT, sigmoid} from '../../src/lib/cascade/decode-output.js';
import {encodeOnnxModel, floatTensor} from '../../src/lib/onnx/model.js';
import {convClassifierModel, detectionModel, meanSigmoidModel, redVsBlueLogitsModel, slowModel, truncated, writeHfModelDir, writeModel} from '../helpers/models.js';

let dir: string;
const solid = async (name: string, rgb: [number, number, number], w = 64, h = 48): Promise<string> => {
  const file = path.join(dir, name);
  await sharp({create: {width: w, height: h, channels: 3, background: {r: rgb[0], g: rgb[1], b: rgb[2]}}}).png().toFile(file);
  return file;
};
const cascadeFile = async (name: string, content: unknown): Promise<string> => {
  const file = path.join(dir, name);
  await writeFile(file, YAML.stringify(content));
  return file;
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'natix-cascade-'));
  await writeModel(path.join(dir, 'mean.onnx'), meanSigmoidModel(6, -3));
  await writeModel(path.join(dir, 'conv.onnx'), convClassifierModel());
  await writeModel(path.join(dir, 'slow.onnx'), slowModel(24));
  await writeModel(path.join(dir, 'broken.onnx'), truncated(meanSigmoidModel(1, 0)));
  // A model that always outputs NaN (0/0).
  await writeModel(
    path.join(dir, 'nan.onnx'),
    encodeOnnxModel({
      inputs: [{name: 'x', type: 'float', shape: [1, 3, 32, 32]}],
      outputs: [{name: 'y', type: 'float', shape: [1]}],
      initializers: [floatTensor('zero', [], [0])],
      nodes: [
        {opType: 'ReduceMean', inputs: ['x'], outputs: ['m'], attributes: {axes: [1, 2, 3], keepdims: 0}},
        {opType: 'Mul', inputs: ['m', 'zero'], outputs: ['z']},
        {opType: 'Div', inputs: ['z', 'z'], outputs: ['y']},
      ],
    }),
  );
});

describe('single models', () => {
  it('a bare .onnx: size and layout from its input shape; output computed by hand', async () => {
    const cascade = await loadCascade(path.join(dir, 'mean.onnx'), {device: 'cpu'});
    const image = await solid('orange.png', [200, 100, 50]);
    const result = await cascade.predict(image, {path: 'orange.png'});
    const mean = (200 + 100 + 50) / 3 / 255;
    expect(result.probability).toBeCloseTo(sigmoid(6 * mean - 3), 5);
    expect(result.roadwork).toBe(result.probability > 0.5);
    expect(result.degraded).toBe(false);
    expect(result.stages).toHaveLength(1);
    const model = result.stages[0]!.models[0]!;
    expect(model.status).toBe('ran');
    expect(result.totalMs).toBeGreaterThanOrEqual(result.decodeMs);
    expect(cascade.describe().stages[0]!.models[0]!.input).toBe('32x32 nchw stretch');
    await cascade.close();
  });

  it('a Hugging Face directory: preprocessor_config reproduced, softmax of the Roadwork class (onnx/ subfolder too)', async () => {
    const hf = await writeHfModelDir(path.join(dir, 'hf'), redVsBlueLogitsModel(2), {onnxSubdir: true});
    const image = await solid('reddish.png', [180, 60, 90]);
    const cascade = await loadCascade(hf, {device: 'cpu'});
    const result = await cascade.predict(image);
    // Independent computation: (x/255 - 0.5) / 0.5 per channel, logits [0, 2 * (R - B)], softmax -> sigmoid.
    const norm = (v: number): number => (v / 255 - 0.5) / 0.5;
    expect(result.probability).toBeCloseTo(sigmoid(2 * (norm(180) - norm(90))), 5);
    await cascade.close();

    // When id2label puts Roadwork at index 0, natix takes index 0.
    const flipped = await writeHfModelDir(path.join(dir, 'hf-flipped'), redVsBlueLogitsModel(2), {id2label: {0: 'Roadwork', 1: 'None'}});
    const c2 = await loadCascade(flipped, {device: 'cpu'});
    expect((await c2.predict(image)).probability).toBeCloseTo(1 - sigmoid(2 * (norm(180) - norm(90))), 5);
    await c2.close();
  });

  it('detections: confidence filter, class filter, NMS, max score', () => {
    const dims = [1, 4 + 3, 4];
    const boxes = [
      [10, 10, 4, 4, 0.9, 0.0, 0.1], // class 0 strong
      [10.5, 10, 4, 4, 0.8, 0.0, 0.0], // overlaps the first: suppressed
      [30, 30, 5, 5, 0.0, 0.0, 0.6], // class 2
      [50, 50, 5, 5, 0.1, 0.2, 0.0], // below confidence
    ];
    const data = new Float32Array(7 * 4);
    boxes.forEach((b, j) => b.forEach((v, r) => (data[r * 4 + j] = v)));
    expect(outputProbability(data, dims, {...DEFAULT_OUTPUT, decode: 'detections'})).toBeCloseTo(0.9, 6);
    expect(outputProbability(data, dims, {...DEFAULT_OUTPUT, decode: 'detections', classes: [2]})).toBeCloseTo(0.6, 6);
    expect(outputProbability(data, dims, {...DEFAULT_OUTPUT, decode: 'detections', classes: [1]})).toBe(0);
    expect(outputProbability(data, dims, {...DEFAULT_OUTPUT, decode: 'detections', score: 'noisy-or', classes: [0, 2]})).toBeCloseTo(1 - 0.1 * 0.4, 6);
  });

  it('a detection model through the cascade file', async () => {
    await writeModel(path.join(dir, 'det.onnx'), detectionModel([[16, 16, 8, 8, 0.05, 0.7]], 2));
    const file = await cascadeFile('det.yaml', {models: {det: {path: 'det.onnx', output: {decode: 'detections', classes: [1]}}}, stages: [{models: ['det']}]});
    const cascade = await loadCascade(file, {device: 'cpu'});
    const result = await cascade.predict(await solid('any.png', [1, 2, 3]));
    expect(result.probability).toBeCloseTo(0.7, 6);
    expect(result.roadwork).toBe(true);
    await cascade.close();
  });
});

describe('cascade stages', () => {
  it('escalates only when stage 1 is uncertain, and traces the skipped stage', async () => {
    const file = await cascadeFile('two-stage.yaml', {
      models: {fast: {path: 'mean.onnx'}, strong: {path: 'conv.onnx', output: {decode: 'softmax', positiveIndex: 1}}},
      stages: [
        {name: 'fast', models: ['fast'], escalate: {when: 'inside', band: [0.2, 0.8]}},
        {name: 'strong', models: ['strong']},
      ],
    });
    const cascade = await loadCascade(file, {device: 'cpu'});
    // White: sigmoid(6 - 3) = 0.95 -> decisive.
    const confident = await cascade.predict(await solid('white.png', [255, 255, 255]));
    expect(confident.stages.map((s) => s.ran)).toEqual([true, false]);
    expect(confident.stages[1]!.reason).toContain('decisive');
    expect(confident.probability).toBeCloseTo(sigmoid(3), 5);
    // Mid grey: sigmoid(6 * 0.5 - 3) = 0.5 -> stage 2 decides.
    const uncertain = await cascade.predict(await solid('grey.png', [128, 128, 128]));
    expect(uncertain.stages.map((s) => s.ran)).toEqual([true, true]);
    expect(uncertain.probability).toBe(uncertain.stages[1]!.probability);
    // Both models share 32x32 NCHW /255 preprocessing: one tensor, charged to the first model.
    expect(uncertain.stages[1]!.models[0]!.preprocessMs).toBe(0);
    await cascade.close();
  });

  it('combines a stage with weights; the final probability is always clamped and finite', () => {
    const values = [
      {p: 0.9, weight: 3},
      {p: 0.3, weight: 1},
    ];
    expect(combineProbabilities(values, 'mean')).toBeCloseTo(0.6, 12);
    expect(combineProbabilities(values, 'weighted-mean')).toBeCloseTo(0.75, 12);
    const gp = Math.pow(0.9, 0.75) * Math.pow(0.3, 0.25);
    const gq = Math.pow(0.1, 0.75) * Math.pow(0.7, 0.25);
    expect(combineProbabilities(values, 'geometric-mean')).toBeCloseTo(gp / (gp + gq), 12);
    expect(combineProbabilities(values, 'vote')).toBeCloseTo(0.75, 12);
    expect(clampProbability(Number.NaN)).toBe(0.5);
    expect(clampProbability(1.2)).toBe(1);
    expect(clampProbability(-0.1)).toBe(0);
  });
});

describe('failure handling', () => {
  it('a truncated model file is a config error naming the model (exit 2)', async () => {
    const file = await cascadeFile('broken.yaml', {models: {bad: {path: 'broken.onnx'}}, stages: [{models: ['bad']}]});
    await expect(loadCascade(file, {device: 'cpu'})).rejects.toMatchObject({code: 'MODEL_INVALID', exitCode: 2});
  });

  it('a stage referring to an undeclared model is a config error', async () => {
    const file = await cascadeFile('undeclared.yaml', {models: {fast: {path: 'mean.onnx'}}, stages: [{models: ['fast', 'ghost']}]});
    await expect(loadCascade(file, {device: 'cpu'})).rejects.toThrow(/ghost/);
  });

  it('a timeout fails the model; "skip" answers from the other model of the stage', async () => {
    const file = await cascadeFile('timeout.yaml', {
      models: {slow: {path: 'slow.onnx', timeoutMs: 1}, fast: {path: 'mean.onnx'}},
      stages: [{models: ['slow', 'fast'], fallback: 'skip'}],
    });
    const cascade = await loadCascade(file, {device: 'cpu'});
    const result = await cascade.predict(await solid('w2.png', [255, 255, 255]));
    const [slow, fast] = result.stages[0]!.models;
    expect(slow).toMatchObject({status: 'failed'});
    expect(slow!.error).toMatch(/timed out after 1 ms/);
    expect(fast!.status).toBe('ran');
    expect(result.probability).toBeCloseTo(sigmoid(3), 5);
    expect(result.degraded).toBe(false);
    await cascade.close();
  });

  it('a named fallback runs in place of a failing model', async () => {
    const file = await cascadeFile('fallback.yaml', {
      models: {nan: {path: 'nan.onnx'}, backup: {path: 'mean.onnx'}},
      stages: [{models: ['nan'], fallback: 'backup'}],
    });
    const cascade = await loadCascade(file, {device: 'cpu'});
    const result = await cascade.predict(await solid('w3.png', [255, 255, 255]));
    expect(result.stages[0]!.models.map((m) => [m.name, m.status])).toEqual([
      ['nan', 'failed'],
      ['backup', 'fallback'],
    ]);
    expect(result.stages[0]!.models[0]!.error).toMatch(/not a finite probability/);
    expect(result.probability).toBeCloseTo(sigmoid(3), 5);
    await cascade.close();
  });

  it('a whole failing stage degrades the answer to the earlier stage; the circuit opens after N failures', async () => {
    const file = await cascadeFile('degraded.yaml', {
      models: {fast: {path: 'mean.onnx'}, nan: {path: 'nan.onnx', breaker: {failures: 2, cooldownMs: 60_000}}},
      stages: [{models: ['fast']}, {models: ['nan']}],
    });
    const cascade = await loadCascade(file, {device: 'cpu'});
    const image = await solid('w4.png', [255, 255, 255]);
    const statuses: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await cascade.predict(image);
      expect(r.degraded).toBe(true);
      expect(r.probability).toBeCloseTo(sigmoid(3), 5);
      statuses.push(`${r.stages[1]!.models[0]!.status}:${r.stages[1]!.models[0]!.reason ?? ''}`);
    }
    expect(statuses).toEqual(['failed:', 'failed:', 'skipped:circuit-open', 'skipped:circuit-open']);
    expect(cascade.breakerState('nan')).toBe('open');
    await cascade.close();
  });

  it('an unreadable image gives an error record, never an exception', async () => {
    const cascade = await loadCascade(path.join(dir, 'mean.onnx'), {device: 'cpu'});
    const bad = path.join(dir, 'bad.jpg');
    await writeFile(bad, 'not an image at all');
    const r = await cascade.predict(bad);
    expect(r.error).toMatch(/^unreadable image/);
    expect(r.probability).toBe(0.5);
    expect(r.roadwork).toBe(false);
    await cascade.close();
  });

  it('circuit breaker: closed -> open -> half-open -> closed / open again', () => {
    let now = 0;
    const breaker = new CircuitBreaker({failures: 3, cooldownMs: 1000, now: () => now});
    expect(breaker.state).toBe('closed');
    breaker.onFailure();
    breaker.onFailure();
    expect(breaker.allow()).toBe(true);
    breaker.onSuccess(); // success resets the consecutive count
    breaker.onFailure();
    breaker.onFailure();
    expect(breaker.state).toBe('closed');
    breaker.onFailure();
    expect(breaker.state).toBe('open');
    expect(breaker.allow()).toBe(false);
    now = 999;
    expect(breaker.state).toBe('open');
    now = 1000;
    expect(breaker.state).toBe('half-open');
    expect(breaker.allow()).toBe(true);
    expect(breaker.allow()).toBe(false); // one trial at a time
    breaker.onFailure();
    expect(breaker.state).toBe('open');
    now = 2000;
    expect(breaker.allow()).toBe(true);
    breaker.onSuccess();
    expect(breaker.state).toBe('closed');
  });
});
