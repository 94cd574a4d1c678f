/**
 * Procedural road scenes as SVG: a perspective road to a vanishing point, sky by time of day, roadside, traffic,
 * and - for positives - roadwork objects named as in CMU's ROADWork dataset. Hard negatives (orange things that are
 * not roadwork) appear in both classes so "any orange pixel" is not a shortcut.
 *
 * Everything is drawn from a SeededRandom: the same generator state gives the same SVG, byte for byte.
 */
import type {Box} from '../data/sample.js';
import type {SeededRandom} from '../util/random.js';

/** ROADWork class names natix draws (a subset of the 19), with their YOLO/COCO ids in this order. */
export const ROADWORK_CLASSES = [
  'Cone',
  'Drum',
  'Barricade',
  'Barrier',
  'Fence',
  'Work Vehicle',
  'Vertical Panel',
  'Tubular Marker',
  'Arrow Board',
  'TTC Sign',
  'Worker',
] as const;
export type RoadworkClass = (typeof ROADWORK_CLASSES)[number];

export type Daytime = 'day' | 'dusk' | 'night';
export type Weather = 'clear' | 'rain' | 'fog';
export type Environment = 'urban' | 'rural' | 'highway';

/** Everything that makes one scene; frames of one "video" share it and differ only by camera jitter. */
export interface SceneSpec {
  width: number;
  height: number;
  roadwork: boolean;
  daytime: Daytime;
  weather: Weather;
  environment: Environment;
  horizon: number; // fraction of height
  vanishingX: number; // fraction of width
  roadHalfWidth: number; // fraction of width at the bottom edge
  asphalt: string;
  objects: SceneObject[];
  /** Human description (non-empty exactly for positives, as in the NATIX data). */
  description: string;
  /** Which side the works are on, for the description. */
  side: 'left' | 'right' | 'centre';
}

export interface SceneObject {
  kind: RoadworkClass | 'car' | 'truck' | 'orange-car' | 'orange-truck' | 'billboard' | 'pedestrian' | 'tree' | 'building' | 'streetlight';
  /** Lateral position in road half-widths (-1 left edge, +1 right edge). */
  u: number;
  /** Depth: 0 at the horizon, 1 at the bottom edge. */
  t: number;
  color: string;
  variant: number;
}

/** Camera pose of one frame. */
export interface Camera {
  rollDeg: number;
  dx: number; // pixels
  dy: number; // pixels
}

const CAR_COLOURS = ['#c9ccd1', '#20242b', '#8a1c1c', '#1d3f7a', '#e8e8e4', '#56606b', '#2f5b3a', '#6b4e2e'];
const ORANGE = '#ff6a13';

function describe(spec: Omit<SceneSpec, 'description'>): string {
  if (!spec.roadwork) return '';
  const counts = new Map<string, number>();
  for (const o of spec.objects) {
    if ((ROADWORK_CLASSES as readonly string[]).includes(o.kind)) counts.set(o.kind, (counts.get(o.kind) ?? 0) + 1);
  }
  const parts = [...counts.entries()].map(([k, n]) => `${n === 1 ? 'a' : String(n)} ${k.toLowerCase()}${n === 1 ? '' : 's'}`);
  const when = spec.daytime === 'day' ? 'Daytime' : spec.daytime === 'dusk' ? 'Dusk' : 'Night-time';
  const weather = spec.weather === 'clear' ? '' : spec.weather === 'rain' ? ' in the rain' : ' in fog';
  return `${when} ${spec.environment} road${weather} with roadwork on the ${spec.side}: ${parts.join(', ')}.`;
}

