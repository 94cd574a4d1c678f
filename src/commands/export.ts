import path from 'node:path';
import {Args, Flags} from '@oclif/core';
import {NatixCommand} from '../lib/cli/base-command.js';
import {exportCheckpoint, type ExportResult} from '../lib/export/export-checkpoint.js';
import {ExitCode, NatixError} from '../lib/errors.js';
import {loadTfjs} from '../lib/runtime/tfjs.js';

export default class Export extends NatixCommand<typeof Export> {
  static summary = 'Export a training checkpoint as an ONNX model directory (Hugging Face layout) with model_card.json.';
  static description = `CHECKPOINT is an epoch-NNNN folder or a run folder (its best checkpoint, else its last). Writes model.onnx (NCHW
pixel_values in [0, 1] -> logits), config.json (id2label/label2id), preprocessor_config.json (the training
preprocessing) and model_card.json (model_name, description, version, submitted_by, submission_time) for subnet
submission. A head-training run (model.from) exports the backbone's original graph with the head stitched onto its
feature tensor (pooling included, logits divided by the fitted temperature), its own preprocessor_config.json
unchanged, and outputs logits and probabilities. --verify (on by default) runs the export in onnxruntime on real
images of the run's validation split and fails (exit 1) when its LOGITS differ from the training path's by more
than 1e-4.`;

  static examples = ['<%= config.bin %> export checkpoints/fast-64', '<%= config.bin %> export checkpoints/fast-64/epoch-0012 --out models/fast --hotkey 5F3sa2TJAWMqDhXG6jhV4N8ko9SxwGy8TpaNS1repo5EYjQX --version 1.2.0'];

  static args = {checkpoint: Args.string({description: 'Checkpoint or run folder.', required: true})};

  static flags = {
    out: Flags.string({char: 'o', description: 'Output model directory (default: <run>/export).'}),
    hotkey: Flags.string({description: 'Miner hotkey (ss58) for model_card.json submitted_by.'}),
    'model-name': Flags.string({description: 'model_card.json model_name (default: the run name).'}),
    version: Flags.string({description: 'model_card.json version (X.Y.Z).', default: '1.0.0'}),
    description: Flags.string({description: 'model_card.json description.'}),
    verify: Flags.boolean({description: "Compare the export's logits with the training path's on real validation images.", default: true, allowNo: true}),
    backend: Flags.option({description: 'TF.js backend used to rebuild the model.', options: ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const, default: 'auto'})(),
  };

  async run(): Promise<ExportResult> {
    const {flags, args} = this;
    const {tf} = await loadTfjs(flags.backend);
    const runDir = path.resolve(args.checkpoint);
    const out = path.resolve(flags.out ?? path.join(/epoch-\d+/.test(path.basename(runDir)) ? path.dirname(runDir) : runDir, 'export'));
    const result = await exportCheckpoint(tf, runDir, {out, hotkey: flags.hotkey, modelName: flags['model-name'], version: flags.version, description: flags.description, verify: flags.verify, tolerance: 1e-4});
    this.log(`Exported ${path.basename(result.checkpoint)} -> ${result.out} (${result.files.join(', ')}), input ${result.inputSize}x${result.inputSize}, ${result.classes} classes`);
    if (result.verification) {
      const v = result.verification;
      this.log(`Verification: max |logits(training path) - logits(ONNX)| = ${v.maxAbsDiff.toExponential(2)} over ${v.inputs} ${v.images} images (tolerance ${v.tolerance}): ${v.passed ? 'PASS' : 'FAIL'}`);
      if (!v.passed) {
        this.failCheck();
        throw new NatixError(`Export verification failed: max abs difference ${v.maxAbsDiff} > ${v.tolerance}`, {code: 'EXPORT_MISMATCH', exitCode: ExitCode.CheckFailed});
      }
    }
    return result;
  }
}
