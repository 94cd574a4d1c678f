/**
 * The base of every natix command: --json envelope, exit codes, one error type, --config files whose keys mirror
 * the flags (flags win), warnings collected for the envelope, a Ui for colour and progress.
 *
 * A command implements `run()` and returns its result object; it calls `this.failCheck()` when a check or gate
 * failed (exit 1) and throws NatixError for usage/config problems (exit 2).
 */
import path from 'node:path';
import {format} from 'node:util';
import {Command, Flags, Interfaces} from '@oclif/core';
import {errorMessage, ExitCode, isNatixError, NatixError} from '../errors.js';
import {loadConfigFile, validateAgainstSchema, type JsonSchema} from '../config/load.js';
import {suggest} from './suggest.js';
import {Ui} from './ui.js';
import {redactSecrets} from '../tracking/redact.js';

export type NatixFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof NatixCommand)['baseFlags'] & T['flags']>;
export type NatixArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

/** The `--json` success envelope. */
export interface JsonEnvelope<R> {
  status: number;
  result: R;
  warnings: string[];
}

type FlagDef = {type: 'boolean' | 'option'; multiple?: boolean; options?: readonly string[]; parse?: (input: string, ctx: unknown, opts: unknown) => Promise<unknown>};

function camelToKebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** A JSON Schema for a config file that mirrors `flags` (used when a command declares no schema of its own). */
export function schemaFromFlags(flags: Record<string, FlagDef>, exclude: string[]): JsonSchema {
  const properties: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(flags)) {
    if (exclude.includes(name)) continue;
    let item: Record<string, unknown>;
    if (def.type === 'boolean') item = {type: 'boolean'};
    else if (def.options) item = {enum: [...def.options]};
    else item = {type: ['string', 'number', 'boolean']};
    properties[name] = def.multiple ? {type: 'array', items: item} : item;
  }
  return {type: 'object', additionalProperties: false, properties};
}

export abstract class NatixCommand<T extends typeof Command> extends Command {
  static enableJsonFlag = true;

  static baseFlags = {
    config: Flags.string({
      description: "YAML or JSON file whose keys mirror this command's flags; flags on the command line win.",
      helpGroup: 'GLOBAL',
    }),
  };

  /**
   * The JSON Schema of this command's config file, when it has more structure than its flags (e.g. train).
   * Top-level keys that match a flag name fill that flag when it was not given on the command line.
   */
  static configSchema?: JsonSchema;

  protected flags!: NatixFlags<T>;
  protected args!: NatixArgs<T>;
  /** The validated config file (after flag-mirrored keys were applied), or {} without --config. */
  protected fileConfig: Record<string, unknown> = {};
  protected ui!: Ui;
  private readonly collectedWarnings: string[] = [];
  private checkStatus: ExitCode = ExitCode.Ok;

  public override async init(): Promise<void> {
    await super.init();
    const ctor = this.ctor as typeof NatixCommand;
    const {args, flags, metadata} = await this.parse({
      flags: ctor.flags,
      baseFlags: (super.ctor as typeof NatixCommand).baseFlags,
      enableJsonFlag: ctor.enableJsonFlag,
      args: ctor.args,
      strict: ctor.strict,
    });
    this.ui = new Ui({json: this.jsonEnabled()});
    const merged = {...flags} as Record<string, unknown>;
    if (typeof flags.config === 'string') {
      await this.applyConfigFile(flags.config, merged, (metadata.flags ?? {}) as Record<string, {setFromDefault?: boolean}>);
    }
    this.flags = merged as NatixFlags<T>;
    this.args = args as NatixArgs<T>;
  }

