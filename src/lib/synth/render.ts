/**
 * Turns a scene into a JPEG: librsvg (inside sharp) rasterises the SVG, then sensor effects are applied on the raw
 * buffer (rain streaks, Gaussian-like noise, night headlight glow is in the SVG), then sharp encodes the JPEG.
 * Deterministic for a given generator state and libvips version.
 */
import sharp from 'sharp';
import type {Box} from '../data/sample.js';
import {SeededRandom} from '../util/random.js';
import {type Camera, sceneToSvg, type SceneSpec} from './scene.js';

export interface RenderedImage {
  jpeg: Buffer;
  boxes: Box[];
  quality: number;
}

// 4096 standard-normal draws from a fixed seed, shared by every image (a constant, computed once): indexing a
// table is ~10x cheaper than Box-Muller per pixel.
let noiseTable: Float32Array | undefined;
function normalTable(): Float32Array {
  if (!noiseTable) {
    const fixed = new SeededRandom('natix-sensor-noise');
    noiseTable = Float32Array.from({length: 4096}, () => fixed.normal());
  }
  return noiseTable;
}

function addRain(data: Buffer, width: number, height: number, channels: number, rng: SeededRandom): void {
  const streaks = Math.round((width * height) / 900);
  const slant = rng.uniform(-0.35, 0.1);
  for (let s = 0; s < streaks; s++) {
    const x0 = rng.int(width);
    const y0 = rng.int(height);
    const len = 6 + rng.int(14);
    for (let k = 0; k < len; k++) {
      const x = Math.round(x0 + slant * k);
      const y = y0 + k;
      if (x < 0 || x >= width || y >= height) break;
      const i = (y * width + x) * channels;
      for (let c = 0; c < 3; c++) data[i + c] = Math.min(255, data[i + c]! * 0.6 + 90);
    }
  }
}

function addNoise(data: Buffer, channels: number, sigma: number, rng: SeededRandom): void {
  const table = normalTable();
  let j = rng.int(table.length);
  const step = 1 + 2 * rng.int(500); // odd step through the table: a long, seed-dependent sequence
  for (let i = 0; i < data.length; i += channels) {
    for (let c = 0; c < 3; c++) {
      j = (j + step) & 4095;
      const v = data[i + c]! + sigma * table[j]!;
      data[i + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
}

/** Renders one frame to JPEG with its roadwork boxes (pixel coordinates). */
export async function renderScene(
  spec: SceneSpec,
  camera: Camera,
  rng: SeededRandom,
  classId: Map<string, number>,
  quality: number,
): Promise<RenderedImage> {
  const {svg, boxes} = sceneToSvg(spec, camera, classId);
  const {data, info} = await sharp(Buffer.from(svg)).raw().toBuffer({resolveWithObject: true});
  if (spec.weather === 'rain') addRain(data, info.width, info.height, info.channels, rng);
  const sigma = spec.daytime === 'night' ? rng.uniform(4, 9) : rng.uniform(1.5, 5);
  addNoise(data, info.channels, sigma, rng);
  let pipeline = sharp(data, {raw: {width: info.width, height: info.height, channels: info.channels}}).removeAlpha();
  if (spec.weather !== 'clear' || rng.bool(0.3)) pipeline = pipeline.blur(rng.uniform(0.4, 1.1));
  const jpeg = await pipeline.jpeg({quality, chromaSubsampling: '4:2:0'}).toBuffer();
  return {jpeg, boxes, quality};
}