/** Draws a scene specification (no pixels yet). */
export function makeSceneSpec(rng: SeededRandom, width: number, height: number, roadwork: boolean): SceneSpec {
  const daytime: Daytime = rng.next() < 0.6 ? 'day' : rng.bool(0.5) ? 'dusk' : 'night';
  const weather: Weather = rng.next() < 0.6 ? 'clear' : rng.bool(0.5) ? 'rain' : 'fog';
  const environment: Environment = rng.pick(['urban', 'rural', 'highway'] as const);
  const objects: SceneObject[] = [];
  // Roadside scenery.
  const sceneryCount = rng.intBetween(4, 10);
  for (let i = 0; i < sceneryCount; i++) {
    const kind = environment === 'urban' ? rng.pick(['building', 'building', 'streetlight', 'tree'] as const) : rng.pick(['tree', 'tree', 'streetlight'] as const);
    const side = rng.bool() ? -1 : 1;
    objects.push({kind, u: side * rng.uniform(1.35, 2.6), t: rng.uniform(0.05, 0.7), color: rng.pick(['#8d8478', '#a39a8c', '#6f6a63', '#b8ad9c']), variant: rng.int(4)});
  }
  // Traffic.
  const cars = rng.intBetween(0, environment === 'highway' ? 4 : 3);
  for (let i = 0; i < cars; i++) {
    objects.push({kind: rng.bool(0.8) ? 'car' : 'truck', u: rng.uniform(-0.7, 0.7), t: rng.uniform(0.15, 0.75), color: rng.pick(CAR_COLOURS), variant: rng.int(3)});
  }
  // Hard negatives: orange things that are not roadwork, in both classes (more often in negatives).
  const hardNegatives = rng.next() < (roadwork ? 0.25 : 0.55) ? rng.intBetween(1, 2) : 0;
  for (let i = 0; i < hardNegatives; i++) {
    const kind = rng.pick(['orange-car', 'orange-truck', 'billboard', 'pedestrian'] as const);
    const u = kind === 'billboard' || kind === 'pedestrian' ? (rng.bool() ? -1 : 1) * rng.uniform(1.15, 1.6) : rng.uniform(-0.7, 0.7);
    objects.push({kind, u, t: rng.uniform(0.25, 0.85), color: kind === 'pedestrian' ? ORANGE : rng.pick([ORANGE, '#f28c28', '#e85d04']), variant: rng.int(3)});
  }
  let side: SceneSpec['side'] = 'right';
  if (roadwork) {
    side = rng.pick(['left', 'right', 'right', 'centre'] as const);
    const base = side === 'left' ? -0.75 : side === 'right' ? 0.75 : 0;
    const layout = rng.pick(['taper', 'cluster', 'closure'] as const);
    const n = rng.intBetween(1, layout === 'cluster' ? 4 : 8);
    const primary = rng.pick(['Cone', 'Cone', 'Drum', 'Tubular Marker', 'Vertical Panel', 'Barrier', 'Fence'] as const);
    const t0 = rng.uniform(0.3, 0.85);
    for (let i = 0; i < n; i++) {
      const t = layout === 'cluster' ? t0 + rng.uniform(-0.08, 0.08) : Math.max(0.12, t0 - i * rng.uniform(0.04, 0.09));
      const u = base + (layout === 'taper' ? (side === 'left' ? 1 : -1) * i * 0.05 : 0) + rng.uniform(-0.12, 0.12);
      objects.push({kind: primary, u, t: Math.min(0.98, t), color: ORANGE, variant: rng.int(3)});
    }
    const extras = rng.intBetween(0, 3);
    for (let i = 0; i < extras; i++) {
      const kind = rng.pick(['Barricade', 'TTC Sign', 'Arrow Board', 'Work Vehicle', 'Worker', 'Worker', 'Cone'] as const);
      const off = kind === 'TTC Sign' ? (base >= 0 ? 1 : -1) * rng.uniform(1.05, 1.3) : base + rng.uniform(-0.2, 0.2);
      objects.push({kind, u: off, t: rng.uniform(0.2, 0.9), color: kind === 'Work Vehicle' ? rng.pick(['#f2b705', '#ff7b00', '#f5f5f0']) : ORANGE, variant: rng.int(3)});
    }
  }
  const partial = {
    width,
    height,
    roadwork,
    daytime,
    weather,
    environment,
    horizon: rng.uniform(0.36, 0.5),
    vanishingX: rng.uniform(0.38, 0.62),
    roadHalfWidth: rng.uniform(0.42, 0.62) * (environment === 'highway' ? 1.2 : 1),
    asphalt: rng.pick(['#3b3c3f', '#45464a', '#333437', '#505156']),
    objects: objects.sort((a, b) => a.t - b.t), // far to near: nearer objects occlude farther ones
    side,
  };
  return {...partial, description: describe(partial)};
}

