import {Flags} from '@oclif/core';
import {NatixCommand} from '../../lib/cli/base-command.js';
import {ExitCode, NatixError} from '../../lib/errors.js';
import {redactSecrets, resolveTrackingUri, spoolDir, syncSpool, type SyncResult} from '../../lib/tracking/index.js';

export default class TrackingSync extends NatixCommand<typeof TrackingSync> {
  static summary = 'Replay MLflow calls spooled while the tracking server was unreachable.';
  static description = `When an MLflow server is down or slow, natix keeps training and writes the run's remaining calls to
.natix/mlflow-spool/ (JSON lines, one file per run, each line with the server address). This command replays them
in order (creating the run first when it never reached the server) to the server each run recorded, or to
--tracking-uri when given, and marks each replayed file done, so running it twice is safe. A truncated last line
(left by a kill during a write) is skipped with a note; the rest of that run and every other run still replay.`;

  static examples = ['<%= config.bin %> tracking sync', '<%= config.bin %> tracking sync --tracking-uri https://mlflow.example.org'];

  static flags = {
    'tracking-uri': Flags.string({description: 'MLflow server (http/https) to replay to; default: the server each spooled run recorded.'}),
  };

  async run(): Promise<SyncResult & {spool: string}> {
    const uri = this.flags['tracking-uri'];
    if (uri !== undefined && resolveTrackingUri(uri, process.cwd(), process.env).kind !== 'rest') {
      throw new NatixError('tracking sync replays to an http(s) MLflow server: --tracking-uri http(s)://...', {code: 'USAGE', exitCode: ExitCode.Usage});
    }
    const dir = spoolDir(process.cwd());
    const result = await syncSpool({uri, cwd: process.cwd(), env: process.env, warn: (m) => this.warn(redactSecrets(m, process.env))});
    const where = result.servers.length ? ` to ${result.servers.join(', ')}` : '';
    this.log(`${result.runs} spooled run(s), ${result.replayed} call(s) replayed${where}${result.failed.length ? `, ${result.failed.length} run(s) failed` : ''}`);
    for (const note of result.skipped) this.warn(note);
    for (const f of result.failed) this.warn(`run ${f.runId}: ${f.error}`);
    if (result.failed.length) this.failCheck();
    return {...result, spool: dir};
  }
}
