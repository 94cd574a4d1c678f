/**
 * A Hugging Face `preprocessor_config.json` -> natix's Preprocessing, family by family as transformers' slow
 * (Pillow) image processors read it (transformers 4.x `image_processing_*.py`; the 5.x PIL backends agree except
 * where a warning says so):
 * - ViT / DeiT / BEiT / SigLIP / EfficientNet (and Swin, which uses ViT's): `size` {height, width}; a plain-int
 *   `size` is a square. DeiT, BEiT and EfficientNet honour `do_center_crop`; ViT and SigLIP ignore it.
 * - CLIP / BiT (DINOv2 uses BiT's): `size` {shortest_edge}; a plain int is the shortest edge; centre crop.
 * - ConvNeXt: shortest_edge < 384 -> shorter side to int(shortest_edge / crop_pct), crop shortest_edge;
 *   >= 384 -> warp to a square. A plain int is the shortest edge.
 * - `{shortest_edge, longest_edge}`: get_size_with_aspect_ratio (transformers 5 PIL backend; 4.x CLIP ignores
 *   longest_edge).
 * - natix's own exports (`image_processor_type: natix`): the resampler they were trained with (`natix_resampler`,
 *   absent = libvips, what natix trained with before it was recorded).
 * Unknown processor types and keys that may change pixels produce warnings naming them, never silence.
 */
import {PIL_RESAMPLE_CODES, type PillowFilter} from './pillow-resample.js';
import {DEFAULT_PREPROCESSING, type Preprocessing, type Resampler} from './preprocess.js';

type Triple = [number, number, number];
const IMAGENET_DEFAULT_MEAN: Triple = [0.485, 0.456, 0.406];
const IMAGENET_DEFAULT_STD: Triple = [0.229, 0.224, 0.225];
const IMAGENET_STANDARD: Triple = [0.5, 0.5, 0.5];
const OPENAI_CLIP_MEAN: Triple = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD: Triple = [0.26862954, 0.26130258, 0.27577711];

type SizeDict = {height?: number; width?: number; shortest_edge?: number; longest_edge?: number; max_height?: number; max_width?: number};

interface Family {
  name: string;
  /** How a plain-int `size` reads: a square (true) or the shortest edge (false). */
  square: boolean;
  size: SizeDict;
  resample: number;
  /** Whether the processor applies a centre crop at all, and its default. */
  crop: 'never' | boolean;
  cropSize?: {height: number; width: number};
  mean: Triple;
  std: Triple;
}

const FAMILIES: Record<string, Family> = {
  ViTImageProcessor: {name: 'ViT', square: true, size: {height: 224, width: 224}, resample: 2, crop: 'never', mean: IMAGENET_STANDARD, std: IMAGENET_STANDARD},
  DeiTImageProcessor: {name: 'DeiT', square: true, size: {height: 256, width: 256}, resample: 3, crop: true, cropSize: {height: 224, width: 224}, mean: IMAGENET_DEFAULT_MEAN, std: IMAGENET_DEFAULT_STD},
  BeitImageProcessor: {name: 'BEiT', square: true, size: {height: 256, width: 256}, resample: 3, crop: true, cropSize: {height: 224, width: 224}, mean: IMAGENET_STANDARD, std: IMAGENET_STANDARD},
  SiglipImageProcessor: {name: 'SigLIP', square: true, size: {height: 224, width: 224}, resample: 3, crop: 'never', mean: IMAGENET_STANDARD, std: IMAGENET_STANDARD},
  CLIPImageProcessor: {name: 'CLIP', square: false, size: {shortest_edge: 224}, resample: 3, crop: true, cropSize: {height: 224, width: 224}, mean: OPENAI_CLIP_MEAN, std: OPENAI_CLIP_STD},
  BitImageProcessor: {name: 'BiT/DINOv2', square: false, size: {shortest_edge: 224}, resample: 3, crop: true, cropSize: {height: 224, width: 224}, mean: OPENAI_CLIP_MEAN, std: OPENAI_CLIP_STD},
  ConvNextImageProcessor: {name: 'ConvNeXt', square: false, size: {shortest_edge: 384}, resample: 3, crop: 'never', mean: IMAGENET_STANDARD, std: IMAGENET_STANDARD},
  EfficientNetImageProcessor: {name: 'EfficientNet', square: true, size: {height: 346, width: 346}, resample: 0, crop: false, cropSize: {height: 289, width: 289}, mean: IMAGENET_STANDARD, std: IMAGENET_STANDARD},
  natix: {name: 'natix', square: true, size: {height: 224, width: 224}, resample: 2, crop: false, mean: [0, 0, 0], std: [1, 1, 1]},
};
/** Used when the type is missing or unknown: the BaseImageProcessor reading (int size = square). */
const GENERIC: Family = {name: 'generic', square: true, size: {height: 224, width: 224}, resample: 2, crop: false, cropSize: {height: 224, width: 224}, mean: IMAGENET_STANDARD, std: IMAGENET_STANDARD};

