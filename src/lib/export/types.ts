/** What `natix export` takes and returns, shared by the zoo export and the stitched-head export. */

export interface ExportOptions {
  out: string;
  hotkey?: string;
  modelName?: string;
  version: string;
  description?: string;
  verify: boolean;
  /** Tolerance of the verification (max abs difference of logits). */
  tolerance: number;
}

export interface ExportResult {
  out: string;
  checkpoint: string;
  files: string[];
  inputSize: number;
  classes: number;
  /** Logits of the export (onnxruntime) vs the training path on real images of the run's dataset. */
  verification?: {inputs: number; maxAbsDiff: number; tolerance: number; passed: boolean; compared: 'logits'; images: 'validation' | 'training'};
}
