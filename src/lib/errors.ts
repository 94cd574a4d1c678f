/**
 * The one error type natix raises for anything a user can act on.
 *
 * Every NatixError carries a stable `code` (for scripts), the process `exitCode` it maps to, and `actions`:
 * short suggestions printed under the message. Commands never print stack traces for these.
 */

/** Process exit codes shared by every command. */
export const ExitCode = {
  /** Success. */
  Ok: 0,
  /** A check, finding or gate failed (the command itself worked). */
  CheckFailed: 1,
  /** Bad usage or configuration: flags, config file, missing input. */
  Usage: 2,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface NatixErrorOptions {
  code: string;
  exitCode?: ExitCode;
  actions?: string[];
  cause?: unknown;
  /** Extra machine-readable context, included in `--json` errors. */
  data?: Record<string, unknown>;
}

export class NatixError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  readonly actions: string[];
  readonly data?: Record<string, unknown>;

  constructor(message: string, options: NatixErrorOptions) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause});
    this.name = 'NatixError';
    this.code = options.code;
    this.exitCode = options.exitCode ?? ExitCode.Usage;
    this.actions = options.actions ?? [];
    this.data = options.data;
  }

  toJSON(): Record<string, unknown> {
    return {
      status: this.exitCode,
      name: this.name,
      message: this.message,
      code: this.code,
      exitCode: this.exitCode,
      actions: this.actions,
      ...(this.data ? {data: this.data} : {}),
    };
  }
}

export function isNatixError(error: unknown): error is NatixError {
  return error instanceof NatixError;
}

/** Message of any thrown value, for error records and logs. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
