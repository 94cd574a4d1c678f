/**
 * What `natix train` trains on a backbone (`model.train`, `model.train-from`, `backbone-lr`), parsed in one place so
 * the config check, `--inspect` and the trainer agree. `head` trains only the head on frozen features; `last:N`,
 * `all` and `train-from` also train the end of the ONNX graph (see docs/fine-tune.md). Block names and the value a
 * scope starts from come from the executor's graph module (src/lib/onnx-exec/graph.ts).
 */
import type {TrainConfig} from '../config/schemas/train.js';
import {ExitCode, NatixError} from '../errors.js';
import {findBlocks, trainFrom, type Block, type GraphIndex} from '../onnx-exec/graph.js';

export type TrainScope = {kind: 'head'} | {kind: 'last'; blocks: number} | {kind: 'all'} | {kind: 'from'; value: string};

export interface ResolvedTrainScope {
  scope: TrainScope;
  /** Learning rate of the trained backbone part (default lr / 10); undefined for `head`. */
  backboneLr?: number;
}

/** `model.train` / `model.train-from` / `backbone-lr` of a config, checked against each other (exit 2 on a conflict). */
export function resolveTrainScope(c: Pick<TrainConfig, 'model' | 'backbone-lr'>, lr: number): ResolvedTrainScope {
  const train = c.model?.train;
  const from = c.model?.['train-from'];
  let scope: TrainScope;
  if (from !== undefined) {
    if (train !== undefined) {
      throw new NatixError(`model.train (${train}) and model.train-from (${from}) both say where training starts; give one`, {code: 'CONFIG_INVALID', exitCode: ExitCode.Usage, actions: ['Keep model.train-from for a named value, or model.train for head / last:N / all.']});
    }
    scope = {kind: 'from', value: from};
  } else if (train === undefined || train === 'head') scope = {kind: 'head'};
  else if (train === 'all') scope = {kind: 'all'};
  else scope = {kind: 'last', blocks: Number(train.slice('last:'.length))};
  if ((scope.kind !== 'head' || c['backbone-lr'] !== undefined) && !c.model?.from) {
    throw new NatixError('model.train, model.train-from and backbone-lr apply to a backbone: set model.from', {code: 'CONFIG_INVALID', exitCode: ExitCode.Usage, actions: ['Set model.from to an .onnx file or a Hugging Face-style folder.']});
  }
  if (scope.kind === 'head') {
    if (c['backbone-lr'] !== undefined) throw new NatixError('backbone-lr applies only when part of the backbone trains (model.train: last:N or all, or model.train-from)', {code: 'CONFIG_INVALID', exitCode: ExitCode.Usage, actions: ['Remove backbone-lr, or set model.train.']});
    return {scope};
  }
  return {scope, backboneLr: c['backbone-lr'] ?? lr / 10};
}

/** How a scope is written in the config (`head`, `last:2`, `all`, `from "<value>"`), for messages and the run log. */
export function scopeLabel(scope: TrainScope): string {
  if (scope.kind === 'last') return `last:${scope.blocks}`;
  if (scope.kind === 'from') return `from "${scope.value}"`;
  return scope.kind;
}

/** The value training starts from (the boundary of the frozen prefix); exit 2 when last:N exceeds the blocks. */
export function scopeStart(g: GraphIndex, scope: Exclude<TrainScope, {kind: 'head'}>): string {
  if (scope.kind === 'all') return trainFrom(g, {all: true});
  if (scope.kind === 'from') return trainFrom(g, {from: scope.value});
  return trainFrom(g, {last: scope.blocks});
}

/** `--inspect` lines: the blocks natix found, last first numbered as `last:N` picks them. */
export function describeBlocks(blocks: Block[]): string[] {
  if (!blocks.length) return ['Blocks:        none found (no single-tensor boundaries); use model.train-from <value> or model.train: all'];
  const nameWidth = Math.max(...blocks.map((b) => b.name.length));
  return [
    `Blocks:        ${blocks.length} (model.train: last:N trains the last N; model.train-from takes a "from" value)`,
    ...blocks.map((b, i) => `               last:${String(blocks.length - i).padEnd(3)} ${b.name.padEnd(nameWidth)}  from "${b.from}"  ${b.nodes} nodes, ${b.parameters} parameters`),
  ];
}

export {findBlocks};
