/** Parquet shards in the NATIX layout (image {bytes, path}, label INT64), written by hyparquet-writer, for reader tests. */
import {parquetWriteBuffer} from 'hyparquet-writer';

/** A shard of images with labels; `rowGroupSize` 1 puts each row in its own group (a garbled group spoils one row). */
export function imageLabelShard(images: Uint8Array[], labels: number[], rowGroupSize: number): Uint8Array {
  return new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        {name: 'image', data: images.map((bytes) => ({bytes, path: 'x.jpg'}))},
        {name: 'label', data: labels.map((l) => BigInt(l))},
      ],
      schema: [
        {name: 'root', num_children: 2},
        {name: 'image', repetition_type: 'OPTIONAL', num_children: 2},
        {name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL'},
        {name: 'path', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL'},
        {name: 'label', type: 'INT64', repetition_type: 'OPTIONAL'},
      ] as never,
      rowGroupSize,
    }),
  );
}