  private async applyConfigFile(file: string, flags: Record<string, unknown>, meta: Record<string, {setFromDefault?: boolean}>): Promise<void> {
    const ctor = this.ctor as typeof NatixCommand;
    const defs = (ctor.flags ?? {}) as unknown as Record<string, FlagDef>;
    const label = path.basename(file);
    const raw = await loadConfigFile<unknown>(file);
    const normalised: Record<string, unknown> = {};
    if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
      for (const [key, value] of Object.entries(raw)) {
        normalised[defs[key] ? key : camelToKebab(key) in defs ? camelToKebab(key) : key] = value;
      }
    }
    const schema = ctor.configSchema ?? schemaFromFlags(defs, ['json', 'config', 'help']);
    validateAgainstSchema(schema, raw === null || typeof raw !== 'object' || Array.isArray(raw) ? raw : normalised, label);
    this.fileConfig = normalised;
    for (const [key, value] of Object.entries(normalised)) {
      const def = defs[key];
      if (!def || key === 'config' || key === 'json') continue;
      const givenOnCommandLine = flags[key] !== undefined && !meta[key]?.setFromDefault;
      if (givenOnCommandLine) continue;
      flags[key] = await this.parseFlagValue(def, key, value, label);
    }
  }

  private async parseFlagValue(def: FlagDef, key: string, value: unknown, label: string): Promise<unknown> {
    if (def.type === 'boolean') return value;
    const one = async (v: unknown): Promise<unknown> => {
      try {
        return def.parse ? await def.parse(String(v), this, def) : v;
      } catch (error) {
        throw new NatixError(`${label}: /${key} ${errorMessage(error)}`, {code: 'CONFIG_INVALID', exitCode: ExitCode.Usage});
      }
    };
    return def.multiple && Array.isArray(value) ? Promise.all(value.map(one)) : one(value);
  }

  /** Records that a check or gate failed: the command still returns its result, and exits 1. */
  protected failCheck(): void {
    this.checkStatus = ExitCode.CheckFailed;
  }

  /** A warning: printed to stderr in human mode, carried in the envelope under --json. */
  public override warn(input: string | Error): string | Error {
    const message = redactSecrets(typeof input === 'string' ? input : input.message, process.env);
    this.collectedWarnings.push(message);
    if (this.jsonEnabled()) return input;
    const line = `${this.ui?.color.yellow('Warning:') ?? 'Warning:'} ${message}`;
    if (this.ui) this.ui.print('stderr', line);
    else process.stderr.write(`${line}\n`);
    return input;
  }

  /** Notes for the human reader (stderr, so stdout stays clean for data); silent under --json. */
  protected info(message: string): void {
    if (this.jsonEnabled()) return;
    if (this.ui) this.ui.print('stderr', message);
    else process.stderr.write(`${message}\n`);
  }

  /** Results for the human reader (stdout), written above a live progress line when one is shown. */
  public override log(message = '', ...args: unknown[]): void {
    if (this.jsonEnabled()) return;
    if (this.ui) this.ui.print('stdout', format(message, ...args));
    else super.log(message, ...args);
  }

  protected override toSuccessJson(result: unknown): JsonEnvelope<unknown> {
    return {status: this.checkStatus, result, warnings: this.collectedWarnings};
  }

  protected override toErrorJson(err: unknown): Record<string, unknown> {
    // The whole envelope (message, actions, data) is redacted: error data carries paths and values too.
    const json = JSON.stringify({...normaliseError(err).toJSON(), warnings: this.collectedWarnings});
    return JSON.parse(redactSecrets(json, process.env)) as Record<string, unknown>;
  }

  /** The whole envelope is redacted (result, error data and warnings alike), not only the message. */
  public override logJson(json: unknown): void {
    process.stdout.write(`${redactSecrets(JSON.stringify(json, null, 2), process.env)}\n`);
  }

  public override async catch(err: Error & {exitCode?: number}): Promise<void> {
    const ctor = this.ctor as typeof NatixCommand;
    const flagNames = [...Object.keys(ctor.flags ?? {}), ...Object.keys(NatixCommand.baseFlags), 'json', 'help'];
    const error = normaliseError(err, {command: this.id?.replace(/:/g, ' '), flags: flagNames});
    error.message = redactSecrets(error.message, process.env); // no secret leaves through an error message
    process.exitCode = error.exitCode;
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(error));
      return;
    }
    const color = this.ui?.color;
    const lines = [`${color ? color.red('Error:') : 'Error:'} ${error.message}`];
    for (const action of error.actions) lines.push(`  ${color ? color.dim('→') : '->'} ${action}`);
    if (error.code === 'INTERNAL_ERROR' && process.env.DEBUG) lines.push(String(err.stack));
    process.stderr.write(`${redactSecrets(lines.join('\n'), process.env)}\n`);
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    if (!err) process.exitCode = this.checkStatus;
    await super.finally(err);
  }
}

/**
 * Maps anything thrown to a NatixError: oclif parse errors are usage errors (2) - with "did you mean" for a
 * mistyped flag when the command's flags are known, and the help advice once - unknown errors internal (1).
 */
export function normaliseError(err: unknown, context: {command?: string; flags?: string[]} = {}): NatixError {
  if (isNatixError(err)) return err;
  const e = err as Error & {oclif?: {exit?: number}; name?: string; code?: string};
  const isParseError = e?.name?.includes('Parse') || e?.constructor?.name?.includes('Parse') || e?.oclif?.exit === 2;
  if (isParseError || e?.constructor?.name === 'CLIError') {
    // oclif appends its own "See more help with --help"; natix gives that advice once, as an action.
    let message = errorMessage(err).replace(/\n?See more help with --help\s*$/, '');
    const actions: string[] = [];
    const unknown = /Nonexistent flags?: (-{1,2}[\w-]+)/.exec(message)?.[1];
    if (unknown && context.flags) {
      const close = suggest(unknown.replace(/^-+/, ''), context.flags).map((f) => `--${f}`);
      if (close.length > 0) message += `. Did you mean ${close.join(' or ')}?`;
    }
    actions.push(`Run ${context.command ? `natix ${context.command} --help` : 'the command with --help'} to see its flags.`);
    return new NatixError(message, {code: 'USAGE', exitCode: ExitCode.Usage, actions});
  }
  return new NatixError(errorMessage(err), {
    code: 'INTERNAL_ERROR',
    exitCode: ExitCode.CheckFailed,
    actions: ['This is a bug in natix; run again with DEBUG=1 for a stack trace and report it.'],
    cause: err,
  });
}
