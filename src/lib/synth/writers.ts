/**
 * The index files of each synthetic dataset layout: manifest.csv, YOLO data.yaml + labels, COCO JSON, or NATIX-style
 * parquet shards (the images themselves are written by dataset.ts, except for parquet where they live in the shard).
 */
import {mkdir, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {parquetWriteBuffer} from 'hyparquet-writer';
import YAML from 'yaml';
import type {Box} from '../data/sample.js';
import {ROADWORK_CLASSES} from './scene.js';

/** The dataset layouts `natix datasets synth` writes. */
export type SynthFormat = 'folder' | 'manifest' | 'yolo' | 'coco' | 'parquet';

export interface SynthRecord {
  id: string;
  path: string;
  label: 0 | 1;
  split: string;
  width: number;
  height: number;
  boxes: Box[];
  /** Encoded bytes, kept only for layouts that embed images (parquet). */
  jpeg?: Buffer;
  quality: number;
  daytime: string;
  weather: string;
  environment: string;
  travelAlteration: string;
  description: string;
  videoId: string;
  frame: number;
  city: string;
  gps: [number, number];
}

function csvField(value: string | number): string {
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

async function write(file: string, data: string | Uint8Array): Promise<number> {
  await mkdir(path.dirname(file), {recursive: true});
  await writeFile(file, data);
  return typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
}

const MANIFEST_COLUMNS = ['path', 'label', 'split', 'id', 'scene_description', 'daytime', 'weather', 'scene_environment', 'vid_id', 'frame', 'city_name', 'gps_lat', 'gps_lon', 'jpeg_quality'];

function manifestRow(r: SynthRecord): Array<string | number> {
  return [r.path, r.label, r.split, r.id, r.description, r.daytime, r.weather, r.environment, r.videoId, r.frame, r.city, r.gps[0].toFixed(5), r.gps[1].toFixed(5), r.quality];
}

const r3 = (v: number): number => Math.round(v * 1e6) / 1e6;

function yoloLabel(r: SynthRecord): string {
  return r.boxes
    .map((b) => [b.classId, r3((b.x + b.width / 2) / r.width), r3((b.y + b.height / 2) / r.height), r3(b.width / r.width), r3(b.height / r.height)].join(' '))
    .join('\n');
}

function cocoFor(records: SynthRecord[]): unknown {
  let annotationId = 1;
  return {
    info: {description: 'natix datasets synth', version: '1.0'},
    images: records.map((r, i) => ({
      id: i + 1,
      file_name: r.path,
      width: r.width,
      height: r.height,
      label: r.label,
      scene_description: r.description,
      vid_id: r.videoId,
    })),
    annotations: records.flatMap((r, i) =>
      r.boxes.map((b) => ({
        id: annotationId++,
        image_id: i + 1,
        category_id: b.classId + 1,
        bbox: [b.x, b.y, b.width, b.height],
        area: Math.round(b.width * b.height * 100) / 100,
        iscrowd: 0,
      })),
    ),
    categories: ROADWORK_CLASSES.map((name, i) => ({id: i + 1, name, supercategory: 'roadwork'})),
  };
}

const SHARD_ROWS = 1000;
const str = (name: string): Record<string, unknown> => ({name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL'});

/** One NATIX-layout shard: `image` struct {bytes, path}, scalar metadata, and struct tag columns. */
function parquetShard(rows: SynthRecord[]): Uint8Array {
  const buffer = parquetWriteBuffer({
    columnData: [
      {name: 'image', data: rows.map((r) => ({bytes: new Uint8Array(r.jpeg!), path: r.path}))},
      {name: 'id', data: rows.map((r) => r.id)},
      {name: 'width', data: rows.map((r) => r.width)},
      {name: 'height', data: rows.map((r) => r.height)},
      {name: 'label', data: rows.map((r) => BigInt(r.label))},
      {name: 'scene_description', data: rows.map((r) => r.description)},
      {name: 'city_name', data: rows.map((r) => r.city)},
      {name: 'gps', data: rows.map((r) => `${r.gps[0].toFixed(5)},${r.gps[1].toFixed(5)}`)},
      {name: 'scene_level_tags', data: rows.map((r) => ({daytime: r.daytime, scene_environment: r.environment, travel_alteration: r.travelAlteration, weather: r.weather}))},
      {name: 'video_info', data: rows.map((r) => ({vid_id: r.videoId, frame: r.frame}))},
    ],
    schema: [
      {name: 'root', num_children: 10},
      {name: 'image', repetition_type: 'OPTIONAL', num_children: 2},
      {name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL'},
      str('path'),
      str('id'),
      {name: 'width', type: 'INT32', repetition_type: 'OPTIONAL'},
      {name: 'height', type: 'INT32', repetition_type: 'OPTIONAL'},
      {name: 'label', type: 'INT64', repetition_type: 'OPTIONAL'},
      str('scene_description'),
      str('city_name'),
      str('gps'),
      {name: 'scene_level_tags', repetition_type: 'OPTIONAL', num_children: 4},
      str('daytime'),
      str('scene_environment'),
      str('travel_alteration'),
      str('weather'),
      {name: 'video_info', repetition_type: 'OPTIONAL', num_children: 2},
      str('vid_id'),
      {name: 'frame', type: 'INT32', repetition_type: 'OPTIONAL'},
    ] as never,
    rowGroupSize: 100,
    createdBy: 'natix datasets synth',
  });
  return new Uint8Array(buffer);
}

/** Writes the layout's index files; returns the bytes written (images excluded unless embedded). */
export async function writeDatasetIndex(format: SynthFormat, out: string, records: SynthRecord[], _meta: {seed: number}): Promise<number> {
  const bySplit = new Map<string, SynthRecord[]>();
  for (const r of records) bySplit.set(r.split, [...(bySplit.get(r.split) ?? []), r]);
  let bytes = 0;
  switch (format) {
    case 'folder':
      return 0;
    case 'manifest': {
      const lines = [MANIFEST_COLUMNS.join(','), ...records.map((r) => manifestRow(r).map(csvField).join(','))];
      return write(path.join(out, 'manifest.csv'), `${lines.join('\n')}\n`);
    }
    case 'yolo': {
      for (const r of records) {
        if (r.boxes.length === 0) continue; // no file = background, as Ultralytics reads it
        bytes += await write(path.join(out, 'labels', r.split, `${r.id}.txt`), `${yoloLabel(r)}\n`);
      }
      const dataYaml = {
        path: '.',
        train: 'images/train',
        val: 'images/val',
        test: 'images/test',
        names: Object.fromEntries(ROADWORK_CLASSES.map((n, i) => [i, n])),
      };
      return bytes + (await write(path.join(out, 'data.yaml'), YAML.stringify(dataYaml)));
    }
    case 'coco': {
      for (const [split, rows] of bySplit) {
        bytes += await write(path.join(out, 'annotations', `instances_${split}.json`), JSON.stringify(cocoFor(rows)));
      }
      return bytes;
    }
    case 'parquet': {
      for (const [split, rows] of bySplit) {
        const shards = Math.max(1, Math.ceil(rows.length / SHARD_ROWS));
        for (let s = 0; s < shards; s++) {
          const name = `${split}-${String(s).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.parquet`;
          bytes += await write(path.join(out, 'data', name), parquetShard(rows.slice(s * SHARD_ROWS, (s + 1) * SHARD_ROWS)));
        }
      }
      return bytes;
    }
  }
}
