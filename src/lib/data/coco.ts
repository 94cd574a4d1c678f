/**
 * COCO JSON datasets: `images` (id, file_name, width, height), `annotations` (image_id, category_id,
 * bbox = [x, y, w, h] in pixels), `categories`. File names are resolved inside the dataset root (the folder that
 * holds the JSON, or its parent when the JSON sits in `annotations/`); one that escapes it is reported, never opened.
 * An image's label is its own `label` field when present, else 1 when it has annotations.
 */
import {existsSync} from 'node:fs';
import path from 'node:path';
import {readUserFile, UserFileError} from '../util/user-files.js';
import {splitForFolder} from './folder.js';
import {parseLabelValue} from './labels.js';
import {PathEscapeError, relativePosix, resolveInsideRoot} from './safe-path.js';
import type {Box, DataIssue, Dataset, ReaderOptions, Sample} from './sample.js';

interface CocoImage {
  id?: unknown;
  file_name?: unknown;
  width?: unknown;
  height?: unknown;
  [key: string]: unknown;
}
interface CocoAnnotation {
  id?: unknown;
  image_id?: unknown;
  category_id?: unknown;
  bbox?: unknown;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function kind(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : value === undefined ? 'nothing' : typeof value;
}

/** The split a COCO file name carries (`instances_train.json`, `val2017.json`, `dev.json`), by the shared aliases. */
function splitFromName(name: string): string | undefined {
  for (const token of name.toLowerCase().replace(/\.json$/, '').split(/[^a-z]+/)) {
    const split = splitForFolder(token);
    if (split) return split;
  }
  return undefined;
}

export async function readCocoDataset(jsonFile: string, options: ReaderOptions = {}): Promise<Dataset> {
  const jsonDir = path.dirname(jsonFile);
  const root = path.basename(jsonDir) === 'annotations' ? path.dirname(jsonDir) : jsonDir;
  const rel = relativePosix(root, jsonFile);
  const issue = (i: DataIssue): void => options.onIssue?.(i);
  const split = splitFromName(path.basename(jsonFile));
  /** A file name resolved inside the root: as given, else under `images/` (both checked against the root). */
  const locate = (fileName: string): string => {
    const direct = resolveInsideRoot(root, fileName);
    const inImages = resolveInsideRoot(root, path.posix.join('images', fileName));
    return existsSync(direct) || !existsSync(inImages) ? direct : inImages;
  };
  return {
    format: 'coco',
    root,
    classNames: ['None', 'Roadwork'],
    async *samples(): AsyncIterable<Sample> {
      let doc: unknown;
      try {
        doc = JSON.parse(await readUserFile(jsonFile, 'utf8')) as unknown;
      } catch (error) {
        if (error instanceof UserFileError) issue({check: 'unreadable', path: rel, message: `${rel} ${error.what}`});
        else issue({check: 'label-malformed', path: rel, message: `${rel}: not valid JSON (${(error as Error).message})`});
        return;
      }
      if (!isObject(doc)) {
        issue({check: 'label-malformed', path: rel, message: `${rel}: the top level must be an object with "images", "annotations" and "categories", got ${kind(doc)}`});
        return;
      }
      if (!Array.isArray(doc.images)) {
        issue({check: 'label-malformed', path: rel, message: `${rel}: "images" must be an array, got ${kind(doc.images)}`});
        return;
      }
      const categories = new Map<number, string>();
      if (!Array.isArray(doc.categories)) issue({check: 'label-malformed', path: rel, message: `${rel}: "categories" must be an array, got ${kind(doc.categories)}`});
      for (const [i, c] of (Array.isArray(doc.categories) ? doc.categories : []).entries()) {
        if (!isObject(c)) {
          issue({check: 'label-malformed', path: rel, value: c, message: `${rel}: categories[${i}] must be an object, got ${kind(c)}`});
          continue;
        }
        if (typeof c.id === 'number') categories.set(c.id, String(c.name ?? c.id));
      }
      // Entries that are not objects (null, numbers...) are findings; the rest of the file is still read.
      const imageList: CocoImage[] = [];
      for (const [i, image] of (doc.images as unknown[]).entries()) {
        if (isObject(image)) imageList.push(image as CocoImage);
        else issue({check: 'label-malformed', path: rel, value: image, message: `${rel}: images[${i}] must be an object, got ${kind(image)}`});
      }
      const images = new Map<unknown, CocoImage>();
      for (const image of imageList) images.set(image.id, image);
      /** The path (relative to the root) a finding about `image` is filed under: the image itself when known. */
      const imagePath = (image: CocoImage | undefined): string => {
        if (!image || typeof image.file_name !== 'string' || image.file_name === '') return rel;
        try {
          return relativePosix(root, locate(image.file_name));
        } catch {
          return rel;
        }
      };
      if (!Array.isArray(doc.annotations)) {
        issue({check: 'label-malformed', path: rel, message: `${rel}: "annotations" must be an array, got ${kind(doc.annotations)}${doc.annotations === undefined ? ' (the key is missing: every image would be read as background)' : ''}`});
      }
      const boxes = new Map<unknown, Box[]>();
      const seenBoxes = new Set<string>();
      for (const [i, entry] of (Array.isArray(doc.annotations) ? doc.annotations : []).entries()) {
        if (!isObject(entry)) {
          issue({check: 'label-malformed', path: rel, value: entry, message: `${rel}: annotations[${i}] must be an object, got ${kind(entry)}`});
          continue;
        }
        const a = entry as CocoAnnotation;
        const image = images.get(a.image_id);
        const file = imagePath(image);
        const where = `${rel}: annotation ${String(a.id ?? `#${i}`)}${image && file !== rel ? ` (image ${file})` : ''}`;
        if (!image) {
          issue({check: 'label-malformed', path: rel, value: a.image_id, message: `${where} refers to image ${String(a.image_id)}, which does not exist`});
          continue;
        }
        if (typeof a.category_id !== 'number' || !categories.has(a.category_id)) {
          issue({check: 'label-class-unknown', path: file, value: a.category_id, message: `${where}: category ${String(a.category_id)} is not declared`});
          continue;
        }
        if (!Array.isArray(a.bbox) || a.bbox.length !== 4 || a.bbox.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
          issue({check: 'label-malformed', path: file, value: a.bbox, message: `${where}: bbox must be [x, y, w, h] numbers`});
          continue;
        }
        const [x, y, w, h] = a.bbox as [number, number, number, number];
        if (w <= 0 || h <= 0) {
          issue({check: 'box-degenerate', path: file, value: a.bbox, message: `${where}: bbox width/height must be > 0`});
          continue;
        }
        const iw = Number(image.width);
        const ih = Number(image.height);
        if (x < 0 || y < 0 || (Number.isFinite(iw) && x + w > iw + 1e-6) || (Number.isFinite(ih) && y + h > ih + 1e-6)) {
          issue({check: 'box-out-of-bounds', path: file, value: a.bbox, message: `${where}: bbox [${a.bbox.join(', ')}] leaves the ${iw}x${ih} image`});
        }
        const key = `${String(a.image_id)}|${a.category_id}|${a.bbox.join(',')}`;
        if (seenBoxes.has(key)) {
          issue({check: 'duplicate-box', path: file, value: a.bbox, message: `${where}: duplicate box`});
          continue;
        }
        seenBoxes.add(key);
        const list = boxes.get(a.image_id) ?? [];
        list.push({classId: a.category_id, className: categories.get(a.category_id), x, y, width: w, height: h});
        boxes.set(a.image_id, list);
      }
      for (const image of imageList) {
        if (typeof image.file_name !== 'string' || image.file_name === '') {
          issue({check: 'label-malformed', path: rel, value: image.id, message: `${rel}: image ${String(image.id)} has no file_name`});
          continue;
        }
        let absPath: string;
        try {
          absPath = locate(image.file_name);
        } catch (error) {
          if (error instanceof PathEscapeError) {
            issue({check: 'path-escape', path: rel, value: image.file_name, message: `${rel}: image ${String(image.id)}: ${error.message}`});
            continue;
          }
          throw error;
        }
        if (options.splits && (!split || !options.splits.includes(split))) continue;
        const p = relativePosix(root, absPath);
        const own = parseLabelValue(image.label, options.classMap);
        const badLabel = image.label !== undefined && image.label !== null && own === undefined;
        if (badLabel) issue({check: 'label-class-unknown', path: p, value: image.label, message: `${rel}: image ${String(image.id)} (${p}): label ${JSON.stringify(image.label)} is neither a non-negative integer nor a known class name`});
        const imageBoxes = boxes.get(image.id) ?? [];
        const metadata: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(image)) if (!['id', 'file_name', 'label'].includes(k)) metadata[k] = v;
        yield {id: p, path: p, absPath, label: badLabel ? null : (own ?? (imageBoxes.length > 0 ? 1 : 0)), split, metadata, boxes: imageBoxes};
      }
    },
  };
}
