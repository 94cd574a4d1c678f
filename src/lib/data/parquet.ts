/**
 * Hugging Face parquet shards in the NATIX layout (one file or a folder of `*.parquet`): one row per image, the
 * image in the first column whose name contains "image" (a struct with `bytes`, or raw bytes), `label`, an optional
 * `split` (else taken from the shard name, `train-00000-of-00026.parquet`), every other column kept as metadata
 * (struct columns flattened to dotted keys too: `scene_level_tags.weather`, `video_info.vid_id`).
 * Rows are read one row group at a time from a file-backed buffer: a shard's images are never all in memory.
 */
import {stat} from 'node:fs/promises';
import path from 'node:path';
import {asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema} from 'hyparquet';
import {compressors} from 'hyparquet-compressors';
import {assertRegularFile, UserFileError} from '../util/user-files.js';
import {namesByLabel, parseLabelValue} from './labels.js';
import {walkFiles} from './listing.js';
import {relativePosix} from './safe-path.js';
import type {DataIssue, Dataset, ReaderOptions, Sample} from './sample.js';
import {splitForFolder} from './folder.js';

/** JSON-friendly values: bigint -> number, byte arrays -> length note (metadata never carries image bytes). */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object' && !(value instanceof Date)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

function flatten(prefix: string, value: unknown, out: Record<string, unknown>): void {
  if (value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array) && !(value instanceof Date)) {
    for (const [k, v] of Object.entries(value)) flatten(prefix ? `${prefix}.${k}` : k, v, out);
  } else {
    out[prefix] = plain(value);
  }
}

function decodeText(value: unknown): unknown {
  return value instanceof Uint8Array ? new TextDecoder().decode(value) : value;
}

/** The image bytes of a row, from a struct {bytes} or raw bytes. */
function imageBytes(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (value && typeof value === 'object' && (value as {bytes?: unknown}).bytes instanceof Uint8Array) return (value as {bytes: Uint8Array}).bytes;
  return undefined;
}

const PARQUET_NAME = /\.parquet$/i;

/**
 * The parquet files of `input` (a file, or a folder searched 4 levels deep: the NATIX `data/` layout and the
 * Hugging Face export layouts `<config>/<split>/0000.parquet` and `<split>/0000.parquet`).
 */
export async function parquetFiles(input: string, issue: (i: DataIssue) => void = () => {}): Promise<{root: string; files: string[]}> {
  if ((await stat(input)).isFile()) return {root: path.dirname(input), files: [input]};
  return {root: input, files: walkFiles(input, input, issue, PARQUET_NAME, 3).map((f) => path.join(input, f))};
}

/**
 * The split of a shard: its name's first token (`train-00000-of-00026.parquet`), else the nearest enclosing
 * folder named like a split (`default/train/0000.parquet`), by the shared aliases (dev -> val, eval -> test).
 */
export function splitOfShard(rel: string): string | undefined {
  const parts = rel.split('/');
  const fromName = splitForFolder(parts.at(-1)!.split(/[-_.]/)[0] ?? '');
  if (fromName) return fromName;
  for (let i = parts.length - 2; i >= 0; i--) {
    const split = splitForFolder(parts[i]!);
    if (split) return split;
  }
  return undefined;
}

export async function readParquetDataset(input: string, options: ReaderOptions = {}): Promise<Dataset> {
  const {root, files} = await parquetFiles(input, (i) => options.onIssue?.(i));
  const seen = new Map<number, string>();
  return {
    format: 'parquet',
    root,
    get classNames() {
      return namesByLabel(seen);
    },
    async *samples(): AsyncIterable<Sample> {
      for (const file of files) {
        const rel = relativePosix(root, file);
        const shardSplit = splitOfShard(rel);
        let buffer;
        let metadata;
        try {
          await assertRegularFile(file);
          buffer = await asyncBufferFromFile(file);
          metadata = await parquetMetadataAsync(buffer);
        } catch (error) {
          const what = error instanceof UserFileError ? error.what : `is not a readable parquet file (${(error as Error).message})`;
          options.onIssue?.({check: 'unreadable', path: rel, message: `${rel} ${what}`});
          continue;
        }
        const columns = parquetSchema(metadata).children.map((c) => c.element.name);
        const imageColumn = columns.find((c) => c.toLowerCase().includes('image'));
        if (!imageColumn) {
          options.onIssue?.({check: 'label-malformed', path: rel, message: `${rel}: no column whose name contains "image" (columns: ${columns.join(', ')})`});
          continue;
        }
        let rowStart = 0;
        for (const [groupIndex, group] of metadata.row_groups.entries()) {
          const rowEnd = rowStart + Number(group.num_rows);
          if (options.splits && shardSplit && !options.splits.includes(shardSplit) && !columns.includes('split')) {
            rowStart = rowEnd;
            continue;
          }
          let rows: Array<Record<string, unknown>>;
          try {
            rows = (await parquetReadObjects({file: buffer, metadata, rowStart, rowEnd, compressors, utf8: false})) as Array<Record<string, unknown>>;
          } catch (error) {
            // A garbled page spoils its row group only: say which rows were lost and read the rest of the shard.
            options.onIssue?.({check: 'unreadable', path: rel, value: {rowGroup: groupIndex, rows: [rowStart, rowEnd - 1]}, message: `${rel}: row group ${groupIndex} (rows ${rowStart}-${rowEnd - 1}) cannot be read (${(error as Error).message}); ${rowEnd - rowStart} row(s) skipped`});
            rowStart = rowEnd;
            continue;
          }
          for (let i = 0; i < rows.length; i++) {
            const row = rows[i]!;
            const index = rowStart + i;
            const id = `${rel}#${index}`;
            const rawSplit = decodeText(row.split);
            const split = typeof rawSplit === 'string' && rawSplit !== '' ? (splitForFolder(rawSplit) ?? rawSplit) : shardSplit;
            if (options.splits && (!split || !options.splits.includes(split))) continue;
            const labelValue = decodeText(row.label);
            const label = parseLabelValue(labelValue, options.classMap);
            if (label === undefined) {
              options.onIssue?.({check: labelValue === undefined || labelValue === null || labelValue === '' ? 'label-missing' : 'label-class-unknown', path: id, value: plain(labelValue), message: `${id}: label ${labelValue === undefined || labelValue === null ? 'missing' : `"${String(labelValue)}" unknown`}`});
            } else if (!seen.has(label)) seen.set(label, label === 1 ? 'Roadwork' : label === 0 ? 'None' : `class_${label}`);
            const meta: Record<string, unknown> = {};
            for (const [k, v] of Object.entries(row)) {
              if (k === imageColumn || k === 'label' || k === 'split') continue;
              flatten(k, v instanceof Uint8Array ? decodeText(v) : v, meta);
            }
            const imageValue = row[imageColumn];
            if (imageValue && typeof imageValue === 'object' && 'path' in imageValue) meta[`${imageColumn}.path`] = decodeText((imageValue as {path?: unknown}).path);
            const bytes = imageBytes(imageValue);
            if (!bytes) {
              options.onIssue?.({check: 'unreadable', path: id, message: `${id}: no image bytes in column "${imageColumn}"`});
              continue;
            }
            yield {id: typeof meta.id === 'string' ? meta.id : id, path: id, bytes, label: label ?? null, split, metadata: meta};
          }
          rowStart = rowEnd;
        }
      }
    },
  };
}
