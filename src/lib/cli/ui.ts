/**
 * Human output: colour only on a TTY (NO_COLOR honoured, FORCE_COLOR forces), progress bars on stderr only when
 * stderr is a TTY and the command is not in --json mode. One Ui per command run: no global state.
 *
 * A live status line (`live()`) stays at the bottom of the terminal: everything printed through `print()` while it
 * is shown (log lines, warnings, epoch summaries) is written above it, never glued to it or overwritten.
 */
import {Chalk, type ChalkInstance} from 'chalk';
import cliProgress from 'cli-progress';

export interface UiOptions {
  json: boolean;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
  env?: NodeJS.ProcessEnv;
}

export function colorLevelFor(stream: {isTTY?: boolean}, env: NodeJS.ProcessEnv): 0 | 1 | 2 | 3 {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false') return 1;
  if (!stream.isTTY) return 0;
  if (env.TERM === 'dumb') return 0;
  return env.COLORTERM === 'truecolor' ? 3 : 2;
}

/** A progress handle; a no-op when progress is off. */
export interface Progress {
  increment(by?: number, payload?: Record<string, unknown>): void;
  setTotal(total: number): void;
  stop(): void;
}

const silentProgress: Progress = {increment() {}, setTotal() {}, stop() {}};

/** The status line at the bottom of a terminal; a no-op off a TTY. */
export interface LiveLine {
  /** Whether anything is drawn (false off a TTY and under --json). */
  readonly enabled: boolean;
  update(text: string): void;
  stop(): void;
}

const CLEAR_LINE = '\r\u001B[2K';

/** Cuts `text` to `columns` visible characters (colour codes kept), so the line never wraps. */
export function fitToWidth(text: string, columns: number): string {
  let visible = 0;
  let out = '';
  // eslint-disable-next-line no-control-regex
  for (const part of text.split(/(\u001B\[[0-9;]*m)/)) {
    if (part.startsWith('\u001B[')) {
      out += part;
      continue;
    }
    const room = columns - visible;
    if (room <= 0) continue;
    out += part.slice(0, room);
    visible += Math.min(room, part.length);
  }
  return out;
}

export class Ui {
  readonly color: ChalkInstance;
  readonly json: boolean;
  private readonly stderr: NodeJS.WriteStream;
  private readonly stdout: NodeJS.WriteStream;
  private readonly progressEnabled: boolean;
  /** The live line currently drawn on stderr, if any. */
  private liveText: string | undefined;

  constructor(options: UiOptions) {
    const env = options.env ?? process.env;
    this.json = options.json;
    this.stderr = options.stderr ?? process.stderr;
    const stdout = options.stdout ?? process.stdout;
    this.stdout = stdout;
    this.color = new Chalk({level: options.json ? 0 : colorLevelFor(stdout, env)});
    this.progressEnabled = !options.json && Boolean(this.stderr.isTTY) && env.CI !== 'true';
  }

  /** Prints a line to stdout or stderr, above the live line when one is shown. */
  print(stream: 'stdout' | 'stderr', text: string): void {
    const line = text.endsWith('\n') ? text : `${text}\n`;
    if (this.liveText === undefined) {
      (stream === 'stdout' ? this.stdout : this.stderr).write(line);
      return;
    }
    this.stderr.write(CLEAR_LINE);
    (stream === 'stdout' ? this.stdout : this.stderr).write(line);
    this.stderr.write(this.liveText);
  }

  /** A status line redrawn in place at the bottom of stderr (TTY only); `print()` writes above it. */
  live(): LiveLine {
    if (!this.progressEnabled) return {enabled: false, update() {}, stop() {}};
    return {
      enabled: true,
      update: (text) => {
        this.liveText = fitToWidth(text, Math.max(20, (this.stderr.columns || 80) - 1));
        this.stderr.write(CLEAR_LINE + this.liveText);
      },
      stop: () => {
        if (this.liveText !== undefined) this.stderr.write(CLEAR_LINE);
        this.liveText = undefined;
      },
    };
  }

  /** Starts a progress bar on stderr for `total` units of `label` work. */
  progress(label: string, total: number): Progress {
    if (!this.progressEnabled) return silentProgress;
    const bar = new cliProgress.SingleBar(
      {
        stream: this.stderr,
        format: `${label} [{bar}] {percentage}% | {value}/{total} | {eta_formatted} left`,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return {
      increment: (by = 1, payload) => bar.increment(by, payload),
      setTotal: (t) => bar.setTotal(t),
      stop: () => bar.stop(),
    };
  }
}

/** Renders rows as an aligned plain-text table (colour codes are ignored when measuring width). */
export function formatTable(headers: string[], rows: Array<Array<string | number>>, align?: Array<'left' | 'right'>): string {
  // eslint-disable-next-line no-control-regex
  const visible = (s: string): number => s.replace(/\u001B\[[0-9;]*m/g, '').length;
  const cells = rows.map((r) => r.map(String));
  const widths = headers.map((h, i) => Math.max(visible(h), ...cells.map((r) => visible(r[i] ?? ''))));
  const pad = (s: string, i: number): string => {
    const fill = ' '.repeat(Math.max(0, (widths[i] ?? 0) - visible(s)));
    return align?.[i] === 'right' ? fill + s : s + fill;
  };
  const line = (r: string[]): string => r.map((c, i) => pad(c, i)).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}
