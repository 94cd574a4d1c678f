/**
 * What a training run shows on a terminal, in the style users know from Keras and Ultralytics: a live bar per epoch
 * (step, loss so far, learning rate, images/s, ETA) redrawn in place at most 10 times a second, log lines printed
 * above it, and one clean summary line per finished epoch that stays in the scroll-back. Off a TTY (or under
 * --json) only the summary lines are printed. Used by every trainer through `TrainDisplay`.
 */
import type {EpochRecord} from '../train/history.js';
import {StepMeter, type StepReport} from '../train/loop-control.js';
import type {LiveLine, Ui} from './ui.js';

export type {StepReport} from '../train/loop-control.js';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}:${String(s % 60).padStart(2, '0')}`;
  return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** The bar's text, e.g. `epoch 3/10 [=====>    ]  57/100  loss 0.4123  lr 1.00e-3  412 img/s  ETA 7s`. */
export function stepLine(r: StepReport, imagesPerSecond: number, etaSeconds: number, width = 20): string {
  const filled = r.steps > 0 ? Math.round((r.step / r.steps) * width) : 0;
  const bar = filled >= width ? '='.repeat(width) : `${'='.repeat(filled)}>${' '.repeat(Math.max(0, width - filled - 1))}`;
  const digits = String(r.steps).length;
  return `epoch ${r.epoch + 1}/${r.epochs} [${bar}] ${String(r.step).padStart(digits)}/${r.steps}  loss ${r.loss.toFixed(4)}  lr ${r.lr.toExponential(2)}  ${imagesPerSecond.toFixed(0)} img/s  ETA ${formatDuration(etaSeconds)}`;
}

export interface TrainDisplayOptions {
  /** Prints a line above the live bar (stdout for summaries). */
  print(line: string): void;
  now?: () => number;
}

export class TrainDisplay {
  private readonly live: LiveLine;
  private meter: StepMeter | undefined;
  private lastDraw = 0;
  private readonly now: () => number;

  constructor(
    ui: Ui,
    private readonly options: TrainDisplayOptions,
  ) {
    this.live = ui.live();
    this.now = options.now ?? (() => performance.now());
  }

  /** Decoding before training: a counter on the live line. */
  decoding(done: number): void {
    if (!this.live.enabled) return;
    const t = this.now();
    if (t - this.lastDraw < 100) return;
    this.lastDraw = t;
    this.live.update(`decoding images... ${done}`);
  }

  /** A new epoch of `steps` steps begins (timing restarts: a resumed epoch starts mid-way). */
  epochStart(steps: number): void {
    this.meter = new StepMeter(steps, this.now);
    this.lastDraw = 0;
  }

  step(r: StepReport): void {
    if (!this.live.enabled) return;
    this.meter ??= new StepMeter(r.steps, this.now);
    const {imagesPerSecond, etaSeconds} = this.meter.step(r.images, r.step);
    const t = this.now();
    if (t - this.lastDraw < 100 && r.step < r.steps) return;
    this.lastDraw = t;
    this.live.update(stepLine(r, imagesPerSecond, etaSeconds));
  }

  /** Shown while validation runs after the last step. */
  status(text: string): void {
    if (this.live.enabled) this.live.update(text);
  }

  /** Replaces the bar with the epoch's summary line. */
  epochEnd(summary: string): void {
    this.live.stop();
    this.options.print(summary);
    this.meter = undefined;
  }

  stop(): void {
    this.live.stop();
  }
}

/** One line per finished epoch, like Keras: what it took and where training and validation stand. */
export function epochSummary(r: EpochRecord, epochs: number): string {
  const f = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(4));
  return `epoch ${String(r.epoch).padStart(String(epochs).length)}/${epochs}  ${r.seconds!.toFixed(1)}s  loss ${f(r.loss)}  acc ${f(r.accuracy)}  val_loss ${f(r.val_loss)}  val_acc ${f(r.val_accuracy)}  val_mcc ${f(r.val_mcc)}  lr ${r.lr!.toExponential(2)}`;
}