/** A camera pose for frame `frame` of a video: the first frame is the reference, later ones drift slightly. */
export function makeCamera(rng: SeededRandom, frame: number): Camera {
  const roll = rng.uniform(-6, 6);
  if (frame === 0) return {rollDeg: roll, dx: 0, dy: 0};
  return {rollDeg: roll * 0.3 + rng.uniform(-1.5, 1.5), dx: rng.uniform(-12, 12), dy: rng.uniform(-6, 6)};
}

interface Drawn {
  svg: string;
  box?: Box;
}

const f = (v: number): string => (Math.round(v * 10) / 10).toString();

function stripes(x: number, y: number, w: number, h: number, a: string, b: string, n: number, vertical = false): string {
  let out = '';
  for (let i = 0; i < n; i++) {
    const c = i % 2 === 0 ? a : b;
    out += vertical
      ? `<rect x="${f(x + (w * i) / n)}" y="${f(y)}" width="${f(w / n + 0.5)}" height="${f(h)}" fill="${c}"/>`
      : `<rect x="${f(x)}" y="${f(y + (h * i) / n)}" width="${f(w)}" height="${f(h / n + 0.5)}" fill="${c}"/>`;
  }
  return out;
}

function diagonal(x: number, y: number, w: number, h: number, a: string, b: string, n: number): string {
  // Diagonal stripes clipped to the board by drawing parallelograms.
  let out = `<rect x="${f(x)}" y="${f(y)}" width="${f(w)}" height="${f(h)}" fill="${b}"/>`;
  const step = w / n;
  for (let i = 0; i < n; i += 2) {
    const x0 = x + i * step;
    out += `<polygon points="${f(x0)},${f(y + h)} ${f(Math.min(x + w, x0 + step))},${f(y + h)} ${f(Math.min(x + w, x0 + step + h * 0.6))},${f(y)} ${f(Math.min(x + w, x0 + h * 0.6))},${f(y)}" fill="${a}"/>`;
  }
  return out;
}

