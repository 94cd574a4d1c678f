import path from 'node:path';
import fg from 'fast-glob';
import sharp from 'sharp';
import {describe, expect, it} from 'vitest';
import {decodeImage} from '../../src/lib/image/decode.js';
import {defaultPixelWorkers, PixelWorkPool} from '../../src/lib/quality/pixel-pool.js';
import {computeProperties, fullResolutionBrightness} from '../../src/lib/quality/properties.js';
import {REPO_ROOT} from '../helpers/cli.js';

describe('PixelWorkPool: the per-image pixel work on worker threads', () => {
  it('answers exactly what the main thread computes, from workers, and on the main thread once closed', async () => {
    const files = (await fg('*/*/*.jpg', {cwd: path.join(REPO_ROOT, 'datasets', 'sample'), absolute: true})).sort().slice(0, 12);
    const pool = new PixelWorkPool(2);
    try {
      const decoded = await Promise.all(files.map((f) => decodeImage(f, {maxSide: 256})));
      const viaPool = await Promise.all(decoded.map((d) => pool.properties(d)));
      expect(viaPool).toEqual(decoded.map((d) => computeProperties(d)));
      // A night-like full-resolution image: exact percentiles (not settled by counting) and a settled one.
      const dim = await decodeImage(await sharp(files[0]!).linear(0.2, 0).png().toBuffer());
      const thumb = {brightnessP99: 0.2, brightnessP5: 0.01};
      expect(await pool.fullResolutionBrightness(dim.data, thumb, 0.32, 0.05)).toEqual(fullResolutionBrightness(dim.data, thumb, 0.32, 0.05));
      const bright = await decodeImage(files[1]!);
      expect(await pool.fullResolutionBrightness(bright.data, thumb, 0.32, 0.05)).toEqual(fullResolutionBrightness(bright.data, thumb, 0.32, 0.05));
      expect(pool.workerJobs).toBe(decoded.length + 2);
    } finally {
      await pool.close();
    }
    const after = await decodeImage(files[2]!, {maxSide: 256});
    expect(await pool.properties(after)).toEqual(computeProperties(after));
    expect(pool.workerJobs).toBe(14);
  }, 60_000);

  it('default size: no worker on <= 2 cores (measured no gain there), one per core beyond two, at most 4', () => {
    expect([1, 2, 3, 4, 6, 16].map((cores) => defaultPixelWorkers(cores))).toEqual([0, 0, 1, 2, 4, 4]);
  });
});
