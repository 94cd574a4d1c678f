import {EventEmitter} from 'node:events';
import {describe, expect, it} from 'vitest';
import {StepMeter, StopController, yieldToEventLoop} from '../../src/lib/train/loop-control.js';
import {epochSummary, stepLine} from '../../src/lib/cli/train-progress.js';
import {fitToWidth} from '../../src/lib/cli/ui.js';

describe('StopController', () => {
  it('the first signal asks to stop, the second calls onSecond at once; dispose stops listening', () => {
    const target = new EventEmitter();
    const seen: string[] = [];
    const stop = new StopController({target: target as unknown as NodeJS.Process, onFirst: (s) => seen.push(`first ${s}`), onSecond: (s) => seen.push(`second ${s}`)}).install();
    expect(stop.requested).toBeUndefined();
    target.emit('SIGTERM', 'SIGTERM');
    expect(stop.requested).toBe('SIGTERM');
    target.emit('SIGINT', 'SIGINT');
    expect(seen).toEqual(['first SIGTERM', 'second SIGINT']);
    stop.dispose();
    expect(target.listenerCount('SIGINT')).toBe(0);
  });

  it('a signal handler runs between steps that only await microtasks once the loop yields', async () => {
    let handled = false;
    const pending = new Promise<void>((resolve) => setImmediate(() => {
      handled = true;
      resolve();
    }));
    for (let i = 0; i < 3; i++) await Promise.resolve(); // what a TF.js step looks like to the event loop
    expect(handled).toBe(false);
    await yieldToEventLoop();
    expect(handled).toBe(true);
    await pending;
  });
});

describe('training display', () => {
  it('StepMeter: images/s and ETA from step times', () => {
    let t = 0;
    const meter = new StepMeter(10, () => t);
    t = 1000;
    meter.step(32, 1);
    t = 2000;
    const r = meter.step(32, 2);
    expect(r.imagesPerSecond).toBeCloseTo(32);
    expect(r.etaSeconds).toBeCloseTo(8);
  });

  it('the bar and the epoch summary say step, loss, lr, images/s and ETA; lines never wrap', () => {
    const line = stepLine({epoch: 2, epochs: 10, step: 57, steps: 100, images: 8, loss: 0.41234, lr: 0.001}, 412.4, 7.2);
    expect(line).toBe('epoch 3/10 [===========>        ]  57/100  loss 0.4123  lr 1.00e-3  412 img/s  ETA 7s');
    expect(epochSummary({epoch: 3, seconds: 12.34, loss: 0.5, accuracy: 0.75, val_loss: Number.NaN, val_accuracy: 0.5, val_mcc: -0.1, lr: 0.01}, 10)).toBe(
      'epoch  3/10  12.3s  loss 0.5000  acc 0.7500  val_loss n/a  val_acc 0.5000  val_mcc -0.1000  lr 1.00e-2',
    );
    expect(fitToWidth('\u001B[31mred\u001B[39m and more', 6)).toBe('\u001B[31mred\u001B[39m an');
  });
});