/** Draws one object at its perspective position; returns its SVG and, for roadwork classes, its box. */
function drawObject(o: SceneObject, spec: SceneSpec, classId: Map<string, number>): Drawn {
  const {width: W, height: H} = spec;
  const hy = spec.horizon * H;
  const y = hy + (H - hy) * o.t; // ground contact
  const x = spec.vanishingX * W + o.u * spec.roadHalfWidth * W * o.t;
  const s = o.t * H; // pixels per "metre-ish" unit at this depth
  const box = (bx: number, by: number, bw: number, bh: number): Box | undefined => {
    const id = classId.get(o.kind);
    return id === undefined ? undefined : {classId: id, className: o.kind, x: bx, y: by, width: bw, height: bh};
  };
  switch (o.kind) {
    case 'Cone': {
      const h = 0.11 * s;
      const w = h * 0.55;
      const svg =
        `<rect x="${f(x - w * 0.6)}" y="${f(y - h * 0.08)}" width="${f(w * 1.2)}" height="${f(h * 0.08)}" fill="#222"/>` +
        `<polygon points="${f(x - w / 2)},${f(y - h * 0.08)} ${f(x + w / 2)},${f(y - h * 0.08)} ${f(x + w * 0.08)},${f(y - h)} ${f(x - w * 0.08)},${f(y - h)}" fill="${o.color}"/>` +
        `<polygon points="${f(x - w * 0.33)},${f(y - h * 0.42)} ${f(x + w * 0.33)},${f(y - h * 0.42)} ${f(x + w * 0.25)},${f(y - h * 0.6)} ${f(x - w * 0.25)},${f(y - h * 0.6)}" fill="#f4f4f4"/>`;
      return {svg, box: box(x - w * 0.6, y - h, w * 1.2, h)};
    }
    case 'Drum': {
      const h = 0.16 * s;
      const w = h * 0.62;
      const svg = `<rect x="${f(x - w / 2)}" y="${f(y - h)}" width="${f(w)}" height="${f(h)}" rx="${f(w * 0.12)}" fill="${o.color}"/>` + stripes(x - w / 2, y - h * 0.8, w, h * 0.5, '#f4f4f4', o.color, 4);
      return {svg, box: box(x - w / 2, y - h, w, h)};
    }
    case 'Tubular Marker': {
      const h = 0.16 * s;
      const w = h * 0.16;
      const svg = `<rect x="${f(x - w / 2)}" y="${f(y - h)}" width="${f(w)}" height="${f(h)}" fill="${o.color}"/>` + stripes(x - w / 2, y - h * 0.9, w, h * 0.3, '#f4f4f4', o.color, 3) + `<rect x="${f(x - w)}" y="${f(y - h * 0.06)}" width="${f(w * 2)}" height="${f(h * 0.06)}" fill="#222"/>`;
      return {svg, box: box(x - w, y - h, w * 2, h)};
    }
    case 'Vertical Panel': {
      const h = 0.2 * s;
      const w = h * 0.3;
      const svg = `<rect x="${f(x - w * 0.06)}" y="${f(y - h * 0.35)}" width="${f(w * 0.12)}" height="${f(h * 0.35)}" fill="#555"/>` + diagonal(x - w / 2, y - h, w, h * 0.68, o.color, '#f4f4f4', 4);
      return {svg, box: box(x - w / 2, y - h, w, h)};
    }
    case 'Barrier': {
      const h = 0.1 * s;
      const w = h * 3.2;
      const svg = `<rect x="${f(x - w / 2)}" y="${f(y - h)}" width="${f(w)}" height="${f(h)}" fill="#d8d8d8"/>` + stripes(x - w / 2, y - h, w, h * 0.55, '#d0021b', '#f4f4f4', 8, true);
      return {svg, box: box(x - w / 2, y - h, w, h)};
    }
    case 'Fence': {
      const h = 0.14 * s;
      const w = h * 2.6;
      let svg = `<rect x="${f(x - w / 2)}" y="${f(y - h)}" width="${f(w)}" height="${f(h)}" fill="none" stroke="${o.color}" stroke-width="${f(Math.max(1, h * 0.05))}"/>`;
      for (let i = 1; i < 8; i++) svg += `<line x1="${f(x - w / 2 + (w * i) / 8)}" y1="${f(y - h)}" x2="${f(x - w / 2 + (w * i) / 8)}" y2="${f(y)}" stroke="${o.color}" stroke-width="${f(Math.max(0.6, h * 0.025))}"/>`;
      for (let i = 1; i < 4; i++) svg += `<line x1="${f(x - w / 2)}" y1="${f(y - h + (h * i) / 4)}" x2="${f(x + w / 2)}" y2="${f(y - h + (h * i) / 4)}" stroke="${o.color}" stroke-width="${f(Math.max(0.6, h * 0.025))}"/>`;
      return {svg, box: box(x - w / 2, y - h, w, h)};
    }
    case 'Barricade': {
      const h = 0.15 * s;
      const w = h * 1.8;
      const svg =
        `<rect x="${f(x - w * 0.4)}" y="${f(y - h)}" width="${f(w * 0.05)}" height="${f(h)}" fill="#777"/><rect x="${f(x + w * 0.35)}" y="${f(y - h)}" width="${f(w * 0.05)}" height="${f(h)}" fill="#777"/>` +
        diagonal(x - w / 2, y - h, w, h * 0.28, o.color, '#f4f4f4', 10) +
        diagonal(x - w / 2, y - h * 0.6, w, h * 0.22, o.color, '#f4f4f4', 10);
      return {svg, box: box(x - w / 2, y - h, w, h)};
    }
    case 'TTC Sign': {
      const h = 0.3 * s;
      const d = h * 0.42;
      const cy = y - h + d / 2;
      const svg =
        `<rect x="${f(x - d * 0.04)}" y="${f(cy)}" width="${f(d * 0.08)}" height="${f(y - cy)}" fill="#666"/>` +
        `<polygon points="${f(x)},${f(cy - d / 2)} ${f(x + d / 2)},${f(cy)} ${f(x)},${f(cy + d / 2)} ${f(x - d / 2)},${f(cy)}" fill="${o.color}" stroke="#111" stroke-width="${f(Math.max(0.6, d * 0.03))}"/>` +
        `<circle cx="${f(x)}" cy="${f(cy - d * 0.13)}" r="${f(d * 0.06)}" fill="#111"/><line x1="${f(x)}" y1="${f(cy - d * 0.06)}" x2="${f(x - d * 0.08)}" y2="${f(cy + d * 0.16)}" stroke="#111" stroke-width="${f(d * 0.05)}"/>`;
      return {svg, box: box(x - d / 2, cy - d / 2, d, d)};
    }
    case 'Arrow Board': {
      const h = 0.28 * s;
      const w = h * 1.1;
      const top = y - h;
      let svg = `<rect x="${f(x - w * 0.05)}" y="${f(top + h * 0.5)}" width="${f(w * 0.1)}" height="${f(h * 0.5)}" fill="#444"/><rect x="${f(x - w / 2)}" y="${f(top)}" width="${f(w)}" height="${f(h * 0.55)}" fill="#111"/>`;
      const dir = o.variant % 2 === 0 ? 1 : -1;
      for (let i = 0; i < 6; i++) svg += `<circle cx="${f(x - dir * w * 0.35 + dir * i * w * 0.12)}" cy="${f(top + h * 0.27)}" r="${f(w * 0.035)}" fill="#ffd21f"/>`;
      svg += `<circle cx="${f(x + dir * w * 0.3)}" cy="${f(top + h * 0.13)}" r="${f(w * 0.035)}" fill="#ffd21f"/><circle cx="${f(x + dir * w * 0.3)}" cy="${f(top + h * 0.41)}" r="${f(w * 0.035)}" fill="#ffd21f"/>`;
      return {svg, box: box(x - w / 2, top, w, h)};
    }
    case 'Work Vehicle': {
      const h = 0.32 * s;
      const w = h * 1.5;
      const top = y - h;
      const svg =
        `<rect x="${f(x - w / 2)}" y="${f(top + h * 0.2)}" width="${f(w)}" height="${f(h * 0.65)}" rx="${f(h * 0.05)}" fill="${o.color}"/>` +
        diagonal(x - w / 2, top + h * 0.62, w, h * 0.14, '#d0021b', '#f4f4f4', 12) +
        `<rect x="${f(x - w * 0.3)}" y="${f(top + h * 0.26)}" width="${f(w * 0.6)}" height="${f(h * 0.2)}" fill="#2a3440"/>` +
        `<rect x="${f(x - w * 0.1)}" y="${f(top + h * 0.08)}" width="${f(w * 0.2)}" height="${f(h * 0.12)}" fill="#ffae00"/>` +
        `<circle cx="${f(x - w * 0.32)}" cy="${f(y - h * 0.08)}" r="${f(h * 0.1)}" fill="#111"/><circle cx="${f(x + w * 0.32)}" cy="${f(y - h * 0.08)}" r="${f(h * 0.1)}" fill="#111"/>`;
      return {svg, box: box(x - w / 2, top + h * 0.08, w, h * 0.92)};
    }
    case 'Worker': {
      const h = 0.22 * s;
      const w = h * 0.36;
      const top = y - h;
      const vest = o.variant === 0 ? '#c6ff00' : '#ff7b00';
      const svg =
        `<rect x="${f(x - w * 0.3)}" y="${f(top + h * 0.55)}" width="${f(w * 0.22)}" height="${f(h * 0.45)}" fill="#2b3a55"/><rect x="${f(x + w * 0.08)}" y="${f(top + h * 0.55)}" width="${f(w * 0.22)}" height="${f(h * 0.45)}" fill="#2b3a55"/>` +
        `<rect x="${f(x - w / 2)}" y="${f(top + h * 0.2)}" width="${f(w)}" height="${f(h * 0.38)}" rx="${f(w * 0.15)}" fill="${vest}"/>` +
        `<rect x="${f(x - w / 2)}" y="${f(top + h * 0.36)}" width="${f(w)}" height="${f(h * 0.04)}" fill="#e8e8e8"/>` +
        `<circle cx="${f(x)}" cy="${f(top + h * 0.12)}" r="${f(w * 0.22)}" fill="#c58c62"/>` +
        `<ellipse cx="${f(x)}" cy="${f(top + h * 0.06)}" rx="${f(w * 0.3)}" ry="${f(w * 0.14)}" fill="${o.variant === 2 ? '#f4f4f4' : '#ffd21f'}"/>`;
      return {svg, box: box(x - w / 2, top, w, h)};
    }
    case 'car':
    case 'orange-car':
    case 'truck':
    case 'orange-truck': {
      const truck = o.kind.endsWith('truck');
      const h = (truck ? 0.3 : 0.17) * s;
      const w = h * (truck ? 1.25 : 2.1);
      const top = y - h;
      const svg =
        `<rect x="${f(x - w / 2)}" y="${f(top + h * 0.35)}" width="${f(w)}" height="${f(h * 0.5)}" rx="${f(h * 0.1)}" fill="${o.color}"/>` +
        (truck
          ? `<rect x="${f(x - w / 2)}" y="${f(top)}" width="${f(w)}" height="${f(h * 0.6)}" fill="${o.color}"/><rect x="${f(x - w * 0.42)}" y="${f(top + h * 0.05)}" width="${f(w * 0.84)}" height="${f(h * 0.25)}" fill="#27303a"/>`
          : `<polygon points="${f(x - w * 0.32)},${f(top + h * 0.38)} ${f(x + w * 0.32)},${f(top + h * 0.38)} ${f(x + w * 0.22)},${f(top + h * 0.02)} ${f(x - w * 0.22)},${f(top + h * 0.02)}" fill="${o.color}"/><polygon points="${f(x - w * 0.26)},${f(top + h * 0.36)} ${f(x + w * 0.26)},${f(top + h * 0.36)} ${f(x + w * 0.18)},${f(top + h * 0.08)} ${f(x - w * 0.18)},${f(top + h * 0.08)}" fill="#27303a"/>`) +
        `<rect x="${f(x - w * 0.45)}" y="${f(top + h * 0.5)}" width="${f(w * 0.12)}" height="${f(h * 0.08)}" fill="#b31217"/><rect x="${f(x + w * 0.33)}" y="${f(top + h * 0.5)}" width="${f(w * 0.12)}" height="${f(h * 0.08)}" fill="#b31217"/>` +
        `<rect x="${f(x - w * 0.42)}" y="${f(top + h * 0.82)}" width="${f(w * 0.16)}" height="${f(h * 0.18)}" fill="#111"/><rect x="${f(x + w * 0.26)}" y="${f(top + h * 0.82)}" width="${f(w * 0.16)}" height="${f(h * 0.18)}" fill="#111"/>`;
      return {svg};
    }
    case 'billboard': {
      const h = 0.5 * s;
      const w = h * 1.3;
      const top = y - h;
      const svg = `<rect x="${f(x - w * 0.03)}" y="${f(top + h * 0.5)}" width="${f(w * 0.06)}" height="${f(h * 0.5)}" fill="#555"/><rect x="${f(x - w / 2)}" y="${f(top)}" width="${f(w)}" height="${f(h * 0.5)}" fill="${o.color}"/><rect x="${f(x - w * 0.35)}" y="${f(top + h * 0.15)}" width="${f(w * 0.7)}" height="${f(h * 0.08)}" fill="#fff"/>`;
      return {svg};
    }
    case 'pedestrian': {
      const h = 0.22 * s;
      const w = h * 0.34;
      const top = y - h;
      const svg =
        `<rect x="${f(x - w * 0.3)}" y="${f(top + h * 0.55)}" width="${f(w * 0.6)}" height="${f(h * 0.45)}" fill="#3a3a40"/><rect x="${f(x - w / 2)}" y="${f(top + h * 0.2)}" width="${f(w)}" height="${f(h * 0.4)}" rx="${f(w * 0.2)}" fill="${o.color}"/>` +
        `<circle cx="${f(x)}" cy="${f(top + h * 0.11)}" r="${f(w * 0.22)}" fill="#8d5a3b"/>`;
      return {svg};
    }
    case 'tree': {
      const h = 0.6 * s;
      const svg = `<rect x="${f(x - h * 0.03)}" y="${f(y - h * 0.4)}" width="${f(h * 0.06)}" height="${f(h * 0.4)}" fill="#5a4632"/><ellipse cx="${f(x)}" cy="${f(y - h * 0.62)}" rx="${f(h * 0.25)}" ry="${f(h * 0.33)}" fill="${['#2f5d2a', '#3c6e35', '#28502a', '#4a7d3c'][o.variant]}"/>`;
      return {svg};
    }
    case 'building': {
      const h = (0.8 + o.variant * 0.35) * s;
      const w = h * 0.8;
      let svg = `<rect x="${f(x - w / 2)}" y="${f(y - h)}" width="${f(w)}" height="${f(h)}" fill="${o.color}"/>`;
      const rows = 3 + o.variant;
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < 3; c++) svg += `<rect x="${f(x - w * 0.38 + c * w * 0.28)}" y="${f(y - h + h * 0.08 + (r * h * 0.85) / rows)}" width="${f(w * 0.16)}" height="${f((h * 0.5) / rows)}" fill="#2c3540" fill-opacity="0.85"/>`;
      }
      return {svg};
    }
    case 'streetlight': {
      const h = 0.7 * s;
      const dir = o.u < 0 ? 1 : -1;
      const svg = `<rect x="${f(x - h * 0.01)}" y="${f(y - h)}" width="${f(h * 0.02)}" height="${f(h)}" fill="#6b6e72"/><rect x="${f(dir > 0 ? x : x - h * 0.15)}" y="${f(y - h)}" width="${f(h * 0.15)}" height="${f(h * 0.015)}" fill="#6b6e72"/>`;
      return {svg};
    }
  }
}

