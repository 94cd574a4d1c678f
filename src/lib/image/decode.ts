/**
 * Decoding images with sharp (libvips), once, at the smallest size the consumer needs: JPEG shrink-on-load makes
 * a 1920x1080 decode to <= 256 px several times cheaper than a full decode.
 * Pixel statistics must come from the returned raw buffer, never from sharp's stats() (it reports the
 * full-resolution input even after a resize in the same pipeline).
 */
import sharp from 'sharp';
import {errorMessage} from '../errors.js';
import {assertRegularFile, probeReadable, UserFileError} from '../util/user-files.js';

/** Default refusal limit: 100 megapixels (a decompression bomb is refused before it is decoded). */
export const DEFAULT_PIXEL_LIMIT = 100_000_000;

export interface SourceInfo {
  /** Container format as libvips sniffed it from the bytes (jpeg, png, webp, gif, tiff, ...). */
  format: string;
  width: number;
  height: number;
  /** Channels in the file (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA/CMYK). */
  channels: number;
  hasAlpha: boolean;
}

export interface DecodedImage {
  /** Interleaved RGB bytes, row-major, `width * height * 3` long. */
  data: Buffer;
  width: number;
  height: number;
  channels: 3;
  source: SourceInfo;
  /** True when the decode shrank the image (shrink-on-load / maxSide / minSide): not a full-resolution decode. */
  reduced: boolean;
}

export interface DecodeOptions {
  /** Longest side of the decoded result; the image is shrunk to fit (never enlarged). Omit for full size. */
  maxSide?: number;
  /** Shortest side of the decoded result: shrink while both sides stay >= this (never enlarged). For model inputs. */
  minSide?: number;
  /** Refuse inputs with more pixels than this (default DEFAULT_PIXEL_LIMIT). */
  pixelLimit?: number;
  /** Fail on any libvips warning, so truncated files are errors rather than grey-filled images (default true). */
  strict?: boolean;
}

/**
 * libvips keeps ONE error buffer for the whole process: when decodes run concurrently, a failing decode's message
 * can carry lines another decode wrote there (e.g. `b.avif: bad seek` in the error of `a.jpg`). So decodes run
 * under a shared slot, and a failed one is decoded again ALONE (exclusive slot: nothing else in libvips's
 * decoders runs, and sharp clears the buffer after every operation), whose error is then its own. Failures are
 * rare, so the retry costs nothing on good data. This lock mirrors libvips' process-wide state; it holds no data.
 */
let sharedHolders = 0;
let exclusiveActive: Promise<void> | undefined;
let exclusiveChain: Promise<void> = Promise.resolve();
let onDrained: (() => void) | undefined;

async function withSharedSlot<T>(fn: () => Promise<T>): Promise<T> {
  while (exclusiveActive) await exclusiveActive;
  sharedHolders++;
  try {
    return await fn();
  } finally {
    sharedHolders--;
    if (sharedHolders === 0) onDrained?.();
  }
}

async function withExclusiveSlot<T>(fn: () => Promise<T>): Promise<T> {
  const previous = exclusiveChain;
  let release!: () => void;
  exclusiveChain = new Promise<void>((resolve) => (release = resolve));
  await previous;
  let done!: () => void;
  exclusiveActive = new Promise<void>((resolve) => (done = resolve));
  try {
    if (sharedHolders > 0) await new Promise<void>((resolve) => (onDrained = resolve));
    onDrained = undefined;
    return await fn();
  } finally {
    exclusiveActive = undefined;
    done();
    release();
  }
}

/**
 * Decodes `input` (a file path or encoded bytes) to RGB at most `maxSide` px on its longer side.
 * A path must name a regular file (a FIFO would block forever): anything else throws UserFileError, which says
 * what the path is (a directory, a FIFO, permission denied, a symlink loop...). A decode error's message is the
 * failing decode's own (see withExclusiveSlot).
 */
export async function decodeImage(input: string | Uint8Array, options: DecodeOptions = {}): Promise<DecodedImage> {
  if (typeof input === 'string') {
    const info = await assertRegularFile(input);
    if (info.size === 0) throw new UserFileError(input, 'empty', 'is an empty file (0 bytes)');
  }
  try {
    return await withSharedSlot(() => decodeOnce(input, options));
  } catch (error) {
    // A file that cannot be opened (chmod 000) is a permission problem, not an "unsupported image format".
    const unreadable = typeof input === 'string' ? await probeReadable(input) : undefined;
    if (unreadable) throw unreadable;
    if (/pixel limit/i.test(errorMessage(error)) && !/\n/.test(errorMessage(error))) throw error;
    return withExclusiveSlot(() => decodeOnce(input, options));
  }
}

async function decodeOnce(input: string | Uint8Array, options: DecodeOptions): Promise<DecodedImage> {
  const image = sharp(typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength), {
    limitInputPixels: options.pixelLimit ?? DEFAULT_PIXEL_LIMIT,
    failOn: options.strict === false ? 'none' : 'warning',
    sequentialRead: true,
  });
  const meta = await image.metadata();
  let pipeline = image.rotate(); // honour EXIF orientation, as every training tool does
  if (options.minSide) {
    pipeline = pipeline.resize({width: options.minSide, height: options.minSide, fit: 'outside', withoutEnlargement: true, fastShrinkOnLoad: true});
  } else if (options.maxSide) {
    pipeline = pipeline.resize({width: options.maxSide, height: options.maxSide, fit: 'inside', withoutEnlargement: true, fastShrinkOnLoad: true});
  }
  const {data, info} = await pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({resolveWithObject: true});
  // EXIF orientations 5-8 swap the sides; the decode is full resolution when the oriented size is unchanged.
  const orientedWidth = (meta.orientation ?? 1) >= 5 ? meta.height : meta.width;
  return {
    data: info.channels === 3 ? data : toRgb(data, info.channels),
    width: info.width,
    height: info.height,
    channels: 3,
    source: {
      format: meta.format ?? 'unknown',
      width: meta.width ?? info.width,
      height: meta.height ?? info.height,
      channels: meta.channels ?? info.channels,
      hasAlpha: meta.hasAlpha ?? false,
    },
    reduced: orientedWidth !== undefined && info.width < orientedWidth,
  };
}

function toRgb(data: Buffer, channels: number): Buffer {
  const pixels = data.length / channels;
  const out = Buffer.allocUnsafe(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const v = data[i * channels] ?? 0;
    out[i * 3] = v;
    out[i * 3 + 1] = channels >= 3 ? (data[i * channels + 1] ?? 0) : v;
    out[i * 3 + 2] = channels >= 3 ? (data[i * channels + 2] ?? 0) : v;
  }
  return out;
}
