import {describe, expect, it} from 'vitest';
import {SeededRandom} from '../../src/lib/util/random.js';

describe('SeededRandom', () => {
  it('is reproducible from a seed and differs between seeds', () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const c = new SeededRandom(43);
    const xs = Array.from({length: 5}, () => a.nextUint32());
    expect(Array.from({length: 5}, () => b.nextUint32())).toEqual(xs);
    expect(Array.from({length: 5}, () => c.nextUint32())).not.toEqual(xs);
  });

  it('restores exactly from a saved state', () => {
    const a = new SeededRandom('run-1');
    for (let i = 0; i < 100; i++) a.next();
    const state = a.getState();
    const expected = Array.from({length: 10}, () => a.next());
    const b = SeededRandom.fromState(state);
    expect(Array.from({length: 10}, () => b.next())).toEqual(expected);
  });

  it('draws uniformly: mean near 0.5, ints cover their range', () => {
    const r = new SeededRandom(7);
    let sum = 0;
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 40_000; i++) {
      sum += r.next();
      counts[r.int(4)]!++;
    }
    expect(sum / 40_000).toBeGreaterThan(0.49);
    expect(sum / 40_000).toBeLessThan(0.51);
    for (const c of counts) expect(c).toBeGreaterThan(9_500);
  });
});
