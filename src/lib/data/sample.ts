/**
 * The one sample type every dataset reader yields, and the reader interface.
 *
 * Data flow: reader -> Sample -> decoded image (src/lib/image) -> prediction/finding -> report.
 */

/** A bounding box in pixels of the original image, top-left origin. */
export interface Box {
  classId: number;
  className?: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Sample {
  /** Stable id: the path relative to the root (posix), `<file>#<row>` for parquet rows, or the dataset's own id. */
  id: string;
  /** Path relative to the dataset root, posix separators (or `<file>#<row>` for rows inside a file). */
  path: string;
  /** Absolute path of the image file, already checked to stay inside the root. Absent when `bytes` is set. */
  absPath?: string;
  /** Encoded image bytes, when the image lives inside another file (parquet). */
  bytes?: Uint8Array;
  /** Integer class label (0 = None, 1 = Roadwork by default), or null when unlabelled. */
  label: number | null;
  /** The class name the label came from, when there was one. */
  labelName?: string;
  /** `train`, `val`, `test`, or another split name; undefined when the dataset has no splits. */
  split?: string;
  /** Every other column/field the source carried (manifest columns, parquet metadata, COCO image fields). */
  metadata: Record<string, unknown>;
  /** Object boxes, for detection datasets (YOLO, COCO). */
  boxes?: Box[];
}

/** Check ids a reader can raise while reading (the same ids validate-data reports). */
export type DataIssueCheck =
  | 'path-escape'
  | 'label-missing'
  | 'label-malformed'
  | 'label-class-unknown'
  | 'box-out-of-bounds'
  | 'box-degenerate'
  | 'duplicate-box'
  | 'unreadable';

/** A problem found while reading a dataset; readers report it and go on. */
export interface DataIssue {
  check: DataIssueCheck;
  /** Path relative to the root of the file the problem is in (the label file, the manifest...). */
  path: string;
  message: string;
  /** Line or row number, 1-based, when it applies. */
  line?: number;
  value?: unknown;
}

export type DatasetFormat = 'folder' | 'manifest' | 'parquet' | 'yolo' | 'coco';

export interface Dataset {
  format: DatasetFormat;
  /** Absolute, real path of the dataset root. */
  root: string;
  /** Class names by label index, when known (index = label). */
  classNames: string[];
  /** Yields every sample once, in a stable order. Issues found on the way go to the reader's `onIssue`. */
  samples(): AsyncIterable<Sample>;
}

export interface ReaderOptions {
  /** Called for every problem found while reading; defaults to collecting nothing. */
  onIssue?: (issue: DataIssue) => void;
  /** Overrides of the class-name -> label rule (see labels.ts). */
  classMap?: Record<string, number>;
  /** Only yield these splits. */
  splits?: string[];
}
