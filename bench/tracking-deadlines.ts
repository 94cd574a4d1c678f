/**
 * How long a tracking server that accepts connections and never answers holds up the start and the end of a run,
 * with natix's defaults (1 s each) and with the deadlines natix had before (3 s for run creation, 5 s for the final
 * flush), measured on the same machine. `npm run bench:tracking-deadlines`. Prints milliseconds and the ratio.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import http from 'node:http';
import type {AddressInfo} from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {RestTracker, spoolDir} from '../src/lib/tracking/index.js';

/** A server that answers get-by-name / experiments/create / runs/create when `answerCreation`, and nothing else. */
async function server(answerCreation: boolean): Promise<{url: string; close: () => Promise<void>}> {
  let runs = 0;
  const s = http.createServer((req, res) => {
    if (!answerCreation) return;
    const url = req.url ?? '';
    const send = (status: number, body: unknown): void => void res.writeHead(status, {'content-type': 'application/json'}).end(JSON.stringify(body));
    if (url.includes('experiments/get-by-name')) return send(404, {error_code: 'RESOURCE_DOES_NOT_EXIST'});
    if (url.includes('experiments/create')) return send(200, {experiment_id: '1'});
    if (url.includes('runs/create')) return send(200, {run: {info: {run_id: `run${++runs}`, artifact_uri: 'mlflow-artifacts:/1/x/artifacts'}}});
    // anything else: never answered
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    close: async () => {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
}

async function measure(deadlines: {startDeadlineMs?: number; endDeadlineMs?: number}): Promise<{startMs: number; endMs: number}> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'natix-bench-tracking-'));
  const silent = await server(false);
  const stalling = await server(true);
  try {
    const options = {env: {}, spoolDir: spoolDir(dir), warn: () => {}, ...deadlines};
    let t = performance.now();
    const never = await new RestTracker({...options, baseUrl: silent.url}).startRun({experimentName: 'e', runName: 'never'});
    const startMs = performance.now() - t;
    await never.end('FINISHED');
    const run = await new RestTracker({...options, baseUrl: stalling.url}).startRun({experimentName: 'e', runName: 'stalls'});
    for (let epoch = 1; epoch <= 5; epoch++) await run.logMetrics({loss: 1 / epoch}, epoch);
    t = performance.now();
    await run.end('FINISHED');
    return {startMs, endMs: performance.now() - t};
  } finally {
    await silent.close();
    await stalling.close();
    await rm(dir, {recursive: true, force: true});
  }
}

const now = await measure({});
const before = await measure({startDeadlineMs: 3000, endDeadlineMs: 5000});
const row = (name: string, r: {startMs: number; endMs: number}): string => `${name.padEnd(34)} run creation ${r.startMs.toFixed(0).padStart(5)} ms   final flush ${r.endMs.toFixed(0).padStart(5)} ms`;
console.log(row('defaults now (1 s + 1 s)', now));
console.log(row('deadlines before (3 s + 5 s)', before));
console.log(`held-up time, before / now: ${((before.startMs + before.endMs) / (now.startMs + now.endMs)).toFixed(2)}x`);
