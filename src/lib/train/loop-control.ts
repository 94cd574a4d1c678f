/**
 * Control of a long training loop, shared by every trainer (the zoo trainer and frozen-backbone heads):
 *
 * - `StopController`: the first SIGINT/SIGTERM asks the loop to stop (it finishes the current step and writes a
 *   checkpoint); a second one exits at once. Checkpoints and pointers are written atomically (temporary name, then
 *   rename), so exiting in the middle of a write never corrupts a run: the leftover temporary files are removed on
 *   the next resume (`cleanStaleTemporaries`).
 * - `yieldToEventLoop()`: TF.js steps resolve as microtasks, so a loop that only awaits them never lets Node run a
 *   signal handler (SIGINT took effect at the end of a 35 s epoch). Await this once per step.
 * - `StepMeter`: images/s and ETA of an epoch, for the progress display (`src/lib/cli/train-progress.ts`).
 *
 * No global state: a controller is created per command run and disposed at its end.
 */

/** One finished training step, as a trainer reports it. */
export interface StepReport {
  /** 0-based epoch index. */
  epoch: number;
  epochs: number;
  /** Steps done in this epoch (1-based after the step). */
  step: number;
  steps: number;
  /** Images in this step. */
  images: number;
  /** Mean training loss of the epoch so far. */
  loss: number;
  lr: number;
}

/** What the loop polls between steps. */
export interface StopSignal {
  /** The signal that asked to stop, or undefined. */
  readonly requested: NodeJS.Signals | undefined;
}

export interface StopControllerOptions {
  /** Told once, on the first signal (e.g. print "finishing the current step..."). */
  onFirst?(signal: NodeJS.Signals): void;
  /** On the second signal; the default exits the process at once with code 1. */
  onSecond?(signal: NodeJS.Signals): void;
  /** The process to listen on (tests pass an EventEmitter). */
  target?: Pick<NodeJS.Process, 'on' | 'off'>;
  signals?: NodeJS.Signals[];
}

export class StopController implements StopSignal {
  private signal: NodeJS.Signals | undefined;
  private readonly target: Pick<NodeJS.Process, 'on' | 'off'>;
  private readonly signals: NodeJS.Signals[];
  private installed = false;
  private readonly handler = (signal: NodeJS.Signals): void => {
    if (this.signal) {
      if (this.options.onSecond) this.options.onSecond(signal);
      else process.exit(1);
      return;
    }
    this.signal = signal;
    this.options.onFirst?.(signal);
  };

  constructor(private readonly options: StopControllerOptions = {}) {
    this.target = options.target ?? process;
    this.signals = options.signals ?? ['SIGINT', 'SIGTERM'];
  }

  get requested(): NodeJS.Signals | undefined {
    return this.signal;
  }

  /** Starts listening (idempotent). Install it before any slow work so a signal is never the default kill. */
  install(): this {
    if (!this.installed) for (const s of this.signals) this.target.on(s, this.handler);
    this.installed = true;
    return this;
  }

  dispose(): void {
    if (this.installed) for (const s of this.signals) this.target.off(s, this.handler);
    this.installed = false;
  }
}

/** Lets Node run pending signal handlers, timers and I/O callbacks (await once per training step). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Throughput and ETA of an epoch's steps, smoothed over the last few seconds. */
export class StepMeter {
  private readonly marks: Array<{t: number; images: number}> = [];
  private images = 0;

  constructor(
    private readonly totalSteps: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.marks.push({t: this.now(), images: 0});
  }

  /** Records a finished step of `images` images; returns images/s and the seconds left for `stepsLeft` steps. */
  step(images: number, stepsDone: number): {imagesPerSecond: number; etaSeconds: number} {
    this.images += images;
    const t = this.now();
    this.marks.push({t, images: this.images});
    while (this.marks.length > 2 && t - this.marks[0]!.t > 5000) this.marks.shift();
    const first = this.marks[0]!;
    const seconds = (t - first.t) / 1000;
    const imagesPerSecond = seconds > 0 ? (this.images - first.images) / seconds : 0;
    const stepsMeasured = this.marks.length - 1;
    const perStep = stepsMeasured > 0 ? seconds / stepsMeasured : 0;
    return {imagesPerSecond, etaSeconds: Math.max(0, this.totalSteps - stepsDone) * perStep};
  }
}
