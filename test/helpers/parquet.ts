/**
 * Parquet shards in the NATIX layout (image {bytes, path}, label INT64, optionally scene_description and
 * video_info {vid_id}), written by hyparquet-writer, for reader and validate-data tests.
 */
import {parquetWriteBuffer} from 'hyparquet-writer';

export interface NatixRow {
  image: Uint8Array;
  label: number;
  /** scene_description; the column is written when any row has one. */
  description?: string;
  /** video_info.vid_id; the column is written when any row has one. */
  videoId?: string;
}

/** A NATIX shard; `rowGroupSize` 1 puts each row in its own group (a garbled group spoils one row). */
export function natixShard(rows: NatixRow[], rowGroupSize: number): Uint8Array {
  const describe = rows.some((r) => r.description !== undefined);
  const videos = rows.some((r) => r.videoId !== undefined);
  const columnData = [
    {name: 'image', data: rows.map((r) => ({bytes: r.image, path: 'x.jpg'}))},
    {name: 'label', data: rows.map((r) => BigInt(r.label))},
    ...(describe ? [{name: 'scene_description', data: rows.map((r) => r.description ?? '')}] : []),
    ...(videos ? [{name: 'video_info', data: rows.map((r) => ({vid_id: r.videoId ?? ''}))}] : []),
  ];
  const schema = [
    {name: 'root', num_children: columnData.length},
    {name: 'image', repetition_type: 'OPTIONAL', num_children: 2},
    {name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL'},
    {name: 'path', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL'},
    {name: 'label', type: 'INT64', repetition_type: 'OPTIONAL'},
    ...(describe ? [{name: 'scene_description', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL'}] : []),
    ...(videos ? [{name: 'video_info', repetition_type: 'OPTIONAL', num_children: 1}, {name: 'vid_id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL'}] : []),
  ];
  return new Uint8Array(parquetWriteBuffer({columnData, schema: schema as never, rowGroupSize}));
}

/** A shard of images with labels only. */
export function imageLabelShard(images: Uint8Array[], labels: number[], rowGroupSize: number): Uint8Array {
  return natixShard(images.map((image, i) => ({image, label: labels[i]!})), rowGroupSize);
}
