import {Flags} from '@oclif/core';
import {NatixCommand} from '../../lib/cli/base-command.js';
import {ExitCode, NatixError} from '../../lib/errors.js';
import {spoolDir, syncSpool, type SyncResult} from '../../lib/tracking/index.js';

export default class TrackingSync extends NatixCommand<typeof TrackingSync> {
  static summary = 'Replay MLflow calls spooled while the tracking server was unreachable.';
  static description = `When an MLflow server is down or slow, natix keeps training and writes the run's remaining calls to
.natix/mlflow-spool/ (JSON lines, one file per run). This command replays them in order to the server (creating
the run first when it never reached it) and marks each replayed file done, so running it twice is safe.`;

  static examples = ['<%= config.bin %> tracking sync', '<%= config.bin %> tracking sync --tracking-uri https://mlflow.example.org'];

  static flags = {
    'tracking-uri': Flags.string({description: 'MLflow server (http/https); default MLFLOW_TRACKING_URI.'}),
  };

  async run(): Promise<SyncResult & {spool: string}> {
    const uri = this.flags['tracking-uri'] ?? process.env.MLFLOW_TRACKING_URI;
    if (!uri || !/^https?:\/\//.test(uri)) throw new NatixError('tracking sync needs an http(s) MLflow server: --tracking-uri or MLFLOW_TRACKING_URI', {code: 'USAGE', exitCode: ExitCode.Usage});
    const dir = spoolDir(process.cwd());
    const result = await syncSpool({uri, cwd: process.cwd(), env: process.env, warn: (m) => this.warn(m)});
    this.log(`${result.runs} spooled run(s), ${result.replayed} call(s) replayed to ${uri}${result.failed.length ? `, ${result.failed.length} failed` : ''}`);
    for (const f of result.failed) this.warn(`run ${f.runId}: ${f.error}`);
    if (result.failed.length) this.failCheck();
    return {...result, spool: dir};
  }
}