const SKY: Record<Daytime, [string, string]> = {day: ['#6fa8dc', '#d6e6f5'], dusk: ['#2b2d5c', '#f39c5a'], night: ['#03050c', '#18203a']};

/** Renders a spec with a camera pose to an SVG document, and the roadwork boxes in image pixels. */
export function sceneToSvg(spec: SceneSpec, camera: Camera, classId: Map<string, number>): {svg: string; boxes: Box[]} {
  const {width: W, height: H} = spec;
  const hy = spec.horizon * H;
  const vx = spec.vanishingX * W;
  const [skyTop, skyBottom] = SKY[spec.daytime];
  const ground = spec.environment === 'urban' ? '#7d7b76' : '#55753d';
  const halfBottom = spec.roadHalfWidth * W;
  let body = '';
  body += `<rect x="${-W}" y="${-H}" width="${3 * W}" height="${f(hy + H)}" fill="url(#sky)"/>`;
  body += `<rect x="${-W}" y="${f(hy)}" width="${3 * W}" height="${f(2 * H)}" fill="${ground}"/>`;
  body += `<polygon points="${f(vx - 1)},${f(hy)} ${f(vx + 1)},${f(hy)} ${f(vx + halfBottom * 1.6)},${f(H * 1.6)} ${f(vx - halfBottom * 1.6)},${f(H * 1.6)}" fill="${spec.asphalt}"/>`;
  // Edge lines and dashed centre line, in perspective.
  for (const side of [-1, 1]) {
    body += `<line x1="${f(vx + side * 1)}" y1="${f(hy)}" x2="${f(vx + side * halfBottom * 0.95 * 1.6)}" y2="${f(H * 1.6)}" stroke="#e9e9e0" stroke-width="${f(W * 0.006)}"/>`;
  }
  for (let k = 0; k < 14; k++) {
    const t0 = (k / 14) ** 1.6;
    const t1 = t0 + 0.35 / 14;
    body += `<polygon points="${f(vx - 0.5 - t0 * W * 0.004)},${f(hy + (H - hy) * t0)} ${f(vx + 0.5 + t0 * W * 0.004)},${f(hy + (H - hy) * t0)} ${f(vx + 0.5 + t1 * W * 0.004)},${f(hy + (H - hy) * t1)} ${f(vx - 0.5 - t1 * W * 0.004)},${f(hy + (H - hy) * t1)}" fill="#f2d95c"/>`;
  }
  const boxes: Box[] = [];
  for (const o of spec.objects) {
    const drawn = drawObject(o, spec, classId);
    body += drawn.svg;
    if (drawn.box) boxes.push(drawn.box);
  }
  // Weather and light overlays.
  let overlay = '';
  if (spec.weather === 'fog') overlay += `<rect x="${-W}" y="${-H}" width="${3 * W}" height="${3 * H}" fill="url(#fog)"/>`;
  if (spec.daytime === 'night') overlay += `<rect x="${-W}" y="${-H}" width="${3 * W}" height="${3 * H}" fill="#000010" fill-opacity="0.5"/>`;
  if (spec.daytime === 'dusk') overlay += `<rect x="${-W}" y="${-H}" width="${3 * W}" height="${3 * H}" fill="#40204a" fill-opacity="0.18"/>`;
  const defs =
    `<linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${skyTop}"/><stop offset="1" stop-color="${skyBottom}"/></linearGradient>` +
    `<linearGradient id="fog" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#dfe3e6" stop-opacity="0.55"/><stop offset="0.5" stop-color="#dfe3e6" stop-opacity="0.7"/><stop offset="1" stop-color="#dfe3e6" stop-opacity="0.3"/></linearGradient>`;
  // The camera: roll about the centre with a small overscan so no corner is empty, plus a shift.
  const zoom = 1 + Math.abs(Math.sin((camera.rollDeg * Math.PI) / 180)) * 1.2;
  const transform = `translate(${f(W / 2 + camera.dx)} ${f(H / 2 + camera.dy)}) rotate(${f(camera.rollDeg)}) scale(${zoom.toFixed(4)}) translate(${f(-W / 2)} ${f(-H / 2)})`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><defs>${defs}</defs><g transform="${transform}">${body}${overlay}</g></svg>`;
  return {svg, boxes: boxes.map((b) => transformBox(b, camera, zoom, W, H)).filter((b): b is Box => b !== null)};
}

/** Applies the camera transform to a box and returns its clipped axis-aligned bounds (null if mostly outside). */
function transformBox(b: Box, camera: Camera, zoom: number, W: number, H: number): Box | null {
  const a = (camera.rollDeg * Math.PI) / 180;
  const cos = Math.cos(a) * zoom;
  const sin = Math.sin(a) * zoom;
  const corners = [
    [b.x, b.y],
    [b.x + b.width, b.y],
    [b.x, b.y + b.height],
    [b.x + b.width, b.y + b.height],
  ].map(([px, py]) => {
    const dx = px! - W / 2;
    const dy = py! - H / 2;
    return [W / 2 + camera.dx + dx * cos - dy * sin, H / 2 + camera.dy + dx * sin + dy * cos] as const;
  });
  const xs = corners.map((c) => c[0]);
  const ys = corners.map((c) => c[1]);
  const x0 = Math.min(...xs);
  const y0 = Math.min(...ys);
  const x1 = Math.max(...xs);
  const y1 = Math.max(...ys);
  const cx0 = Math.max(0, x0);
  const cy0 = Math.max(0, y0);
  const cx1 = Math.min(W, x1);
  const cy1 = Math.min(H, y1);
  const area = (x1 - x0) * (y1 - y0);
  const visible = Math.max(0, cx1 - cx0) * Math.max(0, cy1 - cy0);
  if (area <= 0 || visible / area < 0.4 || cx1 - cx0 < 2 || cy1 - cy0 < 2) return null;
  const r = (v: number): number => Math.round(v * 100) / 100;
  return {...b, x: r(cx0), y: r(cy0), width: r(cx1 - cx0), height: r(cy1 - cy0)};
}