/** Keys every family reads. */
const COMMON_KEYS = new Set(['image_processor_type', 'feature_extractor_type', 'processor_class', 'auto_map', 'do_resize', 'size', 'resample', 'do_center_crop', 'crop_size', 'do_rescale', 'rescale_factor', 'do_normalize', 'image_mean', 'image_std', 'do_convert_rgb', 'default_to_square', 'use_square_size']);
/** Keys that never change pixel values (segmentation labels, bookkeeping). */
const HARMLESS_KEYS = new Set(['do_reduce_labels', 'reduce_labels', 'model_input_names', 'return_tensors', 'data_format', 'input_data_format', '_processor_class', 'image_seq_length', 'num_channels']);
const FAMILY_KEYS: Record<string, string[]> = {ConvNextImageProcessor: ['crop_pct'], EfficientNetImageProcessor: ['rescale_offset', 'include_top'], natix: ['natix_resampler']};

export interface HfProcessorResolution {
  preprocessing: Preprocessing;
  /** The processor class the config names (normalised), or undefined. */
  processorType?: string;
  family: string;
  warnings: string[];
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function triple(v: unknown, d: Triple): Triple {
  if (isNumber(v)) return [v, v, v];
  if (Array.isArray(v) && v.length === 3 && v.every(isNumber)) return [v[0] as number, v[1] as number, v[2] as number];
  return d;
}

/** transformers' get_size_dict: int -> square or shortest edge; [h, w] -> {height, width}; dicts as they are. */
function sizeDict(v: unknown, square: boolean, fallback: SizeDict): SizeDict {
  if (isNumber(v)) return square ? {height: v, width: v} : {shortest_edge: v};
  if (Array.isArray(v) && v.length === 2 && v.every(isNumber)) return {height: v[0], width: v[1]};
  if (Array.isArray(v) && v.length === 1 && isNumber(v[0])) return square ? {height: v[0], width: v[0]} : {shortest_edge: v[0]};
  if (v && typeof v === 'object') return v as SizeDict;
  return fallback;
}

/** ViTFeatureExtractor -> ViTImageProcessor; the Fast (torchvision) and Pil variants name the same family. */
function normaliseType(config: Record<string, unknown>): {type?: string; fast: boolean} {
  const raw = (typeof config.image_processor_type === 'string' ? config.image_processor_type : undefined) ?? (typeof config.feature_extractor_type === 'string' ? config.feature_extractor_type : undefined);
  if (!raw) return {fast: false};
  const fast = /Fast$/.test(raw);
  let type = raw.replace(/(Fast|Pil)$/, '').replace(/FeatureExtractor$/, 'ImageProcessor');
  // Aliases that share a processor in transformers.
  if (type === 'DinoV2ImageProcessor' || type === 'Dinov2ImageProcessor') type = 'BitImageProcessor';
  if (type === 'Data2VecVisionImageProcessor') type = 'BeitImageProcessor';
  if (type === 'SwinImageProcessor') type = 'ViTImageProcessor';
  return {type, fast};
}

/** Resolves a preprocessor config; `resampler` overrides the default choice (pillow, or a natix model's own). */
export function resolveHfProcessor(config: Record<string, unknown>, options: {resampler?: Resampler} = {}): HfProcessorResolution {
  const warnings: string[] = [];
  const {type, fast} = normaliseType(config);
  let family = type ? FAMILIES[type] : undefined;
  let familyKey = type;
  if (type && !family) {
    warnings.push(`image processor "${type}" is not one natix reproduces (ViT, DeiT, BEiT, SigLIP, Swin, CLIP, BiT, DINOv2, ConvNeXt, EfficientNet): its generic keys are applied, anything specific to it is not`);
  }
  if (!type && config.crop_pct !== undefined) {
    family = FAMILIES.ConvNextImageProcessor;
    familyKey = 'ConvNextImageProcessor';
    warnings.push('preprocessor config names no image_processor_type; crop_pct suggests ConvNeXt, so ConvNeXt rules are applied');
  }
  family ??= GENERIC;
  if (fast) warnings.push(`the config names the fast (torchvision) processor ${String(config.image_processor_type)}; natix reproduces the slow (Pillow) one, which differs slightly from torchvision's antialiased resize`);
  const known = new Set([...COMMON_KEYS, ...HARMLESS_KEYS, ...(familyKey ? (FAMILY_KEYS[familyKey] ?? []) : [])]);
  const unknown = Object.keys(config).filter((k) => !known.has(k));
  const ignoredFamilyKeys = unknown.filter((k) => Object.values(FAMILY_KEYS).flat().includes(k));
  const otherUnknown = unknown.filter((k) => !ignoredFamilyKeys.includes(k));
  if (ignoredFamilyKeys.length) warnings.push(`ignored by ${family.name} processors: ${ignoredFamilyKeys.join(', ')}`);
  if (otherUnknown.length) warnings.push(`preprocessor config keys natix does not reproduce (they may change pixels): ${otherUnknown.join(', ')}`);

  const p: Preprocessing = {...DEFAULT_PREPROCESSING};
  const natixResampler = config.natix_resampler === 'pillow' || config.natix_resampler === 'vips' ? config.natix_resampler : undefined;
  p.resampler = options.resampler ?? (familyKey === 'natix' ? (natixResampler ?? 'vips') : 'pillow');

  // Resampling filter.
  const code = config.resample ?? family.resample;
  let filter: PillowFilter | undefined = isNumber(code) ? PIL_RESAMPLE_CODES[code] : undefined;
  if (!filter) {
    warnings.push(`resample ${JSON.stringify(code)} is not a PIL filter code (0-5): using ${PIL_RESAMPLE_CODES[family.resample]}`);
    filter = PIL_RESAMPLE_CODES[family.resample]!;
  }
  p.resample = filter;

  // Geometry.
  const square = typeof config.default_to_square === 'boolean' ? config.default_to_square : family.square;
  let size = sizeDict(config.size, square, family.size);
  if (config.use_square_size === true && size.shortest_edge) size = {height: size.shortest_edge, width: size.shortest_edge};
  const doCrop = family.crop !== 'never' && (typeof config.do_center_crop === 'boolean' ? config.do_center_crop : family.crop);
  if (family.crop === 'never' && config.do_center_crop === true) warnings.push(`do_center_crop is ignored by transformers 4.x ${family.name} processors (transformers 5's PIL backend applies it): not applied`);
  const cropDict = sizeDict(config.crop_size, true, family.cropSize ?? {height: 224, width: 224});
  const crop = cropDict.height && cropDict.width ? {width: cropDict.width, height: cropDict.height} : undefined;
  if (doCrop && !crop) warnings.push(`crop_size ${JSON.stringify(config.crop_size)} has no height and width: no crop applied`);
  const cropNow = Boolean(doCrop && crop);
  if (config.do_resize === false) {
    p.resize = 'none';
    p.width = cropNow ? crop!.width : 0;
    p.height = cropNow ? crop!.height : 0;
  } else if (familyKey === 'ConvNextImageProcessor') {
    const edge = size.shortest_edge ?? (size.height && size.width ? undefined : 384);
    if (!edge) {
      warnings.push(`ConvNeXt needs size.shortest_edge, got ${JSON.stringify(config.size)}: resizing to ${size.width}x${size.height}`);
      Object.assign(p, {resize: 'stretch', width: size.width, height: size.height});
    } else if (edge < 384) {
      const cropPct = isNumber(config.crop_pct) ? config.crop_pct : 224 / 256;
      Object.assign(p, {resize: 'shorter-side-crop', shortestEdge: Math.trunc(edge / cropPct), width: edge, height: edge});
    } else {
      Object.assign(p, {resize: 'stretch', width: edge, height: edge});
    }
  } else if (size.shortest_edge) {
    p.shortestEdge = size.shortest_edge;
    if (size.longest_edge) p.longestEdge = size.longest_edge;
    if (cropNow) Object.assign(p, {resize: 'shorter-side-crop', width: crop!.width, height: crop!.height});
    else Object.assign(p, {resize: 'shorter-side', width: 0, height: 0});
  } else if (size.height && size.width) {
    if (cropNow) Object.assign(p, {resize: 'shorter-side-crop', resizeWidth: size.width, resizeHeight: size.height, width: crop!.width, height: crop!.height});
    else Object.assign(p, {resize: 'stretch', width: size.width, height: size.height});
  } else {
    warnings.push(`size ${JSON.stringify(config.size)} is not a form natix reproduces ({height, width}, {shortest_edge}, {shortest_edge, longest_edge}, an int): resizing to 224x224`);
    Object.assign(p, {resize: 'stretch', width: 224, height: 224});
  }

  // Values: rescale (with EfficientNet's offset), normalise (and EfficientNet's include_top second division).
  const doRescale = config.do_rescale !== false;
  p.scale = doRescale ? (isNumber(config.rescale_factor) ? config.rescale_factor : 1 / 255) : 1;
  const std = triple(config.image_std, family.std);
  if (familyKey === 'EfficientNetImageProcessor') {
    if (doRescale && config.rescale_offset === true) p.offset = 1;
    if (config.include_top !== false) p.extraStd = std;
  }
  if (config.do_normalize === false) {
    p.mean = [0, 0, 0];
    p.std = [1, 1, 1];
  } else {
    p.mean = triple(config.image_mean, family.mean);
    p.std = std;
  }
  return {preprocessing: p, processorType: type, family: family.name, warnings};
}

/** The preprocessing a Hugging Face image processor config describes (warnings dropped: see resolveHfProcessor). */
export function preprocessingFromHf(config: Record<string, unknown>): Preprocessing {
  return resolveHfProcessor(config).preprocessing;
}
