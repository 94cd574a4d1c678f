/**
 * validate-data's per-image pixel work - the thumbnail's properties (computeProperties) and the full-resolution
 * dark / light verdicts - on worker threads (pixel-worker.ts), so the main thread keeps reading samples and handing
 * decodes to libvips instead of making them wait behind JavaScript loops. That pays where the main thread is the
 * bottleneck (more cores than libvips' decodes need); on 2 cores both are busy decoding, and the bench
 * (`npm run bench:validate-data`, pass c) measured the pool as no better: 69.0 vs 64.4 images/s with it at load
 * average 11-17, 85.9 vs 95.5 images/s at 7-11, and ~1 CPU ms per image more (copies, a second isolate). So the
 * default (defaultPixelWorkers) is no worker on <= 2 cores. The numbers are the main thread's exactly (the same
 * functions run there).
 *
 * One pool per validate run, started on first use and closed by the run (`close()` in a finally); the workers hold
 * no state beyond their scratch buffers. Pixels are copied to a worker (structured clone), never transferred, so the
 * caller's buffer stays valid; a worker that fails to start or dies sends its images, and every later one, back to
 * the main thread (same results, only slower). A SIGINT ends the process, and its worker threads with it.
 */
import os from 'node:os';
import {Worker} from 'node:worker_threads';
import type {DecodedImage} from '../image/decode.js';
import {workerEntry} from '../util/worker-entry.js';
import {defaultPixelKernels, type PixelKernels} from './pixel-kernels.js';
import {computeProperties, fullResolutionBrightness, PropertiesScratch, type ImageProperties} from './properties.js';

type Brightness = {brightnessP5: number; brightnessP99: number};

export type PixelRequest = {id: number; data: Uint8Array} & (
  | {kind: 'properties'; image: Omit<DecodedImage, 'data' | 'channels'>}
  | {kind: 'brightness'; thumbnail: Brightness; dark: number; light: number}
);

export type PixelResponse = {id: number; properties?: ImageProperties; brightness?: Brightness; error?: string};

/** None on <= 2 cores (measured: no gain there, see above); else one per core beyond two, at most 4. */
export function defaultPixelWorkers(cores = os.availableParallelism()): number {
  return cores <= 2 ? 0 : Math.min(4, cores - 2);
}

interface Waiting {
  worker: number;
  resolve: (response: PixelResponse) => void;
  reject: (error: Error) => void;
}

/** Thrown to the caller's fallback when no worker can take (or finish) a job. */
class WorkerUnavailable extends Error {}

export class PixelWorkPool {
  private workers: Worker[] | undefined;
  private readonly load: number[] = [];
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  /** Set when a worker failed: everything runs on the main thread from then on. */
  private broken = false;
  private closed = false;
  /** Jobs answered by a worker (the rest ran on the main thread). */
  workerJobs = 0;
  /** Scratch buffers of the main-thread path. */
  private readonly scratch: PropertiesScratch;

  constructor(
    private readonly size: number = defaultPixelWorkers(),
    private readonly kernels: PixelKernels = defaultPixelKernels(),
  ) {
    this.scratch = new PropertiesScratch(kernels);
  }

  /** computeProperties(image), on a worker when there is one. */
  async properties(image: DecodedImage): Promise<ImageProperties> {
    if (!this.start()) return computeProperties(image, this.scratch); // no workers (the default on <= 2 cores)
    const {data, channels: _channels, ...rest} = image;
    try {
      return (await this.call({id: 0, kind: 'properties', data, image: rest})).properties!;
    } catch (error) {
      if (!(error instanceof WorkerUnavailable)) throw error;
      return computeProperties(image, this.scratch);
    }
  }

  /** fullResolutionBrightness(...), on a worker when there is one. */
  async fullResolutionBrightness(full: Uint8Array, thumbnail: Brightness, dark: number, light: number): Promise<Brightness> {
    if (!this.start()) return fullResolutionBrightness(full, thumbnail, dark, light, this.kernels);
    try {
      return (await this.call({id: 0, kind: 'brightness', data: full, thumbnail: {brightnessP5: thumbnail.brightnessP5, brightnessP99: thumbnail.brightnessP99}, dark, light})).brightness!;
    } catch (error) {
      if (!(error instanceof WorkerUnavailable)) throw error;
      return fullResolutionBrightness(full, thumbnail, dark, light, this.kernels);
    }
  }

  /** Stops the workers (jobs still running are answered on the main thread: nobody waits on them after close). */
  async close(): Promise<void> {
    this.closed = true;
    const workers = this.workers ?? [];
    this.workers = undefined;
    this.failAll(new WorkerUnavailable('pool closed'));
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private start(): Worker[] | undefined {
    if (this.workers || this.broken || this.closed || this.size <= 0) return this.broken ? undefined : this.workers;
    const entry = workerEntry(import.meta.url, 'pixel-worker');
    this.workers = Array.from({length: this.size}, (_, k) => {
      const worker = new Worker(entry.source, {eval: entry.eval, stdout: false, stderr: false});
      this.load[k] = 0;
      worker.on('message', (response: PixelResponse) => {
        const waiting = this.waiting.get(response.id);
        if (!waiting) return;
        this.waiting.delete(response.id);
        this.load[waiting.worker]!--;
        if (response.error !== undefined) return waiting.reject(new Error(response.error));
        this.workerJobs++;
        waiting.resolve(response);
      });
      const fail = (error: Error): void => {
        if (this.closed) return;
        this.broken = true;
        this.failAll(new WorkerUnavailable(`pixel worker ${k}: ${error.message}`));
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
      return worker;
    });
    return this.workers;
  }

  private failAll(error: Error): void {
    for (const [id, waiting] of this.waiting) {
      this.waiting.delete(id);
      waiting.reject(error);
    }
  }

  private call(request: PixelRequest): Promise<PixelResponse> {
    const workers = this.start();
    if (!workers || this.broken) return Promise.reject(new WorkerUnavailable('no pixel worker'));
    // The least busy worker.
    let k = 0;
    for (let j = 1; j < workers.length; j++) if (this.load[j]! < this.load[k]!) k = j;
    const id = this.nextId++;
    return new Promise<PixelResponse>((resolve, reject) => {
      this.waiting.set(id, {worker: k, resolve, reject});
      this.load[k]!++;
      workers[k]!.postMessage({...request, id});
    });
  }
}
