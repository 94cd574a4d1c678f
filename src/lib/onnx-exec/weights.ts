/**
 * Fine-tuned values by ONNX name: what a checkpoint stores (the trainable initializers and the optimizer's slots,
 * named after the initializers rather than after TF.js's process-local variable names, so a resumed run maps them
 * back exactly), and the export: the user's graph with every trained initializer replaced by name - structure,
 * preprocessing and everything else untouched.
 */
import type {Optimizer, Tensor, Variable} from '@tensorflow/tfjs';
import {ExitCode, NatixError} from '../errors.js';
import type {OnnxModelSpec} from '../onnx/model.js';
import type {Tf} from '../runtime/tf-type.js';
import type {NamedArray} from '../train/checkpoint.js';
import {untieInitializers} from './graph.js';

/** The trainable initializers' current values, by ONNX name. */
export async function readTrainable(variables: ReadonlyMap<string, Variable>): Promise<NamedArray[]> {
  return Promise.all([...variables].map(async ([name, v]) => ({name, shape: [...v.shape], data: Float32Array.from((await v.data()) as Float32Array)})));
}

/** Sets the variables from stored values; every variable must be present with its shape. */
export function assignTrainable(tf: Tf, variables: ReadonlyMap<string, Variable>, arrays: NamedArray[]): void {
  const byName = new Map(arrays.map((a) => [a.name, a]));
  for (const [name, v] of variables) {
    const a = byName.get(name);
    if (!a || a.shape.join(',') !== v.shape.join(',')) {
      throw new NatixError(`The checkpoint has no value of shape [${v.shape.join(', ')}] for the initializer "${name}"`, {code: 'CHECKPOINT_MISMATCH', exitCode: ExitCode.Usage, actions: ['Resume with the same model and model.train setting as the run that wrote the checkpoint.']});
    }
    v.assign(tf.tensor(a.data, a.shape));
  }
}

const slotName = (name: string, variables: ReadonlyMap<string, Variable>, toOnnx: boolean): string => {
  for (const [onnx, v] of variables) {
    const [from, to] = toOnnx ? [v.name, `onnx:${onnx}`] : [`onnx:${onnx}`, v.name];
    if (name === from || name.startsWith(`${from}/`)) return to + name.slice(from.length);
  }
  return name;
};

/** The optimizer's state (Adam's step and moments...), its slots named by ONNX initializer. */
export async function readOptimizer(optimizer: Optimizer, variables: ReadonlyMap<string, Variable>): Promise<NamedArray[]> {
  const weights = await optimizer.getWeights();
  return Promise.all(weights.map(async ({name, tensor}) => ({name: slotName(name, variables, true), shape: [...tensor.shape], data: Float32Array.from((await tensor.data()) as Float32Array)})));
}

export async function assignOptimizer(tf: Tf, optimizer: Optimizer, variables: ReadonlyMap<string, Variable>, arrays: NamedArray[]): Promise<void> {
  await optimizer.setWeights(arrays.map((a) => ({name: slotName(a.name, variables, false), tensor: tf.tensor(a.data, a.shape) as Tensor})));
}

/** The model with the trained initializers replaced by name (torch's shared parameters untied where trained). */
export function withTrainedInitializers(spec: OnnxModelSpec, trained: NamedArray[]): OnnxModelSpec {
  const untied = untieInitializers(spec);
  const byName = new Map(trained.map((t) => [t.name, t]));
  const initializers = (untied.initializers ?? []).map((t) => {
    const v = byName.get(t.name);
    if (!v) return t;
    if (t.type !== 'float' || t.dims.join(',') !== v.shape.join(',')) throw new NatixError(`Trained value for ${t.name} does not fit the model's initializer`, {code: 'EXPORT_MISMATCH', exitCode: ExitCode.Usage});
    byName.delete(t.name);
    return {...t, data: Float32Array.from(v.data)};
  });
  if (byName.size) throw new NatixError(`The model has no initializers named ${[...byName.keys()].slice(0, 5).join(', ')}`, {code: 'EXPORT_MISMATCH', exitCode: ExitCode.Usage});
  return {...untied, initializers};
}
