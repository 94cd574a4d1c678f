import {NatixCommand} from '../lib/cli/base-command.js';
import {formatTable} from '../lib/cli/ui.js';
import {describeEnvironment, type EnvironmentReport} from '../lib/runtime/environment.js';

export default class Doctor extends NatixCommand<typeof Doctor> {
  static summary = 'Show what this machine offers natix: versions, cores, installed inference and training engines.';
  static examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json'];

  async run(): Promise<EnvironmentReport> {
    const report = describeEnvironment();
    const c = this.ui.color;
    this.log(`natix ${report.natix} on node ${report.node} (${report.platform}), ${report.cpus} cores, ${report.memoryGiB} GiB`);
    this.log(
      formatTable(
        ['package', 'version'],
        Object.entries(report.packages).map(([name, version]) => [name, version ? c.green(version) : c.dim('not installed')]),
      ),
    );
    return report;
  }
}
