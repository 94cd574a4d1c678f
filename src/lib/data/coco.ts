/**
 * COCO JSON datasets: `images` (id, file_name, width, height), `annotations` (image_id, category_id,
 * bbox = [x, y, w, h] in pixels), `categories`. File names are resolved inside the dataset root (the folder that
 * holds the JSON, or its parent when the JSON sits in `annotations/`); one that escapes it is reported, never opened.
 * An image's label is its own `label` field when present, else 1 when it has annotations.
 */
import {readFile} from 'node:fs/promises';
import {existsSync} from 'node:fs';
import path from 'node:path';
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

export async function readCocoDataset(jsonFile: string, options: ReaderOptions = {}): Promise<Dataset> {
  const jsonDir = path.dirname(jsonFile);
  const root = path.basename(jsonDir) === 'annotations' ? path.dirname(jsonDir) : jsonDir;
  const rel = relativePosix(root, jsonFile);
  const issue = (i: DataIssue): void => options.onIssue?.(i);
  const split = /(train|val|valid|validation|test)/i.exec(path.basename(jsonFile))?.[1]?.toLowerCase().replace(/^valid(ation)?$/, 'val');
  return {
    format: 'coco',
    root,
    classNames: ['None', 'Roadwork'],
    async *samples(): AsyncIterable<Sample> {
      let doc: {images?: unknown; annotations?: unknown; categories?: unknown};
      try {
        doc = JSON.parse(await readFile(jsonFile, 'utf8')) as typeof doc;
      } catch (error) {
        issue({check: 'label-malformed', path: rel, message: `${rel}: not valid JSON (${(error as Error).message})`});
        return;
      }
      if (!Array.isArray(doc.images)) {
        issue({check: 'label-malformed', path: rel, message: `${rel}: "images" must be an array`});
        return;
      }
      const categories = new Map<number, string>();
      if (!Array.isArray(doc.categories)) issue({check: 'label-malformed', path: rel, message: `${rel}: "categories" must be an array`});
      for (const c of (Array.isArray(doc.categories) ? doc.categories : []) as Array<{id?: unknown; name?: unknown}>) {
        if (typeof c.id === 'number') categories.set(c.id, String(c.name ?? c.id));
      }
      const images = new Map<unknown, CocoImage>();
      for (const image of doc.images as CocoImage[]) images.set(image.id, image);
      const boxes = new Map<unknown, Box[]>();
      const seenBoxes = new Set<string>();
      for (const a of (Array.isArray(doc.annotations) ? doc.annotations : []) as CocoAnnotation[]) {
        const where = `${rel}: annotation ${String(a.id ?? '?')}`;
        const image = images.get(a.image_id);
        if (!image) {
          issue({check: 'label-malformed', path: rel, value: a.image_id, message: `${where} refers to image ${String(a.image_id)}, which does not exist`});
          continue;
        }
        if (typeof a.category_id !== 'number' || !categories.has(a.category_id)) {
          issue({check: 'label-class-unknown', path: rel, value: a.category_id, message: `${where}: category ${String(a.category_id)} is not declared`});
          continue;
        }
        if (!Array.isArray(a.bbox) || a.bbox.length !== 4 || a.bbox.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
          issue({check: 'label-malformed', path: rel, value: a.bbox, message: `${where}: bbox must be [x, y, w, h] numbers`});
          continue;
        }
        const [x, y, w, h] = a.bbox as [number, number, number, number];
        if (w <= 0 || h <= 0) {
          issue({check: 'box-degenerate', path: rel, value: a.bbox, message: `${where}: bbox width/height must be > 0`});
          continue;
        }
        const iw = Number(image.width);
        const ih = Number(image.height);
        if (x < 0 || y < 0 || (Number.isFinite(iw) && x + w > iw + 1e-6) || (Number.isFinite(ih) && y + h > ih + 1e-6)) {
          issue({check: 'box-out-of-bounds', path: rel, value: a.bbox, message: `${where}: bbox [${a.bbox.join(', ')}] leaves the ${iw}x${ih} image`});
        }
        const key = `${String(a.image_id)}|${a.category_id}|${a.bbox.join(',')}`;
        if (seenBoxes.has(key)) {
          issue({check: 'duplicate-box', path: rel, value: a.bbox, message: `${where}: duplicate box`});
          continue;
        }
        seenBoxes.add(key);
        const list = boxes.get(a.image_id) ?? [];
        list.push({classId: a.category_id, className: categories.get(a.category_id), x, y, width: w, height: h});
        boxes.set(a.image_id, list);
      }
      for (const image of doc.images as CocoImage[]) {
        if (typeof image.file_name !== 'string' || image.file_name === '') {
          issue({check: 'label-malformed', path: rel, value: image.id, message: `${rel}: image ${String(image.id)} has no file_name`});
          continue;
        }
        let absPath: string;
        try {
          const direct = resolveInsideRoot(root, image.file_name);
          const inImages = resolveInsideRoot(root, path.posix.join('images', image.file_name));
          absPath = existsSync(direct) || !existsSync(inImages) ? direct : inImages;
        } catch (error) {
          if (error instanceof PathEscapeError) {
            issue({check: 'path-escape', path: rel, value: image.file_name, message: `${rel}: image ${String(image.id)}: ${error.message}`});
            continue;
          }
          throw error;
        }
        const own = parseLabelValue(image.label, options.classMap);
        const imageBoxes = boxes.get(image.id) ?? [];
        const metadata: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(image)) if (!['id', 'file_name', 'label'].includes(k)) metadata[k] = v;
        if (options.splits && (!split || !options.splits.includes(split))) continue;
        const p = relativePosix(root, absPath);
        yield {id: p, path: p, absPath, label: own ?? (imageBoxes.length > 0 ? 1 : 0), split, metadata, boxes: imageBoxes};
      }
    },
  };
}
