/**
 * A small local MLflow look-alike for tests: implements the REST endpoints natix uses, records every request, and
 * fails on demand (HTTP 500s, hangs past the client's timeout, dropped connections, and error bodies that echo the
 * request's Authorization header, as some misconfigured proxies do). Listens on 127.0.0.1 only.
 */
import http from 'node:http';
import type {AddressInfo} from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  bytes: number;
}

export type Fault = 'none' | 'http500' | 'hang' | 'drop' | 'echo-auth';

export class FakeMlflowServer {
  readonly requests: RecordedRequest[] = [];
  /** Faults to apply to the next requests, in order. */
  faults: Fault[] = [];
  /** Apply this fault to every request while set. */
  always?: Fault;
  private server?: http.Server;
  private experiments = new Map<string, string>();
  private nextRun = 1;
  /** run id -> experiment id */
  readonly runs = new Map<string, string>();
  versions = new Map<string, number>();
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server!.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }

  calls(endpoint: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.startsWith(endpoint));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', this.url);
    const isJson = (req.headers['content-type'] ?? '').includes('json');
    const body = isJson && raw.length ? (JSON.parse(raw.toString('utf8')) as unknown) : undefined;
    this.requests.push({method: req.method ?? '', path: url.pathname + url.search, headers: req.headers, body, bytes: raw.length});
    const fault = this.always ?? this.faults.shift();
    if (fault === 'drop') return void req.socket.destroy();
    if (fault === 'hang') return; // never answer: the client must time out
    if (fault === 'http500') return this.send(res, 500, {error_code: 'INTERNAL_ERROR', message: 'injected'});
    if (fault === 'echo-auth') return this.send(res, 403, {error_code: 'PERMISSION_DENIED', message: `bad credentials in Authorization: ${String(req.headers.authorization)}`});
    const b = (body ?? {}) as Record<string, unknown>;
    const p = url.pathname;
    if (p === '/api/2.0/mlflow/experiments/get-by-name') {
      const id = this.experiments.get(url.searchParams.get('experiment_name') ?? '');
      return id ? this.send(res, 200, {experiment: {experiment_id: id}}) : this.send(res, 404, {error_code: 'RESOURCE_DOES_NOT_EXIST'});
    }
    if (p === '/api/2.0/mlflow/experiments/create') {
      const id = String(this.experiments.size + 1);
      this.experiments.set(String(b.name), id);
      return this.send(res, 200, {experiment_id: id});
    }
    if (p === '/api/2.0/mlflow/runs/create') {
      const runId = `run${this.nextRun++}`;
      this.runs.set(runId, String(b.experiment_id));
      return this.send(res, 200, {run: {info: {run_id: runId, experiment_id: b.experiment_id, artifact_uri: `mlflow-artifacts:/${String(b.experiment_id)}/${runId}/artifacts`}}});
    }
    if (p === '/api/2.0/mlflow/runs/get') {
      const runId = url.searchParams.get('run_id') ?? '';
      const exp = this.runs.get(runId);
      return exp === undefined ? this.send(res, 404, {error_code: 'RESOURCE_DOES_NOT_EXIST'}) : this.send(res, 200, {run: {info: {run_id: runId, experiment_id: exp, artifact_uri: `mlflow-artifacts:/${exp}/${runId}/artifacts`}}});
    }
    if (['/api/2.0/mlflow/runs/log-batch', '/api/2.0/mlflow/runs/set-tag', '/api/2.0/mlflow/runs/update'].includes(p)) {
      const batch = b as {metrics?: unknown[]; params?: unknown[]; tags?: unknown[]};
      if ((batch.metrics?.length ?? 0) > 1000 || (batch.params?.length ?? 0) > 100 || (batch.tags?.length ?? 0) > 100) return this.send(res, 400, {error_code: 'INVALID_PARAMETER_VALUE'});
      return this.send(res, 200, {});
    }
    if (p.startsWith('/api/2.0/mlflow-artifacts/artifacts/') && req.method === 'PUT') return this.send(res, 200, {});
    if (p === '/api/2.0/mlflow/registered-models/create') return this.send(res, this.versions.has(String(b.name)) ? 400 : 200, {});
    if (p === '/api/2.0/mlflow/model-versions/create') {
      const v = (this.versions.get(String(b.name)) ?? 0) + 1;
      this.versions.set(String(b.name), v);
      return this.send(res, 200, {model_version: {version: String(v)}});
    }
    if (p === '/api/2.0/mlflow/registered-models/alias') return this.send(res, 200, {});
    return this.send(res, 404, {error_code: 'ENDPOINT_NOT_FOUND'});
  }

  private send(res: http.ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, {'content-type': 'application/json'});
    res.end(JSON.stringify(body));
  }
}
