import {NatixCommand} from '../lib/cli/base-command.js';
import {formatTable} from '../lib/cli/ui.js';
import {runDoctor, type DoctorReport} from '../lib/runtime/doctor.js';

export default class Doctor extends NatixCommand<typeof Doctor> {
  static summary = 'Check this machine: which engines natix would use and why, and whether the bundled model runs.';
  static description = `The first thing to run when something is off. Reports the inference execution provider (CUDA or CPU, and
why), the training backend (tfjs-node-gpu, tfjs-node or wasm, and why), a visible NVIDIA GPU, whether the bundled
model and sample load and answer (one timed inference), the MLflow store runs would be written to, and the free
disk space for checkpoints; then the versions of natix's engines. Exit 1 when a check fails. Writes nothing.`;

  static examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json'];

  async run(): Promise<DoctorReport> {
    const report = await runDoctor({cwd: process.cwd(), env: process.env});
    const c = this.ui.color;
    const e = report.environment;
    this.log(`natix ${e.natix} on node ${e.node} (${e.platform}), ${e.cpus} cores, ${e.memoryGiB} GiB`);
    const mark = (s: string): string => (s === 'ok' ? c.green('ok') : s === 'warn' ? c.yellow('warn') : c.red('FAIL'));
    this.log(formatTable(['check', 'status', 'what natix would use / found', 'why'], report.checks.map((k) => [k.name, mark(k.status), k.summary, k.detail ?? ''])));
    this.log(formatTable(['package', 'version'], Object.entries(e.packages).map(([name, version]) => [name, version ? c.green(version) : c.dim('not installed')])));
    if (report.checks.some((k) => k.status === 'fail')) this.failCheck();
    return report;
  }
}
