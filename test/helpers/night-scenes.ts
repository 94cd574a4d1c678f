/**
 * Procedural night road scenes (raw RGB, deterministic from the index) for the dark/light agreement test: dark sky,
 * road and verges, with small bright streetlights, headlights and lane markings whose glow covers about 1% of the
 * pixels - exactly what a 256 px thumbnail averages away. A sweep of the light intensity puts CleanVision's
 * 99th-percentile brightness on both sides of the 0.32 threshold, some within 0.01 of it. The reference values
 * (numpy + Pillow, CleanVision's formula) are computed once by scripts/fixtures/brightness_reference.py and kept in
 * test/fixtures/brightness/reference.json, keyed by the SHA-256 of the raw pixels (independent of any encoder).
 */
import {SeededRandom} from '../../src/lib/util/random.js';

export const NIGHT_SCENES = 31;
export const NIGHT_WIDTH = 1280;
export const NIGHT_HEIGHT = 720;

/**
 * Scenes 0-23: night scenes, light intensity 0.5..0.94; 24-27: scene 14 at intensities 0.570..0.582 (99th
 * percentiles within 0.005 of 0.32); 28-30: over-exposed frames for the light check (28, 29 with grey specks
 * on ~5.5% of the pixels that the thumbnail averages away; 30 without).
 */
export function nightScene(index: number, width = NIGHT_WIDTH, height = NIGHT_HEIGHT): Buffer {
  if (index >= 28) return overexposed(index, width, height);
  const rng = new SeededRandom(`night-scene:${index < 24 ? index : 14}`);
  const intensity = index < 24 ? 0.5 + (index % 12) * 0.04 : 0.57 + (index - 24) * 0.004;
  const lights = 6 + ((index < 24 ? index : 14) >> 1) % 6;
  const out = Buffer.alloc(width * height * 3);
  const horizon = Math.round(height * rng.uniform(0.38, 0.48));
  const vanish = width * rng.uniform(0.4, 0.6);
  const put = (x: number, y: number, r: number, g: number, b: number, alpha: number): void => {
    if (x < 0 || y < 0 || x >= width || y >= height || alpha <= 0) return;
    const i = (y * width + x) * 3;
    out[i] = Math.min(255, Math.round(out[i]! * (1 - alpha) + r * alpha));
    out[i + 1] = Math.min(255, Math.round(out[i + 1]! * (1 - alpha) + g * alpha));
    out[i + 2] = Math.min(255, Math.round(out[i + 2]! * (1 - alpha) + b * alpha));
  };
  // Sky, verges, road (a trapezoid to the vanishing point), with sensor noise.
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const n = rng.normal(0, 2.5);
      let r: number;
      let g: number;
      let b: number;
      if (y < horizon) {
        const t = y / horizon;
        [r, g, b] = [8 + 10 * t, 10 + 12 * t, 22 + 14 * t];
      } else {
        const t = (y - horizon) / (height - horizon);
        const half = 8 + t * width * 0.55;
        if (Math.abs(x - vanish) < half) [r, g, b] = [24 + 12 * t, 24 + 12 * t, 27 + 12 * t];
        else [r, g, b] = [12 + 10 * t, 18 + 12 * t, 10 + 6 * t];
      }
      const i = (y * width + x) * 3;
      out[i] = Math.max(0, Math.round(r + n));
      out[i + 1] = Math.max(0, Math.round(g + n));
      out[i + 2] = Math.max(0, Math.round(b + n));
    }
  }
  // Buildings on the horizon with small lit windows (~1-2% of the pixels).
  const windows = Math.round((width * height * rng.uniform(0.009, 0.016)) / 12);
  for (let k = 0; k < windows; k++) {
    const x = Math.round(rng.uniform(0, width - 4));
    const y = Math.round(horizon - rng.uniform(8, height * 0.3));
    const level = rng.uniform(0.5, 1);
    for (let dy = 0; dy < 4; dy++) for (let dx = 0; dx < 3; dx++) put(x + dx, y + dy, 230 * level * intensity, 190 * level * intensity, 120 * level * intensity, 1);
  }
  // Dashed centre line: thin, moderately bright.
  for (let y = horizon + 4; y < height; y++) {
    const t = (y - horizon) / (height - horizon);
    if (Math.floor(t * 14) % 2 === 1) continue;
    const w = Math.max(1, Math.round(1 + t * 5));
    for (let dx = 0; dx < w; dx++) put(Math.round(vanish - w / 2 + dx), y, 150 * intensity, 140 * intensity, 90 * intensity, 0.9);
  }
  // Streetlights along both verges, and a pair of oncoming headlights: bright cores with a glow.
  const blob = (cx: number, cy: number, core: number, glow: number, colour: [number, number, number]): void => {
    const reach = Math.ceil(core + 3 * glow);
    for (let dy = -reach; dy <= reach; dy++) {
      for (let dx = -reach; dx <= reach; dx++) {
        const d = Math.hypot(dx, dy);
        const alpha = d <= core ? 1 : Math.exp(-((d - core) ** 2) / (2 * glow * glow));
        put(Math.round(cx + dx), Math.round(cy + dy), colour[0] * intensity, colour[1] * intensity, colour[2] * intensity, alpha);
      }
    }
  };
  for (let k = 0; k < lights; k++) {
    const t = rng.uniform(0.05, 1);
    const side = k % 2 ? 1 : -1;
    const x = vanish + side * (30 + t * width * 0.62);
    const y = horizon - t * height * 0.3;
    blob(x, y, 1 + 4 * t, 2 + 6 * t, [255, 205, 130]);
  }
  if ((index < 24 ? index : 14) % 3 !== 0) {
    const t = rng.uniform(0.2, 0.6);
    const y = horizon + t * (height - horizon) * 0.5;
    const x = vanish - t * width * 0.12;
    for (const dx of [-1, 1]) blob(x + dx * (6 + t * 40), y, 1 + 3 * t, 2 + 5 * t, [255, 250, 235]);
  }
  return out;
}

function overexposed(index: number, width: number, height: number): Buffer {
  const rng = new SeededRandom(`overexposed:${index}`);
  const out = Buffer.alloc(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const v = Math.min(255, Math.round(249 + rng.normal(0, 2)));
    out[3 * p] = v;
    out[3 * p + 1] = v;
    out[3 * p + 2] = Math.max(0, v - 3);
  }
  if (index === 30) return out;
  // Single-pixel grey specks on ~5.5% of the pixels: the 5th percentile at full resolution, averaged away below.
  const specks = Math.round(width * height * (index === 28 ? 0.056 : 0.053));
  for (let k = 0; k < specks; k++) {
    const p = rng.int(width * height);
    out.fill(Math.round(rng.uniform(180, 230)), 3 * p, 3 * p + 3);
  }
  return out;
}
