import {describe, expect, it} from 'vitest';
import {makeCamera, makeSceneSpec, ROADWORK_CLASSES, sceneToSvg} from '../../src/lib/synth/scene.js';
import {SeededRandom} from '../../src/lib/util/random.js';

const classId = new Map<string, number>(ROADWORK_CLASSES.map((c, i) => [c, i]));

describe('synthetic scenes', () => {
  it('positives carry roadwork boxes and a description; negatives have neither', () => {
    for (let i = 0; i < 50; i++) {
      const rng = new SeededRandom(`scene-${i}`);
      const positive = i % 2 === 0;
      const spec = makeSceneSpec(rng, 320, 180, positive);
      const {boxes} = sceneToSvg(spec, {rollDeg: 0, dx: 0, dy: 0}, classId);
      if (positive) {
        expect(spec.description).not.toBe('');
        expect(spec.objects.some((o) => (ROADWORK_CLASSES as readonly string[]).includes(o.kind))).toBe(true);
      } else {
        expect(spec.description).toBe('');
        expect(boxes).toEqual([]);
      }
      for (const b of boxes) {
        expect(b.x).toBeGreaterThanOrEqual(0);
        expect(b.y).toBeGreaterThanOrEqual(0);
        expect(b.x + b.width).toBeLessThanOrEqual(320 + 1e-9);
        expect(b.y + b.height).toBeLessThanOrEqual(180 + 1e-9);
      }
    }
  });

  it('hard negatives (orange non-roadwork objects) appear in negative scenes', () => {
    let withOrange = 0;
    for (let i = 0; i < 100; i++) {
      const spec = makeSceneSpec(new SeededRandom(`neg-${i}`), 320, 180, false);
      if (spec.objects.some((o) => ['orange-car', 'orange-truck', 'billboard', 'pedestrian'].includes(o.kind))) withOrange++;
    }
    expect(withOrange).toBeGreaterThan(30);
    expect(withOrange).toBeLessThan(80);
  });

  it('a camera roll moves boxes consistently with the rotation', () => {
    const spec = makeSceneSpec(new SeededRandom('roll'), 320, 180, true);
    const flat = sceneToSvg(spec, {rollDeg: 0, dx: 0, dy: 0}, classId);
    const shifted = sceneToSvg(spec, {rollDeg: 0, dx: 10, dy: 0}, classId);
    const inner = flat.boxes.filter((b) => b.x > 20 && b.x + b.width < 300);
    for (const b of inner) {
      const moved = shifted.boxes.find((s) => s.className === b.className && Math.abs(s.y - b.y) < 1e-6 && Math.abs(s.x - b.x - 10) < 1e-6);
      expect(moved, JSON.stringify(b)).toBeDefined();
    }
    expect(makeCamera(new SeededRandom(1), 0)).toMatchObject({dx: 0, dy: 0});
  });
});
