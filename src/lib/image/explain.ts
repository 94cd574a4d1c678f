/**
 * `test-inference --explain-preprocessing`: each model's resolved preprocessing, in words (resize WxH with which
 * filter, crop box, rescale, mean/std), for a given image's size when there is one, so users can compare it with
 * their Python pipeline step by step.
 */
import sharp from 'sharp';
import {explainPreprocessing, type Preprocessing} from './preprocess.js';
import {assertOpenableRegularFile} from '../util/user-files.js';

export interface PreprocessingExplanation {
  model: string;
  /** Where the preprocessing came from (a preprocessor_config.json and its processor type, defaults, a cascade file). */
  source: string;
  resampler: Preprocessing['resampler'];
  steps: string[];
  warnings: string[];
}

/** The displayed (EXIF-oriented) size of an image file, as the decode will produce it. */
export async function orientedSize(file: string): Promise<{width: number; height: number} | undefined> {
  try {
    await assertOpenableRegularFile(file); // libvips would block on a FIFO
    const meta = await sharp(file).metadata();
    if (!meta.width || !meta.height) return undefined;
    return (meta.orientation ?? 1) >= 5 ? {width: meta.height, height: meta.width} : {width: meta.width, height: meta.height};
  } catch {
    return undefined;
  }
}

interface ExplainableModel {
  name: string;
  preprocessing: Preprocessing;
  preprocessingSource: string;
  preprocessingWarnings: string[];
}

/** One explanation per model; with `image`, sizes and crop offsets are computed for that image. */
export async function explainModels(models: readonly ExplainableModel[], image?: string): Promise<PreprocessingExplanation[]> {
  const size = image ? await orientedSize(image) : undefined;
  return models.map((m) => ({model: m.name, source: m.preprocessingSource, resampler: m.preprocessing.resampler, steps: explainPreprocessing(m.preprocessing, size), warnings: m.preprocessingWarnings}));
}
