/**
 * oclif's `command_not_found` hook: a mistyped command gets "Did you mean ...?" and exit 2 (usage), as a
 * NatixError would - in the --json envelope when --json was given.
 */
import type {Hook} from '@oclif/core';
import {suggest} from '../lib/cli/suggest.js';
import {ExitCode, NatixError} from '../lib/errors.js';

const hook: Hook<'command_not_found'> = async function (options) {
  const typed = options.id.replace(/:/g, ' ');
  const known = options.config.commands.filter((c) => !c.hidden).map((c) => c.id.replace(/:/g, ' '));
  const close = suggest(typed, known);
  const error = new NatixError(`"${typed}" is not a natix command${close.length ? `. Did you mean ${close.map((c) => `"${c}"`).join(' or ')}?` : ''}`, {
    code: 'COMMAND_NOT_FOUND',
    exitCode: ExitCode.Usage,
    actions: ['Run natix --help to see the commands.'],
  });
  if (options.argv?.includes('--json')) process.stdout.write(`${JSON.stringify({...error.toJSON(), warnings: []}, null, 2)}\n`);
  else process.stderr.write(`Error: ${error.message}\n  -> ${error.actions.join('\n  -> ')}\n`);
  process.exit(ExitCode.Usage);
};

export default hook;
